//! Starting a service (or tini's child): fork, set the child up, exec.
//!
//! Our own `fork`/`execve` rather than `std::process::Command`, because:
//! - std waits for the child itself when exec fails (and panics when another thread's `waitpid(-1)`
//!   reaped it first); here `spawn` never waits: a child that fails after fork exits with 127/126
//!   and the one reaper sees its pid like any other;
//! - std applies `uid()`/`gid()` *before* `pre_exec`, the wrong order for a capability drop;
//! - the child reports *which* step failed (setgroups, capset, chdir, exec, ...) through a CLOEXEC
//!   pipe, and the error says so.
//!
//! Everything the child uses is computed here before `fork` (C strings, pointer arrays, signal set,
//! id list, capability masks, descriptor list); what runs between fork and exec is in
//! [`super::child`], whose rule is async-signal-safe system calls only: no allocation, no locks, no
//! logging.
//!
//! The child, in order: stdio onto 0/1/2 → new session (or process group, optionally taking the
//! terminal) → signal dispositions and mask → umask (unless inherited) → every descriptor ≥ 3 marked
//! close-on-exec (unless inherited descriptors pass through) → privilege drop
//! (planned by [`super::privileges`], unless inherited) → `chdir` (as the service user) → `execve`.
//!
//! Signals: a service starts with an empty signal mask and the default disposition for every signal
//! (signals the agent ignored are reset to `SIG_DFL`), unless [`SpawnSpec::signals`] says otherwise
//! (tini mode restores the mask and ignored signals it found at startup, see [`ChildSignals`]).
//!
//! The same path starts services ([`SpawnSpec::new`]) and tini mode's child
//! ([`SpawnSpec::foreground`]), which differ only in what they take over from the agent.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

pub use super::child::SetupStep;
use super::child::{close_range_cloexec, ChildPlan, DescriptorPlan, SHELL};
use super::privileges::PlanError;
pub use super::privileges::{AgentCredentials, PrivilegePlan};

/// The PATH used to find a program when the service's environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a child's standard streams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// stdin from `/dev/null`; stdout and stderr captured in pipes ([`Spawned::stdout`]/`stderr`).
    #[default]
    Pipe,
    /// The agent's own stdin, stdout and stderr (tini mode, `run -- CMD`).
    Inherit,
    /// All three on `/dev/null`.
    Null,
}

pub use super::signals::ChildSignals;

/// What happens to the descriptors ≥ 3 the child inherits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Descriptors {
    /// Every descriptor ≥ 3 is closed at exec: a service gets only its stdio.
    #[default]
    CloseInherited,
    /// Descriptors pass through exec as they are: those sparkvisor opened itself are close-on-exec
    /// and vanish, those it inherited without close-on-exec (socket activation, a test harness's
    /// pipe) reach the child, as under tini.
    KeepInherited,
}

/// What a child does with the agent's ids, capabilities and `no_new_privs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    /// Keep them exactly as they are (tini mode).
    Inherit,
    /// Drop to this plan (a service's, made once with its definition): its user, and only its
    /// capabilities in the bounding, permitted, effective, inheritable and ambient sets (every
    /// other capability is dropped, also for root).
    Drop(PrivilegePlan),
}

/// What to start and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// argv; `argv[0]` is looked up in the `PATH` of [`Self::env`] when it has no `/` (empty PATH
    /// entries are skipped; no PATH: [`DEFAULT_PATH`]).
    pub argv: Vec<OsString>,
    /// The complete environment: nothing is inherited from the agent. A later duplicate key
    /// replaces an earlier one. When [`Self::privileges`] name a user, `HOME`, `USER` and
    /// `LOGNAME` are added from it unless given here (a value given here wins).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory, entered after the privilege drop (as the service user); `None` keeps the
    /// agent's.
    pub cwd: Option<PathBuf>,
    /// Its ids, capabilities and `no_new_privs`: the agent's, or a planned drop.
    pub privileges: Privileges,
    /// The child's umask; `None` keeps the agent's.
    pub umask: Option<u32>,
    /// Inherited descriptors ≥ 3: closed at exec or passed through.
    pub descriptors: Descriptors,
    /// `setsid`: own session and process group (pgid = pid), so the group can be signalled.
    pub new_session: bool,
    /// Without `new_session`: `setpgid(0, 0)`, own process group in the agent's session.
    pub new_process_group: bool,
    /// With `new_process_group`: make the group the terminal's foreground group when stdin is a
    /// terminal (tini does this so Ctrl-C reaches the child).
    pub foreground: bool,
    /// As `execvp` does (and tini): a file that `execve` refuses as not executable (`ENOEXEC`, a
    /// script without `#!`) is run by `/bin/sh` with the file as its first argument.
    pub shell_fallback: bool,
    /// Standard streams.
    pub stdio: Stdio,
    /// `None`: empty mask, every signal at its default disposition.
    pub signals: Option<ChildSignals>,
}

impl SpawnSpec {
    /// A service's defaults: environment as given, privileges dropped as `privileges` plans,
    /// umask 022, own session, output captured.
    pub fn new(
        argv: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        privileges: PrivilegePlan,
    ) -> Self {
        Self {
            argv,
            env,
            cwd: None,
            privileges: Privileges::Drop(privileges),
            umask: Some(0o022),
            descriptors: Descriptors::CloseInherited,
            new_session: true,
            new_process_group: false,
            foreground: false,
            shell_fallback: false,
            stdio: Stdio::Pipe,
            signals: None,
        }
    }

    /// tini mode's child (and the main command of `run -- CMD`): started as sparkvisor itself was
    /// started — its environment, stdio, umask, ids, capabilities, inherited descriptors and the
    /// signal state `signals` (from [`super::signals::block_signals`]) — but in its own process
    /// group, made the terminal's foreground group when stdin is a terminal.
    pub fn foreground(argv: Vec<OsString>, signals: ChildSignals) -> Self {
        Self {
            argv,
            env: std::env::vars_os().collect(),
            cwd: None,
            privileges: Privileges::Inherit,
            umask: None,
            descriptors: Descriptors::KeepInherited,
            new_session: false,
            new_process_group: true,
            foreground: true,
            shell_fallback: true,
            stdio: Stdio::Inherit,
            signals: Some(signals),
        }
    }
}

/// A started child. It is not waited for here: the reaper reports its end.
#[derive(Debug)]
pub struct Spawned {
    /// Process id (also the process group and session id with `new_session`).
    pub pid: i32,
    /// Read end of the child's stdout (with [`Stdio::Pipe`]).
    pub stdout: Option<File>,
    /// Read end of the child's stderr (with [`Stdio::Pipe`]).
    pub stderr: Option<File>,
}

/// Why a child could not be started. When the failure happened after fork, the child has already
/// exited (127 when not found, else 126) and the reaper reports that pid like any unknown one.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program does not exist (not in PATH, or execve gave ENOENT).
    #[error("{program}: not found")]
    NotFound {
        /// `argv[0]`.
        program: String,
        /// The child that failed to exec (it exits 127), when the failure came after fork.
        child: Option<i32>,
    },
    /// The program exists but may not be executed (EACCES, EPERM, no execute bit).
    #[error("{program}: permission denied")]
    PermissionDenied {
        /// `argv[0]`.
        program: String,
        /// The child that failed to exec (it exits 126), when the failure came after fork.
        child: Option<i32>,
    },
    /// A step of the child's setup failed.
    #[error("{program}: cannot {step}: {source}")]
    Setup {
        /// `argv[0]`.
        program: String,
        /// What failed.
        step: SetupStep,
        /// The OS error.
        source: io::Error,
        /// The child that failed (it exits 126).
        child: i32,
    },
    /// The agent cannot grant the requested capabilities (before fork).
    #[error("{program}: {source}")]
    Privileges {
        /// `argv[0]`.
        program: String,
        /// What is wrong.
        source: PlanError,
    },
    /// Anything else: empty argv, NUL bytes, pipe or fork failure.
    #[error("{program}: {source}")]
    Other {
        /// `argv[0]`.
        program: String,
        /// The OS error or invalid input.
        source: io::Error,
    },
}

impl SpawnError {
    /// For [`SpawnError::NotFound`] and [`SpawnError::PermissionDenied`], the OS error execve
    /// reports for them (ENOENT, EACCES): its text is what tini prints.
    pub fn exec_os_error(&self) -> Option<io::Error> {
        match self {
            SpawnError::NotFound { .. } => Some(io::Error::from_raw_os_error(libc::ENOENT)),
            SpawnError::PermissionDenied { .. } => Some(io::Error::from_raw_os_error(libc::EACCES)),
            _ => None,
        }
    }
}

impl SpawnError {
    /// The shell-style exit code for this failure: 127 not found, 126 anything else (tini's codes).
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound { .. } => crate::error::exit_code::NOT_FOUND,
            _ => crate::error::exit_code::CANNOT_EXECUTE,
        }
    }

    /// The pid of the child that failed after fork and exits on its own; the reaper will report its
    /// end, and whoever receives that report should ignore it.
    pub fn child_pid(&self) -> Option<i32> {
        match self {
            SpawnError::NotFound { child, .. } | SpawnError::PermissionDenied { child, .. } => {
                *child
            }
            SpawnError::Setup { child, .. } => Some(*child),
            SpawnError::Privileges { .. } | SpawnError::Other { .. } => None,
        }
    }
}

/// Starts a child as `spec` says. Returns once the child has exec'd (or failed to); never waits for
/// it. Call it from the thread that owns the reaper or not: nothing here reaps.
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned, SpawnError> {
    let program = spec
        .argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let other = |source: io::Error| SpawnError::Other {
        program: program.clone(),
        source,
    };
    let first = spec
        .argv
        .first()
        .ok_or_else(|| other(invalid("empty command")))?;
    let path = find_program(first, &spec.env).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied {
            program: program.clone(),
            child: None,
        },
        io::ErrorKind::NotFound => SpawnError::NotFound {
            program: program.clone(),
            child: None,
        },
        _ => other(e),
    })?;
    let plan = match &spec.privileges {
        Privileges::Inherit => None,
        Privileges::Drop(plan) => {
            plan.check().map_err(|source| SpawnError::Privileges {
                program: program.clone(),
                source,
            })?;
            Some(plan)
        }
    };

    let path = cstring(path.as_os_str()).map_err(other)?;
    let argv = spec
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<io::Result<Vec<_>>>()
        .map_err(other)?;
    let env = environment(spec).map_err(other)?;
    let cwd = spec
        .cwd
        .as_deref()
        .map(|c| cstring(c.as_os_str()))
        .transpose()
        .map_err(other)?;
    let argv_ptrs = null_terminated(&argv);
    let env_ptrs = null_terminated(&env);
    // `/bin/sh PATH ARGS...`, the argv execvp uses for a file execve refuses with ENOEXEC.
    let shell_argv_ptrs = spec.shell_fallback.then(|| {
        [SHELL.as_ptr(), path.as_ptr()]
            .into_iter()
            .chain(argv_ptrs.iter().skip(1).copied())
            .collect::<Vec<_>>()
    });

    let stdio = StdioPlan::new(spec.stdio).map_err(other)?;
    let descriptors = match spec.descriptors {
        Descriptors::KeepInherited => DescriptorPlan::Keep,
        Descriptors::CloseInherited if close_range_works() => DescriptorPlan::CloseRange,
        Descriptors::CloseInherited => DescriptorPlan::List(open_descriptors()),
    };
    let (status_read, status_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| other(e.into()))?;

    let child = ChildPlan {
        path: &path,
        argv: &argv_ptrs,
        shell_argv: shell_argv_ptrs.as_deref(),
        env: &env_ptrs,
        cwd: cwd.as_ref(),
        stdio: &stdio.child,
        signal_mask: spec.signals.as_ref().map_or(0, ChildSignals::mask_bits),
        ignored_signals: spec.signals.as_ref().map_or(0, ChildSignals::ignored_bits),
        umask: spec.umask,
        new_session: spec.new_session,
        new_process_group: spec.new_process_group,
        foreground: spec.foreground,
        descriptors: &descriptors,
        privileges: plan,
        status_fd: status_write.as_raw_fd(),
    };

    // SAFETY: the child only runs `child.run`, which makes async-signal-safe system calls on data
    // prepared above and ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(other(io::Error::last_os_error()));
    }
    if pid == 0 {
        child.run();
    }
    drop(status_write);
    let (stdout, stderr) = stdio.into_parent_ends();
    match read_child_status(&status_read) {
        Ok(None) => Ok(Spawned {
            pid,
            stdout,
            stderr,
        }),
        Ok(Some((step, errno))) => Err(child_error(program.clone(), pid, step, errno)),
        Err(e) => Err(other(e)),
    }
}

fn child_error(program: String, pid: i32, step: SetupStep, errno: i32) -> SpawnError {
    let source = io::Error::from_raw_os_error(errno);
    let child = Some(pid);
    match (step, errno) {
        (SetupStep::Exec, libc::ENOENT | libc::ENOTDIR) => SpawnError::NotFound { program, child },
        (SetupStep::Exec, libc::EACCES | libc::EPERM) => {
            SpawnError::PermissionDenied { program, child }
        }
        _ => SpawnError::Setup {
            program,
            step,
            source,
            child: pid,
        },
    }
}

/// Reads the child's report: EOF without data means it exec'd; `[step, errno (4 bytes)]` a failure.
fn read_child_status(fd: &OwnedFd) -> io::Result<Option<(SetupStep, i32)>> {
    let mut report = [0u8; 5];
    let mut filled = 0;
    while filled < report.len() {
        match nix::unistd::read(fd, report.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match (filled, report) {
        (0, _) => Ok(None),
        (5, [step, a, b, c, d]) => {
            let step = SetupStep::from_u8(step).ok_or_else(|| invalid("bad report from child"))?;
            Ok(Some((step, i32::from_ne_bytes([a, b, c, d]))))
        }
        _ => Err(invalid("short report from child")),
    }
}

/// Whether this kernel supports `close_range` with `CLOSE_RANGE_CLOEXEC` (checked once, on a range
/// past any descriptor the agent can have).
fn close_range_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| close_range_cloexec(u32::MAX - 1).is_ok())
}

/// The agent's open descriptors ≥ 3, for kernels without `close_range`.
fn open_descriptors() -> Vec<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= 3)
                .collect()
        })
        .unwrap_or_default()
}

/// Descriptors the child puts on 0, 1 and 2 (all ≥ 3 and close-on-exec in the agent).
struct StdioPlan {
    /// Child-side descriptors for fd 0, 1, 2; `None` leaves the agent's.
    child: [Option<OwnedFd>; 3],
    /// Parent-side read ends of stdout and stderr.
    parent: [Option<OwnedFd>; 2],
}

impl StdioPlan {
    fn new(stdio: Stdio) -> io::Result<Self> {
        match stdio {
            Stdio::Inherit => Ok(Self {
                child: [None, None, None],
                parent: [None, None],
            }),
            Stdio::Null => {
                let null = || open_dev_null().and_then(above_stdio);
                Ok(Self {
                    child: [Some(null()?), Some(null()?), Some(null()?)],
                    parent: [None, None],
                })
            }
            Stdio::Pipe => {
                let (out_read, out_write) = pipe()?;
                let (err_read, err_write) = pipe()?;
                Ok(Self {
                    child: [
                        Some(above_stdio(open_dev_null()?)?),
                        Some(out_write),
                        Some(err_write),
                    ],
                    parent: [Some(out_read), Some(err_read)],
                })
            }
        }
    }

    /// Closes the child-side descriptors and returns the read ends of stdout and stderr.
    fn into_parent_ends(self) -> (Option<File>, Option<File>) {
        let [stdout, stderr] = self.parent;
        (stdout.map(File::from), stderr.map(File::from))
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((above_stdio(read)?, above_stdio(write)?))
}

fn open_dev_null() -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(fd)
}

/// Moves a descriptor to a number ≥ 3 (when the agent runs with 0/1/2 closed, a new pipe could land
/// there and be clobbered by the child's dup2 of another stream).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that we then own exclusively.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Finds `program` the way `execvp` would, in the PATH of the child's environment.
fn find_program(program: &OsStr, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "empty program name",
        ));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(OsStr::new(DEFAULT_PATH), |(_, v)| v.as_os_str());
    let mut denied = false;
    for dir in std::env::split_paths(path_var) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            denied = true;
        }
    }
    Err(if denied {
        io::ErrorKind::PermissionDenied.into()
    } else {
        io::ErrorKind::NotFound.into()
    })
}

/// `KEY=VALUE` strings: the given environment (a later duplicate replaces an earlier one, in its
/// place), plus HOME/USER/LOGNAME of the user when absent.
fn environment(spec: &SpawnSpec) -> io::Result<Vec<CString>> {
    let mut pairs: Vec<(&OsStr, &OsStr)> = Vec::with_capacity(spec.env.len() + 3);
    for (key, value) in &spec.env {
        match pairs.iter_mut().find(|(k, _)| *k == key.as_os_str()) {
            Some(pair) => pair.1 = value.as_os_str(),
            None => pairs.push((key.as_os_str(), value.as_os_str())),
        }
    }
    let user = match &spec.privileges {
        Privileges::Drop(plan) => plan.user(),
        Privileges::Inherit => None,
    };
    if let Some(user) = user {
        for (key, value) in [
            ("HOME", user.home.as_str()),
            ("USER", user.name.as_str()),
            ("LOGNAME", user.name.as_str()),
        ] {
            if !spec.env.iter().any(|(k, _)| k == key) {
                pairs.push((OsStr::new(key), OsStr::new(value)));
            }
        }
    }
    pairs
        .into_iter()
        .map(|(key, value)| {
            if key.is_empty() || key.as_bytes().contains(&b'=') {
                return Err(invalid(&format!(
                    "invalid environment variable name `{}`",
                    key.to_string_lossy()
                )));
            }
            let mut entry = Vec::with_capacity(key.len() + value.len() + 1);
            entry.extend_from_slice(key.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            CString::new(entry).map_err(|_| {
                invalid(&format!(
                    "environment variable `{}` contains a NUL byte",
                    key.to_string_lossy()
                ))
            })
        })
        .collect()
}

fn cstring(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes())
        .map_err(|_| invalid(&format!("`{}` contains a NUL byte", text.to_string_lossy())))
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::caps::CapabilitySet;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn finds_programs_in_the_child_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let noexec = dir.path().join("data");
        std::fs::write(&noexec, "").unwrap();
        let path = format!("/nonexistent::{}", dir.path().display());
        let e = env(&[("PATH", "/bin"), ("PATH", &path)]);
        assert_eq!(find_program(OsStr::new("tool"), &e).unwrap(), exe);
        assert_eq!(
            find_program(OsStr::new("data"), &e).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            find_program(OsStr::new("missing"), &e).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A name with a slash is used as is; no PATH means Docker's default.
        assert_eq!(
            find_program(OsStr::new("./x"), &e).unwrap(),
            PathBuf::from("./x")
        );
        let sh = find_program(OsStr::new("sh"), &[]).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
    }

    #[test]
    fn environment_adds_identity_unless_given() {
        let agent = AgentCredentials::current().unwrap();
        let plan = |user| PrivilegePlan::new(user, CapabilitySet::EMPTY, true, &agent);
        let mut spec = SpawnSpec::new(
            vec!["x".into()],
            env(&[("A", "1"), ("HOME", "/opt")]),
            plan(None),
        );
        let strings = |spec: &SpawnSpec| -> Vec<String> {
            environment(spec)
                .unwrap()
                .into_iter()
                .map(|c| c.into_string().unwrap())
                .collect()
        };
        assert_eq!(strings(&spec), ["A=1", "HOME=/opt"]);
        spec.env.push(("A".into(), "2".into()));
        assert_eq!(strings(&spec), ["A=2", "HOME=/opt"]);
        spec.env.pop();
        spec.privileges = Privileges::Drop(plan(Some(crate::sys::users::UserIds {
            uid: 7,
            gid: 7,
            groups: vec![],
            name: "7".into(),
            home: "/".into(),
        })));
        assert_eq!(strings(&spec), ["A=1", "HOME=/opt", "USER=7", "LOGNAME=7"]);
        spec.env = env(&[("A=B", "1")]);
        assert!(environment(&spec).is_err());
        spec.env = vec![("A".into(), OsString::from("a\0b"))];
        assert!(environment(&spec).is_err());
    }

    #[test]
    fn descriptor_list_for_old_kernels_holds_every_fd_above_stdio() {
        let file = File::open("/dev/null").unwrap();
        let fds = open_descriptors();
        assert!(fds.contains(&file.as_raw_fd()), "{fds:?}");
        assert!(fds.iter().all(|&fd| fd >= 3), "{fds:?}");
        assert!(close_range_works(), "this kernel (5.11+) has close_range");
    }

    #[test]
    fn setup_steps_round_trip_through_their_byte() {
        for step in SetupStep::ALL {
            assert_eq!(SetupStep::from_u8(step as u8), Some(step));
        }
        assert_eq!(SetupStep::from_u8(0), None);
    }
}
