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

impl CaseCgroup {
    /// Makes a fresh cgroup for a case, or `None` where cgroups are not available.
    pub fn create() -> Option<CaseCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = base()?.join(format!(
            "killpoint-{}-{}",
            std::process::id(),
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
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The `cgroup.events` file, pollable (`POLLPRI`) for the moment it empties.
    pub fn events_file(&self) -> Option<File> {
        File::open(self.dir.join("cgroup.events")).ok()
    }

    /// SIGKILLs every process in the cgroup.
    pub fn kill(&self) {
        let done = OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"));
        if done.is_err() {
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        // A cgroup can only be removed once empty; killed tasks take a moment to go.
        let until = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(&self.dir).is_err() && Instant::now() < until {
            self.kill();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
