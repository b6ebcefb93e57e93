//! Waiting for a file to appear or be rewritten, with inotify instead of polling.
//!
//! A [`FileWatcher`] watches the file's directory (a file's own watch would be lost when it is
//! replaced by a rename, which is how files are written atomically, KubeDirector's configmeta.json
//! included) and reports the file written and closed (`IN_CLOSE_WRITE`) or renamed into place
//! (`IN_MOVED_TO`): a file created but not yet closed is not reported (its writer's close is). When
//! the directory does not exist yet, it watches the nearest ancestor that does (`IN_CREATE`) and
//! moves down as the directories appear.
//!
//! Its descriptor is non-blocking and close-on-exec, so an event loop can poll it
//! ([`AsFd`]) and call [`FileWatcher::take_changes`]; [`wait_until`] is the bounded wait used before
//! anything starts (configmeta.json written after the container starts); [`watch_files`] is a thread
//! that reports rewrites of a few files (the supervisor's reload on a rewritten configmeta.json).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// Watches one file for creation and rewrites through its directory.
#[derive(Debug)]
pub struct FileWatcher {
    inotify: Inotify,
    /// The watched file.
    path: PathBuf,
    /// The directory watched now (the file's own, or its nearest existing ancestor) and its watch.
    watched: Option<(PathBuf, WatchDescriptor)>,
}

/// What a directory is watched for: a file created, renamed into it, or written and closed.
fn watch_flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ONLYDIR
}

impl FileWatcher {
    /// Starts watching `path` (which need not exist, nor its directory). Create the watcher before
    /// checking the file, so a change between the check and the wait is not missed.
    pub fn new(path: &Path) -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let mut watcher = Self {
            inotify,
            path: path.to_path_buf(),
            watched: None,
        };
        watcher.arm()?;
        Ok(watcher)
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the pending events without blocking. True when one may concern the file: it was
    /// created, renamed into place or rewritten, or (while its directory is missing) a directory
    /// on the way to it appeared, in which case the watch moves down to it.
    pub fn take_changes(&mut self) -> io::Result<bool> {
        let mut changed = false;
        let mut rearm = false;
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The watched directory was removed: watch an ancestor until it comes back.
                    rearm = true;
                    continue;
                }
                let written = event
                    .mask
                    .intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO);
                if self.concerns_the_file(event.name.as_ref()) {
                    changed |= written;
                } else if self.is_an_ancestor_watch() {
                    rearm = true;
                }
            }
        }
        if rearm {
            self.arm()?;
            // The file may have been created together with its directory (`mkdir -p`, then write).
            changed |= self.path.exists();
        }
        Ok(changed)
    }

    /// Blocks until [`Self::take_changes`] reports a change (true) or `deadline` passes (false);
    /// `None` waits without limit.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        loop {
            if self.take_changes()? {
                return Ok(true);
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    Some(left)
                }
            };
            // A stop (TERM/INT) ends the wait with `Interrupted` (see `super::interrupt`).
            super::interrupt::wait_readable(self.inotify.as_fd(), timeout)?;
        }
    }

    fn concerns_the_file(&self, name: Option<&OsString>) -> bool {
        let Some((dir, _)) = &self.watched else {
            return false;
        };
        Some(dir.as_path()) == self.path.parent()
            && name.map(OsString::as_os_str) == self.path.file_name()
    }

    fn is_an_ancestor_watch(&self) -> bool {
        self.watched
            .as_ref()
            .is_some_and(|(dir, _)| Some(dir.as_path()) != self.path.parent())
    }

    /// Watches the file's directory, or its nearest existing ancestor.
    fn arm(&mut self) -> io::Result<()> {
        let directory = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for dir in directory.ancestors() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if self.watched.as_ref().is_some_and(|(d, _)| d == dir) {
                return Ok(());
            }
            match self.inotify.add_watch(dir, watch_flags()) {
                Ok(wd) => {
                    if let Some((_, old)) = self.watched.replace((dir.to_path_buf(), wd)) {
                        // Gone already when its directory was removed; either way it is no longer needed.
                        let _ = self.inotify.rm_watch(old);
                    }
                    return Ok(());
                }
                Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => {}
                Err(e) => return Err(io::Error::other(format!("{}: {e}", dir.display()))),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no directory on its path to watch", self.path.display()),
        ))
    }
}

impl AsFd for FileWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}

/// Waits until `ready()` holds for `path`, re-checking it whenever the file is created, renamed into
/// place or rewritten, until `deadline`. Returns whether it became ready. `ready` is called once
/// first, so a file already there returns at once.
pub fn wait_until(
    path: &Path,
    deadline: Instant,
    mut ready: impl FnMut() -> bool,
) -> io::Result<bool> {
    let mut watcher = FileWatcher::new(path)?;
    loop {
        if ready() {
            return Ok(true);
        }
        if !watcher.wait(Some(deadline))? {
            // One last look: the deadline may have passed just as the file arrived.
            return Ok(ready());
        }
    }
}

/// Waits until `path` exists (written and closed, or renamed into place, by whoever creates it), at
/// most until `deadline`. Returns whether it does.
pub fn wait_for_file(path: &Path, deadline: Instant) -> io::Result<bool> {
    wait_until(path, deadline, || path.exists())
}

/// Watches `files` from one thread and calls `on_change(file)` after each write-close or rename onto
/// one of them; the thread ends when `on_change` returns false. When inotify fails (or the thread
/// panics) `on_death` gets the reason (see [`super::thread::spawn_critical`]). A file whose
/// directory does not exist yet is watched through its nearest existing ancestor. `Ok(None)` when
/// `files` is empty.
pub fn watch_files(
    files: &[PathBuf],
    mut on_change: impl FnMut(&Path) -> bool + Send + 'static,
    on_death: impl FnOnce(String) + Send + 'static,
) -> io::Result<Option<JoinHandle<()>>> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut watchers = files
        .iter()
        .map(|file| FileWatcher::new(file))
        .collect::<io::Result<Vec<_>>>()?;
    super::thread::spawn_critical(
        "watcher",
        "watch".into(),
        Some(64 * 1024),
        super::thread::Lifetime::Agent,
        on_death,
        move || loop {
            let fds: Vec<_> = watchers.iter().map(|w| w.as_fd()).collect();
            super::poll::wait_readable(&fds, None)
                .map_err(|e| format!("waiting for inotify events: {e}"))?;
            drop(fds);
            for watcher in &mut watchers {
                let changed = watcher.take_changes().map_err(|e| {
                    format!(
                        "reading inotify events for {}: {e}",
                        watcher.path().display()
                    )
                })?;
                if changed && !on_change(watcher.path()) {
                    return Ok(());
                }
            }
        },
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(20)
    }

    #[test]
    fn a_file_already_there_is_ready_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(wait_for_file(&file, Instant::now()).unwrap());
    }

    #[test]
    fn a_missing_file_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        assert!(!wait_for_file(&dir.path().join("never"), deadline).unwrap());
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn sees_a_file_created_in_a_directory_that_did_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/configmeta.json");
        let mut watcher = FileWatcher::new(&file).unwrap();
        assert!(!watcher.take_changes().unwrap());
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, "{}").unwrap();
            })
        };
        assert!(watcher.wait(Some(soon())).unwrap());
        writer.join().unwrap();
        assert!(wait_for_file(&file, soon()).unwrap());
    }

    #[test]
    fn reports_a_rename_into_place_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("configmeta.json");
        std::fs::write(&file, "old").unwrap();
        let mut watcher = FileWatcher::new(&file).unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        assert!(!watcher.take_changes().unwrap());
        let temp = dir.path().join(".configmeta.json.tmp");
        std::fs::write(&temp, "new").unwrap();
        assert!(!watcher.take_changes().unwrap());
        std::fs::rename(&temp, &file).unwrap();
        assert!(watcher.take_changes().unwrap());
        // An in-place rewrite (write and close) is a change too.
        std::fs::write(&file, "newer").unwrap();
        assert!(watcher.take_changes().unwrap());
        assert!(!watcher.take_changes().unwrap());
    }

    #[test]
    fn watch_files_reports_rewrites_and_renames_of_the_watched_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("configmeta.json");
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = watch_files(
            &[file.clone(), PathBuf::from("/nonexistent/dir/x")],
            move |p| tx.send(p.to_path_buf()).is_ok(),
            |_| {},
        )
        .unwrap()
        .unwrap();
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        std::fs::write(&file, "{}").unwrap();
        let timeout = Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(timeout).unwrap(), file);
        let tmp = dir.path().join("tmp");
        std::fs::write(&tmp, "{\"a\":1}").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(rx.recv_timeout(timeout).unwrap(), file);
        assert!(rx.try_recv().is_err(), "events for other files");
        // on_change returning false (the receiver is gone) ends the thread.
        drop(rx);
        std::fs::write(&file, "{}").unwrap();
        handle.join().unwrap();
        assert!(watch_files(&[], |_| true, |_| {}).unwrap().is_none());
    }

    #[test]
    fn wait_until_rechecks_on_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("meta");
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                std::fs::write(&file, "partial").unwrap();
                std::fs::write(&file, "complete").unwrap();
            })
        };
        let deadline = soon();
        let complete = wait_until(&file, deadline, || {
            std::fs::read_to_string(&file).is_ok_and(|t| t == "complete")
        })
        .unwrap();
        writer.join().unwrap();
        assert!(complete);
        // Woken by the write, not by the deadline's last look.
        assert!(Instant::now() < deadline);
    }
}
