//! Role and template files must not be writable by the services they configure.
//!
//! A service that can edit its own role file (or a template, or the directory that holds them)
//! can give itself capabilities on the next reload or container restart: a `user: root`,
//! `capabilities: []` service owns root-owned files (the owner may always write and `chmod`), so it
//! could add `CAP_SETUID` to its own definition. When the agent runs as root, every role file,
//! template and their directories are checked against every service's uid and groups before
//! anything starts (and again on each reload); a file a service could change is refused, naming
//! the file and the service. A non-root agent runs every service as itself: there is nothing to
//! gain, so nothing is checked.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Diagnostics};

/// Who a service runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// The service's name.
    pub service: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid and supplementary groups.
    pub gids: Vec<u32>,
}

/// Why `meta` is writable by `w`, if it is.
fn writable_by(meta: &std::fs::Metadata, w: &Writer) -> Option<String> {
    let mode = meta.mode();
    if meta.uid() == w.uid {
        return Some(format!(
            "owned by uid {} (service {}'s uid: an owner can always write and chmod it)",
            w.uid, w.service
        ));
    }
    if mode & 0o020 != 0 && w.gids.contains(&meta.gid()) {
        return Some(format!(
            "group-writable by gid {} (a group of service {})",
            meta.gid(),
            w.service
        ));
    }
    if mode & 0o002 != 0 {
        return Some(format!(
            "writable by everyone (service {} included)",
            w.service
        ));
    }
    None
}

/// Every file and directory under `dir` (and `dir` itself), without following links out of it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

/// Checks the role files `files` (and their directories) and everything under `templates_dir`
/// against `writers`. Returns one diagnostic per file a service could change.
pub fn check_config_files(
    files: &[PathBuf],
    templates_dir: &Path,
    writers: &[Writer],
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    if writers.is_empty() {
        return diags;
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for f in files {
        if let Some(parent) = f.parent() {
            paths.push(parent.to_path_buf());
        }
        paths.push(f.clone());
    }
    walk(templates_dir, &mut paths);
    paths.sort();
    paths.dedup();
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if let Some(why) = writers.iter().find_map(|w| writable_by(&meta, w)) {
            diags.push(Diagnostic::new(
                path.display().to_string(),
                format!(
                    "refused: a service could change its own configuration (and capabilities) through this file: {why}; make it owned by another uid and not group/world-writable"
                ),
            ));
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_a_service_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let roles = dir.path().join("roles");
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&roles).unwrap();
        std::fs::create_dir_all(&templates).unwrap();
        let role = roles.join("r.yaml");
        std::fs::write(&role, "x").unwrap();
        std::fs::write(templates.join("t.sh"), "x").unwrap();
        let me = std::fs::metadata(&role).unwrap();
        let other = Writer {
            service: "s".into(),
            uid: me.uid().wrapping_add(4242),
            gids: vec![me.gid().wrapping_add(4242)],
        };
        let d = check_config_files(
            std::slice::from_ref(&role),
            &templates,
            std::slice::from_ref(&other),
        );
        assert!(d.is_empty(), "{d}");
        let owner = Writer {
            service: "s".into(),
            uid: me.uid(),
            gids: vec![],
        };
        let d = check_config_files(std::slice::from_ref(&role), &templates, &[owner]);
        assert!(d.to_string().contains("r.yaml"), "{d}");
        std::fs::set_permissions(
            templates.join("t.sh"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let d = check_config_files(&[role], &templates, &[other]);
        assert!(d.to_string().contains("t.sh: refused"), "{d}");
    }
}
