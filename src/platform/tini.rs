//! tini-compatible mode: one child, signals forwarded, zombies reaped, the child's code returned.
//!
//! The shape follows tini's `main`: parse arguments and environment, block signals, set the parent-death
//! signal and the subreaper, warn when reaping cannot work, spawn, then loop on signals. Unlike tini there
//! is no 1 s tick: signals (SIGCHLD included) are read from a signalfd, so an idle init never wakes up.

use std::ffi::{OsStr, OsString};
use std::io::Write;

use crate::error::{exit_code, ProcessEnd};
use crate::signal_names::{signal_by_name, signal_name};
use crate::sys::process;
use crate::sys::reaper::reap_children;
use crate::sys::signals::{block_signals, SignalReader, SIGCHLD, SIGTTIN, SIGTTOU};
use crate::sys::spawn::{spawn, SpawnError, SpawnSpec};

/// The tini release whose behaviour (and `--version` shape, parsed by `docker info`) we reproduce.
const TINI_COMPAT_VERSION: &str = "0.19.0";

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

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Run the command.
    Run(Options),
    /// `-h`: usage on stdout, exit 0.
    Help,
    /// `-l`: license on stdout, exit 0.
    License,
    /// `--version` as the sole argument.
    Version,
    /// A usage error: the message (if any), then usage on stderr, exit 1.
    Usage(Option<String>),
}

/// The environment variables tini mode reads, so parsing stays a pure function.
#[derive(Debug, Default, Clone)]
struct Env {
    subreaper: bool,
    kill_process_group: bool,
    verbosity: Option<String>,
    posixly_correct: bool,
}

impl Env {
    fn from_process() -> Self {
        Self {
            subreaper: std::env::var_os("TINI_SUBREAPER").is_some(),
            kill_process_group: std::env::var_os("TINI_KILL_PROCESS_GROUP").is_some(),
            verbosity: std::env::var("TINI_VERBOSITY").ok(),
            posixly_correct: std::env::var_os("POSIXLY_CORRECT").is_some(),
        }
    }
}

/// Parses tini's command line (getopt `p:hvwgle:s`, GNU permutation unless POSIXLY_CORRECT) and env.
fn parse(args: &[OsString], env: &Env) -> Request {
    if let [only] = args {
        if only == "--version" {
            return Request::Version;
        }
    }
    let mut options = Options {
        verbosity: 1,
        ..Options::default()
    };
    let mut operands: Vec<OsString> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let bytes = arg.as_encoded_bytes();
        if arg == "--" {
            operands.extend(rest.by_ref().cloned());
            break;
        }
        if bytes.len() < 2 || bytes.first() != Some(&b'-') {
            operands.push(arg.clone());
            if env.posixly_correct {
                operands.extend(rest.by_ref().cloned());
                break;
            }
            continue;
        }
        // A cluster of short options: `-vvv`, `-e143`, `-pSIGTERM`.
        let cluster = arg.to_string_lossy();
        for (at, letter) in cluster.char_indices().skip(1) {
            match letter {
                'h' => return Request::Help,
                'l' => return Request::License,
                's' => options.subreaper = true,
                'g' => options.kill_process_group = true,
                'w' => options.warn_on_reap = true,
                'v' => options.verbosity = options.verbosity.saturating_add(1),
                'e' | 'p' => {
                    let attached = cluster.get(at + letter.len_utf8()..).unwrap_or("");
                    let value = if attached.is_empty() {
                        match rest.next() {
                            Some(v) => v.to_string_lossy().into_owned(),
                            None => {
                                return Request::Usage(Some(format!(
                                    "option requires an argument -- '{letter}'"
                                )))
                            }
                        }
                    } else {
                        attached.to_string()
                    };
                    if letter == 'e' {
                        match value.parse::<u8>() {
                            Ok(code) => options.remap_to_zero.push(code),
                            Err(_) => {
                                return Request::Usage(Some(format!(
                                    "Not a valid exit code: '{value}'"
                                )))
                            }
                        }
                    } else {
                        match signal_by_name(&value) {
                            Some(signo) => options.parent_death_signal = Some(signo),
                            None => {
                                return Request::Usage(Some(format!("Invalid signal: '{value}'")))
                            }
                        }
                    }
                    break;
                }
                other => return Request::Usage(Some(format!("invalid option -- '{other}'"))),
            }
        }
    }
    if env.subreaper {
        options.subreaper = true;
    }
    if env.kill_process_group {
        options.kill_process_group = true;
    }
    if let Some(level) = &env.verbosity {
        // tini uses atoi: garbage reads as 0.
        options.verbosity = level.trim().parse::<u8>().unwrap_or(0);
    }
    if operands.is_empty() {
        return Request::Usage(None);
    }
    options.command = operands;
    Request::Run(options)
}

/// Leveled output in tini's format (`[WARN  tini (pid)] ...`): fatal and warnings on stderr, info and
/// debug on stdout, filtered by the verbosity.
struct Log {
    verbosity: u8,
    pid: i32,
}

impl Log {
    fn fatal(&self, message: &str) {
        self.emit(0, "FATAL", message);
    }
    fn warn(&self, message: &str) {
        self.emit(1, "WARN ", message);
    }
    fn info(&self, message: &str) {
        self.emit(2, "INFO ", message);
    }
    fn debug(&self, message: &str) {
        self.emit(3, "DEBUG", message);
    }
    /// Writes `message` when the verbosity is at least `level` (fatal and warnings to stderr, the
    /// rest to stdout, as tini does).
    fn emit(&self, level: u8, label: &str, message: &str) {
        if self.verbosity < level {
            return;
        }
        // One write per line, so lines from the init and its child do not interleave mid-line.
        let line = format!("[{label} sparkvisor ({})] {message}\n", self.pid);
        let _ = if level <= 1 {
            std::io::stderr().write_all(line.as_bytes())
        } else {
            std::io::stdout().write_all(line.as_bytes())
        };
    }
}

/// The name usage and errors use: the one the user typed.
fn program_name(invoked_as_tini: bool) -> &'static str {
    if invoked_as_tini {
        "tini"
    } else {
        "sparkvisor"
    }
}

fn usage(invoked_as_tini: bool) -> String {
    let name = program_name(invoked_as_tini);
    format!(
        "{name} ({version})
Usage: {name} [OPTIONS] PROGRAM -- [ARGS] | --version

Execute a program under the supervision of a valid init process ({name})

Command line options:

  --version: Show version and exit.
  -h: Show this help message and exit.
  -s: Register as a process subreaper (requires Linux >= 3.4).
  -p SIGNAL: Trigger SIGNAL when parent dies, e.g. \"-p SIGKILL\".
  -v: Generate more verbose output. Repeat up to 3 times.
  -w: Print a warning when processes are getting reaped.
  -g: Send signals to the child's process group.
  -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0 (can be repeated).
  -l: Show license and exit.

Environment variables:

  TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).
  TINI_VERBOSITY: Set the verbosity level (default: 1).
  TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.
",
        version = version_line(invoked_as_tini)
    )
}

/// `tini version 0.19.0 - git.sparkvisor` under the tini names (the shape moby's `parseInitVersion`
/// reads: the part after `git.` must hold no dot), else sparkvisor's own version.
fn version_line(invoked_as_tini: bool) -> String {
    if invoked_as_tini {
        format!("tini version {TINI_COMPAT_VERSION} - git.sparkvisor")
    } else {
        format!("sparkvisor {}", env!("CARGO_PKG_VERSION"))
    }
}

const LICENSE: &str = "sparkvisor, a tini-compatible init for Spark containers.
Licensed under the Apache License, Version 2.0: https://www.apache.org/licenses/LICENSE-2.0
Behaviour modelled on tini (MIT, Copyright (c) 2015 Thomas Orozco).
";

/// Runs tini mode with the arguments after `argv[0]`; returns the exit code.
/// `invoked_as_tini` selects tini's `--version` text (`tini version X.Y.Z - git.HASH`).
pub fn main(args: &[std::ffi::OsString], invoked_as_tini: bool) -> i32 {
    // Output errors (a closed stdout) are ignored: `print!` would panic, and PID 1 must not.
    match parse(args, &Env::from_process()) {
        Request::Run(options) => run(&options),
        Request::Help => {
            let _ = std::io::stdout().write_all(usage(invoked_as_tini).as_bytes());
            exit_code::OK
        }
        Request::License => {
            let _ = std::io::stdout().write_all(LICENSE.as_bytes());
            exit_code::OK
        }
        Request::Version => {
            let _ = writeln!(std::io::stdout(), "{}", version_line(invoked_as_tini));
            exit_code::OK
        }
        Request::Usage(message) => {
            let mut stderr = std::io::stderr();
            if let Some(message) = message {
                let _ = writeln!(stderr, "{}: {message}", program_name(invoked_as_tini));
            }
            let _ = stderr.write_all(usage(invoked_as_tini).as_bytes());
            exit_code::FAILURE
        }
    }
}

/// Supervises `options.command` until it ends; returns its code (remapped by `-e`).
fn run(options: &Options) -> i32 {
    let log = Log {
        verbosity: options.verbosity,
        pid: process::current_pid(),
    };
    let inherited = match block_signals() {
        Ok(inherited) => inherited,
        Err(e) => {
            log.fatal(&format!("Could not block signals: {e}"));
            return exit_code::FAILURE;
        }
    };
    let mut signals = match SignalReader::new() {
        Ok(reader) => reader,
        Err(e) => {
            log.fatal(&format!("Could not create the signalfd: {e}"));
            return exit_code::FAILURE;
        }
    };
    if let Some(signo) = options.parent_death_signal {
        if let Err(e) = process::set_parent_death_signal(signo) {
            log.fatal(&format!("Failed to set up parent death signal: {e}"));
            return exit_code::FAILURE;
        }
    }
    if options.subreaper {
        if let Err(e) = process::set_child_subreaper() {
            log.fatal(&format!("Failed to register as child subreaper: {e}"));
            return exit_code::FAILURE;
        }
        log.debug("Registered as child subreaper");
    }
    if log.pid != 1 && !process::is_child_subreaper() {
        log.warn(
            "sparkvisor is not running as PID 1 and isn't registered as a child subreaper.
Zombie processes will not be re-parented to sparkvisor, so zombie reaping won't work.
To fix the problem, use the -s option or set the environment variable TINI_SUBREAPER to register \
sparkvisor as a child subreaper, or run sparkvisor as PID 1.",
        );
    }

    let child = match spawn(&SpawnSpec::foreground(options.command.clone(), inherited)) {
        Ok(spawned) => spawned.pid,
        // A child that failed after fork exits on its own; as PID 1 we exit too, so it is never
        // waited for (it dies with the namespace, or is re-parented to the real init).
        Err(e) => return exec_failure(&log, options.command.first().map(OsString::as_os_str), &e),
    };
    log.info(&format!(
        "Spawned child process '{}' with pid '{child}'",
        display_command(&options.command)
    ));
    // The init must not keep a mount busy; the child already has its own cwd.
    let _ = process::release_cwd();

    loop {
        let signo = match signals.next() {
            Ok(signo) => signo,
            Err(e) => {
                log.fatal(&format!("Could not read signals: {e}"));
                return exit_code::FAILURE;
            }
        };
        if signo == SIGTTIN || signo == SIGTTOU {
            // As tini (which ignores them): terminal job-control stops are not passed on.
            log.debug(&format!("Ignoring signal: '{}'", signal_name(signo)));
            continue;
        }
        if signo != SIGCHLD {
            log.debug(&format!("Passing signal: '{}'", signal_name(signo)));
            forward_signal(&log, options, child, signo);
            continue;
        }
        log.debug("Received SIGCHLD");
        let mut child_end = None;
        reap_children(|pid, end| {
            if pid == child {
                log.info(&format!("Main child exited {}", describe_end(end)));
                child_end = Some(end);
            } else if options.warn_on_reap {
                log.warn(&format!("Reaped zombie process with pid={pid}"));
            } else {
                log.debug(&format!("Reaped zombie process with pid={pid}"));
            }
        });
        if let Some(end) = child_end {
            return remap(end.code(), &options.remap_to_zero);
        }
    }
}

fn forward_signal(log: &Log, options: &Options, child: i32, signo: i32) {
    let sent = if options.kill_process_group {
        process::signal_group(child, signo)
    } else {
        process::send_signal(child, signo)
    };
    if let Err(e) = sent {
        if process::is_no_such_process(&e) {
            log.warn("Child was dead when forwarding signal");
        } else {
            log.fatal(&format!("Unexpected error when forwarding signal: {e}"));
        }
    }
}

/// tini's codes for a command that cannot be started: 127 not found, 126 not executable (or a
/// failed setup step in the child), 1 when no child could be forked at all.
fn exec_failure(log: &Log, program: Option<&OsStr>, error: &SpawnError) -> i32 {
    let name = program.map(OsStr::to_string_lossy).unwrap_or_default();
    let os_reason = || {
        error
            .exec_os_error()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let (code, reason) = match error {
        SpawnError::NotFound { .. } => (exit_code::NOT_FOUND, os_reason()),
        SpawnError::PermissionDenied { .. } => (exit_code::CANNOT_EXECUTE, os_reason()),
        SpawnError::Setup { step, source, .. } => (
            exit_code::CANNOT_EXECUTE,
            format!("cannot {step}: {source}"),
        ),
        SpawnError::Privileges { source, .. } => (exit_code::FAILURE, source.to_string()),
        SpawnError::Other { source, .. } => (exit_code::FAILURE, source.to_string()),
    };
    log.fatal(&format!("exec {name} failed: {reason}"));
    code
}

fn describe_end(end: ProcessEnd) -> String {
    match end {
        ProcessEnd::Exited(code) => format!("normally with status '{code}'"),
        ProcessEnd::Signaled(signo) => format!("with signal '{}'", signal_name(signo)),
    }
}

fn display_command(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `-e`: codes listed are reported as 0.
fn remap(code: i32, remap_to_zero: &[u8]) -> i32 {
    if remap_to_zero.iter().any(|&c| i32::from(c) == code) {
        exit_code::OK
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn run_options(v: &[&str]) -> Options {
        match parse(&args(v), &Env::default()) {
            Request::Run(o) => o,
            other => panic!("{v:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn flags_and_command() {
        let o = run_options(&[
            "-s", "-g", "-w", "-vv", "-e", "143", "-e3", "-p", "SIGUSR1", "--", "sh", "-c", "x",
        ]);
        assert!(o.subreaper && o.kill_process_group && o.warn_on_reap);
        assert_eq!(o.verbosity, 3);
        assert_eq!(o.remap_to_zero, vec![143, 3]);
        assert_eq!(o.parent_death_signal, Some(crate::sys::signals::SIGUSR1));
        assert_eq!(o.command, args(&["sh", "-c", "x"]));
    }

    #[test]
    fn gnu_permutation_like_getopt() {
        // Options after the command are still options...
        assert_eq!(run_options(&["true", "-s"]).command, args(&["true"]));
        assert!(run_options(&["true", "-s"]).subreaper);
        // ...so tini's documented quirk: `-v sh -c x` fails on `-c` unless `--` is used.
        assert_eq!(
            parse(&args(&["-v", "sh", "-c", "x"]), &Env::default()),
            Request::Usage(Some("invalid option -- 'c'".into()))
        );
        let posix = Env {
            posixly_correct: true,
            ..Env::default()
        };
        assert_eq!(
            parse(&args(&["-v", "sh", "-c", "x"]), &posix),
            Request::Run(Options {
                verbosity: 2,
                command: args(&["sh", "-c", "x"]),
                ..Options::default()
            })
        );
        // `-- -- true` runs a program named `--`.
        assert_eq!(
            run_options(&["--", "--", "true"]).command,
            args(&["--", "true"])
        );
    }

    #[test]
    fn requests_and_errors() {
        let env = Env::default();
        assert_eq!(parse(&args(&["--version"]), &env), Request::Version);
        assert_eq!(parse(&args(&["-h"]), &env), Request::Help);
        assert_eq!(parse(&args(&["-l"]), &env), Request::License);
        assert_eq!(parse(&args(&[]), &env), Request::Usage(None));
        assert_eq!(parse(&args(&["-s"]), &env), Request::Usage(None));
        for bad in [
            &["-e", "256", "true"][..],
            &["-e", "x", "true"],
            &["-p", "NOPE", "true"],
            &["-x", "true"],
            &["true", "-e"],
            &["--version", "true"],
        ] {
            assert!(
                matches!(parse(&args(bad), &env), Request::Usage(Some(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn environment_variables() {
        let env = Env {
            subreaper: true,
            kill_process_group: true,
            verbosity: Some("3".into()),
            posixly_correct: false,
        };
        let o = match parse(&args(&["true"]), &env) {
            Request::Run(o) => o,
            other => panic!("{other:?}"),
        };
        assert!(o.subreaper && o.kill_process_group);
        assert_eq!(o.verbosity, 3);
    }

    #[test]
    fn remap_only_listed_codes() {
        assert_eq!(remap(143, &[143]), 0);
        assert_eq!(remap(3, &[143]), 3);
        assert_eq!(remap(0, &[]), 0);
    }

    #[test]
    fn version_shapes() {
        assert_eq!(version_line(true), "tini version 0.19.0 - git.sparkvisor");
        assert!(version_line(false).starts_with("sparkvisor "));
        assert!(usage(true).contains("supervision of a valid init process"));
        assert!(usage(true).contains("more verbose"));
    }
}
