//! How a process ended, as the reaper saw it: a pure value used by the state machine, the
//! supervisor, the status wire types and the exit-code policy alike.

/// A process killed by signal N is reported with the shell's code 128 + N.
pub const SIGNAL_BASE: i32 = 128;

/// How a process ended, as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessEnd {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ProcessEnd {
    /// The shell-style code: the exit code, or 128 + signal, modulo 256.
    pub fn code(self) -> i32 {
        match self {
            ProcessEnd::Exited(c) => c & 0xff,
            ProcessEnd::Signaled(s) => (SIGNAL_BASE + s) & 0xff,
        }
    }
    /// True for exit code 0.
    pub fn success(self) -> bool {
        self == ProcessEnd::Exited(0)
    }
}
