//! Bounded reads of every file that comes from outside the binary: the kind of file decides the
//! size cap, and only regular files are read.
//!
//! Without this, `SPARK_RPC_AUTHENTICATION_SECRET_FILE=/dev/zero` grows PID 1 until the kernel
//! kills it, and a FIFO as any input blocks the agent forever (opening a FIFO for reading waits for
//! a writer). Here the file is opened non-blocking (a FIFO open returns at once), its type is checked
//! on the open descriptor (no race with a rename), and at most the cap plus one byte is read.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The kinds of input sparkvisor reads, each with its own size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A `<NAME>_FILE` value (a secret or a setting): 64 KiB.
    ValueFile,
    /// The cluster file (`SPARKVISOR_CONFIG`): 4 MiB.
    ClusterFile,
    /// KubeDirector's configmeta.json: 4 MiB.
    Configmeta,
    /// A role definition (YAML): 1 MiB.
    Role,
    /// A template: 1 MiB.
    Template,
    /// A cgroup or /proc file: 1 MiB.
    System,
}

impl InputKind {
    /// The most bytes a file of this kind may hold.
    pub fn limit(self) -> u64 {
        match self {
            InputKind::ValueFile => 64 << 10,
            InputKind::ClusterFile | InputKind::Configmeta => 4 << 20,
            InputKind::Role | InputKind::Template | InputKind::System => 1 << 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            InputKind::ValueFile => "a *_FILE value",
            InputKind::ClusterFile => "the cluster file",
            InputKind::Configmeta => "configmeta.json",
            InputKind::Role => "a role file",
            InputKind::Template => "a template",
            InputKind::System => "a system file",
        }
    }
}

/// Why a bounded read failed. The message names the limit; the caller adds the path.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// Not a regular file (FIFO, device, socket, directory).
    NotRegular(&'static str, InputKind),
    /// Over the kind's size cap.
    TooLarge(InputKind),
    /// Not UTF-8.
    NotUtf8,
}

impl ReadError {
    /// True for a file that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what, kind) => write!(
                f,
                "is {what}, not a regular file ({} must be a regular file)",
                kind.name()
            ),
            ReadError::TooLarge(kind) => write!(
                f,
                "is larger than the limit of {} bytes for {}",
                kind.limit(),
                kind.name()
            ),
            ReadError::NotUtf8 => write!(f, "is not valid UTF-8 text"),
        }
    }
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Opens `path` for reading without blocking on a FIFO, and checks it is a regular file.
pub fn open_regular(path: &Path, kind: InputKind) -> Result<File, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type()), kind));
    }
    if meta.len() > kind.limit() {
        return Err(ReadError::TooLarge(kind));
    }
    Ok(file)
}

/// Reads a whole text file of `kind`: a regular file, at most `kind.limit()` bytes, UTF-8.
pub fn read_text(path: impl AsRef<Path>, kind: InputKind) -> Result<String, ReadError> {
    let file = open_regular(path.as_ref(), kind)?;
    // The size may change after the check (a growing file, /proc): read at most one byte more.
    // Kernel files report a size of 0; a buffer that fits them whole means one read(2), not a
    // 32-byte probe doubling from there (see `procfs`).
    let mut bytes = Vec::with_capacity(kind.limit().min(16 * 1024) as usize);
    file.take(kind.limit() + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > kind.limit() {
        return Err(ReadError::TooLarge(kind));
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files() {
        let e = read_text("/dev/zero", InputKind::ValueFile).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 70 << 10]).unwrap();
        let e = read_text(&big, InputKind::ValueFile).unwrap_err();
        assert!(e.to_string().contains("limit of 65536 bytes"), "{e}");
        assert_eq!(
            read_text(&big, InputKind::ClusterFile).unwrap().len(),
            70 << 10
        );
        assert!(read_text(dir.path().join("none"), InputKind::Role)
            .unwrap_err()
            .is_not_found());
        assert!(read_text(dir.path(), InputKind::Role)
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }
}
