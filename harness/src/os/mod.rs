//! The only layer that touches the OS: spawning targets and every other child of the harness,
//! delivering signals, watching process trees, sandboxes. Everything above it is plain data
//! in, data out.

pub mod cgroup;
mod children;
pub mod client;
pub(crate) mod command;
pub mod exec;
pub mod interrupt;
pub mod leftovers;
pub mod net;
mod pipes;
pub mod probe;
pub mod procfs;
pub mod run;
pub mod sandbox;
pub mod seccomp;
pub mod serving;
pub mod tracer;
mod tree;

use std::os::fd::AsFd;

/// Whether `fd` is readable right now (a pidfd: the process has exited; a pipe: data or
/// end of file), without waiting.
pub(crate) fn readable_now(fd: impl AsFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let now = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&now)).unwrap_or(0) > 0
}
