//! The operator CLI side of the status socket: `status`, `health`, `start|stop|restart`, `signal`, `logs`.

use crate::error::Fatal;

fn not_yet() -> Result<i32, Fatal> {
    Err(Fatal::Unavailable(
        "the status socket is not implemented yet".into(),
    ))
}

/// `sparkvisor status [--json] [SERVICE]`.
pub fn status(_service: Option<&str>, _json: bool) -> Result<i32, Fatal> {
    not_yet()
}

/// `sparkvisor health`: 0 when every required service is ready, else 1.
pub fn health() -> Result<i32, Fatal> {
    not_yet()
}

/// `sparkvisor start|stop|restart SERVICE`.
pub fn control(_service: &str, _action: &str) -> Result<i32, Fatal> {
    not_yet()
}

/// `sparkvisor signal SERVICE SIGNAL`.
pub fn signal(_service: &str, _signal: &str) -> Result<i32, Fatal> {
    not_yet()
}

/// `sparkvisor logs [SERVICE] [-n N] [-f]`.
pub fn logs(_service: Option<&str>, _lines: usize, _follow: bool) -> Result<i32, Fatal> {
    not_yet()
}
