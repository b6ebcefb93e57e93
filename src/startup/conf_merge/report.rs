//! What `inspect` says about Spark's conf files: for each file Spark reads, whether it is the
//! agent's, merged with the user's, or the user's alone, and for each value the file and line it
//! comes from (the user's file, or the agent's block and the input behind it). Secret values are
//! never shown.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

/// The conf dir and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfReport {
    /// The conf dir Spark reads (`spark.conf_dir`).
    pub dir: PathBuf,
    /// The user's conf dir (the same, unless the conf is written to an overlay).
    pub user_dir: PathBuf,
    /// Why the conf is written to an overlay, when it is.
    pub overlay: Option<String>,
    /// One entry per file.
    pub files: Vec<FileReport>,
}

/// One conf file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Its name in the conf dir.
    pub name: String,
    /// Where Spark reads it.
    pub path: PathBuf,
    /// The user's file it holds (None: none).
    pub user_file: Option<PathBuf>,
    /// Whose it is.
    pub outcome: Outcome,
    /// The template the agent renders it from (None: the agent does not).
    pub template: Option<String>,
    /// Its values, each once (the one that applies), with where it comes from.
    pub values: Vec<ValueRow>,
    /// Things the user should know (an edit inside the agent's block, a value not applied).
    pub notes: Vec<String>,
}

/// Whose a conf file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Only the agent's (no user file).
    Sparkvisor,
    /// The user's file with the agent's block added.
    Merged,
    /// The user's file, whole: the agent's rendering of it is not written.
    Yours,
    /// A user's file the agent renders nothing for: used as it is.
    UsedAsIs,
}

/// One value of a conf file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueRow {
    /// The key (property, variable or Hadoop property name).
    pub key: String,
    /// The value (`<redacted>` for a secret).
    pub value: String,
    /// Where it comes from.
    pub from: ValueFrom,
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueFrom {
    /// A line of the user's.
    Yours {
        /// The file (as Spark reads it).
        file: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The agent's own value it replaces (its source), if the agent had one.
        replaces: Option<String>,
    },
    /// The agent's block.
    Sparkvisor {
        /// The input behind it (`env SPARK_...`, `derived ...`, the template).
        source: String,
    },
}

/// Keys whose values are never shown, whoever wrote them.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "passwd", "token", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

/// A value as the report shows it: on one line, control characters escaped.
fn one_line(value: &str) -> String {
    if value.chars().any(char::is_control) {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

impl fmt::Display for ValueFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueFrom::Yours {
                file,
                line,
                replaces,
            } => {
                write!(f, "yours: {}:{line}", file.display())?;
                match replaces {
                    Some(source) => write!(f, ", replaces sparkvisor's ({source})"),
                    None => Ok(()),
                }
            }
            ValueFrom::Sparkvisor { source } => write!(f, "sparkvisor: {source}"),
        }
    }
}

impl fmt::Display for ConfReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(out, "conf files ({}):", self.dir.display());
        if let Some(why) = &self.overlay {
            let _ = writeln!(
                out,
                "  written to this overlay because {why}; your files stay in {} (linked here)",
                self.user_dir.display()
            );
        }
        if self.files.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for file in &self.files {
            let whose = match (file.outcome, &file.user_file, &file.template) {
                (Outcome::Sparkvisor, _, Some(t)) => format!("sparkvisor's (from {t})"),
                (Outcome::Merged, Some(u), _) => format!(
                    "your {} with sparkvisor's block at the top; your values win",
                    u.display()
                ),
                (Outcome::Yours, Some(u), Some(t)) => format!(
                    "your {}, whole: sparkvisor's {t} is not written",
                    u.display()
                ),
                (_, Some(u), _) => format!("your {}, used as it is", u.display()),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {}: {whose}", file.name);
            let width = file.values.iter().map(|v| v.key.len()).max().unwrap_or(0);
            for v in &file.values {
                let _ = writeln!(
                    out,
                    "    {:<width$}  {}  ({})",
                    one_line(&v.key),
                    one_line(&v.value),
                    v.from
                );
            }
            for note in &file.notes {
                let _ = writeln!(out, "    note: {}", one_line(note));
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_name_and_sources_in_words() {
        assert!(looks_secret("spark.authenticate.secret"));
        assert!(looks_secret("fs.s3a.SECRET.key"));
        assert!(looks_secret("javax.jdo.option.ConnectionPassword"));
        assert!(!looks_secret("spark.master"));
        let yours = ValueFrom::Yours {
            file: "/c/spark-defaults.conf".into(),
            line: 9,
            replaces: Some("env SPARK_X".into()),
        };
        assert_eq!(
            yours.to_string(),
            "yours: /c/spark-defaults.conf:9, replaces sparkvisor's (env SPARK_X)"
        );
    }
}
