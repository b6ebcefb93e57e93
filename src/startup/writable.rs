//! Whether a directory can be written, and the scratch directory (`$TMPDIR`, else `/tmp`) that
//! takes what cannot go where the image put it (a read-only root filesystem, an arbitrary uid).
//! A leaf module: the drop-in preparation and the access add-ons both ask it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// True when `dir` exists (or can be created) and a file can be created in it.
pub fn is_writable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".sparkvisor-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// The writable scratch directory: `$TMPDIR`, else `/tmp`, with the ones tried.
pub fn scratch_dir(env: &BTreeMap<String, String>) -> (Option<PathBuf>, Vec<PathBuf>) {
    let mut tried: Vec<PathBuf> = Vec::new();
    if let Some(t) = env.get("TMPDIR").filter(|t| !t.is_empty()) {
        tried.push(PathBuf::from(t));
    }
    tried.push(PathBuf::from("/tmp"));
    let found = tried.iter().find(|d| is_writable(d)).cloned();
    (found, tried)
}
