//! OpenSSH `authorized_keys` lines, checked before sshd sees them, so that a bad injected key is
//! reported by sparkvisor with the setting and line it came from (sshd would only skip it silently).
//!
//! A line is `[options] TYPE BASE64 [comment]` (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"); blank lines
//! and `#` comments are allowed. The base64 blob must decode and start with the same key type
//! (the SSH wire format: a length-prefixed type string), so a truncated or pasted-wrong key is
//! caught here.

/// Key types OpenSSH 9 accepts for user authentication.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
];

/// The result of checking a whole `authorized_keys` text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// The lines that are valid keys, as written (trimmed).
    pub valid: Vec<String>,
    /// `(line number from 1, why)` for every line that is not.
    pub invalid: Vec<(usize, String)>,
}

/// Checks every line of `text`.
pub fn check(text: &str) -> Checked {
    let mut out = Checked::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match check_line(line) {
            Ok(()) => out.valid.push(line.to_string()),
            Err(why) => out.invalid.push((i + 1, why)),
        }
    }
    out
}

/// Checks one non-empty, non-comment line.
pub fn check_line(line: &str) -> Result<(), String> {
    if line.chars().any(char::is_control) {
        return Err("holds a control character".into());
    }
    let rest = match first_word(line) {
        (word, rest) if KEY_TYPES.contains(&word) => (word, rest),
        (options, rest) => {
            if options.contains("\"") && options.matches('"').count() % 2 == 1 {
                return Err("unbalanced quotes in the options".into());
            }
            let (word, rest) = first_word(rest);
            if !KEY_TYPES.contains(&word) {
                let shown: String = first_word(line).0.chars().take(40).collect();
                return Err(format!(
                    "no known key type (expected e.g. ssh-ed25519 or ssh-rsa, found {shown:?})"
                ));
            }
            (word, rest)
        }
    };
    let (kind, rest) = rest;
    let (blob, _comment) = first_word(rest);
    if blob.is_empty() {
        return Err(format!("{kind} key without its base64 data"));
    }
    let bytes =
        decode_base64(blob).ok_or_else(|| format!("{kind} key data is not valid base64"))?;
    let embedded = wire_string(&bytes)
        .ok_or_else(|| format!("{kind} key data is truncated (no key type inside)"))?;
    if embedded != kind.as_bytes() {
        return Err(format!(
            "the key data is a {} key, but the line says {kind}",
            String::from_utf8_lossy(embedded)
        ));
    }
    // Every key type carries at least one more field (the key itself, or RSA's exponent).
    let material = bytes
        .get(4 + embedded.len()..)
        .and_then(wire_string)
        .filter(|m| !m.is_empty());
    match material {
        None => Err(format!("{kind} key data is truncated (no key inside)")),
        Some(m) if kind == "ssh-ed25519" && m.len() != 32 => {
            Err("ssh-ed25519 key data is truncated".into())
        }
        Some(_) => Ok(()),
    }
}

/// The first word (options may hold quoted spaces) and the rest, trimmed.
fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..i], text[i..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// An SSH wire-format string at the start of `bytes`: a big-endian u32 length, then that many bytes.
fn wire_string(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(4..4usize.checked_add(len)?)
}

/// Standard base64 with optional `=` padding; `None` on any other character or a bad length.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(bytes.get(1..chunk.len())?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 public key (generated for these tests; no private half is kept).
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHte1F8ZzI3osTxPVCSfgl9kQspdDp1f/Hwb4+qqpaHv test@example";

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("aGV*").is_none());
    }

    #[test]
    fn valid_keys_pass() {
        assert_eq!(check_line(ED), Ok(()));
        let with_options = format!("from=\"10.0.0.0/8,192.168.1.1\",no-pty {ED}");
        assert_eq!(check_line(&with_options), Ok(()));
    }

    #[test]
    fn bad_keys_say_why() {
        let e = check_line("ssh-ed25519").unwrap_err();
        assert!(e.contains("without its base64"), "{e}");
        let e = check_line("ssh-ed25519 not*base64").unwrap_err();
        assert!(e.contains("not valid base64"), "{e}");
        let e = check_line("hello world").unwrap_err();
        assert!(e.contains("no known key type"), "{e}");
        // An ed25519 blob labelled as RSA.
        let e = check_line(&ED.replace("ssh-ed25519", "ssh-rsa")).unwrap_err();
        assert!(e.contains("is a ssh-ed25519 key"), "{e}");
        // Cut short.
        let e = check_line(&ED[..50]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let e = check_line("ssh-rsa AAAAB3NzaC1yc2E= x").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn whole_text_reports_line_numbers() {
        let text = format!("# keys\n\n{ED}\nnot a key\n");
        let c = check(&text);
        assert_eq!(c.valid, vec![ED.to_string()]);
        assert_eq!(c.invalid.len(), 1);
        assert_eq!(c.invalid[0].0, 4);
    }
}
