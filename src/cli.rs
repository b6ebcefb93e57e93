//! Command-line dispatch: decides between tini mode and the role-mode subcommands, calls the module
//! that owns each command, and turns its result into the process exit code. Nothing else.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{exit_code, Fatal};

/// Role-mode command line (tini mode is parsed by [`crate::tini`]).
#[derive(Debug, Parser)]
#[command(
    name = "sparkvisor",
    version,
    about = "PID 1, config renderer and service supervisor for Spark containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve config, render files and supervise the role's services (the ENTRYPOINT default).
    /// With `-- CMD`, CMD is the main process and its exit code is the container's.
    Run {
        /// The role to run (default: from SPARKVISOR_ROLE, SPARK_MODE, the cluster file or configmeta.json).
        #[arg(long)]
        role: Option<String>,
        /// Main process, started once the services are ready.
        #[arg(last = true)]
        command: Vec<OsString>,
    },
    /// Show the state of every service (or one) over the status socket.
    Status {
        /// Print the JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this service.
        service: Option<String>,
    },
    /// Exit 0 when every required service is ready (for Docker's HEALTHCHECK), else 1.
    Health,
    /// Start a stopped service.
    Start {
        /// Service name.
        service: String,
    },
    /// Stop a service (it stays stopped until started).
    Stop {
        /// Service name.
        service: String,
    },
    /// Restart a service.
    Restart {
        /// Service name.
        service: String,
    },
    /// Send a signal to a service's process group.
    Signal {
        /// Service name.
        service: String,
        /// Signal name (TERM, SIGUSR1, ...) or number.
        signal: String,
    },
    /// Show recent output kept by the agent.
    Logs {
        /// Only this service.
        service: Option<String>,
        /// Number of lines.
        #[arg(short = 'n', default_value_t = 100)]
        lines: usize,
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Render the role's files into DIR and start nothing.
    Render {
        /// The role (default: resolved as for `run`).
        #[arg(long)]
        role: Option<String>,
        /// Output directory; each file's destination is re-rooted under it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate roles, templates and the injected config; exit 78 listing every problem.
    Check {
        /// Only this role (default: every role in the roles directory, plus the injected config).
        #[arg(long)]
        role: Option<String>,
    },
    /// Show the resolved config with each value's source, the detected resources and the sizing.
    Inspect {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The role (default: resolved as for `run`).
        #[arg(long)]
        role: Option<String>,
    },
}

const SUBCOMMANDS: &[&str] = &[
    "run", "status", "health", "start", "stop", "restart", "signal", "logs", "render", "check",
    "inspect", "help",
];

/// How argv is to be read.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// tini semantics for the whole argv (invoked as `tini`/`docker-init`, or tini flags / a bare command).
    Tini,
    /// A sparkvisor subcommand (possibly with `run` inserted).
    Role(Vec<OsString>),
}

/// Decides the mode. Rules (README "Command line"):
/// - invoked as `tini` or `docker-init` → tini mode;
/// - no arguments, or `--role ...` first → `run`;
/// - a subcommand, `--version`, `-V`, `--help`/`-h` → that;
/// - anything else (tini flags, `--`, a bare command) → tini mode.
fn classify(args: &[OsString]) -> Mode {
    let argv0 = args.first().map(PathBuf::from).unwrap_or_default();
    let name = argv0.file_name().and_then(OsStr::to_str).unwrap_or("");
    if name == "tini" || name == "docker-init" {
        return Mode::Tini;
    }
    let rest = args.get(1..).unwrap_or(&[]);
    let Some(first) = rest.first().and_then(|a| a.to_str()) else {
        if rest.is_empty() {
            return Mode::Role(vec![argv0.into_os_string(), "run".into()]);
        }
        return Mode::Tini;
    };
    if first == "--role" || first.starts_with("--role=") {
        let mut v = vec![argv0.into_os_string(), "run".into()];
        v.extend(rest.iter().cloned());
        return Mode::Role(v);
    }
    if SUBCOMMANDS.contains(&first) || matches!(first, "--version" | "-V" | "--help" | "-h") {
        return Mode::Role(args.to_vec());
    }
    Mode::Tini
}

/// Runs the command line and returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match classify(&args) {
        Mode::Tini => {
            let invoked_as_tini = args
                .first()
                .and_then(|a| {
                    PathBuf::from(a)
                        .file_name()
                        .map(|n| n == "tini" || n == "docker-init")
                })
                .unwrap_or(false);
            crate::tini::main(args.get(1..).unwrap_or(&[]), invoked_as_tini)
        }
        Mode::Role(argv) => {
            let cli = match Cli::try_parse_from(argv) {
                Ok(cli) => cli,
                Err(e) => {
                    let code = if e.use_stderr() {
                        exit_code::FAILURE
                    } else {
                        exit_code::OK
                    };
                    let _ = e.print();
                    return code;
                }
            };
            match dispatch(cli.command) {
                Ok(code) => code,
                Err(fatal) => {
                    crate::errln!("sparkvisor: {fatal}");
                    fatal.exit_code()
                }
            }
        }
    }
}

fn dispatch(command: Command) -> Result<i32, Fatal> {
    match command {
        Command::Run { role, command } => crate::app::run(role, command),
        Command::Render { role, out } => crate::commands::render(role, &out),
        Command::Check { role } => crate::commands::check(role),
        Command::Inspect { json, role } => crate::commands::inspect(role, json),
        Command::Status { json, service } => {
            crate::status::client::status(service.as_deref(), json)
        }
        Command::Health => crate::status::client::health(),
        Command::Start { service } => crate::status::client::control(&service, "start"),
        Command::Stop { service } => crate::status::client::control(&service, "stop"),
        Command::Restart { service } => crate::status::client::control(&service, "restart"),
        Command::Signal { service, signal } => crate::status::client::signal(&service, &signal),
        Command::Logs {
            service,
            lines,
            follow,
        } => crate::status::client::logs(service.as_deref(), lines, follow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn classify_modes() {
        assert_eq!(classify(&args(&["/usr/bin/tini", "run"])), Mode::Tini);
        assert_eq!(classify(&args(&["docker-init", "--", "true"])), Mode::Tini);
        assert_eq!(classify(&args(&["sparkvisor", "--", "true"])), Mode::Tini);
        assert_eq!(
            classify(&args(&["sparkvisor", "-s", "--", "true"])),
            Mode::Tini
        );
        assert_eq!(classify(&args(&["sparkvisor", "bash"])), Mode::Tini);
        assert_eq!(
            classify(&args(&["sparkvisor"])),
            Mode::Role(args(&["sparkvisor", "run"]))
        );
        assert_eq!(
            classify(&args(&["sparkvisor", "--role", "worker"])),
            Mode::Role(args(&["sparkvisor", "run", "--role", "worker"]))
        );
        assert_eq!(
            classify(&args(&["sparkvisor", "status"])),
            Mode::Role(args(&["sparkvisor", "status"]))
        );
        assert_eq!(
            classify(&args(&["sparkvisor", "--version"])),
            Mode::Role(args(&["sparkvisor", "--version"]))
        );
    }
}
