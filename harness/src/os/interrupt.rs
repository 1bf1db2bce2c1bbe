//! The harness's own interruption (SIGINT/SIGTERM to killpoint).
//!
//! A signal writes a byte to a pipe that nobody reads: its read end then stays readable,
//! so every case loop that polls it wakes, kills its process tree and cleans up.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

fn pipe() -> &'static (OwnedFd, OwnedFd) {
    static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
    PIPE.get_or_init(|| {
        rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .expect("a pipe for interruption")
    })
}

/// Makes SIGINT and SIGTERM to this process request a clean stop instead of killing it.
pub fn install() -> io::Result<()> {
    let write = pipe().1.try_clone()?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
    }
    Ok(())
}

/// Readable once a stop was requested.
pub fn fd() -> BorrowedFd<'static> {
    pipe().0.as_fd()
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    super::readable_now(&pipe().0)
}
