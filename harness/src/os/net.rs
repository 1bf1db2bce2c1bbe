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
use std::os::fd::{AsRawFd, OwnedFd};
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

/// [`accepts`], asked from inside the network namespace `netns` (a case's own, with
/// `isolate_network`): from a thread that joins it, since `setns` moves only the
/// calling thread.
pub fn accepts_in(port: u16, netns: Option<&OwnedFd>) -> bool {
    let Some(netns) = netns else {
        return accepts(port);
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| join(netns).is_ok() && accepts(port))
            .join()
            .unwrap_or(false)
    })
}

/// Moves the calling thread into the network namespace `netns`.
pub fn join(netns: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns on a descriptor this function borrows; it changes only the calling
    // thread's namespace.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The network namespace process `pid` is in, as a descriptor to join it by.
pub fn namespace_of(pid: i32) -> io::Result<OwnedFd> {
    Ok(std::fs::File::open(format!("/proc/{pid}/ns/net"))?.into())
}

/// In a child between fork and exec: a network namespace of its own, with its loopback
/// interface up (a new namespace has `lo`, down). Only system calls, nothing allocated.
///
/// # Safety
/// To be called only in a `pre_exec` closure.
pub unsafe fn isolate_in_child() -> io::Result<()> {
    // SAFETY: plain system calls on values made here; see the function's contract.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        request.ifr_name[0] = b'l' as libc::c_char;
        request.ifr_name[1] = b'o' as libc::c_char;
        let up = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) == 0 {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) == 0
        } else {
            false
        };
        let error = io::Error::last_os_error();
        libc::close(fd);
        if up { Ok(()) } else { Err(error) }
    }
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
