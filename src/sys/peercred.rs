//! Socket calls of the status server: who is on the other end of a Unix socket (`SO_PEERCRED`),
//! who the agent is, and waking a thread blocked in `accept`.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, shutdown, sockopt::PeerCredentials, Shutdown};

/// The uid of the process that connected `stream` (captured by the kernel at `connect`).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    Ok(cred.uid())
}

/// The agent's effective uid.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Shuts a listening socket down so that a thread blocked in `accept` on it returns at once (with
/// `EINVAL` on Linux); `listener` may be a duplicate of the one being accepted on.
pub fn wake_acceptor(listener: &impl AsFd) -> io::Result<()> {
    shutdown(listener.as_fd().as_raw_fd(), Shutdown::Both).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_of_a_socketpair_is_us() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), effective_uid());
    }

    #[test]
    fn shutdown_wakes_a_blocked_accept() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let dup = listener.try_clone().unwrap();
        let t = std::thread::spawn(move || listener.accept().is_err());
        wake_acceptor(&dup).unwrap();
        assert!(t.join().unwrap(), "accept returned an error after shutdown");
    }
}
