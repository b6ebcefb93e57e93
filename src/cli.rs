//! Command-line dispatch: decides between tini mode and the role-mode subcommands, calls the module
//! that owns each command, and turns its result into the process exit code. Nothing else.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{exit_code, Fatal};

pub mod mode;
pub use mode::runs_a_command;
use mode::{classify, Mode};

/// Role-mode command line (tini mode is parsed by [`crate::platform::tini`]).
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
    /// A Spark-on-Kubernetes driver pod: the `driver` role, whose main command is the official
    /// entrypoint's `spark-submit --deploy-mode client ARGS` (docs/kubernetes.md).
    Driver {
        /// What Spark passes after `driver` (`--properties-file ... --class ... ARGS`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A Spark-on-Kubernetes executor pod: the `executor` role, whose main command is the official
    /// entrypoint's `java ... KubernetesExecutorBackend ...` from the pod's environment.
    Executor,
    /// Decommission the executor (a preStop hook): SIGPWR to it, then wait until it has exited.
    Decommission {
        /// Give up waiting after this many seconds (exit 1).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Internal: the main command of the driver/executor roles (builds the argv, execs it).
    #[command(hide = true)]
    PodExec {
        /// `driver` or `executor`.
        kind: String,
        /// The driver's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// KubeDirector's app setup hooks, called by the config package's startscript:
    /// --configure | --addnodes/--delnodes --nodegroup N --role ROLE --fqdns A,B | --reconnect.
    Kubedirector(crate::platform::kubedirector::HookArgs),
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
            if !invoked_as_tini {
                // The image's ENTRYPOINT with tini flags: prepared as the official entrypoint
                // prepares every command (a real tini stays exactly tini).
                prepare_dropin();
            }
            crate::platform::tini::main(args.get(1..).unwrap_or(&[]), invoked_as_tini)
        }
        Mode::PassThrough(command) => {
            prepare_dropin();
            let mut tini_args: Vec<OsString> = vec!["--".into()];
            tini_args.extend(command);
            crate::platform::tini::main(&tini_args, false)
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

/// The drop-in environment (passwd entry, writable Spark dirs) for a command run in tini or
/// pass-through mode; its messages go to stderr as the agent's do.
fn prepare_dropin() {
    crate::platform::dropin::prepare(&mut |m| crate::errln!("sparkvisor: info: {m}"), &mut |m| {
        crate::errln!("sparkvisor: warn: {m}")
    });
}

/// `sparkvisor health`: the agent's answer; without an agent, healthy when PID 1 is sparkvisor
/// running one command (tini or pass-through mode), since PID 1 exits when that command ends.
fn health() -> Result<i32, Fatal> {
    match crate::status::client::health() {
        Err(Fatal::Unavailable(_)) if crate::platform::dropin::pid1_runs_a_command() => {
            crate::outln!("healthy: PID 1 runs a command (pass-through or tini mode, no services)");
            Ok(crate::error::exit_code::OK)
        }
        other => other,
    }
}

/// `driver ARGS` / `executor`: role mode with the role of that name (roles/driver.yaml,
/// roles/executor.yaml: adjustable like any role) and the pod's JVM as the main command, so the
/// container ends with it, with its exit code.
fn pod_role(role: &str, args: Vec<String>) -> Result<i32, Fatal> {
    let me = std::env::current_exe().map_err(|source| Fatal::Sys {
        context: "finding the sparkvisor binary".into(),
        source,
    })?;
    let mut main: Vec<OsString> = vec![me.into_os_string(), "pod-exec".into(), role.into()];
    main.extend(args.into_iter().map(OsString::from));
    crate::startup::app::run(Some(role.to_string()), main)
}

fn dispatch(command: Command) -> Result<i32, Fatal> {
    match command {
        Command::Run { role, command } => crate::startup::app::run(role, command),
        Command::Render { role, out } => crate::startup::commands::render(role, &out),
        Command::Check { role } => crate::startup::commands::check(role),
        Command::Driver { args } => pod_role("driver", args),
        Command::Executor => pod_role("executor", Vec::new()),
        Command::PodExec { kind, args } => crate::platform::k8s_pod::pod_exec(&kind, &args),
        Command::Decommission { timeout } => crate::platform::decommission::run(timeout),
        Command::Inspect { json, role } => crate::startup::commands::inspect(role, json),
        Command::Kubedirector(args) => crate::platform::kubedirector::run(args),
        Command::Status { json, service } => {
            crate::status::client::status(service.as_deref(), json)
        }
        Command::Health => health(),
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
        assert_eq!(
            classify(&args(&["sparkvisor", "bash"])),
            Mode::PassThrough(args(&["bash"]))
        );
        // Everything after the command is its own: `--master` is not permuted to sparkvisor.
        assert_eq!(
            classify(&args(&[
                "sparkvisor",
                "spark-submit",
                "--master",
                "x",
                "-v",
                "--",
                "a"
            ])),
            Mode::PassThrough(args(&["spark-submit", "--master", "x", "-v", "--", "a"]))
        );
        assert_eq!(
            classify(&args(&["tini", "spark-submit", "--master"])),
            Mode::Tini
        );
        assert_eq!(classify(&args(&["sparkvisor", "-g", "sleep"])), Mode::Tini);
        assert_eq!(
            classify(&args(&["sparkvisor", "/usr/bin/stop"])),
            Mode::PassThrough(args(&["/usr/bin/stop"]))
        );
        assert!(runs_a_command(&args(&[
            "/usr/local/bin/sparkvisor",
            "sleep",
            "9"
        ])));
        assert!(runs_a_command(&args(&["sparkvisor", "--", "sleep", "9"])));
        assert!(!runs_a_command(&args(&["sparkvisor"])));
        assert!(!runs_a_command(&args(&[
            "sparkvisor",
            "run",
            "--role",
            "master"
        ])));
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
            classify(&args(&["sparkvisor", "kubedirector", "--configure"])),
            Mode::Role(args(&["sparkvisor", "kubedirector", "--configure"]))
        );
        assert_eq!(
            classify(&args(&["sparkvisor", "--version"])),
            Mode::Role(args(&["sparkvisor", "--version"]))
        );
    }
}
