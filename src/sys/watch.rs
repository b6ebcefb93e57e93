//! Watching input files for rewrites with inotify: KubeDirector rewrites `configmeta.json` when the
//! cluster changes, and a mounted cluster file may be replaced. One blocking thread, woken only by
//! events in the watched directories (no polling).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// Watches `files` (their directories, so atomic renames and re-creation are seen) and calls
/// `on_change(file)` after each write-close or rename onto one of them; the thread ends when
/// `on_change` returns false or inotify fails. Files whose directory does not exist are not watched;
/// `Ok(None)` when nothing could be watched.
pub fn watch_files(
    files: &[PathBuf],
    mut on_change: impl FnMut(&Path) -> bool + Send + 'static,
) -> io::Result<Option<JoinHandle<()>>> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
    let mut watched: Vec<(WatchDescriptor, OsString, PathBuf)> = Vec::new();
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let flags = AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO;
        if let Ok(wd) = inotify.add_watch(dir, flags) {
            watched.push((wd, name.to_os_string(), file.clone()));
        }
    }
    if watched.is_empty() {
        return Ok(None);
    }
    std::thread::Builder::new()
        .name("watch".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let Ok(events) = inotify.read_events() else {
                return;
            };
            for event in events {
                let hit = watched
                    .iter()
                    .find(|(wd, name, _)| *wd == event.wd && event.name.as_deref() == Some(name));
                if let Some((_, _, file)) = hit {
                    if !on_change(file) {
                        return;
                    }
                }
            }
        })
        .map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reports_rewrites_and_renames_of_the_watched_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("configmeta.json");
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = watch_files(
            &[file.clone(), PathBuf::from("/nonexistent/dir/x")],
            move |p| tx.send(p.to_path_buf()).is_ok(),
        )
        .unwrap()
        .unwrap();
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        std::fs::write(&file, "{}").unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(got, file);
        let tmp = dir.path().join("tmp");
        std::fs::write(&tmp, "{\"a\":1}").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(),
            file
        );
        assert!(rx.try_recv().is_err(), "events for other files");
        drop(rx);
        std::fs::write(&file, "{}").unwrap();
        handle.join().unwrap();
    }
}
