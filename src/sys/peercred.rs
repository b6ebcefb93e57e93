//! Peer credentials for the status server: who is on the other end of a Unix socket
//! (`SO_PEERCRED`) and who the agent is.

use std::io;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

/// The uid of the process that connected `stream` (captured by the kernel at `connect`).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    Ok(cred.uid())
}

/// The agent's effective uid.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_of_a_socketpair_is_us() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), effective_uid());
    }
}
