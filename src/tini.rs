//! tini-compatible mode: one child, signals forwarded, zombies reaped, the child's code returned.

/// Options of tini mode (tini's `-s -g -w -v -e -p` and its environment variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Register as a child subreaper (`-s`, `TINI_SUBREAPER`).
    pub subreaper: bool,
    /// Forward signals to the child's process group (`-g`, `TINI_KILL_PROCESS_GROUP`).
    pub kill_process_group: bool,
    /// Warn about every reaped process that is not the child (`-w`).
    pub warn_on_reap: bool,
    /// Verbosity: 0 errors, 1 warnings (default), 2 info, 3 debug.
    pub verbosity: u8,
    /// Exit codes remapped to 0 (`-e`).
    pub remap_to_zero: Vec<u8>,
    /// Parent-death signal (`-p SIGNAME`).
    pub parent_death_signal: Option<i32>,
    /// The command and its arguments.
    pub command: Vec<std::ffi::OsString>,
}

/// Runs tini mode with the arguments after argv[0]; returns the exit code.
/// `invoked_as_tini` selects tini's `--version` text (`tini version X.Y.Z - git.HASH`).
pub fn main(_args: &[std::ffi::OsString], _invoked_as_tini: bool) -> i32 {
    eprintln!("sparkvisor: tini mode is not implemented yet");
    crate::error::exit_code::FAILURE
}
