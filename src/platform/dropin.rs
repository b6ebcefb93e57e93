//! What the official `apache/spark` and `bitnami/spark` entrypoints do to the environment before
//! they run anything, done once by sparkvisor before it starts a command or a role
//! (docs/kubernetes.md "Who runs what"):
//!
//! - **A passwd entry for an arbitrary uid** (OpenShift `restricted-v2` runs the image as e.g.
//!   uid 1000700000, gid 0). The JVM asks `getpwuid` for `user.name` and Hadoop's login module
//!   fails without one. Like both images we use nss_wrapper (Debian `libnss-wrapper`): copies of
//!   `/etc/passwd` and `/etc/group` plus one line for this uid are written to a writable scratch
//!   directory and `LD_PRELOAD`/`NSS_WRAPPER_PASSWD`/`NSS_WRAPPER_GROUP` point the children at
//!   them. Unlike a group-writable `/etc/passwd` (the official Dockerfile's other trick) this also
//!   works on a read-only root filesystem and never changes the image.
//! - **Writable Spark directories** for plain commands (`spark-class ...Worker` as `--user spark`
//!   or on a read-only root): when `SPARK_WORKER_DIR`/`SPARK_LOG_DIR` are unset and their defaults
//!   under `SPARK_HOME` cannot be written, they are pointed at the scratch directory, so the worker
//!   does not die with `AccessDeniedException: /opt/spark/work`. Set either variable and it is used
//!   as given.
//! - **A writable `HOME`**: Docker sets `HOME=/` for a uid without a passwd entry, and a read-only
//!   root leaves `/home/spark` unwritable; Spark (`~/.ivy2` for `--packages`), Jupyter and IPython
//!   write there. When `HOME` cannot be written it becomes the scratch directory, the home the
//!   nss_wrapper entry names too.
//!
//! The planning is pure ([`plan`]); [`prepare`] looks at the system, writes the files and exports
//! the variables into the agent's own environment (which every child inherits). It runs before any
//! thread exists, so changing the environment is safe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::startup::writable::{is_writable, scratch_dir};

/// Where Debian (and other distributions) install nss_wrapper's library.
pub const NSS_WRAPPER_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
    "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
    "/usr/lib64/libnss_wrapper.so",
    "/usr/lib/libnss_wrapper.so",
    "/lib/libnss_wrapper.so",
];

/// The Spark directories a plain command may need to write, with their defaults under SPARK_HOME.
const SPARK_DIRS: &[(&str, &str)] = &[("SPARK_WORKER_DIR", "work"), ("SPARK_LOG_DIR", "logs")];

/// The facts [`plan`] decides from (gathered by [`prepare`], given by tests).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Effective uid and gid of the agent.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// The process environment.
    pub env: BTreeMap<String, String>,
    /// `/etc/passwd` text (empty when unreadable).
    pub passwd: String,
    /// `/etc/group` text (empty when unreadable).
    pub group: String,
    /// The nss_wrapper library, when installed.
    pub nss_wrapper: Option<PathBuf>,
    /// A writable scratch directory (`$TMPDIR`, else `/tmp`), when there is one.
    pub scratch: Option<PathBuf>,
    /// The candidate scratch directories tried (for the error message).
    pub scratch_tried: Vec<PathBuf>,
    /// The default Spark directories that can be written (created if missing).
    pub writable: Vec<PathBuf>,
    /// Whether `$HOME` is set and can be written.
    pub home_writable: bool,
}

/// What to do: files to write, variables to export, and what to tell the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files to write (path, content).
    pub files: Vec<(PathBuf, String)>,
    /// Directories to create (for the redirected Spark directories).
    pub dirs: Vec<PathBuf>,
    /// Variables to export to every child.
    pub env: Vec<(String, String)>,
    /// One line each for the log (info).
    pub notes: Vec<String>,
    /// Problems that may break Spark (warning).
    pub warnings: Vec<String>,
}

/// Decides the passwd entry and the directory fallbacks from `facts`.
pub fn plan(facts: &Facts) -> Plan {
    let mut plan = Plan::default();
    let users = crate::sys::users::UserDb::parse(&facts.passwd, &facts.group);
    let has_entry = users.user_by_uid(facts.uid).is_some();
    let no_scratch = || {
        let tried = facts
            .scratch_tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        format!("no writable directory (tried {tried}): mount one, e.g. --tmpfs /tmp")
    };
    if !has_entry && !facts.env.contains_key("NSS_WRAPPER_PASSWD") {
        match (&facts.nss_wrapper, &facts.scratch) {
            (Some(lib), Some(scratch)) => {
                let dir = scratch.join(format!("sparkvisor-nss-{}", facts.uid));
                let name = facts
                    .env
                    .get("SPARK_USER_NAME")
                    .filter(|n| valid_name(n))
                    .map_or("spark", String::as_str);
                let mut passwd = with_newline(&facts.passwd);
                passwd.push_str(&format!(
                    "{name}:x:{}:{}:anonymous uid:{}:/bin/false\n",
                    facts.uid,
                    facts.gid,
                    scratch.display()
                ));
                let mut group = with_newline(&facts.group);
                if !users.groups.iter().any(|g| g.gid == facts.gid) {
                    group.push_str(&format!("{name}:x:{}:\n", facts.gid));
                }
                let (p, g) = (dir.join("passwd"), dir.join("group"));
                plan.dirs.push(dir);
                plan.files.push((p.clone(), passwd));
                plan.files.push((g.clone(), group));
                let preload = match facts.env.get("LD_PRELOAD").filter(|v| !v.is_empty()) {
                    Some(old) => format!("{}:{old}", lib.display()),
                    None => lib.display().to_string(),
                };
                plan.env.push(("LD_PRELOAD".into(), preload));
                plan.env
                    .push(("NSS_WRAPPER_PASSWD".into(), p.display().to_string()));
                plan.env
                    .push(("NSS_WRAPPER_GROUP".into(), g.display().to_string()));
                plan.notes.push(format!(
                    "uid {} has no passwd entry: running as user name {name:?} through nss_wrapper \
                     ({})",
                    facts.uid,
                    p.display()
                ));
            }
            (None, _) => plan.warnings.push(format!(
                "uid {} has no passwd entry and nss_wrapper is not installed (libnss-wrapper): \
                 Java and Hadoop may fail to find a user name",
                facts.uid
            )),
            (Some(_), None) => plan.warnings.push(format!(
                "uid {} has no passwd entry and nss_wrapper cannot help: {}",
                facts.uid,
                no_scratch()
            )),
        }
    }
    if !facts.home_writable {
        match &facts.scratch {
            Some(scratch) => {
                let was = facts.env.get("HOME").map_or("(unset)", String::as_str);
                plan.notes.push(format!(
                    "HOME={was} is not writable: HOME={}",
                    scratch.display()
                ));
                plan.env
                    .push(("HOME".into(), scratch.display().to_string()));
            }
            None => plan.warnings.push(format!(
                "HOME is not writable: Spark's ~/.ivy2 and Jupyter's state cannot be written ({})",
                no_scratch()
            )),
        }
    }
    let home = facts
        .env
        .get("SPARK_HOME")
        .map_or(crate::config::env::DEFAULT_SPARK_HOME, String::as_str);
    for (var, sub) in SPARK_DIRS {
        if facts.env.contains_key(*var) {
            continue;
        }
        let default = Path::new(home).join(sub);
        if facts.writable.contains(&default) {
            continue;
        }
        match &facts.scratch {
            Some(scratch) => {
                let dir = scratch.join("spark").join(sub);
                plan.notes.push(format!(
                    "{} is not writable: {var}={}",
                    default.display(),
                    dir.display()
                ));
                plan.env.push(((*var).into(), dir.display().to_string()));
                plan.dirs.push(dir);
            }
            None => plan.warnings.push(format!(
                "{} is not writable and {var} is not set: {}",
                default.display(),
                no_scratch()
            )),
        }
    }
    plan
}

/// Role mode's status socket: the agent listens on `/run/sparkvisor`; when that cannot be written
/// (a read-only root filesystem, or a non-root user the image did not prepare for) and
/// `SPARKVISOR_SOCKET` is unset, the socket moves under the scratch directory. (Where the rendered
/// config goes when the conf dir cannot be written is `conf_merge::place`'s: it merges the user's
/// files there too.)
pub fn plan_role(
    env: &BTreeMap<String, String>,
    scratch: Option<&Path>,
    run_writable: bool,
) -> Plan {
    let mut plan = Plan::default();
    if !run_writable && !env.contains_key(crate::status::SOCKET_ENV) {
        if let Some(scratch) = scratch {
            let socket = crate::status::fallback_socket(scratch);
            plan.notes.push(format!(
                "{} is not writable: status socket at {}",
                Path::new(crate::status::DEFAULT_SOCKET)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .display(),
                socket.display()
            ));
            plan.env.push((
                crate::status::SOCKET_ENV.into(),
                socket.display().to_string(),
            ));
        }
    }
    plan
}

/// [`prepare`] plus [`plan_role`] for role mode, logged through `log`.
pub fn prepare_role() {
    prepare(&mut |m| log::info!("{m}"), &mut |m| log::warn!("{m}"));
    let env = crate::startup::node::process_env();
    let (scratch, _) = scratch_dir(&env);
    let socket_dir = Path::new(crate::status::DEFAULT_SOCKET)
        .parent()
        .unwrap_or(Path::new("/run"));
    let run_writable = env.contains_key(crate::status::SOCKET_ENV) || is_writable(socket_dir);
    let plan = plan_role(&env, scratch.as_deref(), run_writable);
    apply(&plan, &mut |m| log::info!("{m}"), &mut |m| {
        log::warn!("{m}")
    });
}

fn with_newline(text: &str) -> String {
    let mut s = text.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// A passwd name cannot hold `:` or a newline (it would forge another field or line).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Gathers the facts from this system, applies the plan (files written 0644, variables exported
/// into this process's environment) and logs it through `note`/`warn`. Call before any thread
/// exists.
pub fn prepare(note: &mut dyn FnMut(&str), warn: &mut dyn FnMut(&str)) {
    let env = crate::startup::node::process_env();
    let (uid, gid) = crate::sys::process::current_ids();
    let (scratch, scratch_tried) = scratch_dir(&env);
    let home = env
        .get("SPARK_HOME")
        .map_or(crate::config::env::DEFAULT_SPARK_HOME, String::as_str)
        .to_string();
    // Without SPARK_HOME the command is not Spark's: nothing to redirect (all count as writable).
    let writable = SPARK_DIRS
        .iter()
        .map(|(_, sub)| Path::new(&home).join(sub))
        .filter(|d| !env.contains_key("SPARK_HOME") || is_writable(d))
        .collect();
    // Only a directory that exists counts: creating a missing HOME is not the agent's business.
    let home_writable = env
        .get("HOME")
        .map(Path::new)
        .is_some_and(|h| h.is_dir() && is_writable(h));
    let facts = Facts {
        uid,
        gid,
        home_writable,
        passwd: std::fs::read_to_string(crate::sys::users::PASSWD_PATH).unwrap_or_default(),
        group: std::fs::read_to_string(crate::sys::users::GROUP_PATH).unwrap_or_default(),
        nss_wrapper: NSS_WRAPPER_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
        scratch,
        scratch_tried,
        writable,
        env,
    };
    apply(&plan(&facts), note, warn);
}

fn apply(plan: &Plan, note: &mut dyn FnMut(&str), warn: &mut dyn FnMut(&str)) {
    for dir in &plan.dirs {
        if let Err(e) = std::fs::create_dir_all(dir) {
            warn(&format!("cannot create {}: {e}", dir.display()));
        }
    }
    for (path, content) in &plan.files {
        if let Err(e) = std::fs::write(path, content) {
            warn(&format!("cannot write {}: {e}", path.display()));
            return;
        }
    }
    for (k, v) in &plan.env {
        std::env::set_var(k, v);
    }
    plan.notes.iter().for_each(|n| note(n));
    plan.warnings.iter().for_each(|w| warn(w));
}

/// True when PID 1 of this container is sparkvisor (or tini/docker-init) running one command in
/// tini or pass-through mode: then that command is running (PID 1 exits with it), which is what
/// `sparkvisor health` reports as healthy when no agent serves the status socket.
pub fn pid1_runs_a_command() -> bool {
    let Ok(raw) = std::fs::read("/proc/1/cmdline") else {
        return false;
    };
    let args: Vec<std::ffi::OsString> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| std::ffi::OsString::from(String::from_utf8_lossy(a).into_owned()))
        .collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if !matches!(name, "sparkvisor" | "tini" | "docker-init") {
        return false;
    }
    crate::cli::mode::runs_a_command(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nspark:x:185:185::/home/spark:/bin/false";
    const GROUP: &str = "root:x:0:\nspark:x:185:\n";

    fn facts(uid: u32, gid: u32) -> Facts {
        Facts {
            uid,
            gid,
            env: [("SPARK_HOME", "/opt/spark")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            passwd: PASSWD.into(),
            group: GROUP.into(),
            nss_wrapper: Some("/usr/lib/x86_64-linux-gnu/libnss_wrapper.so".into()),
            scratch: Some("/tmp".into()),
            scratch_tried: vec!["/tmp".into()],
            writable: vec!["/opt/spark/work".into(), "/opt/spark/logs".into()],
            home_writable: true,
        }
    }

    #[test]
    fn unwritable_home_moves_to_scratch() {
        let mut f = facts(1000700000, 0);
        f.env.insert("HOME".into(), "/".into());
        f.home_writable = false;
        let env: BTreeMap<_, _> = plan(&f).env.into_iter().collect();
        assert_eq!(env["HOME"], "/tmp");
        f.scratch = None;
        let p = plan(&f);
        assert!(!p.env.iter().any(|(k, _)| k == "HOME"), "{p:?}");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.starts_with("HOME is not writable")),
            "{p:?}"
        );
    }

    #[test]
    fn known_uid_with_writable_dirs_changes_nothing() {
        assert_eq!(plan(&facts(185, 185)), Plan::default());
        assert_eq!(plan(&facts(0, 0)), Plan::default());
    }

    #[test]
    fn arbitrary_uid_gets_an_nss_wrapper_entry() {
        let p = plan(&facts(1000700000, 0));
        let passwd = &p.files[0];
        assert_eq!(
            passwd.0,
            PathBuf::from("/tmp/sparkvisor-nss-1000700000/passwd")
        );
        assert!(passwd.1.starts_with("root:x:0:0"));
        assert!(passwd
            .1
            .ends_with("\nspark:x:1000700000:0:anonymous uid:/tmp:/bin/false\n"));
        // gid 0 has an entry already: the group file is a plain copy.
        assert_eq!(p.files[1].1, GROUP);
        let env: BTreeMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(
            env["LD_PRELOAD"],
            "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"
        );
        assert_eq!(
            env["NSS_WRAPPER_GROUP"],
            "/tmp/sparkvisor-nss-1000700000/group"
        );
        let p = plan(&facts(4242, 4242));
        assert!(p.files[1].1.ends_with("spark:x:4242:\n"));
    }

    #[test]
    fn unusable_name_and_missing_wrapper() {
        let mut f = facts(5000, 0);
        f.env.insert("SPARK_USER_NAME".into(), "evil:0:0".into());
        assert!(plan(&f).files[0].1.contains("\nspark:x:5000:"));
        f.env.insert("SPARK_USER_NAME".into(), "alice".into());
        assert!(plan(&f).files[0].1.contains("\nalice:x:5000:"));
        f.nss_wrapper = None;
        let p = plan(&f);
        assert!(p.files.is_empty());
        assert!(p.warnings[0].contains("libnss-wrapper"), "{p:?}");
    }

    #[test]
    fn role_mode_moves_the_socket_when_run_is_not_writable() {
        let env: BTreeMap<String, String> = [("SPARK_HOME".to_string(), "/opt/spark".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            plan_role(&env, Some(Path::new("/tmp")), true),
            Plan::default()
        );
        let p = plan_role(&env, Some(Path::new("/tmp")), false);
        assert_eq!(
            p.env,
            [(
                "SPARKVISOR_SOCKET".to_string(),
                "/tmp/sparkvisor/sparkvisor.sock".to_string()
            )]
        );
        assert_eq!(plan_role(&env, None, false), Plan::default());
    }

    #[test]
    fn unwritable_spark_dirs_move_to_scratch_unless_set() {
        let mut f = facts(185, 185);
        f.writable.clear();
        let p = plan(&f);
        assert_eq!(
            p.env,
            [
                (
                    "SPARK_WORKER_DIR".to_string(),
                    "/tmp/spark/work".to_string()
                ),
                ("SPARK_LOG_DIR".to_string(), "/tmp/spark/logs".to_string())
            ]
        );
        f.env.insert("SPARK_WORKER_DIR".into(), "/data/w".into());
        assert_eq!(plan(&f).env.len(), 1);
        f.scratch = None;
        let p = plan(&f);
        assert!(p.env.is_empty());
        assert!(p.warnings[0].contains("--tmpfs /tmp"), "{p:?}");
    }
}
