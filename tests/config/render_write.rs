#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Writing rendered files: exact modes, owners, atomic replacement, and files the user mounted over
//! left alone.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{has_command, is_root, require, require_root};
use sparkvisor::render::{write_files, RenderError, RenderedFile};

fn file(path: &Path, contents: &str, mode: u32, owner: Option<&str>) -> RenderedFile {
    RenderedFile {
        path: path.to_path_buf(),
        mode,
        owner: owner.map(str::to_string),
        contents: contents.to_string(),
        secret: mode == 0o600,
        template: "test".into(),
        merge: None,
    }
}

#[test]
fn modes_are_exact_and_replacement_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf/nested/spark-defaults.conf");
    let env = dir.path().join("conf/spark-env.sh");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "old contents\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o666)).unwrap();
    let report = write_files(
        &[
            file(&conf, "spark.authenticate.secret x\n", 0o600, None),
            file(&env, "A='b'\n", 0o640, None),
        ],
        None,
    )
    .unwrap();
    assert_eq!(report.written, vec![conf.clone(), env.clone()]);
    assert!(report.left_alone.is_empty());
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "spark.authenticate.secret x\n"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&conf), 0o600);
    assert_eq!(mode(&env), 0o640);
    // No temp file is left behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(conf.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &conf)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    // The destination is a non-empty directory: the rename must fail.
    let dest = dir.path().join("spark-env.sh");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep"), "x").unwrap();
    let err = write_files(&[file(&dest, "A=1\n", 0o644, None)], None).unwrap_err();
    assert!(
        matches!(err, RenderError::Dest { ref path, .. } if path == &dest),
        "{err}"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["spark-env.sh".to_string()]);
    assert_eq!(std::fs::read_to_string(dest.join("keep")).unwrap(), "x");
}

#[test]
fn owners_by_number_and_name() {
    if !require_root("chown") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("b.conf");
    write_files(
        &[
            file(&a, "a\n", 0o600, Some("4321:4322")),
            file(&b, "b\n", 0o600, Some("nobody")),
        ],
        None,
    )
    .unwrap();
    let meta = std::fs::metadata(&a).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
    let nobody = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .map(|l| l.split(':').nth(2).unwrap().parse::<u32>().unwrap())
        .unwrap();
    assert_eq!(std::fs::metadata(&b).unwrap().uid(), nobody);
    let err = write_files(&[file(&a, "a\n", 0o600, Some("no-such-user-x"))], None).unwrap_err();
    assert!(matches!(err, RenderError::Owner { .. }), "{err}");
}

#[test]
fn a_file_mounted_over_ours_is_left_alone() {
    if !require_root("bind mounts") {
        return;
    }
    if !require(has_command("unshare"), "unshare not found") {
        return;
    }
    let repo = common::repo();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let conf = out.join("opt/spark/conf");
    std::fs::create_dir_all(&conf).unwrap();
    let mine = dir.path().join("my-spark-env.sh");
    std::fs::write(&mine, "# the user's own\n").unwrap();
    std::fs::write(conf.join("spark-env.sh"), "").unwrap();
    // In a private mount namespace: bind the user's file over the destination, then render.
    let script = r#"mount --bind "$1" "$2" && "$3" render --role master --out "$4" && cat "$2""#;
    let result = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&mine)
        .arg(conf.join("spark-env.sh"))
        .arg(common::bin())
        .arg(&out)
        .env("SPARKVISOR_ROLES", repo.join("roles"))
        .env("SPARKVISOR_TEMPLATES", repo.join("templates"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "left alone {}",
            conf.join("spark-env.sh").display()
        )),
        "{stdout}"
    );
    assert!(stdout.ends_with("# the user's own\n"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "# the user's own\n"
    );
    // The other files were written.
    assert!(conf.join("spark-defaults.conf").is_file());
    assert!(conf.join("log4j2.properties").is_file());
}

/// A file set whose second file cannot be written (its directory cannot be created, or is
/// read-only for a non-root writer) leaves the first destination as it was: the set is written
/// aside and switched in only when every file is written, and nothing temporary is left behind.
#[test]
fn a_set_that_fails_half_way_leaves_every_old_file_intact() {
    let dir = common::TempDir::new("render-write-set");
    let conf = dir.0.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let first = conf.join("spark-defaults.conf");
    std::fs::write(&first, "old = 1\n").unwrap();
    // The second file's directory is a regular file: no writer, root included, can create it.
    let blocked = dir.0.join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let set = [
        file(&first, "new = 2\n", 0o644, None),
        file(&blocked.join("spark-env.sh"), "X=1\n", 0o644, None),
    ];
    let err = write_files(&set, None).unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "old = 1\n");
    let left: Vec<_> = std::fs::read_dir(&conf)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("spark-defaults.conf")]);
    // A read-only directory (only binding for a writer that is not root).
    if !is_root() {
        let ro = dir.0.join("ro");
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::write(ro.join("spark-env.sh"), "OLD=1\n").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let set = [
            file(&first, "new = 2\n", 0o644, None),
            file(&ro.join("spark-env.sh"), "X=1\n", 0o644, None),
        ];
        assert!(write_files(&set, None).is_err());
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old = 1\n");
        assert_eq!(
            std::fs::read_to_string(ro.join("spark-env.sh")).unwrap(),
            "OLD=1\n"
        );
    }
    // And a set that can be written is switched in whole.
    let ok = [
        file(&first, "new = 2\n", 0o644, None),
        file(&conf.join("spark-env.sh"), "X=1\n", 0o644, None),
    ];
    write_files(&ok, None).unwrap();
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "new = 2\n");
    assert_eq!(
        std::fs::read_to_string(conf.join("spark-env.sh")).unwrap(),
        "X=1\n"
    );
    assert_eq!(
        std::fs::read_dir(&conf).unwrap().count(),
        2,
        "no temporary files left"
    );
}

/// The rename step itself failing after an earlier file of the set was switched in: the earlier
/// file gets its previous content back (same inode, mode and owner), the failing one is untouched,
/// and no temporary or backup file is left. An immutable destination (`chattr +i`) makes the
/// rename fail with EPERM even for root, while its directory still takes the temporary file.
#[test]
fn a_rename_that_fails_after_others_restores_the_switched_files() {
    if !require_root("chattr +i") || !require(has_command("chattr"), "chattr not found") {
        return;
    }
    let dir = common::TempDir::new("render-write-restore");
    let conf = dir.0.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let first = conf.join("spark-defaults.conf");
    let locked = conf.join("spark-env.sh");
    std::fs::write(&first, "old = 1\n").unwrap();
    std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(&locked, "OLD=1\n").unwrap();
    let inode = std::fs::metadata(&first).unwrap().ino();
    let chattr = |flag: &str| {
        let ok = Command::new("chattr")
            .arg(flag)
            .arg(&locked)
            .status()
            .unwrap();
        assert!(ok.success(), "chattr {flag}");
    };
    chattr("+i");
    let set = [
        file(&first, "new = 2\n", 0o644, None),
        file(&locked, "X=1\n", 0o644, None),
    ];
    let err = write_files(&set, None);
    chattr("-i");
    let err = err.unwrap_err();
    assert!(
        matches!(err, RenderError::Io { ref path, .. } if path == &locked),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "old = 1\n");
    let meta = std::fs::metadata(&first).unwrap();
    assert_eq!(meta.ino(), inode, "the previous file itself is back");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read_to_string(&locked).unwrap(), "OLD=1\n");
    let mut left: Vec<_> = std::fs::read_dir(&conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["spark-defaults.conf", "spark-env.sh"]);
}
