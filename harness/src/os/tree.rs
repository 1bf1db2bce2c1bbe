//! The processes of one case: finding them (the case's cgroup, else its process group,
//! its main process's children and its environment marker; with the tracer, every
//! tracee), killing them, and waiting for them to be gone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::process::pidfd_send_signal;

use super::cgroup::CaseCgroup;
use super::procfs;
use super::run::RunError;
use super::tracer::Link;

/// The processes of one case.
pub(super) struct Tree {
    pub(super) cgroup: Option<CaseCgroup>,
    /// `KILLPOINT_CASE=…`, found in the environment of every descendant that kept it.
    pub(super) marker: String,
    /// The main process; it leads the case's process group, so this is also its pgid.
    pub(super) main: i32,
    /// With the tracer: it knows every process of the tree, wherever it went.
    pub(super) link: Option<Arc<Link>>,
}

impl Tree {
    /// The live processes of the tree other than the main process.
    pub(super) fn others(&self) -> Vec<i32> {
        let live = |s: &procfs::Stat| s.pid != self.main && s.state != 'Z' && s.state != 'X';
        let mut found: Vec<i32> = match &self.cgroup {
            Some(cgroup) => cgroup
                .pids()
                .into_iter()
                .filter(|&pid| procfs::stat(pid).is_some_and(|s| live(&s)))
                .collect(),
            None => procfs::all_pids()
                .into_iter()
                .filter_map(procfs::stat)
                .filter(|s| live(s) && self.belongs(s))
                .map(|s| s.pid)
                .collect(),
        };
        if let Some(link) = &self.link {
            for pid in link.tracees() {
                if !found.contains(&pid) && procfs::stat(pid).is_some_and(|s| live(&s)) {
                    found.push(pid);
                }
            }
        }
        found
    }

    /// Without a cgroup: whether a process is one of this case's, by its process group,
    /// its parent or the case's environment marker.
    fn belongs(&self, stat: &procfs::Stat) -> bool {
        let harness = std::process::id() as i32;
        for _ in 0..EXEC_REREADS {
            let marker = || procfs::environ_has(stat.pid, &self.marker);
            match membership(stat, self.main, harness, marker) {
                Membership::Member => return true,
                Membership::Stranger => return false,
                Membership::AskAgain => std::thread::sleep(EXEC_REREAD_PAUSE),
            }
        }
        false
    }

    /// Kills the main process (through its pidfd `main`) and every process of the tree.
    pub(super) fn kill(&self, main: &OwnedFd) {
        let _ = pidfd_send_signal(main, rustix::process::Signal::KILL);
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill();
        }
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.main),
            nix::sys::signal::Signal::SIGKILL,
        );
        for pid in self.others() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Waits until the tree is empty or `until`; returns whether it emptied. Between looks
    /// it waits through `wait` (for a time, also on the fds given): the case's own wait,
    /// which reads its pipes and serves its probe, and returns true when the harness
    /// itself was asked to stop.
    pub(super) fn wait_empty(
        &self,
        until: Instant,
        mut wait: impl FnMut(Duration, &[(BorrowedFd, PollFlags)]) -> Result<bool, RunError>,
    ) -> Result<bool, RunError> {
        let events = self.cgroup.as_ref().and_then(|c| c.events_file());
        loop {
            if self.others().is_empty() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            // With a cgroup, `cgroup.events` wakes us when it empties; without one, look
            // again every few milliseconds.
            let pause = (until - now).min(if events.is_some() {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(5)
            });
            let extras: Vec<(BorrowedFd, PollFlags)> =
                events.iter().map(|f| (f.as_fd(), PollFlags::PRI)).collect();
            if wait(pause, &extras)? {
                return Err(RunError::Interrupted);
            }
        }
    }
}

/// How often, and how far apart, the environment of an adopted orphan caught inside
/// `execve` is read again: the window lasts microseconds, so 20 ms is ample even on a
/// loaded machine, and only such orphans ever wait.
const EXEC_REREADS: usize = 100;
const EXEC_REREAD_PAUSE: Duration = Duration::from_micros(200);

#[derive(Debug, PartialEq, Eq)]
enum Membership {
    Member,
    Stranger,
    /// Cannot tell yet: read the environment again.
    AskAgain,
}

/// Decides whether a process found in `/proc` belongs to the case led by `main`, for a
/// harness (a child subreaper) with pid `harness`. `marker` reads whether the process's
/// environment holds the case marker (`None`: it reads as empty).
fn membership(
    stat: &procfs::Stat,
    main: i32,
    harness: i32,
    marker: impl FnOnce() -> Option<bool>,
) -> Membership {
    if stat.pgid == main || stat.ppid == main {
        return Membership::Member;
    }
    match marker() {
        Some(true) => Membership::Member,
        Some(false) => Membership::Stranger,
        // An orphan adopted by the harness is a descendant of some case; with an empty
        // environment it is most likely inside `execve` (a daemon exec'ing right after
        // `setsid`), and its environment is back within microseconds.
        None if stat.ppid == harness => Membership::AskAgain,
        // A kernel thread, or a process of someone else started with no environment.
        None => Membership::Stranger,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pgid: i32, ppid: i32) -> procfs::Stat {
        procfs::Stat {
            pid: 500,
            state: 'S',
            ppid,
            pgid,
        }
    }

    const MAIN: i32 = 100;
    const HARNESS: i32 = 10;

    #[test]
    fn the_process_group_and_the_children_of_main_belong_without_reading_the_environment() {
        let unread = || panic!("the environment is not read");
        assert_eq!(
            membership(&stat(MAIN, 1), MAIN, HARNESS, unread),
            Membership::Member
        );
        assert_eq!(
            membership(&stat(7, MAIN), MAIN, HARNESS, unread),
            Membership::Member
        );
    }

    #[test]
    fn elsewhere_the_environment_marker_decides() {
        let s = stat(7, 1);
        assert_eq!(
            membership(&s, MAIN, HARNESS, || Some(true)),
            Membership::Member
        );
        assert_eq!(
            membership(&s, MAIN, HARNESS, || Some(false)),
            Membership::Stranger
        );
    }

    #[test]
    fn an_adopted_orphan_with_no_environment_yet_is_asked_again_and_others_are_not() {
        // Mid-execve after setsid: adopted by the harness, environment not laid out yet.
        let adopted = stat(7, HARNESS);
        assert_eq!(
            membership(&adopted, MAIN, HARNESS, || None),
            Membership::AskAgain
        );
        // A kernel thread (parent kthreadd) or a stranger with an empty environment.
        assert_eq!(
            membership(&stat(0, 2), MAIN, HARNESS, || None),
            Membership::Stranger
        );
        assert_eq!(
            membership(&stat(7, 1), MAIN, HARNESS, || None),
            Membership::Stranger
        );
    }
}
