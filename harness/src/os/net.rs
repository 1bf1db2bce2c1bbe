//! Loopback ports: a free one for each run that uses `{port}`, and whether a port takes
//! connections (a `ready = { port = … }` condition).
//!
//! A free port is found by binding 127.0.0.1:0 and closing the socket: the kernel hands
//! out ephemeral ports in a random order, so another process taking it in the instant
//! before the target binds it is unlikely, and the harness never hands the same port to
//! two runs of its own close together (it remembers the last ones it gave).

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

/// How many recently given ports are never given again.
const REMEMBERED: usize = 1024;

/// A loopback port nothing listens on now, different from the last ones given.
pub fn free_port() -> io::Result<u16> {
    static GIVEN: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..64 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        if !given.contains(&port) {
            if given.len() == REMEMBERED {
                given.pop_front();
            }
            given.push_back(port);
            return Ok(port);
        }
    }
    Err(io::Error::other("no free loopback port found in 64 tries"))
}

/// Whether a TCP connect to 127.0.0.1:`port` succeeds now. The connection is closed at
/// once: the server sees one connection accepted and closed without a request.
pub fn accepts(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_free_and_never_given_twice_in_a_row() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
        assert!(!accepts(a), "nothing listens on a free port");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        assert!(accepts(a));
        drop(listener);
    }
}
