//! Writing rendered files: atomically (temp file in the same directory, then rename), with mode
//! and owner; a destination the user mounted over is left alone and reported.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::RenderedFile;

/// What [`write_files`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files written (final paths, re-rooted when a root was given).
    pub written: Vec<PathBuf>,
    /// Destinations that are mount points (a file the user bind-mounted over ours): not touched.
    pub left_alone: Vec<PathBuf>,
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A directory on the way is a symbolic link the agent must not follow.
    #[error("{path}: refused: {link} is a symbolic link (owned by uid {owner}) that could redirect this write; replace it with a directory or a link owned by root")]
    Link {
        /// The destination.
        path: PathBuf,
        /// The link on its way.
        link: PathBuf,
        /// The link's owner.
        owner: u32,
    },
    /// A file's owner could not be resolved.
    #[error("{path}: owner {owner:?}: {reason}")]
    Owner {
        /// The file.
        path: PathBuf,
        /// The owner as written.
        owner: String,
        /// Why it could not be used.
        reason: String,
    },
}

/// Writes every file atomically with its mode and owner. With `root` (`render --out DIR`) each path
/// is re-rooted under it and ownership is not changed (a preview owned by whoever ran it).
/// Destinations that are mount points are left alone and listed in the report.
pub fn write_files(
    files: &[RenderedFile],
    root: Option<&Path>,
) -> Result<WriteReport, RenderError> {
    let mounts = mount_points();
    let mut report = WriteReport::default();
    for file in files {
        let dest = destination(&file.path, root);
        if let Some((link, owner)) =
            super::paths::untrusted_link(&dest, root, crate::sys::peercred::effective_uid())
        {
            return Err(RenderError::Link {
                path: dest,
                link,
                owner,
            });
        }
        if is_mount_point(&dest, &mounts) {
            report.left_alone.push(dest);
            continue;
        }
        let owner = match (&file.owner, root) {
            (Some(owner), None) => {
                Some(resolve_owner(owner).map_err(|reason| RenderError::Owner {
                    path: dest.clone(),
                    owner: owner.clone(),
                    reason,
                })?)
            }
            _ => None,
        };
        write_atomically(&dest, file.contents.as_bytes(), file.mode, owner)?;
        report.written.push(dest);
    }
    Ok(report)
}

/// Where `path` is written: itself, or re-rooted under `root` (`render --out`); normalised either
/// way, so a preview names exactly the path `run` writes.
pub fn destination(path: &Path, root: Option<&Path>) -> PathBuf {
    match root {
        Some(root) => super::paths::reroot(root, path),
        None => super::paths::normalize(path),
    }
}

fn write_atomically(
    dest: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(Option<u32>, Option<u32>)>,
) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(".{name}.sparkvisor-{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        // The mode given to open() is masked by the umask; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io(&tmp))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, uid, gid).map_err(io(&tmp))?;
        }
        f.write_all(contents).map_err(io(&tmp))?;
        // No fsync: the rename already makes the switch atomic for readers, and every start renders
        // the files again, so surviving a power loss buys nothing, while an fsync costs 2-15 ms per
        // file (the whole start budget is 5 ms).
        fs::rename(&tmp, dest).map_err(io(dest))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `uid[:gid]` or `user[:group]`, names looked up in /etc/passwd and /etc/group (`users`).
fn resolve_owner(owner: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let ids = crate::users::resolve_user(owner, None, None, &crate::users::UserDb::system())?;
    Ok((Some(ids.uid), Some(ids.gid)))
}

/// Mount points from /proc/self/mountinfo (none when it cannot be read).
fn mount_points() -> Vec<PathBuf> {
    crate::mountinfo::parse(&crate::mountinfo::read_self())
        .into_iter()
        .map(|m| m.mount_point)
        .collect()
}

fn is_mount_point(dest: &Path, mounts: &[PathBuf]) -> bool {
    let real = dest.canonicalize().ok();
    mounts
        .iter()
        .any(|m| m == dest || real.as_deref() == Some(m.as_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_owner() {
        assert_eq!(resolve_owner("4321:4322"), Ok((Some(4321), Some(4322))));
        assert!(resolve_owner("no-such-user-x").is_err());
    }
}
