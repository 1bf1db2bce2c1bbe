//! Reading a child's stdout and stderr while waiting for something else: every wait on a
//! child polls its pipes too, so a chatty child never blocks on a full pipe.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::time::Timespec;

use super::interrupt;
use crate::outcome::Capture;

/// How much of a case's stdout and of its stderr is kept; the rest is counted.
pub(crate) const CAPTURE_LIMIT: usize = 1 << 20;

/// One pipe from a child, read without blocking until end of file.
pub(crate) struct Pipe {
    /// `None` once end of file was read.
    pub(crate) fd: Option<OwnedFd>,
    kept: Vec<u8>,
    total: u64,
    /// How many bytes are kept.
    limit: usize,
}

impl Pipe {
    /// The child's captured stdout and stderr (those it has), each keeping `limit` bytes.
    pub(crate) fn of_child(child: &mut std::process::Child, limit: usize) -> io::Result<Vec<Pipe>> {
        [
            child.stdout.take().map(OwnedFd::from),
            child.stderr.take().map(OwnedFd::from),
        ]
        .into_iter()
        .flatten()
        .map(|fd| Pipe::new(fd, limit))
        .collect()
    }

    /// Reads `fd` (made non-blocking here), keeping the first `limit` bytes.
    pub(crate) fn new(fd: OwnedFd, limit: usize) -> io::Result<Pipe> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(Pipe {
            fd: Some(fd),
            kept: Vec::new(),
            total: 0,
            limit,
        })
    }

    /// Reads what is available; closes the pipe at end of file.
    fn drain(&mut self) {
        let mut buf = [0u8; 65536];
        loop {
            let Some(fd) = &self.fd else { return };
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    self.total += n as u64;
                    let room = self.limit.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return, // EAGAIN: nothing more for now
            }
        }
    }

    /// What has been kept so far.
    pub(crate) fn kept(&self) -> &[u8] {
        &self.kept
    }

    /// What was kept, and how much there was.
    pub(crate) fn capture(self) -> Capture {
        Capture {
            text: String::from_utf8_lossy(&self.kept).into_owned(),
            total_bytes: self.total,
        }
    }

    /// What was kept, as it was read.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.kept
    }
}

/// Polls the pipes (and `extras`) for up to `wait`, reading what arrives. Returns true
/// when the harness itself was asked to stop.
pub(crate) fn wait_io(
    pipes: &mut [Pipe],
    wait: Duration,
    extras: &[(BorrowedFd, PollFlags)],
) -> io::Result<bool> {
    let mut watched = vec![(interrupt::fd(), PollFlags::IN)];
    watched.extend_from_slice(extras);
    Ok(poll_pipes(pipes, wait, &watched)?[0])
}

/// Polls the pipes and `watched` for up to `wait`, reading what arrives on the pipes.
/// Returns, for each of `watched`, whether it was ready.
pub(crate) fn poll_pipes(
    pipes: &mut [Pipe],
    wait: Duration,
    watched: &[(BorrowedFd, PollFlags)],
) -> io::Result<Vec<bool>> {
    let mut fds: Vec<PollFd> = watched
        .iter()
        .map(|&(fd, flags)| PollFd::from_borrowed_fd(fd, flags))
        .collect();
    let first_pipe = fds.len();
    let open: Vec<usize> = (0..pipes.len())
        .filter(|&i| pipes[i].fd.is_some())
        .collect();
    for &i in &open {
        fds.push(PollFd::new(
            pipes[i].fd.as_ref().expect("open pipe"),
            PollFlags::IN,
        ));
    }
    let timeout = Timespec {
        tv_sec: wait.as_secs() as i64,
        tv_nsec: wait.subsec_nanos() as i64,
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    let ready: Vec<bool> = fds[..first_pipe]
        .iter()
        .map(|fd| !fd.revents().is_empty())
        .collect();
    let readable: Vec<usize> = open
        .iter()
        .enumerate()
        .filter(|(k, _)| !fds[first_pipe + k].revents().is_empty())
        .map(|(_, &i)| i)
        .collect();
    drop(fds);
    for i in readable {
        pipes[i].drain();
    }
    Ok(ready)
}
