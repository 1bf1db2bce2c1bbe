//! Marks points of a program for [killpoint]'s probe strikes.
//!
//! ```no_run
//! killpoint_probe::mark("flush-begin");
//! // … write and sync …
//! killpoint_probe::mark("ack 7");
//! ```
//!
//! Under killpoint, `KILLPOINT_PROBE_FD` names a socket. [`mark`] writes its text as one
//! line and waits for one byte back; killpoint replies only after it has delivered any
//! signal a strike planned for that mark (`at = { probe = "flush-begin", nth = "1.." }`).
//! So the signal arrives while the program is inside `mark`, at exactly the point it
//! marked. The first word of the line is the mark's name; the rest is its argument
//! (`ack 7`: name `ack`, argument `7`, an acknowledgement `[expect.acked]` can read).
//!
//! Outside killpoint (no variable), or once killpoint has gone (end of file), `mark` does
//! nothing. Threads of one process take turns. Do not call it from a signal handler: it
//! takes a lock.
//!
//! The protocol is small enough to speak from any language: write `NAME [ARG]\n` to the
//! descriptor, read one byte.
//!
//! [killpoint]: https://github.com/killpoint/killpoint

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::Mutex;

/// The environment variable that names the probe socket's descriptor.
pub const PROBE_FD_VAR: &str = "KILLPOINT_PROBE_FD";

enum Channel {
    /// Not looked at yet.
    Unopened,
    /// Absent, unusable, or closed by the harness: marks do nothing.
    Off,
    On(File),
}

static CHANNEL: Mutex<Channel> = Mutex::new(Channel::Unopened);

/// Marks a point: `name`, or `name arg`. Returns once killpoint has dealt with it.
pub fn mark(text: &str) {
    let mut channel = CHANNEL.lock().unwrap_or_else(|e| e.into_inner());
    if let Channel::Unopened = *channel {
        *channel = open();
    }
    let Channel::On(socket) = &mut *channel else {
        return;
    };
    let line = format!("{}\n", text.trim_end_matches('\n'));
    let mut reply = [0u8; 1];
    // `read_exact` retries reads a signal interrupted: the handler runs, then the wait
    // goes on until killpoint replies.
    let served = socket
        .write_all(line.as_bytes())
        .and_then(|()| socket.read_exact(&mut reply));
    if served.is_err() {
        *channel = Channel::Off;
    }
}

/// Whether marks reach killpoint (the variable names a socket that is still open).
pub fn active() -> bool {
    let mut channel = CHANNEL.lock().unwrap_or_else(|e| e.into_inner());
    if let Channel::Unopened = *channel {
        *channel = open();
    }
    matches!(*channel, Channel::On(_))
}

fn open() -> Channel {
    let Some(fd) = std::env::var(PROBE_FD_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|&fd| fd > 2)
    else {
        return Channel::Off;
    };
    // Only a socket is taken: if the program closed the descriptor and the number now
    // names one of its own files, marks must not write into it.
    let is_socket = std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Channel::Off;
    }
    // SAFETY: the descriptor is open and is a socket (checked above); killpoint handed it
    // to this process for marks alone, so owning it here takes it from no one.
    Channel::On(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::fd::IntoRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    // One test: the channel is process-wide, and opened once.
    #[test]
    fn marks_are_lines_that_wait_for_the_reply_and_stop_once_the_harness_is_gone() {
        let (harness, target) = UnixStream::pair().unwrap();
        // SAFETY: no other thread of this test binary reads or writes the environment.
        unsafe { std::env::set_var(PROBE_FD_VAR, target.into_raw_fd().to_string()) };
        let replied = Arc::new(AtomicBool::new(false));
        let server = {
            let replied = Arc::clone(&replied);
            std::thread::spawn(move || {
                let mut lines = BufReader::new(harness.try_clone().unwrap()).lines();
                let mut seen = Vec::new();
                for _ in 0..2 {
                    seen.push(lines.next().unwrap().unwrap());
                    replied.store(true, Ordering::SeqCst);
                    (&harness).write_all(b"+").unwrap();
                }
                seen // dropping `harness` closes the socket
            })
        };
        assert!(active());
        mark("flush-begin");
        assert!(
            replied.load(Ordering::SeqCst),
            "mark returned before the reply"
        );
        mark("ack 7\n");
        assert_eq!(server.join().unwrap(), ["flush-begin", "ack 7"]);
        // The harness has gone: the next mark sees end of file and marks turn off.
        mark("late");
        assert!(!active());
        mark("later");
    }
}
