//! Exit codes and the fatal errors that choose them. Only `main` (via [`crate::cli`]) exits.

use std::fmt;

/// Documented exit codes that are not a child's own code (README "Exit codes").
pub mod exit_code {
    /// Success.
    pub const OK: i32 = 0;
    /// Usage error or a generic failure of the agent itself (tini uses 1 for usage errors).
    pub const FAILURE: i32 = 1;
    /// The command was found but could not be executed (permission, not a file).
    pub const CANNOT_EXECUTE: i32 = 126;
    /// The command was not found.
    pub const NOT_FOUND: i32 = 127;
    /// Base added to a signal number when a process was killed by a signal.
    pub const SIGNAL_BASE: i32 = crate::process_end::SIGNAL_BASE;
    /// EX_CONFIG from sysexits.h: invalid configuration, role or template. Nothing was started.
    pub const CONFIG: i32 = 78;
    /// EX_UNAVAILABLE: the status socket could not be reached (CLI client commands).
    pub const UNAVAILABLE: i32 = 69;
    /// EX_NOPERM: the status socket refused a control request to this uid (HTTP 403).
    pub const NO_PERMISSION: i32 = 77;
    /// EX_SOFTWARE: an internal error of the agent (a supervision thread died); services were stopped.
    pub const INTERNAL: i32 = 70;
}

/// A problem found in an input file, with where it is. Rendered as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file (or pseudo-source such as `env SPARK_MODE`) the problem is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic about a whole file or source (no position).
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A diagnostic at a position in a file.
    pub fn at(
        file: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one validation pass (validation reports all problems at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Moves every problem of `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Moves the problems of `other` not already listed into `self`: for `check`, whose roles
    /// overlap (an included role is checked with each role including it), so that a problem found
    /// through several roles is listed once.
    pub fn extend_unique(&mut self, other: Diagnostics) {
        for d in other.0 {
            if !self.0.contains(&d) {
                self.0.push(d);
            }
        }
    }
    /// `Ok(value)` when empty, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// Errors that end the agent before or outside supervision; `exit_code` maps each to a documented code.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// Invalid injected config, role or template: exit 78, nothing started.
    #[error("invalid configuration:\n{0}")]
    Config(Diagnostics),
    /// A system call the agent needs failed (signal setup, socket, ...).
    #[error("{context}: {source}")]
    Sys {
        /// What the agent was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The status socket could not be reached or refused the request (client commands).
    #[error("{0}")]
    Unavailable(String),
    /// An internal invariant broke (a supervision thread died); reported, never a panic.
    #[error("internal error: {0}")]
    Internal(String),
    /// The agent refused a control request to this caller (status socket 403): exit 77.
    #[error("{0}")]
    NoPermission(String),
}

impl Fatal {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Fatal::Config(_) => exit_code::CONFIG,
            Fatal::Sys { .. } => exit_code::FAILURE,
            Fatal::Unavailable(_) => exit_code::UNAVAILABLE,
            Fatal::Internal(_) => exit_code::INTERNAL,
            Fatal::NoPermission(_) => exit_code::NO_PERMISSION,
        }
    }
}

impl From<Diagnostics> for Fatal {
    fn from(d: Diagnostics) -> Self {
        Fatal::Config(d)
    }
}

/// How a process ended: a pure type of its own ([`crate::process_end`]) so that `service`,
/// `status::wire` and `config` can use it without this module; re-exported under its old path.
pub use crate::process_end::ProcessEnd;
