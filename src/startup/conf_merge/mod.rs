//! The agent's rendered Spark conf files merged with the user's own: files a user mounts, copies
//! or appends to in a derived image, or seeds through `conf.default`, are kept and win over the
//! agent's derived values; nothing of theirs is overwritten (docs/conf-files.md).
//!
//! Each file the role renders into the Spark conf dir has a merge mode (`render:` entry's
//! `merge:`, by default from its format):
//! - `keys` ([`properties`], [`xml`]): the user's keys win; the agent's block holds the others;
//! - `append` ([`shell`]): the agent's block first, the user's lines after it (they run last);
//! - `none`: a user's file is used whole, the agent's written only when there is none.
//!
//! The agent tells its own lines from the user's by its block ([`block`]): marker comments around
//! what it wrote, with a digest, so that the block of an earlier start is replaced and an edited
//! one is the user's. Where the files cannot be written in place (a read-only dir, a mounted
//! file), they go to an overlay Spark is pointed at ([`place`]). [`report`] is what `inspect`
//! shows. Reading the user's files is the only I/O here; writing is `render::write`'s, and the
//! overlay's links and `conf.default` copies are [`place::apply`]'s.

pub mod block;
pub mod place;
pub mod properties;
pub mod report;
pub mod shell;
pub mod xml;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use place::{Link, Placement, Seed};
pub use report::{ConfReport, FileReport, Outcome, ValueFrom, ValueRow};

use crate::config::role::MergeMode;
use crate::config::ResolvedConfig;
use crate::error::Diagnostic;
use crate::render::{Format, RenderedFile};
use block::Comment;

/// A merged file's text and where the agent's block is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The whole file.
    pub text: String,
    /// The 1-based lines of the agent's block, markers included.
    pub block: Range<usize>,
    /// What the user should be told (an edit inside an earlier block, kept as theirs).
    pub notes: Vec<String>,
    /// The agent's keys the user's file sets too (theirs win).
    pub replaced: BTreeSet<String>,
}

impl Merged {
    /// The agent's block holding `interior` at the top (`#` comments), then `user_part`.
    fn block_first(
        interior: &str,
        user_part: &str,
        notes: Vec<String>,
        replaced: BTreeSet<String>,
    ) -> Merged {
        let block = block::compose(interior, Comment::Hash, "");
        let lines = block::line_count(&block);
        Merged {
            text: format!("{block}{user_part}"),
            block: 1..lines + 1,
            notes,
            replaced,
        }
    }
}

/// Why a user's file cannot be merged (a format's view; [`ConfError`] adds the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The agent's block markers do not pair up.
    #[error(transparent)]
    Block(#[from] block::BlockError),
    /// A line Spark (Java) would refuse.
    #[error("line {line}: {why}")]
    Syntax {
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Not well-formed XML.
    #[error("line {line} column {column}: not well-formed XML: {why}")]
    Xml {
        /// The 1-based line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// The parser's message.
        why: String,
    },
    /// XML whose root is not Hadoop's `<configuration>`.
    #[error("the root element is <{root}>, not <configuration>: not a Hadoop configuration file, so its properties cannot be merged by name")]
    NotConfiguration {
        /// The root element found.
        root: String,
    },
}

/// Why the conf files cannot be prepared: nothing is written or started (exit 78).
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// A user's file cannot be read.
    #[error("{path}: cannot read your file (so it is not merged, nor overwritten): {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A user's file is not UTF-8.
    #[error("{path}: your file is not UTF-8 text, which sparkvisor cannot merge without changing it; convert it (iconv -t UTF-8)", path = path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A user's file cannot be merged with the agent's.
    #[error("{path}: cannot merge your file with sparkvisor's {template}: {source}", path = path.display())]
    Merge {
        /// The file.
        path: PathBuf,
        /// The template the agent renders there.
        template: String,
        /// Why.
        source: MergeError,
    },
    /// The conf must go to an overlay and no scratch directory can be written.
    #[error(
        "nowhere to write the rendered config: {why}, and {} cannot be written either (mount a \
         writable directory, e.g. --tmpfs /tmp, or set SPARK_CONF_DIR to a writable one)",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NowhereToWrite {
        /// The user's conf dir.
        conf: PathBuf,
        /// Why it cannot be written in place.
        why: String,
        /// The scratch directories tried.
        tried: Vec<PathBuf>,
    },
}

impl ConfError {
    /// The config diagnostic (exit 78) this is, placed at its line when known.
    pub fn diagnostic(&self) -> Diagnostic {
        let position = match self {
            ConfError::Merge { path, source, .. } => match source {
                MergeError::Syntax { line, .. } => Some((path, *line, 1)),
                MergeError::Xml { line, column, .. } => Some((path, *line, *column)),
                MergeError::Block(
                    block::BlockError::Unterminated { line } | block::BlockError::Unopened { line },
                ) => Some((path, *line, 1)),
                MergeError::NotConfiguration { .. } => None,
            },
            _ => None,
        };
        match (self, position) {
            (
                ConfError::Merge {
                    template, source, ..
                },
                Some((path, line, column)),
            ) => {
                let why = match source {
                    MergeError::Syntax { why, .. } => why.clone(),
                    MergeError::Xml { why, .. } => format!("not well-formed XML: {why}"),
                    other => other.to_string(),
                };
                Diagnostic::at(
                    path.display().to_string(),
                    line,
                    column,
                    format!("cannot merge your file with sparkvisor's {template}: {why}"),
                )
            }
            (ConfError::NowhereToWrite { conf, .. }, _) => {
                Diagnostic::new(conf.display().to_string(), self.to_string())
            }
            _ => Diagnostic::new("conf files", self.to_string()),
        }
    }
}

/// What has to be done besides writing the merged files, and what `inspect` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfWork {
    /// The overlay's links to the user's entries.
    pub links: Vec<Link>,
    /// `conf.default` entries to copy into the user's conf dir.
    pub seeds: Vec<Seed>,
    /// Whose each file and value is.
    pub report: ConfReport,
}

/// Reads a user's file as UTF-8.
fn read_user(path: &Path) -> Result<String, ConfError> {
    let bytes = std::fs::read(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| ConfError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// The keys of the user's `metrics.properties` as `spark.metrics.conf.*` properties: Spark lets
/// those properties replace the file's entries, so each key the user sets in the file drops the
/// agent's property of the same name.
fn metrics_keys(placement: &Placement) -> BTreeSet<String> {
    user_part_of(placement, "metrics.properties")
        .and_then(|user| properties::parse(&user).ok())
        .map(|entries| {
            entries
                .into_iter()
                .map(|e| format!("spark.metrics.conf.{}", e.key))
                .collect()
        })
        .unwrap_or_default()
}

/// The user's lines of their file `name` (outside any block of the agent's), when they have one.
fn user_part_of(placement: &Placement, name: &str) -> Option<String> {
    let text = placement.user_file(name).and_then(|p| read_user(&p).ok())?;
    block::split(&text, Comment::Hash)
        .ok()
        .filter(|s| !s.legacy)
        .map(|s| s.user)
}

/// What the user set for the file `name` in their other files: their metrics.properties keys for
/// spark-defaults.conf; their whole spark-defaults.conf for history-server.properties (the
/// history server is started with `--properties-file` and reads no spark-defaults.conf).
fn elsewhere(placement: &Placement, name: &str) -> properties::Elsewhere {
    match name {
        "spark-defaults.conf" => properties::Elsewhere {
            keys: metrics_keys(placement),
            ..properties::Elsewhere::default()
        },
        "history-server.properties" => properties::Elsewhere {
            folded: user_part_of(placement, "spark-defaults.conf").unwrap_or_default(),
            ..properties::Elsewhere::default()
        },
        _ => properties::Elsewhere::default(),
    }
}

/// `ours` written whole when the user has no file (or only the agent's intact block there);
/// None when the user's file is used whole instead.
fn whole(ours: &str, user: Option<&str>) -> Result<Option<Merged>, MergeError> {
    if let Some(text) = user {
        if !block::split(text, Comment::Hash)?.only_ours() {
            return Ok(None);
        }
    }
    Ok(Some(Merged::block_first(
        ours,
        "",
        Vec::new(),
        BTreeSet::new(),
    )))
}

/// Merges every file of `files` that the agent renders into the conf dir with the user's file of
/// the same name, per its merge mode. Returns the files to write (a user's whole file is not
/// among them) and the rest of the work; every problem at once.
pub fn merge_files(
    files: Vec<RenderedFile>,
    placement: &Placement,
    config: &ResolvedConfig,
) -> Result<(Vec<RenderedFile>, ConfWork), Vec<ConfError>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut report = ConfReport {
        dir: placement.dir.clone(),
        user_dir: placement.user_dir.clone(),
        overlay: placement.overlay.clone(),
        files: Vec::new(),
    };
    for file in files {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let managed = file.path.parent() == Some(placement.dir.as_path());
        let Some(mode) = file.merge.filter(|_| managed) else {
            out.push(file);
            continue;
        };
        let user_path = placement.user_file(&name);
        let user = match user_path.as_deref().map(read_user).transpose() {
            Ok(user) => user,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let format = Format::for_name(&name);
        let merged = match (mode, format) {
            (MergeMode::None, _) => whole(&file.contents, user.as_deref()),
            (_, Format::Xml) => xml::merge(&file.contents, user.as_deref()).map(Some),
            (_, Format::Shell) => shell::merge(&file.contents, user.as_deref()).map(Some),
            _ => properties::merge(
                &file.contents,
                user.as_deref(),
                &elsewhere(placement, &name),
            )
            .map(Some),
        };
        let merged = match merged {
            Ok(m) => m,
            Err(source) => {
                problems.push(ConfError::Merge {
                    path: user_path.unwrap_or_else(|| file.path.clone()),
                    template: file.template.clone(),
                    source,
                });
                continue;
            }
        };
        let theirs = user.as_deref().is_some_and(|u| match format {
            Format::Xml => block::split(u, Comment::Xml)
                .is_ok_and(|s| !xml::is_skeleton(&s.user) || s.blocks.iter().any(|b| !b.intact)),
            _ => block::split(u, Comment::Hash).is_ok_and(|s| !s.only_ours()),
        });
        match merged {
            Some(mut m) => {
                // Two inputs of the user's disagree (their file and, say, an environment
                // variable): the file wins, and the user is told which value is not used.
                for key in &m.replaced {
                    if let Some(source) = explicit_source(key, config) {
                        m.notes.push(format!(
                            "{key}: the value in your file is used, not the one from {source}"
                        ));
                    }
                }
                let outcome = if theirs {
                    Outcome::Merged
                } else {
                    Outcome::Sparkvisor
                };
                let mut values =
                    values_of(&m.text, format, &file, Some(&m.block), &m.replaced, config);
                carried_from_defaults(&mut values, &report.files);
                report.files.push(FileReport {
                    name,
                    path: file.path.clone(),
                    user_file: user_path.filter(|_| theirs),
                    outcome,
                    template: Some(file.template.clone()),
                    values,
                    notes: m.notes,
                });
                out.push(RenderedFile {
                    contents: m.text,
                    ..file
                });
            }
            None => {
                let text = user.unwrap_or_default();
                let shown = user_path.clone().unwrap_or_default();
                report.files.push(FileReport {
                    name,
                    path: file.path.clone(),
                    user_file: user_path,
                    outcome: Outcome::Yours,
                    template: Some(file.template.clone()),
                    values: values_of(
                        &text,
                        format,
                        &RenderedFile {
                            path: shown,
                            ..file
                        },
                        None,
                        &BTreeSet::new(),
                        config,
                    ),
                    notes: Vec::new(),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let written: Vec<String> = out
        .iter()
        .filter_map(|f| f.path.strip_prefix(&placement.dir).ok())
        .filter_map(|rel| rel.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (links, seeds) = place::links_and_seeds(placement, &written);
    used_as_is(placement, &written, &mut report, config);
    Ok((
        out,
        ConfWork {
            links,
            seeds,
            report,
        },
    ))
}

/// Adds the user's conf files the agent renders nothing for (each used as it is) to `report`.
fn used_as_is(
    placement: &Placement,
    written: &[String],
    report: &mut ConfReport,
    config: &ResolvedConfig,
) {
    let mut names: Vec<String> = [Some(&placement.user_dir), placement.defaults_dir.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|it| it.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !written.contains(n))
        .filter(|n| !report.files.iter().any(|f| &f.name == n))
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let Some(path) = placement.user_file(&name) else {
            continue;
        };
        if !place::mergeable(&path) {
            continue;
        }
        let (values, notes) = match read_user(&path) {
            Ok(text) => {
                let as_file = RenderedFile {
                    path: path.clone(),
                    mode: 0,
                    owner: None,
                    contents: String::new(),
                    secret: false,
                    template: String::new(),
                    merge: None,
                };
                let format = Format::for_name(&name);
                let parses = match format {
                    Format::Xml => xml::properties(&text).map(|_| ()),
                    Format::Properties => properties::parse(&text).map(|_| ()),
                    _ => Ok(()),
                };
                match parses {
                    Ok(()) => (
                        values_of(&text, format, &as_file, None, &BTreeSet::new(), config),
                        Vec::new(),
                    ),
                    // Another XML format (fairscheduler.xml's <allocations>): no properties.
                    Err(MergeError::NotConfiguration { .. }) => (Vec::new(), Vec::new()),
                    Err(e) => (Vec::new(), vec![format!("Spark may not read it: {e}")]),
                }
            }
            Err(e) => (Vec::new(), vec![e.to_string()]),
        };
        report.files.push(FileReport {
            path: placement.dir.join(&name),
            name,
            user_file: Some(path),
            outcome: Outcome::UsedAsIs,
            template: None,
            values,
            notes,
        });
    }
}

/// Every key of `text` once (the occurrence that applies: the last), attributed to the agent's
/// block (`block` lines) or to `file`'s author; `replaced` are the agent's keys the user's set.
fn values_of(
    text: &str,
    format: Format,
    file: &RenderedFile,
    block: Option<&Range<usize>>,
    replaced: &BTreeSet<String>,
    config: &ResolvedConfig,
) -> Vec<ValueRow> {
    let found: Vec<(String, String, usize)> = match format {
        Format::Properties => properties::parse(text)
            .map(|v| v.into_iter().map(|e| (e.key, e.value, e.line)).collect())
            .unwrap_or_default(),
        Format::Shell => shell::assignments(text)
            .into_iter()
            .map(|a| (a.name, a.value, a.line))
            .collect(),
        Format::Xml => xml::properties(text)
            .map(|v| v.into_iter().map(|p| (p.name, p.value, p.line)).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let in_block = |line: usize| block.is_some_and(|b| b.contains(&line));
    let mut rows: Vec<ValueRow> = Vec::new();
    for (i, (key, value, line)) in found.iter().enumerate() {
        if found.iter().skip(i + 1).any(|(k, _, _)| k == key) {
            continue;
        }
        let secret = config.secrets.contains_key(key) || report::looks_secret(key);
        rows.push(ValueRow {
            key: key.clone(),
            value: if secret {
                "<redacted>".into()
            } else {
                value.clone()
            },
            from: if in_block(*line) {
                ValueFrom::Sparkvisor {
                    source: agent_source(key, file, config),
                }
            } else {
                ValueFrom::Yours {
                    file: file.path.clone(),
                    line: *line,
                    replaces: replaced
                        .contains(key)
                        .then(|| agent_source(key, file, config)),
                }
            },
        });
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// The source of the agent's value for `key` when the user gave it explicitly (environment,
/// cluster file, configmeta.json, a secret file), not derived or defaulted.
fn explicit_source(key: &str, config: &ResolvedConfig) -> Option<String> {
    use crate::config::Source;
    let source = config
        .spark_conf
        .get(key)
        .map(|v| &v.source)
        .or_else(|| config.secrets.get(key).map(|s| &s.source))?;
    matches!(
        source,
        Source::Env { .. }
            | Source::SecretFile { .. }
            | Source::ClusterFile { .. }
            | Source::ConfigMeta { .. }
            | Source::Cli { .. }
    )
    .then(|| source.to_string())
}

/// Rows of the agent's block that are the user's spark-defaults.conf lines carried into another
/// file (history-server.properties) are attributed to the lines they came from.
fn carried_from_defaults(values: &mut [ValueRow], earlier: &[FileReport]) {
    let Some(defaults) = earlier.iter().find(|f| f.name == "spark-defaults.conf") else {
        return;
    };
    for v in values.iter_mut() {
        if !matches!(v.from, ValueFrom::Sparkvisor { .. }) {
            continue;
        }
        let theirs = defaults
            .values
            .iter()
            .find(|d| d.key == v.key && matches!(d.from, ValueFrom::Yours { .. }));
        if let Some(d) = theirs {
            v.from = d.from.clone();
        }
    }
}

/// The input behind a value in the agent's block: a Spark property's or secret's source, else
/// the template.
fn agent_source(key: &str, file: &RenderedFile, config: &ResolvedConfig) -> String {
    if let Some(v) = config.spark_conf.get(key) {
        return v.source.to_string();
    }
    if let Some(s) = config.secrets.get(key) {
        return s.source.to_string();
    }
    format!("rendered from {}", file.template)
}

#[cfg(test)]
mod tests;
