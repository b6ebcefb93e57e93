//! Waiting for file descriptors to become ready (`poll`): the status server's sockets, the
//! signalfd, the inotify watchers.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// What a file descriptor is waited on for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Bytes to read (or a connection to accept).
    Read,
    /// Room to write.
    Write,
}

/// Waits until any of `fds` is readable, hung up or in error, or `timeout` passes (`None`: no
/// limit); returns, for each fd, whether it is ready. An interrupted wait returns all false.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let watched: Vec<(BorrowedFd<'_>, Interest)> =
        fds.iter().map(|fd| (*fd, Interest::Read)).collect();
    wait_ready(&watched, timeout)
}

/// Waits until any of `fds` is ready for its [`Interest`], hung up or in error, or `timeout`
/// passes (`None`: no limit); returns, for each fd, whether it is ready. An interrupted wait
/// returns all false.
pub fn wait_ready(
    fds: &[(BorrowedFd<'_>, Interest)],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, interest)| {
            let events = match interest {
                Interest::Read => PollFlags::POLLIN,
                Interest::Write => PollFlags::POLLOUT,
            };
            PollFd::new(*fd, events)
        })
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
    let ready = PollFlags::POLLIN
        | PollFlags::POLLOUT
        | PollFlags::POLLHUP
        | PollFlags::POLLERR
        | PollFlags::POLLNVAL;
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

    #[test]
    fn wait_ready_reports_room_to_write_only_when_there_is_some() {
        use std::io::{ErrorKind, Read, Write};
        use std::os::fd::AsFd;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let short = Some(Duration::from_millis(1));
        assert_eq!(
            wait_ready(&[(a.as_fd(), Interest::Write)], short).unwrap(),
            vec![true]
        );
        // Fill the socket until a write would block: no room, so not ready.
        a.set_nonblocking(true).unwrap();
        let chunk = [0u8; 4096];
        loop {
            match a.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            wait_ready(&[(a.as_fd(), Interest::Write)], short).unwrap(),
            vec![false]
        );
        // The peer reads it all: room again.
        b.set_nonblocking(true).unwrap();
        let mut sink = vec![0u8; 1 << 16];
        while b.read(&mut sink).is_ok_and(|n| n > 0) {}
        assert_eq!(
            wait_ready(&[(a.as_fd(), Interest::Write)], None).unwrap(),
            vec![true]
        );
    }
}
