//! Helpers shared by the tini-mode integration tests: the binary, PID-namespace launches, deadlines.
#![allow(dead_code)] // each test file uses a different subset

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // each test file uses a different subset
pub use crate::common::{bin, require_pid_namespace};

/// How long any awaited condition may take before the test fails (generous: 2 shared cores).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A python3 interpreter for child scripts (the system one starts fastest).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A command that runs sparkvisor as PID 1 of a fresh PID namespace (with its own /proc).
/// `--kill-child` makes sure the namespace dies with the test if the test fails half-way.
pub fn pid1<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = crate::common::sparkvisor(true);
    cmd.args(args);
    cmd
}

/// A command that runs sparkvisor directly (a normal child of the test).
pub fn direct<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = crate::common::sparkvisor(false);
    cmd.args(args);
    cmd
}

/// Waits until `condition` returns `Some`, polling every 5 ms, failing the test after [`DEADLINE`].
pub fn wait_for<T>(what: &str, condition: impl FnMut() -> Option<T>) -> T {
    crate::common::poll(DEADLINE, Duration::from_millis(5), condition)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Waits for a child to exit, killing it and failing the test after [`DEADLINE`].
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out waiting for pid {} to exit", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs to completion with a deadline, collecting stdout and stderr.
pub fn output(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).unwrap();
        buf
    });
    let status = wait_exit(&mut child);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The exit code, failing the test when the process was killed by a signal.
pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("killed instead of exiting: {status:?}"))
}

/// The host pid of the first child of `pid` (for `unshare --fork`: the namespace's PID 1).
pub fn first_child(pid: u32) -> u32 {
    wait_for("the namespace init to appear", || {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path) {
    wait_for(&format!("{}", path.display()), || {
        path.exists().then_some(())
    });
}

/// Waits until the file at `path` has a line equal to `line`.
pub fn wait_for_line(path: &Path, line: &str) {
    wait_for(&format!("line {line:?} in {}", path.display()), || {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().any(|l| l == line).then_some(())
    });
}

/// Waits until the file at `path` has a line equal to `line`, failing at once (with its exit status)
/// if `child` exits meanwhile.
pub fn wait_for_line_while(child: &mut Child, path: &Path, line: &str) {
    wait_for(&format!("line {line:?} in {}", path.display()), || {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            panic!(
                "exited ({status:?}) before {line:?} appeared in {}: {text:?}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().any(|l| l == line).then_some(())
    });
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sparkvisor-tini-")
        .tempdir()
        .unwrap()
}

/// Sends a signal to a host pid.
pub fn kill(pid: u32, signo: i32) {
    // SAFETY: kill takes plain integers.
    let rc = unsafe { libc::kill(i32::try_from(pid).unwrap(), signo) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signo}): {}",
        std::io::Error::last_os_error()
    );
}

/// A python child that records, one number per line in `out`, every signal in `signals` it receives,
/// and creates `out.ready` once its handlers are installed. It ends only by a signal it does not handle.
pub fn recorder(out: &Path, signals: &[i32]) -> Vec<String> {
    let list = signals
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import signal, sys\n\
         out = sys.argv[1]\n\
         def record(signo, frame):\n\
         \x20   with open(out, 'a') as f:\n\
         \x20       f.write(f'{{signo}}\\n')\n\
         for s in [{list}]:\n\
         \x20   signal.signal(s, record)\n\
         open(out + '.ready', 'w').close()\n\
         while True:\n\
         \x20   signal.pause()\n"
    );
    vec![
        python().to_string(),
        "-c".to_string(),
        script,
        out.display().to_string(),
    ]
}

/// `path` + `.ready`.
pub fn ready_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".ready");
    PathBuf::from(s)
}
