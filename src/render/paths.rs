//! Where a rendered file may be written: paths are normalised lexically (so `render --out` shows
//! exactly the path `run` writes, and `..` never climbs out of the `--out` directory), and no
//! directory on the way may be a symbolic link someone else could have planted.
//!
//! A service user who can write the conf directory's parent could replace a directory on the path
//! with a link and redirect root's next write (and its chown of a secret file) anywhere. So, walking
//! the destination's existing parents from `/` without following links, a link is accepted only
//! when owned by root or by the agent's own uid (the image's own links, such as `/var/run`), and
//! under `render --out DIR` no link below DIR is accepted at all.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// `path` with `.` dropped and `..` applied lexically (never above `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `root` + `path` normalised (see [`normalize`]): always inside `root`.
pub fn reroot(root: &Path, path: &Path) -> PathBuf {
    let normal = normalize(path);
    let mut out = root.to_path_buf();
    for c in normal.components() {
        if let Component::Normal(part) = c {
            out.push(part);
        }
    }
    out
}

/// The first parent directory of `dest` that is a symbolic link the agent must not follow, with
/// its owner: any link below `root` (`render --out`), else a link owned by neither root nor
/// `agent_uid`.
pub fn untrusted_link(dest: &Path, root: Option<&Path>, agent_uid: u32) -> Option<(PathBuf, u32)> {
    let parent = dest.parent()?;
    let mut at = PathBuf::new();
    for c in parent.components() {
        at.push(c);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            // Not there yet: created by the writer, as a real directory.
            return None;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let below_root = root.is_some_and(|r| at.starts_with(r) && at != r);
        if below_root || (meta.uid() != 0 && meta.uid() != agent_uid) {
            return Some((at, meta.uid()));
        }
    }
    None
}

/// Why no file can be written at `dest` (None when one can): it has no file name, a directory is
/// there, or the nearest existing parent is not a directory.
pub fn not_a_file_path(dest: &Path) -> Option<String> {
    if dest.file_name().is_none() {
        return Some("the path names no file".into());
    }
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Some("a directory is there".into());
    }
    let parent = dest
        .ancestors()
        .skip(1)
        .find(|a| std::fs::symlink_metadata(a).is_ok())?;
    // Links on the way were checked by [`untrusted_link`]; follow them here as the writer will.
    match std::fs::metadata(parent) {
        Ok(m) if !m.is_dir() => Some(format!("{} is not a directory", parent.display())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_and_rerooted_paths_stay_inside() {
        assert_eq!(
            normalize(Path::new("/opt/spark/conf/../x")),
            PathBuf::from("/opt/spark/x")
        );
        assert_eq!(normalize(Path::new("/../../etc")), PathBuf::from("/etc"));
        assert_eq!(
            reroot(Path::new("/out"), Path::new("/opt/../../etc/x")),
            PathBuf::from("/out/etc/x")
        );
    }

    #[test]
    fn links_below_out_or_owned_by_others_are_untrusted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::os::unix::fs::symlink("/", out.join("opt")).unwrap();
        let dest = out.join("opt/spark/conf/x");
        let (link, _) = untrusted_link(&dest, Some(&out), 0).unwrap();
        assert_eq!(link, out.join("opt"));
        // Owned by us: trusted when not under --out.
        let me = std::fs::symlink_metadata(out.join("opt")).unwrap().uid();
        assert!(untrusted_link(&dest, None, me).is_none());
        assert!(untrusted_link(&dest, None, me.wrapping_add(1)).is_some() || me == 0);
    }
}
