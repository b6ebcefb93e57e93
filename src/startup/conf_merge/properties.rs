//! Java properties files (`spark-defaults.conf`, `metrics.properties`, ...): read as
//! `java.util.Properties.load` reads them, and merged by key.
//!
//! The reader is written here rather than taken from a crate because the merge needs what
//! `Properties` itself throws away: which physical lines make up each entry (so the user's text is
//! kept byte for byte and each value is reported with its line) and the comments around them.
//! Spark loads these files with `Properties.load` (spark-defaults.conf through a UTF-8 reader):
//! logical lines joined by a trailing odd backslash, `#`/`!` comments, the first unescaped `=`,
//! `:` or blank ending the key, and `\uXXXX`, `\t`, `\n`, `\r`, `\f`, `\c` escapes.
//!
//! The merge: the user's keys (outside the agent's block) win; the agent's block keeps only the
//! keys the user does not set, each replaced one by a comment naming it.

use std::collections::{BTreeMap, BTreeSet};

use super::block::{self, Comment};
use super::{MergeError, Merged};

/// One entry of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, unescaped.
    pub key: String,
    /// The value, unescaped.
    pub value: String,
    /// The 1-based physical line the entry starts on.
    pub line: usize,
    /// The 1-based physical line it ends on (continuation lines).
    pub last_line: usize,
}

/// Whitespace as `Properties.load` skips it.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// The physical lines of `text` without their terminators (`\n`, `\r\n` or `\r`, as Java's
/// `LineReader` counts them).
fn physical_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(at) => {
                out.push(rest.get(..at).unwrap_or_default());
                let skip = if rest.get(at..at + 2) == Some("\r\n") {
                    2
                } else {
                    1
                };
                rest = rest.get(at + skip..).unwrap_or_default();
            }
            None => {
                out.push(rest);
                rest = "";
            }
        }
    }
    out
}

/// True when `s` ends with an odd number of backslashes (the line continues).
fn continues(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Every entry of `text`, in order; a malformed `\u` escape (which makes Java refuse the file)
/// is an error naming its line.
pub fn parse(text: &str) -> Result<Vec<Entry>, MergeError> {
    let lines = physical_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while let Some(first) = lines.get(i) {
        let start = i;
        i += 1;
        let trimmed = first.trim_start_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = trimmed.to_string();
        while continues(&logical) {
            logical.pop();
            match lines.get(i) {
                Some(next) => {
                    logical.push_str(next.trim_start_matches(is_blank));
                    i += 1;
                }
                None => break,
            }
        }
        let (key, value) = split_entry(&logical);
        let bad = |why: String| MergeError::Syntax {
            line: start + 1,
            why,
        };
        entries.push(Entry {
            key: unescape(key).map_err(bad)?,
            value: unescape(value).map_err(bad)?,
            line: start + 1,
            last_line: i,
        });
    }
    Ok(entries)
}

/// The raw key and value of a logical line (`Properties.load`'s rules).
fn split_entry(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = at;
            value_start = at + 1;
            has_separator = true;
            break;
        }
        if !escaped && is_blank(c) {
            key_end = at;
            value_start = at + c.len_utf8();
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let rest = line.get(value_start..).unwrap_or_default();
    let mut value_at = line.len();
    for (at, c) in rest.char_indices() {
        if is_blank(c) {
            continue;
        }
        if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            continue;
        }
        value_at = value_start + at;
        break;
    }
    (
        line.get(..key_end).unwrap_or_default(),
        line.get(value_at..).unwrap_or_default(),
    )
}

/// `Properties.load`'s escapes undone.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| {
                        format!("malformed \\uXXXX escape \\u{hex}: Java refuses to load this file")
                    })?;
                // A lone surrogate half (Java keeps it as a char) has no Rust char: shown as U+FFFD.
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// The physical lines `first..=last` (1-based) of `text`, each with a newline.
fn lines_of(text: &str, first: usize, last: usize) -> String {
    physical_lines(text)
        .iter()
        .skip(first.saturating_sub(1))
        .take(last + 1 - first)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What the user set for a file in other files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elsewhere {
    /// Keys another file of the user's sets that win over the agent's value (`metrics.properties`
    /// over `spark.metrics.conf.*`).
    pub keys: BTreeSet<String>,
    /// The user's lines of another file that this file must carry because its reader reads no
    /// other (the history server reads only its `--properties-file`, not spark-defaults.conf):
    /// written inside the agent's block, after its own lines (so re-made at every start), and
    /// their keys win over the agent's.
    pub folded: String,
}

/// The comment that heads the user's lines carried from another file.
const FOLDED_HEADER: &str =
    "# your spark-defaults.conf, which this file's reader does not read itself:\n";

/// Merges the agent's rendered `ours` with the user's file `user` (None: there is none) and what
/// the user set for it `elsewhere`.
pub fn merge(ours: &str, user: Option<&str>, elsewhere: &Elsewhere) -> Result<Merged, MergeError> {
    let ours_entries = parse(ours)?;
    let folded_entries = parse(&elsewhere.folded)?;
    let known: BTreeMap<&str, &str> = ours_entries
        .iter()
        .chain(&folded_entries)
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    let split = block::split(user.unwrap_or_default(), Comment::Hash)?;
    let mut promoted = String::new();
    let mut notes = Vec::new();
    for found in split.blocks.iter().filter(|b| !b.intact) {
        let edited = parse(&found.interior)?;
        for e in &edited {
            if known.get(e.key.as_str()) != Some(&e.value.as_str()) {
                promoted.push_str(&lines_of(&found.interior, e.line, e.last_line));
                notes.push(format!(
                    "{} was edited inside sparkvisor's block (line {}): kept as your setting, \
                     below the block",
                    e.key,
                    found.line + e.line
                ));
            }
        }
        for e in &ours_entries {
            if !edited.iter().any(|x| x.key == e.key) {
                notes.push(format!(
                    "{} was removed from sparkvisor's block: it is written again; to change it, \
                     set it below the block",
                    e.key
                ));
            }
        }
    }
    let user_part = format!("{promoted}{}", split.user);
    let mut user_keys: BTreeSet<String> = parse(&user_part)?.into_iter().map(|e| e.key).collect();
    user_keys.extend(elsewhere.keys.iter().cloned());
    user_keys.extend(folded_entries.iter().map(|e| e.key.clone()));
    let mut interior = String::new();
    let mut replaced = BTreeSet::new();
    let lines = physical_lines(ours);
    let mut next = 1;
    for e in &ours_entries {
        interior.push_str(&lines_of(ours, next, e.line.saturating_sub(1)));
        if user_keys.contains(&e.key) {
            replaced.insert(e.key.clone());
            interior.push_str(&format!(
                "# {}: your value, outside this block, is used\n",
                crate::render::escape::properties(&e.key)
            ));
        } else {
            interior.push_str(&lines_of(ours, e.line, e.last_line));
        }
        next = e.last_line + 1;
    }
    if next <= lines.len() {
        interior.push_str(&lines_of(ours, next, lines.len()));
    }
    if !folded_entries.is_empty() {
        interior.push_str(FOLDED_HEADER);
        interior.push_str(&elsewhere.folded);
        if !elsewhere.folded.ends_with('\n') {
            interior.push('\n');
        }
    }
    Ok(Merged::block_first(&interior, &user_part, notes, replaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    #[test]
    fn reads_as_java_does() {
        let text = "# comment\n! also a comment\n  a=1\nb : 2\nc 3\nd\ne=\nf = x \\\n    y\\\\\ng\\ h=\\u0041\\t\\:\n   \nk=v\\\\\\\n  w\n";
        assert_eq!(
            kv(text),
            [
                ("a".into(), "1".into(), 3),
                ("b".into(), "2".into(), 4),
                ("c".into(), "3".into(), 5),
                ("d".into(), String::new(), 6),
                ("e".into(), String::new(), 7),
                ("f".into(), "x y\\".into(), 8),
                ("g h".into(), "A\t:".into(), 10),
                ("k".into(), "v\\w".into(), 12),
            ]
        );
        let f = parse(text).unwrap();
        assert_eq!((f[5].line, f[5].last_line), (8, 9));
        assert_eq!((f[7].line, f[7].last_line), (12, 13));
        // CR LF and lone CR end lines too; a comment does not continue.
        assert_eq!(
            kv("a=1\r\nb=2\r# c \\\nd=4"),
            [
                ("a".into(), "1".into(), 1),
                ("b".into(), "2".into(), 2),
                ("d".into(), "4".into(), 4)
            ]
        );
        assert_eq!(kv("x =   =y"), [("x".into(), "=y".into(), 1)]);
        assert_eq!(kv("x=="), [("x".into(), "=".into(), 1)]);
    }

    #[test]
    fn a_malformed_unicode_escape_is_refused_with_its_line() {
        let err = parse("a=1\nb=\\u12x4\n").unwrap_err();
        assert!(matches!(err, MergeError::Syntax { line: 2, .. }), "{err}");
    }

    const OURS: &str = "spark.master spark://m:7077\nspark.driver.host node1\n# a comment of ours\nspark.decommission.enabled true\n";

    #[test]
    fn without_a_user_file_the_block_is_ours_alone() {
        let m = merge(OURS, None, &Elsewhere::default()).unwrap();
        let split = block::split(&m.text, Comment::Hash).unwrap();
        assert!(split.only_ours());
        assert_eq!(split.blocks[0].interior, OURS);
        assert_eq!(m.block, 1..block::line_count(&m.text) + 1);
    }

    #[test]
    fn the_users_keys_win_and_their_lines_stay_as_written() {
        let user = "# mine\nspark.driver.host = my-host\nspark.eventLog.enabled  true\n";
        let m = merge(OURS, Some(user), &Elsewhere::default()).unwrap();
        assert!(m.text.ends_with(user), "{}", m.text);
        let entries = parse(&m.text).unwrap();
        let hosts: Vec<_> = entries
            .iter()
            .filter(|e| e.key == "spark.driver.host")
            .collect();
        assert_eq!(hosts.len(), 1, "{}", m.text);
        assert_eq!(hosts[0].value, "my-host");
        assert!(!m.block.contains(&hosts[0].line));
        assert!(m
            .text
            .contains("# spark.driver.host: your value, outside this block, is used\n"));
        assert!(entries.iter().any(|e| e.key == "spark.master"));
    }

    #[test]
    fn merging_again_gives_the_same_file() {
        let user = "spark.eventLog.enabled true\n";
        let once = merge(OURS, Some(user), &Elsewhere::default()).unwrap().text;
        let twice = merge(OURS, Some(&once), &Elsewhere::default())
            .unwrap()
            .text;
        assert_eq!(once, twice);
        // A changed rendering replaces the old block; the user's lines stay once.
        let changed = OURS.replace("node1", "node2");
        let third = merge(&changed, Some(&twice), &Elsewhere::default())
            .unwrap()
            .text;
        assert!(third.contains("spark.driver.host node2") && !third.contains("node1"));
        assert_eq!(third.matches("spark.eventLog.enabled").count(), 1);
    }

    #[test]
    fn keys_set_elsewhere_drop_ours() {
        let elsewhere = Elsewhere {
            keys: ["spark.master".to_string()].into(),
            ..Elsewhere::default()
        };
        let m = merge(OURS, None, &elsewhere).unwrap();
        assert!(!parse(&m.text)
            .unwrap()
            .iter()
            .any(|e| e.key == "spark.master"));
    }

    #[test]
    fn folded_lines_ride_in_our_block_and_win_over_ours() {
        let elsewhere = Elsewhere {
            folded: "spark.driver.host folded-host\nspark.history.ui.acls.enable true\n".into(),
            ..Elsewhere::default()
        };
        let m = merge(OURS, None, &elsewhere).unwrap();
        let split = block::split(&m.text, Comment::Hash).unwrap();
        assert!(split.only_ours(), "{}", m.text);
        let hosts: Vec<_> = parse(&m.text)
            .unwrap()
            .into_iter()
            .filter(|e| e.key == "spark.driver.host")
            .collect();
        assert_eq!(hosts.len(), 1, "{}", m.text);
        assert_eq!(hosts[0].value, "folded-host");
        assert!(m.replaced.contains("spark.driver.host"));
        // Re-made at every start: no growth, and gone with the user's line.
        assert_eq!(merge(OURS, Some(&m.text), &elsewhere).unwrap().text, m.text);
        let without = merge(OURS, Some(&m.text), &Elsewhere::default()).unwrap();
        assert!(!without.text.contains("folded-host"), "{}", without.text);
        assert!(without.text.contains("spark.driver.host node1"));
    }

    #[test]
    fn edits_inside_our_block_become_the_users() {
        let first = merge(OURS, None, &Elsewhere::default()).unwrap().text;
        let edited = first
            .replace("spark.driver.host node1", "spark.driver.host edited")
            .replace("spark.decommission.enabled true\n", "");
        let m = merge(OURS, Some(&edited), &Elsewhere::default()).unwrap();
        let entries = parse(&m.text).unwrap();
        let host = entries
            .iter()
            .find(|e| e.key == "spark.driver.host")
            .unwrap();
        assert_eq!(host.value, "edited");
        assert!(!m.block.contains(&host.line), "{}", m.text);
        // The removed line is written again, and both are said.
        assert!(entries
            .iter()
            .any(|e| e.key == "spark.decommission.enabled" && m.block.contains(&e.line)));
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
        // Stable from then on.
        assert_eq!(
            merge(OURS, Some(&m.text), &Elsewhere::default())
                .unwrap()
                .text,
            m.text
        );
    }

    #[test]
    fn a_file_of_an_older_agent_is_replaced_whole() {
        let old = "# Rendered by sparkvisor for role master on every start: edit the role's settings, not this file.\nspark.master spark://old:7077\n";
        let m = merge(OURS, Some(old), &Elsewhere::default()).unwrap();
        assert!(!m.text.contains("old:7077"));
        assert!(block::split(&m.text, Comment::Hash).unwrap().only_ours());
    }
}
