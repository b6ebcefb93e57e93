//! One way to point at a place in an input: [`SourceText`], a loaded text (a file, or a pseudo-file
//! such as `env SPARKVISOR_SETTINGS`) carried with what was parsed from it, so a diagnostic is
//! positioned without reading the file again.
//!
//! Positions come from the parsers where they have one (serde_norway's `Error::location()`,
//! serde_json's `Error::line()/column()`); semantic problems found after parsing (a bad value, a
//! missing service) are placed by the text's key index or by the first occurrence of what they
//! name, both computed from the text held here.

use std::sync::OnceLock;

use crate::config::scan::KeyIndex;
use crate::error::Diagnostic;

/// A text read from outside, with where it came from and what is needed to point into it.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// Path as given (or a pseudo-file such as `env SPARKVISOR_PEERS`), shown in diagnostics.
    pub path: String,
    /// Whole contents.
    pub text: String,
    /// Positions of mapping keys, scanned once on first use (one scan per text, never per key).
    keys: OnceLock<KeyIndex>,
}

impl PartialEq for SourceText {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.text == other.text
    }
}

impl Eq for SourceText {}

impl SourceText {
    /// A text and where it came from.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> SourceText {
        SourceText {
            path: path.into(),
            text: text.into(),
            keys: OnceLock::new(),
        }
    }

    /// A diagnostic in this text, at `position` (1-based line and column) when known.
    pub fn diagnostic(
        &self,
        position: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Diagnostic {
        match position {
            Some((line, column)) => Diagnostic::at(self.path.clone(), line, column, message),
            None => Diagnostic::new(self.path.clone(), message),
        }
    }

    /// Where `key` first appears as a mapping key (`key:`, `"key":`), 1-based.
    pub fn key_position(&self, key: &str) -> Option<(usize, usize)> {
        if key.is_empty() {
            return None;
        }
        self.keys.get_or_init(|| KeyIndex::new(&self.text)).get(key)
    }

    /// 1-based line and column of the first `needle` after the first `anchor` (or of the first
    /// `needle` at all when there is no anchor or nothing follows it).
    pub fn find(&self, anchor: Option<&str>, needle: &str) -> Option<(usize, usize)> {
        find_in(&self.text, anchor, needle)
    }

    /// A diagnostic at `needle` (after `anchor`), or about the whole text when it is not found.
    pub fn diagnostic_at(
        &self,
        anchor: Option<&str>,
        needle: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.diagnostic(self.find(anchor, needle), message)
    }

    /// A YAML parse error, at the position the parser gives.
    pub fn yaml_error(&self, e: &serde_yaml::Error) -> Diagnostic {
        let position = e.location().map(|l| (l.line(), l.column()));
        self.diagnostic(position, without_position(&e.to_string(), position))
    }

    /// A JSON parse error, at the position the parser gives (line 0 means none).
    pub fn json_error(&self, e: &serde_json::Error) -> Diagnostic {
        let position = (e.line() > 0).then(|| (e.line(), e.column().max(1)));
        let shown = (e.line() > 0).then(|| (e.line(), e.column()));
        let message = without_position(&e.to_string(), shown);
        self.diagnostic(position, message)
    }
}

/// 1-based line and column of the first `needle` after the first `anchor` in `text` (or of the
/// first `needle` at all): [`SourceText::find`] for a text held elsewhere (a template's).
pub fn find_in(text: &str, anchor: Option<&str>, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let from = anchor.and_then(|a| text.find(a)).unwrap_or(0);
    let offset = text
        .get(from..)
        .and_then(|rest| rest.find(needle))
        .map(|i| i + from)
        .or_else(|| text.find(needle))?;
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// `message` without the ` at line L column C` the parser appended for `position` (and what follows
/// it: libyaml adds its context after), since the diagnostic shows the position itself. Only the
/// exact suffix for this position is removed, so a message quoting user text that happens to hold
/// "at line" keeps it.
fn without_position(message: &str, position: Option<(usize, usize)>) -> String {
    let Some((line, column)) = position else {
        return message.to_string();
    };
    let marker = format!(" at line {line} column {column}");
    match message.find(&marker) {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_line_and_column() {
        let s = SourceText::new("r.yaml", "a:\n  b: x\nc:\n  b: y\n");
        assert_eq!(s.find(None, "x"), Some((2, 6)));
        assert_eq!(s.find(Some("c:"), "b:"), Some((4, 3)));
        assert_eq!(s.find(Some("zz"), "y"), Some((4, 6)));
        assert_eq!(s.find(None, "q"), None);
        assert_eq!(s.key_position("b"), Some((2, 3)));
    }

    #[test]
    fn parser_positions_without_the_parsers_suffix() {
        let s = SourceText::new("c.yaml", "a: [1\n");
        let e = serde_yaml::from_str::<serde_yaml::Value>(&s.text).unwrap_err();
        let d = s.yaml_error(&e);
        assert!(d.line.is_some(), "{d}");
        assert!(!d.message.contains(" at line "), "{d}");
        let s = SourceText::new("c.json", "{\"a\":\n x}");
        let e = serde_json::from_str::<serde_json::Value>(&s.text).unwrap_err();
        let d = s.json_error(&e);
        assert_eq!(d.line, Some(2), "{d}");
        assert!(!d.message.contains(" at line "), "{d}");
        // A message quoting user text keeps it: only the parser's own suffix goes.
        assert_eq!(
            without_position("unknown field `x at line 9`", Some((1, 1))),
            "unknown field `x at line 9`"
        );
    }
}
