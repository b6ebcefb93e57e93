//! Directories a role needs before its services start and that Spark does not create itself.
//!
//! Today that is the event log directory: a driver with `spark.eventLog.enabled` fails when
//! `spark.eventLog.dir` is missing, and the history server exits when its `logDirectory` is
//! missing. Both default to `spark.event_log_dir` (`/data/spark/events` when `/data` is a mount
//! point), so sparkvisor creates it on every start, as Spark's security guide recommends for a
//! shared event log directory: owned by the service user (`spark.user`), mode 1777 (any driver user
//! may add logs; the sticky bit keeps them from removing each other's). An existing directory is
//! left exactly as it is (the user's choice of owner and mode wins).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::ResolvedConfig;
use crate::error::Fatal;

/// Mode of a directory created here: world-writable with the sticky bit (see the module doc).
const SHARED_DIR_MODE: u32 = 0o1777;

/// The local directories to prepare: `spark.event_log_dir` and a `file:` `history.log_dir`.
pub fn wanted(config: &ResolvedConfig) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let setting = |key: &str| config.settings.get(key).map(|v| v.value.as_str());
    if let Some(dir) = setting("spark.event_log_dir") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = setting("history.log_dir").and_then(local_path) {
        if !dirs.contains(&path) {
            dirs.push(path);
        }
    }
    dirs
}

/// The local path of a `file:` URI or plain absolute path (`None` for hdfs:, s3a:, ...).
fn local_path(uri: &str) -> Option<PathBuf> {
    let path = match uri.strip_prefix("file:") {
        // file:///x and file:/x are the same path; file://host/x names another host.
        Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
        None if uri.starts_with('/') => uri,
        None => return None,
    };
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// Creates every [`wanted`] directory that is missing, owned by `owner` (uid, gid) when the agent
/// may change owners (as root); an agent that is not root owns what it creates anyway.
pub fn prepare(config: &ResolvedConfig, owner: Option<(u32, u32)>) -> Result<(), Fatal> {
    for dir in wanted(config) {
        create(&dir, owner).map_err(|source| Fatal::Sys {
            context: format!("creating {}", dir.display()),
            source,
        })?;
    }
    Ok(())
}

fn create(dir: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // Missing parents (e.g. /data/spark on a fresh volume) are the service user's too, or Spark
    // could not create its work and local directories next to ours.
    let missing: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    for parent in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o755).create(parent) {
            Ok(()) => chown(parent, owner)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    match std::fs::DirBuilder::new().mode(SHARED_DIR_MODE).create(dir) {
        Ok(()) => {}
        // Another container sharing the volume made it in between: theirs is as good as ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    // The mode given to mkdir is masked by the umask; set it exactly.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SHARED_DIR_MODE))?;
    chown(dir, owner)?;
    log::info!("created {} (mode 1777)", dir.display());
    Ok(())
}

/// Gives a directory the agent just created to `owner`, when the agent may (as root).
fn chown(dir: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    match std::os::unix::fs::chown(dir, Some(uid), Some(gid)) {
        Ok(()) => Ok(()),
        // Not root: the directory is the agent's own, which is the service user's too.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            log::debug!("{}: not changing its owner: {e}", dir.display());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn local_paths() {
        assert_eq!(local_path("file:/data/e"), Some(PathBuf::from("/data/e")));
        assert_eq!(local_path("file:///data/e"), Some(PathBuf::from("/data/e")));
        assert_eq!(local_path("/data/e"), Some(PathBuf::from("/data/e")));
        assert_eq!(local_path("hdfs://nn/e"), None);
        assert_eq!(local_path("s3a://b/e"), None);
        assert_eq!(local_path("file://host/e"), None);
    }

    #[test]
    fn creates_sticky_world_writable_and_leaves_existing_alone() {
        let root = std::env::temp_dir().join(format!("sv-datadirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("a/events");
        create(&dir, None).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1777);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        create(&dir, None).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "an existing directory keeps its mode");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
