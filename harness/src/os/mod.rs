//! The only layer that touches the OS: spawning targets, delivering signals, watching
//! process trees, sandboxes. Everything above it is plain data in, data out.

pub mod cgroup;
pub mod interrupt;
pub mod procfs;
pub mod run;
pub mod sandbox;
