//! `/proc/self/mountinfo` (proc(5)): one pure parser for every reader — the cgroup mounts
//! (`resources`), mount points left alone when rendering (`render::write`) and the `/data` volume
//! check (`config::inputs`).

use std::path::{Path, PathBuf};

/// Where the kernel lists this process's mounts.
pub use crate::sys::procfs::SELF_MOUNTINFO;

/// One line of mountinfo: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE
/// SOURCE SUPER_OPTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path inside the filesystem that is mounted (field 4; `/docker/<id>` for a cgroup).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// The filesystem type (`cgroup2`, `ext4`, ...).
    pub fs_type: String,
    /// The per-superblock options, comma-separated (a v1 cgroup's controllers are among them).
    pub super_options: String,
}

/// The text of [`SELF_MOUNTINFO`], empty when it cannot be read (no /proc: nothing is mounted
/// as far as sparkvisor can tell).
pub fn read_self() -> String {
    crate::sys::procfs::self_mountinfo().to_string()
}

/// Every well-formed line of `text`, paths unescaped; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// True when `text` lists `path` as a mount point.
pub fn is_mount_point(text: &str, path: &Path) -> bool {
    parse(text).iter().any(|m| m.mount_point == path)
}

fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ').skip(3);
    let root = pre.next()?;
    let mount_point = pre.next()?;
    let mut post = post.split(' ');
    let fs_type = post.next()?;
    let super_options = post.nth(1).unwrap_or_default();
    Some(Mount {
        root: unescape(root),
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: fs_type.to_string(),
        super_options: super_options.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash in paths as `\ooo` (octal).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw\n\
                        40 35 0:33 /x /opt/spark/conf/spark\\040env.sh rw - ext4 /dev/sda rw\n\
                        41 31 0:38 /docker/abc /sys/fs/cgroup rw shared:1 - cgroup2 cgroup2 rw,nsdelegate\n\
                        garbage line without separator\n\
                        42 31 0:39 / /a\\011tab\\012nl\\134bs rw - tmpfs tmpfs rw\n";

    #[test]
    fn fields_and_optional_fields() {
        let mounts = parse(TEXT);
        assert_eq!(mounts.len(), 4, "{mounts:?}");
        assert_eq!(
            mounts[0],
            Mount {
                root: "/".into(),
                mount_point: PathBuf::from("/mnt1"),
                fs_type: "ext3".into(),
                super_options: "rw".into(),
            }
        );
        assert_eq!(mounts[2].root, "/docker/abc");
        assert_eq!(mounts[2].fs_type, "cgroup2");
        assert_eq!(mounts[2].super_options, "rw,nsdelegate");
    }

    #[test]
    fn octal_escapes_are_decoded() {
        let mounts = parse(TEXT);
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/opt/spark/conf/spark env.sh")
        );
        assert_eq!(mounts[3].mount_point, PathBuf::from("/a\ttab\nnl\\bs"));
        // A backslash not followed by three octal digits stays as it is.
        assert_eq!(unescape("a\\9bc\\04"), "a\\9bc\\04");
    }

    #[test]
    fn mount_point_lookup() {
        assert!(is_mount_point(TEXT, Path::new("/mnt1")));
        assert!(is_mount_point(
            TEXT,
            Path::new("/opt/spark/conf/spark env.sh")
        ));
        assert!(!is_mount_point(TEXT, Path::new("/data")));
        assert!(!is_mount_point("", Path::new("/")));
    }
}
