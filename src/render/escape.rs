//! Escaping by file format, applied by tera to every `{{ }}` string value (autoescape with one escape
//! function per format). Numbers and booleans are printed as they are (they cannot break a file).
//!
//! A value that a format cannot represent (a NUL in a shell file, a control character in XML 1.0 or
//! in a plain file) is replaced by [`REFUSED`]; the renderer then fails with a clear reason instead of
//! writing a broken or dangerous file. [`REFUSED`] itself holds NULs, so no accepted value can fake it.

/// Marker an escape function leaves in place of a value the format cannot hold.
pub const REFUSED: &str = "\u{0}sparkvisor:refused-value\u{0}";

/// The formats sparkvisor knows, chosen by the destination file's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.sh`: POSIX shell, each value one single-quoted word (`FOO={{ x }}` → `FOO='...'`).
    Shell,
    /// `.xml`: XML character data and attribute values.
    Xml,
    /// `.properties`, `.conf`: `java.util.Properties` keys and values.
    Properties,
    /// `.json`: each value becomes a complete JSON string literal, quotes included.
    Json,
    /// Anything else, and keyword-argument files whose `.conf` is not Java properties (see
    /// [`DIRECTIVE_FILES`]): values are inserted verbatim, but control characters are refused.
    Plain,
}

/// File names whose lines are `keyword arguments` directives (OpenSSH, nslcd): one value per line,
/// no quoting or escaping the programs would undo, so they are [`Format::Plain`] (a value can never
/// start a new directive) even when the name ends in `.conf`.
pub const DIRECTIVE_FILES: &[&str] = &["sshd_config", "ssh_config", "nslcd.conf"];

impl Format {
    /// The format for a file name (template or destination), by suffix.
    pub fn for_name(name: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        let base = lower.rsplit('/').next().unwrap_or_default();
        if DIRECTIVE_FILES.contains(&base) {
            Format::Plain
        } else if lower.ends_with(".sh") {
            Format::Shell
        } else if lower.ends_with(".xml") {
            Format::Xml
        } else if lower.ends_with(".properties") || lower.ends_with(".conf") {
            Format::Properties
        } else if lower.ends_with(".json") {
            Format::Json
        } else {
            Format::Plain
        }
    }

    /// The escape function tera calls for this format.
    pub fn escape_fn(self) -> fn(&str) -> String {
        match self {
            Format::Shell => shell,
            Format::Xml => xml,
            Format::Properties => properties,
            Format::Json => json,
            Format::Plain => plain,
        }
    }
}

/// POSIX single-quote quoting: the whole value is one word and nothing in it is expanded.
pub fn shell(value: &str) -> String {
    if value.contains('\0') {
        return REFUSED.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// XML 1.0 escaping for text and (single- or double-quoted) attribute values.
pub fn xml(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Line breaks and tabs as references so they survive attribute normalisation.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            // Not allowed in XML 1.0 at all, not even as a reference.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return REFUSED.to_string()
            }
            c => out.push(c),
        }
    }
    out
}

/// `java.util.Properties` escaping, valid for keys and values alike: `\`, separators (`=`, `:`,
/// whitespace), comment starters (`#`, `!`) and control characters are escaped, everything outside
/// printable ASCII becomes `\uXXXX` (so ISO-8859-1 and UTF-8 readers agree).
pub fn properties(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' => out.push_str("\\ "),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

/// A complete JSON string literal (templates write `"key": {{ value }}`, without quotes).
pub fn json(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// Verbatim, unless the value holds a control character (it could start a new line or directive).
pub fn plain(value: &str) -> String {
    if value.chars().any(char::is_control) {
        REFUSED.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_suffix() {
        assert_eq!(Format::for_name("conf/spark-env.sh"), Format::Shell);
        assert_eq!(Format::for_name("zeppelin-site.xml"), Format::Xml);
        assert_eq!(Format::for_name("spark-defaults.conf"), Format::Properties);
        assert_eq!(Format::for_name("log4j2.properties"), Format::Properties);
        assert_eq!(Format::for_name("kernel.json"), Format::Json);
        assert_eq!(Format::for_name("motd"), Format::Plain);
        assert_eq!(Format::for_name("ldap/nslcd.conf"), Format::Plain);
        assert_eq!(Format::for_name("/etc/nslcd.conf"), Format::Plain);
        assert_eq!(Format::for_name("ssh/sshd_config"), Format::Plain);
    }

    #[test]
    fn shell_quotes() {
        assert_eq!(shell("a b"), "'a b'");
        assert_eq!(shell("it's"), "'it'\\''s'");
        assert_eq!(shell(""), "''");
        assert_eq!(shell("a\0b"), REFUSED);
    }

    #[test]
    fn xml_escapes() {
        assert_eq!(xml("<a&b>\"'"), "&lt;a&amp;b&gt;&quot;&apos;");
        assert_eq!(xml("]]>"), "]]&gt;");
        assert_eq!(xml("a\u{1}"), REFUSED);
    }

    #[test]
    fn properties_escapes() {
        assert_eq!(properties("a b=c:d#e!f\\"), "a\\ b\\=c\\:d\\#e\\!f\\\\");
        assert_eq!(properties("x\ny"), "x\\ny");
        assert_eq!(properties("é😀"), "\\u00E9\\uD83D\\uDE00");
    }

    #[test]
    fn json_literal() {
        assert_eq!(json("a\"b\n"), "\"a\\\"b\\n\"");
    }

    #[test]
    fn plain_refuses_controls() {
        assert_eq!(plain("ok value"), "ok value");
        assert_eq!(plain("bad\nvalue"), REFUSED);
    }
}
