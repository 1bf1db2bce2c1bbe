//! The probe channel: a socket the target marks points of its own on.
//!
//! Every run gets a fresh socket pair. The target's end is passed by number in
//! `KILLPOINT_PROBE_FD`; the target writes one line per mark (`flush-begin`, `ack 7`) and
//! then reads one byte. The harness reads the mark, sends a strike due at it, waits until
//! the signal has left the target's pending set (a handler has taken it, or the target is
//! gone), and only then writes the byte back. So a probe strike lands while the target is
//! inside its `mark` call — exact, with no tracer.
//!
//! Marks from several processes of a tree share the socket and are served in order; the
//! one-byte replies go to whichever reader takes them first, so landing is exact when one
//! process marks at a time (the helpers make the threads of one process take turns).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

pub use crate::outcome::PROBE_FD_VAR;

/// A mark line longer than this is cut: marks are names, not payloads.
const LINE_LIMIT: usize = 4096;

/// The harness's end of the probe socket.
pub struct Probe {
    /// `None` once every process of the target has closed its end.
    fd: Option<OwnedFd>,
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
}

impl Probe {
    /// The harness's end (non-blocking) and the target's end. Both are close-on-exec: the
    /// spawn clears the flag on the target's end in the child only, so concurrent spawns
    /// of other cases do not inherit it.
    pub fn pair() -> io::Result<(Probe, OwnedFd)> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        rustix::io::ioctl_fionbio(&ours, true)?;
        Ok((
            Probe {
                fd: Some(ours),
                partial: Vec::new(),
            },
            theirs,
        ))
    }

    /// The socket to poll, while it is open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// The complete lines available now, without waiting.
    pub fn read_lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(fd) = &self.fd {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => self.fd = None,
                Ok(n) => {
                    for &byte in &buf[..n] {
                        if byte == b'\n' {
                            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                            self.partial.clear();
                        } else if self.partial.len() < LINE_LIMIT {
                            self.partial.push(byte);
                        }
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => break,
                Err(_) => self.fd = None,
            }
        }
        lines
    }

    /// Lets one waiting `mark` call return.
    pub fn reply(&self) {
        if let Some(fd) = &self.fd {
            // Never blocks and never raises SIGPIPE: a target that exited, or one that
            // does not read replies, simply does not get it.
            let _ = rustix::net::send(fd, b"+", SendFlags::NOSIGNAL | SendFlags::DONTWAIT);
        }
    }
}

/// Makes the target's end survive `exec` in the child. Runs between fork and exec: only
/// `fcntl`, which is async-signal-safe.
pub fn keep_across_exec(fd: i32) -> io::Result<()> {
    // SAFETY: the fd is open in the child (it was inherited from the harness, which keeps
    // it open until the spawn has returned).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
    Ok(())
}
