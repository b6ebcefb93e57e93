//! Every option of `sparkvisor run` that is not injected cluster config, parsed into one value
//! before anything happens: the log format, the shutdown grace, the status socket and its metrics
//! listener, the agent's log level. Every problem is reported at once (with the config's problems,
//! exit 78) before a file is written, a capability dropped or a thread started.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Diagnostic, Diagnostics};
use crate::status::ServerOptions;
use crate::supervision::logs::LogFormat;

/// Environment variable: the total time a shutdown may take (Docker's `stop -t`, default 10 s).
pub const SHUTDOWN_GRACE_ENV: &str = "SPARKVISOR_SHUTDOWN_GRACE";

/// Environment variable: how long a reload may take to load and render the new config before it
/// is given up and the running config kept (default 30 s).
pub const RELOAD_TIMEOUT_ENV: &str = "SPARKVISOR_RELOAD_TIMEOUT";

/// Environment variable: the agent's log level (env_logger filter syntax).
pub const LOG_ENV: &str = "SPARKVISOR_LOG";

/// The run options, checked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How service output is forwarded (`SPARKVISOR_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// The shutdown grace minus a safety margin (`SPARKVISOR_SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// How long a reload may take (`SPARKVISOR_RELOAD_TIMEOUT`).
    pub reload_timeout: Duration,
    /// The status socket (`SPARKVISOR_SOCKET`) and metrics listener (`SPARKVISOR_METRICS_ADDR`).
    pub server: ServerOptions,
}

impl RunOptions {
    /// Parses the options from `env`, listing every problem.
    pub fn parse(env: &BTreeMap<String, String>) -> Result<Self, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut problem = |var: &str, message: String| {
            problems.push(Diagnostic::new(format!("env {var}"), message));
        };
        let log_format = match env.get(crate::supervision::logs::FORMAT_ENV) {
            Some(text) => LogFormat::parse(text).unwrap_or_else(|| {
                problem(
                    crate::supervision::logs::FORMAT_ENV,
                    format!("unknown log format {text:?}: use prefix, plain or json"),
                );
                LogFormat::default()
            }),
            None => LogFormat::default(),
        };
        let shutdown_grace = match env.get(SHUTDOWN_GRACE_ENV) {
            Some(text) => match crate::config::role::DurationSpec::parse(text) {
                Ok(d) => with_margin(d.0),
                Err(e) => {
                    problem(SHUTDOWN_GRACE_ENV, e);
                    with_margin(DEFAULT_GRACE)
                }
            },
            None => with_margin(DEFAULT_GRACE),
        };
        let reload_timeout = match env.get(RELOAD_TIMEOUT_ENV) {
            Some(text) => match crate::config::role::DurationSpec::parse(text) {
                Ok(d) if !d.0.is_zero() => d.0,
                Ok(_) => {
                    problem(RELOAD_TIMEOUT_ENV, "must be more than 0".into());
                    crate::supervision::supervisor::reload::DEFAULT_TIMEOUT
                }
                Err(e) => {
                    problem(RELOAD_TIMEOUT_ENV, e);
                    crate::supervision::supervisor::reload::DEFAULT_TIMEOUT
                }
            },
            None => crate::supervision::supervisor::reload::DEFAULT_TIMEOUT,
        };
        let socket: std::path::PathBuf = match env.get(crate::status::SOCKET_ENV) {
            Some(p) if !p.is_empty() => p.into(),
            _ => crate::status::DEFAULT_SOCKET.into(),
        };
        let mut server = ServerOptions::new(socket);
        if let Some(text) = env.get(crate::status::METRICS_ADDR_ENV) {
            match crate::status::parse_metrics_addr(text) {
                Ok(addr) => server.metrics_addr = addr,
                Err(e) => problem(crate::status::METRICS_ADDR_ENV, e.to_string()),
            }
        }
        if let Some(text) = env.get(LOG_ENV) {
            if let Err(e) = check_log_filter(text) {
                problem(LOG_ENV, e);
            }
        }
        problems.into_result(RunOptions {
            log_format,
            shutdown_grace,
            reload_timeout,
            server,
        })
    }
}

/// Docker's default `stop -t`.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The total shutdown grace minus a margin (a tenth, at most 1 s), so everything has ended before
/// the container runtime's own timeout sends SIGKILL.
fn with_margin(total: Duration) -> Duration {
    total - (total / 10).min(Duration::from_secs(1))
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// `SPARKVISOR_LOG`: comma-separated `LEVEL` or `MODULE=LEVEL` directives (env_logger syntax,
/// without the `/regex` suffix). A bare word that is no level would silently become a module
/// filter that matches nothing of sparkvisor, so it is refused unless it names a sparkvisor module.
fn check_log_filter(text: &str) -> Result<(), String> {
    let spec = text.split('/').next().unwrap_or_default();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level_ok = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
        let ok = match directive.split_once('=') {
            Some((_, level)) => level_ok(level.trim()),
            None => level_ok(directive) || directive.starts_with("sparkvisor"),
        };
        if !ok {
            return Err(format!(
                "invalid log filter {directive:?} in {text:?}: use a level ({}) or MODULE=LEVEL",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_any_option() {
        let o = RunOptions::parse(&BTreeMap::new()).unwrap();
        assert_eq!(o.shutdown_grace, Duration::from_secs(9));
        assert_eq!(o.server.metrics_addr, None);
    }

    #[test]
    fn every_bad_option_is_reported_at_once() {
        let problems = RunOptions::parse(&env(&[
            ("SPARKVISOR_LOG_FORMAT", "xml"),
            ("SPARKVISOR_SHUTDOWN_GRACE", "soon"),
            ("SPARKVISOR_METRICS_ADDR", "localhost"),
            ("SPARKVISOR_LOG", "verbose"),
        ]))
        .unwrap_err();
        let text = problems.to_string();
        for var in [
            "SPARKVISOR_LOG_FORMAT",
            "SPARKVISOR_SHUTDOWN_GRACE",
            "SPARKVISOR_METRICS_ADDR",
            "SPARKVISOR_LOG",
        ] {
            assert!(text.contains(var), "{var} missing in {text}");
        }
    }

    #[test]
    fn good_options_parse() {
        let o = RunOptions::parse(&env(&[
            ("SPARKVISOR_LOG_FORMAT", "json"),
            ("SPARKVISOR_SHUTDOWN_GRACE", "30s"),
            ("SPARKVISOR_METRICS_ADDR", "127.0.0.1:9090"),
            ("SPARKVISOR_LOG", "debug,sparkvisor::status=trace"),
        ]))
        .unwrap();
        assert_eq!(o.shutdown_grace, Duration::from_secs(29));
        assert!(o.server.metrics_addr.is_some());
    }
}
