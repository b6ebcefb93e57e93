//! Guard against an image upgrade defeated by a persistent volume (docs/kubedirector.md).
//!
//! KubeDirector gives a role with storage a persistent volume and, on the member's first start,
//! copies the image's `/etc` (and, when the app has a config package, `/opt` and `/usr`) onto it;
//! afterwards those directories come from the volume, never again from the image. After an image
//! upgrade the member would run the old agent binary (`/usr/local/bin`), the old roles and templates
//! (`/etc/sparkvisor`), the old config package and Spark (`/opt`) — silently.
//!
//! The image build writes one random id into `/var/lib/sparkvisor/image-id` (a directory no
//! platform persists) and the same id into `image-id` under each persisted tree. At start the agent
//! compares them: a tree whose id is missing or different hides the image's files behind an older
//! copy, and the agent exits 78 naming it, before anything starts or is written. An image without
//! the reference id (a build from another Dockerfile, the host in tests) is not checked.

use std::path::Path;

use crate::error::{Diagnostic, Diagnostics};

/// The reference id, relative to the root: in a directory no platform persists.
pub const REFERENCE: &str = "var/lib/sparkvisor/image-id";

/// The copies, one per tree KubeDirector may persist: (id file, the tree it stands for).
pub const COPIES: &[(&str, &str)] = &[
    ("etc/sparkvisor/image-id", "/etc"),
    ("opt/sparkvisor/image-id", "/opt"),
    ("usr/local/lib/sparkvisor/image-id", "/usr"),
];

/// Checks the copies under `root` (`/` in a container) against the reference id.
pub fn check(root: &Path) -> Result<(), Diagnostics> {
    let read = |rel: &str| {
        std::fs::read_to_string(root.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let Some(reference) = read(REFERENCE) else {
        return Ok(());
    };
    let mut problems = Diagnostics::default();
    for (rel, tree) in COPIES {
        let found = read(rel);
        if found.as_deref() == Some(reference.as_str()) {
            continue;
        }
        let what = match &found {
            Some(id) => format!("image id {id}"),
            None => "no image id".to_string(),
        };
        problems.push(Diagnostic::new(
            format!("/{rel}"),
            format!(
                "{tree} holds files of another image ({what}; this image is {reference}): a \
                 persistent volume mounted over {tree} (KubeDirector persists /etc, /opt and /usr \
                 of a role with storage) keeps the old sparkvisor binary, roles, templates or Spark \
                 after an image upgrade. Recreate the member's volume, or give the role no storage \
                 (docs/kubedirector.md)"
            ),
        ));
    }
    problems.into_result(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(ids: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, id) in ids {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{id}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn no_reference_means_no_check() {
        let dir = tree(&[("etc/sparkvisor/image-id", "old")]);
        assert!(check(dir.path()).is_ok());
    }

    #[test]
    fn matching_copies_pass() {
        let mut ids = vec![(REFERENCE, "new")];
        ids.extend(COPIES.iter().map(|(rel, _)| (*rel, "new")));
        assert!(check(tree(&ids).path()).is_ok());
    }

    #[test]
    fn a_stale_or_missing_copy_is_named() {
        let dir = tree(&[
            (REFERENCE, "new"),
            ("etc/sparkvisor/image-id", "new"),
            ("opt/sparkvisor/image-id", "old"),
        ]);
        let problems = check(dir.path()).unwrap_err();
        let text = problems.to_string();
        assert_eq!(problems.0.len(), 2, "{text}");
        assert!(
            text.contains("/opt holds files of another image (image id old"),
            "{text}"
        );
        assert!(
            text.contains("/usr holds files of another image (no image id"),
            "{text}"
        );
    }
}
