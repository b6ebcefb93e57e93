//! Who may hold the status socket's path, and whose answers the CLI believes.
//!
//! In a directory others can write, another user can bind the socket path before the agent: the
//! agent then runs without a socket and root's CLI reads forged answers (`health` says healthy).
//! So the agent creates the socket's directory itself (0755) and refuses one that is a symbolic
//! link, owned by a uid other than root or its own, or writable by group or others; and the CLI
//! believes only a peer (`SO_PEERCRED`) that is root, itself, or the owner of that safe directory.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `dir` is not safe to hold the socket for an agent running as `agent_uid`, if it is not.
pub fn unsafe_dir(dir: &Path, agent_uid: u32) -> Option<String> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot inspect it: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Some("it is not a directory".into());
    }
    if meta.uid() != 0 && meta.uid() != agent_uid {
        return Some(format!(
            "it is owned by uid {}, neither root nor the agent's uid {agent_uid}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is writable by {} (mode {:04o}): another user could bind the socket path first",
            if meta.mode() & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            meta.mode() & 0o7777
        ));
    }
    None
}

/// A root agent makes the image's socket directory its own (root, 0755) when the image gave it to the
/// service user (`/run/sparkvisor` belongs to `spark` so that a non-root agent can listen there).
/// This runs at start, before any service exists, so no service can race it; a symbolic link is
/// never followed or changed (it stays unsafe and is refused by [`unsafe_dir`]).
pub fn take_over_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() || (meta.uid() == 0 && meta.mode() & 0o022 == 0) {
        return;
    }
    let owned = std::os::unix::fs::lchown(dir, Some(0), Some(0));
    let moded = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    match owned.and(moded) {
        Ok(()) => log::info!(
            "status socket directory {}: was uid {} mode {:04o}, now root's (0755)",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ),
        Err(e) => log::warn!("cannot take over {}: {e}", dir.display()),
    }
}

/// True when the CLI (running as `me`) may believe an answer from a peer with uid `peer` on the
/// socket at `socket`: root, itself, or the owner of the socket's directory when that directory is
/// safe (a non-root agent's own directory).
pub fn trusted_peer(socket: &Path, peer: u32, me: u32) -> bool {
    if peer == 0 || peer == me {
        return true;
    }
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return false;
    };
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.uid() == peer) && unsafe_dir(dir, peer).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn unsafe_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(dir.path()).unwrap().uid();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(unsafe_dir(dir.path(), me), None);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(unsafe_dir(dir.path(), me).unwrap().contains("everyone"));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(unsafe_dir(&link, me).unwrap().contains("symbolic link"));
        assert!(trusted_peer(&dir.path().join("s"), 0, 4242));
        assert!(!trusted_peer(&dir.path().join("s"), 4243, 4242));
    }

    /// The image's `/run/sparkvisor` (spark's, group-writable before) becomes root's when a root
    /// agent starts; a symbolic link is left alone (and still refused).
    #[test]
    fn a_root_agent_takes_over_the_directory() {
        if nix_is_root() {
            let dir = tempfile::tempdir().unwrap();
            std::os::unix::fs::lchown(dir.path(), Some(185), Some(0)).unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
            assert!(unsafe_dir(dir.path(), 0).is_some());
            take_over_dir(dir.path());
            let meta = std::fs::metadata(dir.path()).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o755));
            assert_eq!(unsafe_dir(dir.path(), 0), None);
            let link = dir.path().join("l");
            std::os::unix::fs::symlink("/tmp", &link).unwrap();
            take_over_dir(&link);
            assert!(unsafe_dir(&link, 0).unwrap().contains("symbolic link"));
        }
    }

    fn nix_is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }
}
