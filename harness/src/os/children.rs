//! The harness's own children, and the orphans it adopts.
//!
//! The harness is a child subreaper: the orphans of every case (a daemonizing target's
//! grandchildren) are re-parented to it, and [`reap_orphans`] reaps them once they exit.
//! It cannot tell an orphan from a child that some thread of the harness started and is
//! about to wait for, except by this registry: so every child the harness starts (a
//! case's main process, a helper command such as a survivors command or the cargo build)
//! is spawned through [`spawn_registered`] and deregistered only after its own waiter
//! has reaped it. A child started any other way can be reaped by another case's
//! `reap_orphans` first, and its waiter then finds no child to wait for.

use std::collections::BTreeSet;
use std::io;
use std::process::{Child, Command};
use std::sync::Mutex;

use rustix::process::Pid;

use super::procfs;

/// The harness's direct children that threads of it are waiting on: orphan reaping must
/// leave them alone. Held across spawn so that a child is registered before anyone can
/// see it exit.
static DIRECT_CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Makes the harness the reaper of its targets' orphans, so a daemonizing target's
/// grandchildren are re-parented to it rather than to init, and stay visible.
pub fn become_subreaper() {
    let _ = rustix::process::set_child_subreaper(Some(
        Pid::from_raw(std::process::id() as i32).unwrap(),
    ));
}

/// Spawns `command`, registering the child before anyone can see it exit.
pub(crate) fn spawn_registered(command: &mut Command) -> io::Result<Child> {
    let mut children = DIRECT_CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    let child = command.spawn()?;
    children.insert(child.id() as i32);
    Ok(child)
}

/// Forgets a child that [`spawn_registered`] started, once it has been reaped.
pub(crate) fn deregister(pid: i32) {
    DIRECT_CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// Reaps zombies re-parented to the harness that no thread of it is waiting on.
pub(crate) fn reap_orphans() {
    let me = std::process::id() as i32;
    let children = DIRECT_CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for pid in procfs::all_pids() {
        if let Some(stat) = procfs::stat(pid)
            && stat.ppid == me
            && stat.state == 'Z'
            && !children.contains(&pid)
            // A traced zombie is its tracer's to wait for first.
            && procfs::tracer_pid(pid) == Some(0)
        {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    }
}
