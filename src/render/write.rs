//! Writing rendered files: atomically as a set, with mode and owner; a destination the user
//! mounted over is left alone and reported.
//!
//! Every file is first written in full to a temporary file beside its destination; only when all
//! of them are written are they renamed into place, one after the other. A failure while writing
//! (a full disk, a read-only directory) removes the temporary files and leaves every destination
//! as it was, so a failed reload never leaves the files half new, half old. Renames within one
//! directory do not fail for lack of space; should one fail anyway, the files renamed before it are
//! put back from copies of their previous contents taken before the switch.

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
    /// The destination cannot be a file (a directory is there, a parent is a file, no file name).
    #[error("{path}: cannot write a rendered file here: {why}")]
    Dest {
        /// The destination.
        path: PathBuf,
        /// What is in the way.
        why: String,
    },
    /// A file's owner could not be resolved.
    #[error("{path}: owner {owner:?}: {reason}")]
    Owner {
        /// The file.
        path: PathBuf,
        /// The owner as written.
        owner: String,
        /// Why it could not be used.
        reason: crate::sys::users::UserError,
    },
}

/// One file as it will be written: where, with which owner, or left alone (a mount point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The final path (normalised, re-rooted under `render --out`).
    pub dest: PathBuf,
    /// `(uid, gid)` to give the file; None keeps the writer's own.
    pub owner: Option<(Option<u32>, Option<u32>)>,
    /// A mount point (a file the user bound over ours): not touched.
    pub left_alone: bool,
}

/// Where and how every file would be written, checked without writing anything: the one place
/// `run`, `render --out` and `check` resolve destinations, so `check` refuses exactly the paths
/// `run` would fail on (a planted link on the way, an owner that does not exist, a destination
/// that is a directory or whose parent is a file, two entries writing the same file).
pub fn plan(files: &[RenderedFile], root: Option<&Path>) -> Result<Vec<Planned>, RenderError> {
    let mounts = mount_points();
    // A non-root agent runs every service as itself (docs/kubernetes.md), so the files it writes
    // already belong to the services' user; it could not give them away anyway.
    let agent_is_root = crate::sys::process::current_ids().0 == 0;
    let mut planned: Vec<Planned> = Vec::new();
    for file in files {
        let dest = destination(&file.path, root);
        if planned.iter().any(|p| p.dest == dest) {
            return Err(RenderError::Dest {
                path: dest,
                why: "written by two `render` entries (after `..` is applied)".into(),
            });
        }
        if let Some((link, owner)) =
            super::paths::untrusted_link(&dest, root, crate::sys::peercred::effective_uid())
        {
            return Err(RenderError::Link {
                path: dest,
                link,
                owner,
            });
        }
        let left_alone = is_mount_point(&dest, &mounts);
        if let Some(why) = (!left_alone)
            .then(|| super::paths::not_a_file_path(&dest))
            .flatten()
        {
            return Err(RenderError::Dest { path: dest, why });
        }
        let owner = match (&file.owner, root) {
            (Some(owner), None) if agent_is_root && !left_alone => match resolve_owner(owner) {
                Ok(ids) => Some(ids),
                Err(reason) => {
                    return Err(RenderError::Owner {
                        path: dest,
                        owner: owner.clone(),
                        reason,
                    })
                }
            },
            _ => None,
        };
        planned.push(Planned {
            dest,
            owner,
            left_alone,
        });
    }
    Ok(planned)
}

/// Writes every file atomically with its mode and owner. With `root` (`render --out DIR`) each path
/// is re-rooted under it and ownership is not changed (a preview owned by whoever ran it).
/// Destinations that are mount points are left alone and listed in the report. Nothing is written
/// unless [`plan`] accepts every file.
pub fn write_files(
    files: &[RenderedFile],
    root: Option<&Path>,
) -> Result<WriteReport, RenderError> {
    let planned = plan(files, root)?;
    let mut report = WriteReport::default();
    // (temporary file, destination) of every file written so far, switched in together at the end.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (file, p) in files.iter().zip(planned) {
        if p.left_alone {
            report.left_alone.push(p.dest);
            continue;
        }
        match stage(&p.dest, file.contents.as_bytes(), file.mode, p.owner) {
            Ok(tmp) => staged.push((tmp, p.dest)),
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        }
    }
    switch(&staged)?;
    report.written = staged.into_iter().map(|(_, dest)| dest).collect();
    Ok(report)
}

/// Removes staged temporary files (the destinations are untouched).
fn discard(staged: &[(PathBuf, PathBuf)]) {
    for (tmp, _) in staged {
        let _ = fs::remove_file(tmp);
    }
}

/// Renames every staged file into place. Each previous file is first kept under a second name (a
/// hard link: same inode, mode and owner); when a rename fails, the destinations already switched
/// get their previous file back (or are removed when there was none) and what is left staged is
/// removed.
fn switch(staged: &[(PathBuf, PathBuf)]) -> Result<(), RenderError> {
    let backups: Vec<Option<PathBuf>> = staged
        .iter()
        .map(|(tmp, dest)| {
            let backup = tmp.with_extension("old");
            let _ = fs::remove_file(&backup);
            fs::hard_link(dest, &backup).ok().map(|()| backup)
        })
        .collect();
    let mut result = Ok(());
    for (i, (tmp, dest)) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(tmp, dest) {
            for ((_, done), backup) in staged.iter().zip(&backups).take(i) {
                let restored = match backup {
                    Some(backup) => fs::rename(backup, done),
                    None => fs::remove_file(done),
                };
                if let Err(e) = restored {
                    log::error!("{}: cannot restore the previous file: {e}", done.display());
                }
            }
            discard(staged.get(i..).unwrap_or_default());
            result = Err(RenderError::Io {
                path: dest.clone(),
                source,
            });
            break;
        }
    }
    for backup in backups.iter().flatten() {
        let _ = fs::remove_file(backup);
    }
    result
}

/// Where `path` is written: itself, or re-rooted under `root` (`render --out`); normalised either
/// way, so a preview names exactly the path `run` writes.
pub fn destination(path: &Path, root: Option<&Path>) -> PathBuf {
    match root {
        Some(root) => super::paths::reroot(root, path),
        None => super::paths::normalize(path),
    }
}

/// Writes `contents` to a temporary file beside `dest` (same directory, so the rename that puts it
/// in place is atomic) with its mode and owner; returns the temporary file's path.
fn stage(
    dest: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(Option<u32>, Option<u32>)>,
) -> Result<PathBuf, RenderError> {
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
        // No fsync: the rename already makes the switch atomic for readers, and every start renders
        // the files again, so surviving a power loss buys nothing, while an fsync costs 2-15 ms per
        // file (the whole start budget is 5 ms).
        f.write_all(contents).map_err(io(&tmp))
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `uid[:gid]` or `user[:group]`, names looked up in /etc/passwd and /etc/group (`users`).
fn resolve_owner(owner: &str) -> Result<(Option<u32>, Option<u32>), crate::sys::users::UserError> {
    let ids =
        crate::sys::users::resolve_user(owner, None, None, &crate::sys::users::UserDb::system())?;
    Ok((Some(ids.uid), Some(ids.gid)))
}

/// Mount points from /proc/self/mountinfo (none when it cannot be read).
pub fn mount_points() -> Vec<PathBuf> {
    crate::sys::mountinfo::parse(&crate::sys::mountinfo::read_self())
        .into_iter()
        .map(|m| m.mount_point)
        .collect()
}

/// True when `dest` (or the file it resolves to) is one of `mounts`.
pub fn is_mount_point(dest: &Path, mounts: &[PathBuf]) -> bool {
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
