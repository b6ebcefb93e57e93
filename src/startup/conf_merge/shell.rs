//! `spark-env.sh` and other sourced shell files: the agent's block first, then the user's lines,
//! so that theirs run last and win (Spark sources the file with `set -a`; a later assignment
//! replaces an earlier one, and a line such as `SPARK_DAEMON_JAVA_OPTS="$SPARK_DAEMON_JAVA_OPTS
//! -javaagent:..."` extends the agent's value). The user's lines are never parsed, only kept; the
//! agent's values stay single-quoted by the renderer, so none of them can run code.

use super::block::{self, Comment};
use super::{MergeError, Merged};

/// A top-level `NAME=...` or `export NAME=...` line (what `inspect` can attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable.
    pub name: String,
    /// The word after `=`, unquoted when it is one single-quoted word (the renderer's form).
    pub value: String,
    /// The 1-based line.
    pub line: usize,
}

/// The lines of `text` that assign a variable, in order. Lines inside a function or a condition
/// look the same and are listed too: this is for showing where a value may come from, not for
/// evaluating the script.
pub fn assignments(text: &str) -> Vec<Assignment> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.trim_start();
            let line = line
                .strip_prefix("export")
                .filter(|rest| rest.starts_with([' ', '\t']))
                .map_or(line, str::trim_start);
            let (name, word) = line.split_once('=')?;
            let is_name = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            is_name.then(|| Assignment {
                name: name.to_string(),
                value: unquote(word.trim_end()),
                line: i + 1,
            })
        })
        .collect()
}

/// `'...'` as one word (with `'\''` for a quote) read back; anything else as written.
fn unquote(word: &str) -> String {
    let Some(inner) = word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) else {
        return word.to_string();
    };
    let parts: Vec<&str> = inner.split("'\\''").collect();
    if parts.iter().any(|p| p.contains('\'')) {
        return word.to_string();
    }
    parts.join("'")
}

/// Merges the agent's rendered `ours` with the user's file `user`: the agent's block first, then
/// the user's lines as they are (with lines edited inside an earlier block, kept as the user's).
pub fn merge(ours: &str, user: Option<&str>) -> Result<Merged, MergeError> {
    let split = block::split(user.unwrap_or_default(), Comment::Hash)?;
    let mut promoted = String::new();
    let mut notes = Vec::new();
    let ours_lines: Vec<&str> = ours.lines().map(str::trim).collect();
    for found in split.blocks.iter().filter(|b| !b.intact) {
        for (i, line) in found.interior.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || ours_lines.contains(&t) {
                continue;
            }
            promoted.push_str(line);
            promoted.push('\n');
            notes.push(format!(
                "line {} was edited inside sparkvisor's block: kept as yours, below the block",
                found.line + i + 1
            ));
        }
        let kept: Vec<&str> = found.interior.lines().map(str::trim).collect();
        for line in ours.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') && !kept.contains(&line) {
                notes.push(format!(
                    "{line:?} was removed from sparkvisor's block: it is written again; to \
                     change it, assign the variable below the block"
                ));
            }
        }
    }
    let user_part = format!("{promoted}{}", split.user);
    let theirs: Vec<String> = assignments(&user_part)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let replaced = assignments(ours)
        .into_iter()
        .map(|a| a.name)
        .filter(|n| theirs.contains(n))
        .collect();
    Ok(Merged::block_first(ours, &user_part, notes, replaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str =
        "SPARK_WORKER_CORES='2'\nSPARK_DAEMON_JAVA_OPTS='-XX:ActiveProcessorCount=2'\n";

    #[test]
    fn the_users_lines_run_after_ours() {
        let user = "#!/usr/bin/env bash\nSPARK_WORKER_CORES=4\nexport SPARK_DAEMON_JAVA_OPTS=\"$SPARK_DAEMON_JAVA_OPTS -javaagent:/a.jar\"\n";
        let m = merge(OURS, Some(user)).unwrap();
        assert!(m.text.ends_with(user));
        let found = assignments(&m.text);
        let cores: Vec<_> = found
            .iter()
            .filter(|a| a.name == "SPARK_WORKER_CORES")
            .collect();
        assert_eq!(cores.len(), 2);
        assert!(m.block.contains(&cores[0].line) && cores[0].value == "2");
        assert!(!m.block.contains(&cores[1].line) && cores[1].value == "4");
        // Merging the merged file again changes nothing.
        assert_eq!(merge(OURS, Some(&m.text)).unwrap().text, m.text);
    }

    #[test]
    fn the_result_runs_in_a_shell_with_the_users_values_last() {
        let user = "SPARK_WORKER_CORES=4\nSPARK_DAEMON_JAVA_OPTS=\"$SPARK_DAEMON_JAVA_OPTS -javaagent:/a.jar\"\n";
        let m = merge(OURS, Some(user)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{}\necho \"$SPARK_WORKER_CORES|$SPARK_DAEMON_JAVA_OPTS\"",
                m.text
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "4|-XX:ActiveProcessorCount=2 -javaagent:/a.jar\n"
        );
    }

    #[test]
    fn an_edited_line_in_our_block_is_kept_below_it() {
        let first = merge(OURS, None).unwrap().text;
        let edited = first.replace("SPARK_WORKER_CORES='2'", "SPARK_WORKER_CORES=8");
        let m = merge(OURS, Some(&edited)).unwrap();
        let cores: Vec<_> = assignments(&m.text)
            .into_iter()
            .filter(|a| a.name == "SPARK_WORKER_CORES")
            .collect();
        assert_eq!(cores.len(), 2, "{}", m.text);
        assert_eq!(cores[1].value, "8");
        assert!(!m.block.contains(&cores[1].line));
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
    }

    #[test]
    fn assignments_are_read_with_their_lines() {
        let found =
            assignments("# c\nexport A='x'\\''y'\n  B=\"$A\"\nexportC=1\nif x; then D=1; fi\n");
        let names: Vec<_> = found
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            names,
            [("A", "x'y", 2), ("B", "\"$A\"", 3), ("exportC", "1", 4)]
        );
    }
}
