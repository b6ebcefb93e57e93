//! Parsing template text within a bound, and parsing each expanded string once.
//!
//! tera's pest grammar backtracks: an expression with nested unclosed calls
//! (`{{ a(r=a(r=a(r=... a-a`) costs about four times more per level, so 60 bytes of a role file
//! could hold PID 1 for seconds and 80 bytes for hours (found by the `roles` fuzzer). pest can stop
//! a parse after a number of grammar steps; we give every parse a budget proportional to the text's
//! length, far above what real templates take (10-30 steps a byte) and far below a bomb's cost.
//!
//! pest reads its limit from one process-wide setting when a parse starts, so every parse here
//! holds [`PARSE_LOCK`] while it sets the limit and parses.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use tera::Template;

/// Grammar steps allowed per byte of the longest text in one parse. The shipped templates take
/// 6-11 a byte, a 1.3 MB template with an expression, a filter and an `if` on every line 27.
pub const PARSE_STEPS_PER_BYTE: usize = 64;
/// Grammar steps any parse may take, however short its text (a 2 KB template takes about 21,000).
pub const MIN_PARSE_STEPS: usize = 100_000;

/// Serialises parses so that each runs under its own limit.
static PARSE_LOCK: Mutex<()> = Mutex::new(());

/// pest's messages for a parse it cut off: over the step limit, or too deep for the stack.
const PEST_LIMIT_MESSAGES: [&str; 2] = ["call limit reached", "stack limit reached"];

/// The step budget for texts whose longest is `longest` bytes.
pub fn step_budget(longest: usize) -> usize {
    longest
        .saturating_mul(PARSE_STEPS_PER_BYTE)
        .max(MIN_PARSE_STEPS)
}

/// Runs `parse`, in which tera parses texts of at most `longest` bytes each, with pest's step
/// limit set for that length.
pub fn bounded<T>(longest: usize, parse: impl FnOnce() -> T) -> T {
    let _only_parse = PARSE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    pest::set_call_limit(NonZeroUsize::new(step_budget(longest)));
    parse()
}

/// `message` (a tera parse error with its causes) with pest's limit message replaced by one that
/// says what happened.
pub fn explain_limit(message: String, longest: usize) -> String {
    if !PEST_LIMIT_MESSAGES.iter().any(|m| message.contains(m)) {
        return message;
    }
    format!(
        "template too complex to parse: over {} grammar steps for {longest} bytes (nested unclosed \
         calls or brackets?)",
        step_budget(longest)
    )
}

/// Most distinct strings [`ParsedStrings`] keeps; past it the memo starts over, so a reload loop
/// over changing roles cannot grow PID 1's memory.
const MEMO_ENTRIES: usize = 1024;
/// Longest string the memo keeps (role strings are commands, paths and values, rarely over 1 KB).
const MEMO_TEXT: usize = 16 << 10;

/// Parsed, bounded and checked one-off strings by their text: the roles' fixed strings (commands,
/// environment, users, probes) are expanded at every start, render and reload, and parsing them is
/// most of an expansion's cost. A kept template is already instrumented (see
/// [`super::bounds::instrument`]); a string that failed to parse is not kept.
static PARSED_STRINGS: Mutex<Option<HashMap<String, Template>>> = Mutex::new(None);

/// The memoised parse of `text`, if one is kept.
pub fn memo_get(text: &str) -> Option<Template> {
    let memo = PARSED_STRINGS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    memo.as_ref().and_then(|m| m.get(text)).cloned()
}

/// Keeps the parse of `text`.
pub fn memo_put(text: &str, template: &Template) {
    if text.len() > MEMO_TEXT {
        return;
    }
    let mut memo = PARSED_STRINGS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let map = memo.get_or_insert_with(HashMap::new);
    if map.len() >= MEMO_ENTRIES {
        map.clear();
    }
    map.insert(text.to_string(), template.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn parse(text: &str) -> Result<(), String> {
        bounded(text.len(), || {
            tera::Tera::default()
                .add_raw_template("t", text)
                .map(drop)
                .map_err(|e| explain_limit(super::super::templates::error_chain(&e), text.len()))
        })
    }

    #[test]
    fn nested_unclosed_calls_are_refused_quickly() {
        // The roles fuzzer's finding. Unbounded, nine levels take about 0.5 s in a release build
        // and ends in an ordinary syntax error; each further level costs four times more.
        let bomb = format!("X={{{{ {} a-a", "a(r=".repeat(9));
        let e = parse(&bomb).unwrap_err();
        assert!(e.contains("template too complex to parse"), "{e}");
        assert!(e.contains(&format!("{} bytes", bomb.len())), "{e}");
        // The same through the path role strings take (commands, environment, paths).
        let e = super::super::templates::expand_str(&bomb, &serde_json::json!({})).unwrap_err();
        assert!(e.contains("template too complex to parse"), "{e}");
        // Refused early whatever the depth: 40 levels would take longer than the universe exists.
        let started = Instant::now();
        let deep = format!("X={{{{ {} a-a", "a(r=".repeat(40));
        assert!(parse(&deep).unwrap_err().contains("too complex"));
        assert!(started.elapsed().as_secs() < 60);
    }

    #[test]
    fn real_templates_parse_within_the_budget() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut stack = vec![dir];
        let mut seen = 0;
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let text = std::fs::read_to_string(&path).unwrap();
                    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    seen += 1;
                }
            }
        }
        assert!(seen > 10, "{seen}");
        // A large, dense template: an expression, a filter and an `if` on every line.
        let dense: String = (0..5000)
            .map(|i| format!("k{i}={{{{ x.y | default(value='a') }}}}{{% if a %}}b{{% endif %}}\n"))
            .collect();
        parse(&dense).unwrap();
    }

    #[test]
    fn memo_returns_what_was_kept() {
        let mut tera = tera::Tera::default();
        tera.add_raw_template("t", "{{ memo_test_value }}").unwrap();
        let template = tera.get_template("t").unwrap().clone();
        memo_put("{{ memo_test_value }}", &template);
        assert_eq!(
            memo_get("{{ memo_test_value }}").map(|t| t.ast.len()),
            Some(template.ast.len())
        );
        assert!(memo_get("{{ never_kept }}").is_none());
    }
}
