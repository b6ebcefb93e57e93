//! A minimal DER reader for the keystore formats (ASN.1 as `keytool` and OpenSSL write it): the
//! few universal and context tags PKCS#12, PKCS#8 and X.509 use, single-byte tags, definite
//! lengths. BER's indefinite lengths are refused; no store writer this reads produces them.

/// `SEQUENCE` (constructed).
pub const SEQUENCE: u8 = 0x30;
/// `SET` (constructed).
pub const SET: u8 = 0x31;
/// `INTEGER`.
pub const INTEGER: u8 = 0x02;
/// `OCTET STRING` (primitive).
pub const OCTET_STRING: u8 = 0x04;
/// `OBJECT IDENTIFIER`.
pub const OID: u8 = 0x06;
/// `BMPString` (UTF-16BE).
pub const BMP_STRING: u8 = 0x1e;
/// `[0]`, constructed (an EXPLICIT tag, or IMPLICIT over a constructed type).
pub const CONTEXT_0: u8 = 0xa0;
/// `[0]`, primitive (IMPLICIT over a primitive type, such as an OCTET STRING).
pub const CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// What was expected where the DER did not match: a phrase for an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerError(pub &'static str);

/// One element: its tag, its contents, and all of its bytes (header included).
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents octets.
    pub contents: &'a [u8],
    /// Header and contents, as they appear in the input.
    pub raw: &'a [u8],
}

/// Reads the elements of a DER encoding one after another.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`, a series of elements (the contents of a SEQUENCE, or a whole file).
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    /// True when every element has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn element(&mut self, what: &'static str) -> Result<Element<'a>, DerError> {
        let err = DerError(what);
        let tag = *self.rest.first().ok_or(err)?;
        let first = *self.rest.get(1).ok_or(err)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            // 0x80 alone is BER's indefinite length; more than 4 length octets is no store.
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(err);
            }
            let octets = self.rest.get(2..2 + n).ok_or(err)?;
            let len = octets
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        let end = header.checked_add(len).ok_or(err)?;
        let raw = self.rest.get(..end).ok_or(err)?;
        let contents = raw.get(header..).ok_or(err)?;
        self.rest = self.rest.get(end..).ok_or(err)?;
        Ok(Element { tag, contents, raw })
    }

    /// The contents of the next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DerError> {
        let element = self.element(what)?;
        if element.tag != tag {
            return Err(DerError(what));
        }
        Ok(element.contents)
    }

    /// The contents of the next element if it has `tag`; nothing is read otherwise.
    pub fn optional(&mut self, tag: u8, what: &'static str) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The contents of the next SEQUENCE, as a reader.
    pub fn sequence(&mut self, what: &'static str) -> Result<Reader<'a>, DerError> {
        self.expect(SEQUENCE, what).map(Reader::new)
    }

    /// A non-negative INTEGER that fits in a u64 (versions, iteration counts, key lengths).
    pub fn uint(&mut self, what: &'static str) -> Result<u64, DerError> {
        let contents = self.expect(INTEGER, what)?;
        let err = DerError(what);
        match contents {
            [] => Err(err),
            [first, ..] if first & 0x80 != 0 => Err(err),
            _ => {
                let digits = contents.strip_prefix(&[0]).unwrap_or(contents);
                if digits.len() > 8 {
                    return Err(err);
                }
                Ok(digits
                    .iter()
                    .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
        }
    }
}

/// An OID's DER contents from its dotted arcs, for readable constants.
#[cfg(test)]
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |mut arc: u64| {
        let mut digits = vec![(arc & 0x7f) as u8];
        arc >>= 7;
        while arc > 0 {
            digits.push((arc & 0x7f) as u8 | 0x80);
            arc >>= 7;
        }
        out.extend(digits.iter().rev());
    };
    if let [a, b, rest @ ..] = arcs {
        push(a * 40 + b);
        rest.iter().for_each(|arc| push(*arc));
    }
    out
}

/// Test helpers that write DER, to build inputs for the readers.
#[cfg(test)]
pub mod write {
    /// One element with `tag` around `contents`.
    pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let len = contents.len();
        let mut out = vec![tag];
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let octets: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | octets.len() as u8);
            out.extend(octets);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A SEQUENCE of the already encoded `parts`.
    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(super::SEQUENCE, &parts.concat())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::write::{seq, tlv};
    use super::*;

    #[test]
    fn short_and_long_lengths_and_what_follows() {
        let long = vec![7u8; 300];
        let data = [
            tlv(OCTET_STRING, b"ab"),
            tlv(OCTET_STRING, &long),
            tlv(INTEGER, &[0x27, 0x10]),
        ]
        .concat();
        let mut r = Reader::new(&data);
        assert_eq!(r.peek_tag(), Some(OCTET_STRING));
        let first = r.element("first").unwrap();
        assert_eq!((first.tag, first.contents), (OCTET_STRING, &b"ab"[..]));
        assert_eq!(first.raw, &[OCTET_STRING, 2, b'a', b'b']);
        assert_eq!(r.expect(OCTET_STRING, "long").unwrap(), &long[..]);
        assert_eq!(r.optional(OCTET_STRING, "none").unwrap(), None);
        assert_eq!(r.uint("iterations").unwrap(), 10000);
        assert!(r.is_empty());
        assert_eq!(
            r.element("past the end").unwrap_err(),
            DerError("past the end")
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x30][..],                     // no length
            &[0x30, 0x05, 1, 2],             // shorter than its length
            &[0x30, 0x80, 0, 0],             // BER indefinite length
            &[0x30, 0x85, 1, 1, 1, 1, 1],    // five length octets
            &[0x30, 0x84, 0xff, 0xff, 0xff], // truncated long length
        ] {
            assert!(Reader::new(bad).element("x").is_err(), "{bad:?}");
        }
        let mut r = Reader::new(&[0x04, 0x00]);
        assert_eq!(
            r.expect(SEQUENCE, "a sequence"),
            Err(DerError("a sequence"))
        );
        for bad_int in [&[][..], &[0x80], &[1, 2, 3, 4, 5, 6, 7, 8, 9]] {
            let data = tlv(INTEGER, bad_int);
            assert!(Reader::new(&data).uint("n").is_err(), "{bad_int:?}");
        }
        let data = tlv(INTEGER, &[0, 0xff]);
        assert_eq!(Reader::new(&data).uint("n").unwrap(), 255);
    }

    #[test]
    fn sequences_nest_and_oids_encode() {
        let data = seq(&[tlv(OID, &oid(&[1, 2, 840, 113549, 1, 12, 10, 1, 3]))]);
        let mut outer = Reader::new(&data);
        let mut inner = outer.sequence("bag").unwrap();
        assert_eq!(
            inner.expect(OID, "bag id").unwrap(),
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03]
        );
        assert!(outer.is_empty() && inner.is_empty());
    }
}
