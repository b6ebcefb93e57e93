//! How argv is to be read (tini, pass-through or a role-mode subcommand): pure, and apart from the
//! dispatcher so that `dropin` can ask it without importing the dispatcher that calls `dropin`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The role-mode subcommands: a first word among them is that subcommand, not a command to run.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "status",
    "health",
    "start",
    "stop",
    "restart",
    "signal",
    "logs",
    "render",
    "check",
    "inspect",
    "kubedirector",
    "help",
    "driver",
    "executor",
    "decommission",
    "pod-exec",
];

/// How argv is to be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// tini semantics for the whole argv (invoked as `tini`/`docker-init`, or tini flags first).
    Tini,
    /// `sparkvisor CMD ARGS...`: CMD is not an option or a subcommand; it runs with ARGS untouched
    /// (as the official image's `exec "$@"`), supervised as in tini mode.
    PassThrough(Vec<OsString>),
    /// A sparkvisor subcommand (possibly with `run` inserted).
    Role(Vec<OsString>),
}

/// Decides the mode. Rules (docs/kubernetes.md "Command line"):
/// - invoked as `tini` or `docker-init` → tini mode, tini's parsing exactly (options permuted);
/// - no arguments, or `--role ...` first → `run`;
/// - a subcommand, `--version`, `-V`, `--help`/`-h` → that;
/// - an option first (tini flags, `--`) → tini mode;
/// - any other first word → pass-through: that command with the rest as its argv, untouched.
///
/// A command named like a subcommand (`run`, `status`, `stop`, `driver`, ...) is the subcommand;
/// run such a program by its path (`/usr/local/bin/stop`) or after `--`.
pub(super) fn classify(args: &[OsString]) -> Mode {
    let argv0 = args.first().map(PathBuf::from).unwrap_or_default();
    let name = argv0.file_name().and_then(OsStr::to_str).unwrap_or("");
    if name == "tini" || name == "docker-init" {
        return Mode::Tini;
    }
    let rest = args.get(1..).unwrap_or(&[]);
    let Some(first) = rest.first().and_then(|a| a.to_str()) else {
        return match rest.first() {
            None => Mode::Role(vec![argv0.into_os_string(), "run".into()]),
            // A first word that is not UTF-8 is no option and no subcommand: a command.
            Some(_) => Mode::PassThrough(rest.to_vec()),
        };
    };
    if first == "--role" || first.starts_with("--role=") {
        let mut v = vec![argv0.into_os_string(), "run".into()];
        v.extend(rest.iter().cloned());
        return Mode::Role(v);
    }
    if SUBCOMMANDS.contains(&first) || matches!(first, "--version" | "-V" | "--help" | "-h") {
        return Mode::Role(args.to_vec());
    }
    if first.starts_with('-') {
        return Mode::Tini;
    }
    Mode::PassThrough(rest.to_vec())
}

/// True when `args` (a whole argv, `argv[0]` included) makes sparkvisor run one command as tini or
/// in pass-through mode (not the role-mode agent or a client command): used by `health`.
pub fn runs_a_command(args: &[OsString]) -> bool {
    matches!(classify(args), Mode::Tini | Mode::PassThrough(_))
}
