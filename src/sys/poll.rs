//! Waiting for file descriptors to become readable (`poll`): the status server's sockets, the
//! signalfd, the inotify watchers.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Waits until any of `fds` is readable, hung up or in error, or `timeout` passes (`None`: no
/// limit); returns, for each fd, whether it is ready. An interrupted wait returns all false.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let timeout = match timeout {
        None => PollTimeout::NONE,
        // Round up, so a deadline less than a millisecond away does not spin.
        Some(d) => PollTimeout::try_from(d.saturating_add(Duration::from_micros(999)))
            .unwrap_or(PollTimeout::MAX),
    };
    match poll(&mut polls, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(vec![false; fds.len()]),
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
    Ok(polls
        .iter()
        .map(|p| p.revents().is_some_and(|r| r.intersects(ready)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn wait_readable_reports_each_fd() {
        use std::io::Write;
        use std::os::fd::AsFd;
        let (a, mut b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let r = wait_readable(&[a.as_fd(), c.as_fd()], Some(Duration::from_millis(1))).unwrap();
        assert_eq!(r, vec![false, false]);
        b.write_all(b"x").unwrap();
        let r = wait_readable(&[a.as_fd(), c.as_fd()], None).unwrap();
        assert_eq!(r, vec![true, false]);
    }
}
