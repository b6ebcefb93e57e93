//! Linear-time scans of injected YAML/JSON text, done before or beside the parser:
//! - [`KeyIndex`]: where each mapping key first appears, built in one pass, so pointing thousands
//!   of settings at their lines costs one scan of the text (rescanning the whole text per key made a
//!   2 MB cluster file take 40 s);
//! - [`check_nesting`]: refuses text nested deeper than [`MAX_NESTING`] before the parser sees it
//!   (a deeply nested 160 KB file took the YAML scanner 13 s).

use std::collections::HashMap;

use crate::error::Diagnostic;

/// Deepest nesting of mappings and sequences an injected file may have (real cluster files and
/// configmeta.json use fewer than 10 levels).
pub const MAX_NESTING: usize = 64;

/// Longest key (in bytes) the index records; longer keys simply get no position.
const MAX_KEY: usize = 256;

/// The first position (1-based line and column) of every mapping key in a text.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex(HashMap<String, (usize, usize)>);

/// Characters that may stand right before a key.
fn boundary(c: char) -> bool {
    matches!(c, ' ' | '\t' | '"' | '\'' | '{' | ',' | '-')
}

impl KeyIndex {
    /// Scans `text` once. For every `:` the candidate keys are the texts between a boundary
    /// character (or the line's start) and the `:` (an optional closing quote and blanks between),
    /// looking back at most `MAX_KEY` bytes: the same keys the old per-key search found.
    pub fn new(text: &str) -> KeyIndex {
        let mut index = HashMap::new();
        for (line_no, line) in text.lines().enumerate() {
            // (byte offset, char) pairs so columns count characters.
            let chars: Vec<(usize, char)> = line.char_indices().collect();
            for (ci, &(_, c)) in chars.iter().enumerate() {
                if c != ':' {
                    continue;
                }
                // Skip blanks, then one optional closing quote, back from the colon.
                let mut end = ci;
                while end > 0 && matches!(chars.get(end - 1), Some((_, ' ' | '\t'))) {
                    end -= 1;
                }
                if end > 0 && matches!(chars.get(end - 1), Some((_, '"' | '\''))) {
                    end -= 1;
                }
                let Some(&(end_byte, _)) = chars.get(end).or(chars.get(ci)) else {
                    continue;
                };
                let mut start = end;
                while start > 0 {
                    let Some(&(b, prev)) = chars.get(start - 1) else {
                        break;
                    };
                    if end_byte - b > MAX_KEY {
                        break;
                    }
                    start -= 1;
                    if boundary(prev) {
                        // The key after this boundary character.
                        record(
                            &mut index,
                            line,
                            &chars,
                            start + 1,
                            end_byte,
                            line_no,
                            Some(prev),
                        );
                    }
                }
                if start == 0 {
                    record(&mut index, line, &chars, 0, end_byte, line_no, None);
                }
            }
        }
        KeyIndex(index)
    }

    /// Where `key` first appears as a mapping key.
    pub fn get(&self, key: &str) -> Option<(usize, usize)> {
        self.0.get(key).copied()
    }
}

fn record(
    index: &mut HashMap<String, (usize, usize)>,
    line: &str,
    chars: &[(usize, char)],
    start: usize,
    end_byte: usize,
    line_no: usize,
    before: Option<char>,
) {
    let Some(&(start_byte, _)) = chars.get(start) else {
        return;
    };
    if start_byte >= end_byte {
        return;
    }
    let Some(key) = line.get(start_byte..end_byte) else {
        return;
    };
    // A quoted key's position is its opening quote.
    let column = if matches!(before, Some('"' | '\'')) {
        start
    } else {
        start + 1
    };
    let here = (line_no + 1, column);
    index
        .entry(key.to_string())
        .and_modify(|p| {
            if here < *p {
                *p = here;
            }
        })
        .or_insert(here);
}

/// Refuses `text` when its mappings and sequences nest deeper than [`MAX_NESTING`]: flow
/// brackets (`[`, `{`) outside quoted strings, plus block levels (indentation steps and `- `).
pub fn check_nesting(file: &str, text: &str) -> Result<(), Diagnostic> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (line_no, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let mut block = 0;
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x` nests sequences on one line.
            let mut rest = trimmed;
            while let Some(r) = rest
                .strip_prefix("- ")
                .or_else(|| rest.strip_prefix('-').filter(|r| r.is_empty()))
            {
                block += 1;
                rest = r.trim_start_matches(' ');
            }
        }
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for (col, c) in line.chars().enumerate() {
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q == '"' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '"' => quote = Some('"'),
                    '\'' => quote = Some('\''),
                    '#' if flow == 0 => break,
                    '[' | '{' => {
                        flow += 1;
                        if flow + indents.len() + block > MAX_NESTING {
                            return Err(Diagnostic::at(
                                file,
                                line_no + 1,
                                col + 1,
                                format!("nested deeper than the limit of {MAX_NESTING} levels"),
                            ));
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
        }
        if indents.len() + block > MAX_NESTING {
            return Err(Diagnostic::at(
                file,
                line_no + 1,
                1,
                format!("nested deeper than the limit of {MAX_NESTING} levels"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_keys_like_the_old_search() {
        let text = "settings:\n  spark.worker_cores: x\n  spark-master: y\n";
        let i = KeyIndex::new(text);
        assert_eq!(i.get("spark.worker_cores"), Some((2, 3)));
        assert_eq!(i.get("settings"), Some((1, 1)));
        assert_eq!(i.get("spark-master"), Some((3, 3)));
        assert_eq!(i.get("master"), Some((3, 9)));
        let j = KeyIndex::new("{\"role\": 1, \"a b\" : 2}");
        assert_eq!(j.get("role"), Some((1, 2)));
        assert_eq!(j.get("a b"), Some((1, 13)));
        assert_eq!(KeyIndex::new("roles: 1").get("role"), None);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let d = check_nesting("c.yaml", &deep).unwrap_err();
        assert!(d.message.contains("limit of 64"), "{d}");
        let mut block = String::new();
        for i in 0..100 {
            block.push_str(&" ".repeat(i));
            block.push_str(&format!("k{i}:\n"));
        }
        assert!(check_nesting("c.yaml", &block).is_err());
        assert!(check_nesting("c.yaml", "a:\n  b: [1, {c: \"[[[[\"}]\n").is_ok());
        assert!(check_nesting("c.yaml", &"- ".repeat(100)).is_err());
    }
}
