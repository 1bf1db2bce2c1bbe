//! What a killpoint leaves on the machine while it runs — case sandboxes, case cgroups —
//! is marked with its owner: its pid and its start time, since a pid alone may be reused
//! by the time anyone looks. A killpoint killed with SIGKILL cannot remove its own, so
//! the next one to prepare a scenario removes those whose owner is gone, and says so.
//! Nothing of a live killpoint is touched, nor a sandbox kept for inspection (it drops
//! its mark when it is kept).

use std::collections::BTreeMap;
use std::sync::{Once, OnceLock};

use super::{cgroup, procfs, sandbox};

/// A killpoint process, as its marks name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub pid: i32,
    /// In clock ticks since boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id() as i32;
            Owner {
                pid,
                start: procfs::start_time(pid).unwrap_or(0),
            }
        })
    }

    /// Whether the process that made the mark still runs: its pid exists and started
    /// when the mark says.
    pub fn running(&self) -> bool {
        procfs::start_time(self.pid) == Some(self.start)
    }
}

/// What was removed of one owner's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub sandboxes: usize,
    pub cgroups: usize,
}

/// The line that tells what was removed of a gone owner's.
pub fn removed_line(pid: i32, removed: Removed) -> String {
    let count = |n: usize, one: &str, many: &str| match n {
        0 => None,
        1 => Some(format!("1 {one}")),
        n => Some(format!("{n} {many}")),
    };
    let what: Vec<String> = [
        count(removed.sandboxes, "sandbox", "sandboxes"),
        count(removed.cgroups, "cgroup", "cgroups"),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "killpoint: removed {} left by killpoint pid {pid}, which is no longer running",
        what.join(" and ")
    )
}

/// Removes, once per process, what killpoints that are gone left behind, and prints one
/// line on stderr per owner.
pub fn remove_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut by_owner: BTreeMap<i32, Removed> = BTreeMap::new();
        for pid in sandbox::remove_stale() {
            by_owner.entry(pid).or_default().sandboxes += 1;
        }
        for pid in cgroup::remove_stale() {
            by_owner.entry(pid).or_default().cgroups += 1;
        }
        for (pid, removed) in by_owner {
            eprintln!("{}", removed_line(pid, removed));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_what_was_removed() {
        let line = |sandboxes, cgroups| removed_line(1234, Removed { sandboxes, cgroups });
        assert_eq!(
            line(3, 2),
            "killpoint: removed 3 sandboxes and 2 cgroups left by killpoint pid 1234, which is no longer running"
        );
        assert_eq!(
            line(1, 0),
            "killpoint: removed 1 sandbox left by killpoint pid 1234, which is no longer running"
        );
        assert_eq!(
            line(0, 1),
            "killpoint: removed 1 cgroup left by killpoint pid 1234, which is no longer running"
        );
    }

    #[test]
    fn this_process_is_running_and_a_reused_pid_is_not_its_owner() {
        let me = Owner::me();
        assert!(me.running());
        let earlier = Owner {
            start: me.start.wrapping_sub(1),
            ..me
        };
        assert!(!earlier.running());
    }
}
