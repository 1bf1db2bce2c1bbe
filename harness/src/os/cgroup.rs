//! A cgroup v2 per case: the most reliable view of a process tree. Every descendant stays
//! in it — also after `setsid` or a double fork — `cgroup.procs` lists the live ones,
//! `cgroup.events` says when it is empty, and `cgroup.kill` ends them all at once.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::leftovers::Owner;
use super::procfs;

/// A cgroup made for one case and removed when dropped.
#[derive(Debug)]
pub struct CaseCgroup {
    dir: PathBuf,
    /// `cgroup.procs`, opened before the fork: the child writes "0" to it before `exec`.
    procs: File,
}

/// The directory under which case cgroups are made: the harness's own cgroup in the v2
/// hierarchy, if it is writable. `KILLPOINT_NO_CGROUP=1` turns cgroups off.
fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        if std::env::var_os("KILLPOINT_NO_CGROUP").is_some_and(|v| v != "0") {
            return None;
        }
        let mount = fs::read_to_string("/proc/self/mountinfo")
            .ok()?
            .lines()
            .find_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                right
                    .starts_with("cgroup2 ")
                    .then(|| left.split(' ').nth(4).map(PathBuf::from))?
            })?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
        let base = mount.join(own.trim_start_matches('/'));
        // Writable if we can make (and remove) a child cgroup there.
        let probe = base.join(format!("killpoint-probe-{}", std::process::id()));
        fs::create_dir(&probe).ok()?;
        let ok = probe.join("cgroup.kill").exists();
        let _ = fs::remove_dir(&probe);
        ok.then_some(base)
    })
    .as_deref()
}

/// The owner a case cgroup's name marks: `killpoint-PID-START-N`. An older killpoint
/// named them `killpoint-PID-N`, with no start time: `start` is then `None`.
fn owner_of(name: &str) -> Option<(i32, Option<u64>)> {
    let numbers: Vec<u64> = name
        .strip_prefix("killpoint-")?
        .split('-')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    match numbers[..] {
        [pid, start, _] => Some((i32::try_from(pid).ok()?, Some(start))),
        [pid, _] => Some((i32::try_from(pid).ok()?, None)),
        _ => None,
    }
}

/// Removes the case cgroups under the harness's base whose owner is gone (killing what
/// is left in them: the processes of a case nobody judges any more); returns each one's
/// owner pid. A cgroup without a start time is only taken when no process has its pid.
pub(crate) fn remove_stale() -> Vec<i32> {
    let Some(base) = base() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some((pid, start)) = owner_of(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        let gone = match start {
            Some(start) => !Owner { pid, start }.running(),
            None => procfs::start_time(pid).is_none(),
        };
        if gone && remove(&entry.path()) {
            removed.push(pid);
        }
    }
    removed
}

/// Removes a cgroup, killing what is in it; whether it is gone.
fn remove(dir: &Path) -> bool {
    // A cgroup can only be removed once empty, and killed tasks take a moment to go:
    // `cgroup.events` wakes a poller (POLLPRI) when it changes, as when it empties.
    // Opened at the first failure, before the kill, so that the change is not missed;
    // the usual case, an empty cgroup, opens nothing.
    let until = Instant::now() + Duration::from_secs(5);
    let mut events: Option<Option<File>> = None;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) if Instant::now() >= until => return false,
            Err(_) => {
                let events =
                    events.get_or_insert_with(|| File::open(dir.join("cgroup.events")).ok());
                kill_in(dir);
                let pause = until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100));
                match events {
                    Some(events) => {
                        let timeout = rustix::event::Timespec::try_from(pause).unwrap_or(
                            rustix::event::Timespec {
                                tv_sec: 0,
                                tv_nsec: 0,
                            },
                        );
                        let mut fds = [rustix::event::PollFd::new(
                            events,
                            rustix::event::PollFlags::PRI,
                        )];
                        let _ = rustix::event::poll(&mut fds, Some(&timeout));
                    }
                    // No events file to wait on: look again shortly.
                    None => std::thread::sleep(pause.min(Duration::from_millis(2))),
                }
            }
        }
    }
}

/// SIGKILLs every process in the cgroup `dir`.
fn kill_in(dir: &Path) {
    let done = OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"));
    if done.is_err() {
        for pid in pids_in(dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn pids_in(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

impl CaseCgroup {
    /// Makes a fresh cgroup for a case, or `None` where cgroups are not available. Its
    /// name marks its owner: this process's pid and start time.
    pub fn create() -> Option<CaseCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let me = Owner::me();
        let dir = base()?.join(format!(
            "killpoint-{}-{}-{}",
            me.pid,
            me.start,
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).ok()?;
        match OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
        {
            Ok(procs) => Some(CaseCgroup { dir, procs }),
            Err(_) => {
                let _ = fs::remove_dir(&dir);
                None
            }
        }
    }

    /// The fd the child writes "0" to (joining the cgroup) between fork and exec.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The live processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.dir)
    }

    /// The `cgroup.events` file, pollable (`POLLPRI`) for the moment it empties.
    pub fn events_file(&self) -> Option<File> {
        File::open(self.dir.join("cgroup.events")).ok()
    }

    /// SIGKILLs every process in the cgroup.
    pub fn kill(&self) {
        kill_in(&self.dir);
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        remove(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_cgroup_name_marks_its_owner() {
        assert_eq!(
            owner_of("killpoint-1234-98765-3"),
            Some((1234, Some(98765)))
        );
        assert_eq!(owner_of("killpoint-1234-3"), Some((1234, None)));
        assert_eq!(owner_of("killpoint-probe-1234"), None);
        assert_eq!(owner_of("killpoint-1-2-3-4"), None);
        assert_eq!(owner_of("system.slice"), None);
    }
}
