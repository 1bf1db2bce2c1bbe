//! Running one target under a plan: spawn, strike, watch the tree drain, kill what is left.
//!
//! ```text
//!  spawn (own process group, own cgroup, PDEATHSIG) ──▶ pidfd
//!    │
//!    ▼  poll [pidfd, stdout, stderr, probe, interrupt] with a timeout = the next due event:
//!  ┌──────────────────────────────────────────────────────────────────────────────┐
//!  │ strike due?    (clock = spawn, or the moment SigCgt shows the handler)        │
//!  │                 target still alive → send the signal, record when            │
//!  │ probe mark?    a strike due at it → send, wait until delivered; then reply   │
//!  │ kill bound?    no strike: `timeout`; after a strike: `deadline` → SIGKILL all │
//!  │ main exited?   waitid → status; snapshot the tree's live processes            │
//!  └──────────────────────────────────────────────────────────────────────────────┘
//!    │
//!    ▼  tree still populated: wait up to `grace` for it; what still runs then is a
//!       leftover. After a strike, wait for the leftovers until the kill bound; with no
//!       strike, kill them. Then drain the pipes, reap orphans.
//! ```
//!
//! One thread runs one case and waits only on its own children (pidfds, never
//! `waitpid(-1)`), so cases can run in parallel threads. Orphans re-parented to the
//! harness (it is a child subreaper) are reaped by [`reap_orphans`], which skips the
//! direct children that threads of the harness are still waiting on (see
//! [`super::children`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::process::{Pid, WaitId, WaitIdOptions, pidfd_open, pidfd_send_signal, waitid};

use super::cgroup::CaseCgroup;
use super::children::{deregister, reap_orphans};
use super::pipes::{CAPTURE_LIMIT, Pipe, wait_io};
use super::probe::{self, Probe};
use super::procfs;
use super::serving::{Lifecycle, Serving};
use super::tracer::{self, Link, TraceLog, TraceSetup};
use super::tree::Tree;
use crate::outcome::{
    Capture, ClientRecord, HarnessKill, KillReason, MARK_CAP, Mark, ProcessInfo, StopRecord,
    StrikeRecord, StruckProcess, Tracking,
};
use crate::plan::{Clock, PlannedStrike as Strike, Point};
use crate::strike::{ProcessSelector, Recipient};
use crate::values::{ExitStatus, Signal};

/// How often `/proc/PID/status` is read while waiting for a handler to appear.
const HANDLER_POLL: Duration = Duration::from_micros(200);

/// How long a probe strike waits for its signal to be delivered before it lets the mark
/// return anyway (a target that blocks the signal everywhere never takes it).
const DELIVERY_WAIT: Duration = Duration::from_millis(200);

/// How long clients still running when the target's tree is gone may take to notice and
/// end by themselves before they are cut off.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// Capture stdout and stderr (a case); else the target shares the harness's own
    /// (`killpoint trace`).
    pub capture: bool,
    /// Run the target in a network namespace of its own, with its own loopback
    /// (`isolate_network`); its clients join it.
    pub isolate_network: bool,
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long an unstruck target may run.
    pub timeout: Duration,
    /// How long after the first strike the tree may take to go; `None`: `timeout`.
    pub deadline: Option<Duration>,
    /// How long after the main process exits the rest of the tree may take to end before
    /// what still runs is a leftover (no longer than `deadline`).
    pub grace: Duration,
}

/// What the OS layer saw of one run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub exited_at: Duration,
    pub strikes: Vec<StrikeRecord>,
    pub tree_gone_at: Option<Duration>,
    pub killed: Option<HarnessKill>,
    pub leftovers: Vec<ProcessInfo>,
    pub stdout: Capture,
    pub stderr: Capture,
    pub tracking: Tracking,
    /// When a handler for each watched signal was first seen.
    pub handlers_seen: BTreeMap<Signal, Duration>,
    /// What the tracer saw, when the run was traced.
    pub trace: Option<TraceLog>,
    /// The probe marks, in order (up to [`MARK_CAP`]).
    pub marks: Vec<Mark>,
    /// When the target was ready, the stop sent and the clients' runs (a server).
    pub ready_at: Option<Duration>,
    pub stop: Option<StopRecord>,
    pub clients: Vec<ClientRecord>,
}

/// How far a plan has got; shared with the tracer, which fires the syscall strikes.
#[derive(Debug)]
pub struct Progress {
    pub records: Vec<StrikeRecord>,
    /// The strike whose turn it is: strikes fire in plan order.
    pub next: usize,
    /// When the main process was first seen with a handler for each signal.
    pub handlers: BTreeMap<Signal, Duration>,
    /// The first exec of each program the tracer saw, in order: the clocks of delays
    /// counted from an exec.
    pub execs: Vec<(String, Duration)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program cannot be executed: not found, not executable, no interpreter.
    #[error("cannot run {0}")]
    NotRunnable(#[from] super::exec::NotRunnable),
    #[error("cannot start `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Trace(#[from] tracer::TraceError),
    /// The target was not ready within `ready.timeout`, and no strike was to blame.
    #[error("{0}")]
    NeverReady(String),
    /// A command of the scenario beside the target failed (`prepare`, an output's
    /// `valid` or `normalize`, a checker): the scenario cannot run.
    #[error("{0}")]
    Command(String),
    #[error("{0}")]
    Os(#[from] io::Error),
}

pub use super::children::become_subreaper;
pub(crate) use super::children::spawn_registered;

/// Runs `launch` once, delivering `plan` (in order), and watching for handlers of
/// `watch_handlers` (the census uses this to learn when the target can catch signals).
/// With `trace`, the target runs under the tracer, which fires the plan's syscall strikes.
pub fn run(
    launch: &Launch,
    plan: &[Strike],
    watch_handlers: &[Signal],
    limits: Limits,
    trace: Option<TraceSetup>,
    lifecycle: Lifecycle,
) -> Result<Run, RunError> {
    // Unique on the machine: several harnesses may run at once, and without a cgroup the
    // marker is how one tells its own processes from another's.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let marker = format!(
        "{}.{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // Checked before anything is made: a program that cannot run is an error at once,
    // where a traced child would only stop (see `super::exec`).
    let path = match launch.env.get("PATH") {
        Some(path) => Some(OsString::from(path)),
        None => std::env::var_os("PATH"),
    };
    let executable =
        super::exec::resolve(launch.program.as_os_str(), path.as_deref(), &launch.cwd)?;
    let mut serving = Serving::new(lifecycle)?;
    let cgroup = CaseCgroup::create();
    let (probe, probe_end) = Probe::pair()?;
    let probe_fd = probe_end.as_raw_fd();
    let mut command = Command::new(&executable);
    command
        .arg0(&launch.program)
        .args(&launch.args)
        .envs(&launch.env)
        .env("KILLPOINT_CASE", &marker)
        .env(probe::PROBE_FD_VAR, probe_fd.to_string())
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .process_group(0);
    if launch.capture {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let procs_fd = cgroup.as_ref().map(|c| c.procs_fd());
    let isolate = launch.isolate_network;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (write, fcntl, prctl) on values prepared before the fork; it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            probe::keep_across_exec(probe_fd)?;
            if let Some(fd) = procs_fd {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::write(fd, b"0")?;
            }
            // If the thread that spawned it dies, the target dies with it.
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            if isolate {
                super::net::isolate_in_child()?;
            }
            Ok(())
        });
    }
    let progress = Arc::new(Mutex::new(Progress {
        records: plan.iter().map(record).collect(),
        next: 0,
        handlers: BTreeMap::new(),
        execs: Vec::new(),
    }));
    let program = if isolate {
        format!(
            "{} in a network namespace of its own (isolate_network needs root or user namespaces)",
            launch.program.display()
        )
    } else {
        launch.program.display().to_string()
    };
    let (mut child, start, pidfd, tracer) = match trace {
        None => {
            let child = spawn_registered(&mut command)
                .map_err(|source| RunError::Spawn { program, source })?;
            let start = Instant::now();
            // Only this thread may reap the child (it is registered), so it is still there.
            let pidfd = pidfd_open(
                Pid::from_raw(child.id() as i32).expect("a spawned child has a pid"),
                rustix::process::PidfdFlags::empty(),
            )
            .map_err(io::Error::from)?;
            (child, start, pidfd, None)
        }
        Some(setup) => {
            let (link, wake) = Link::new(Arc::clone(&progress))?;
            let traced = tracer::spawn(command, program, setup, Arc::clone(&link))?;
            (
                traced.child,
                traced.start,
                traced.pidfd,
                Some((link, wake, traced.thread)),
            )
        }
    };
    // The target holds its end now; once every process of it has closed it, the harness
    // sees end of file.
    drop(probe_end);
    let pid = child.id() as i32;
    if isolate {
        // Its namespace, for the ready probe and the clients to join.
        serving.netns = Some(Arc::new(super::net::namespace_of(pid)?));
    }
    let tracking = if cgroup.is_some() {
        Tracking::Cgroup
    } else {
        Tracking::Marker
    };
    let (link, wake, tracer_thread) = match tracer {
        Some((link, wake, thread)) => (Some(link), Some(wake), Some(thread)),
        None => (None, None, None),
    };
    let tree = Tree {
        cgroup,
        marker: format!("KILLPOINT_CASE={marker}"),
        main: pid,
        link: link.clone(),
    };
    let pipes = Pipe::of_child(&mut child, CAPTURE_LIMIT)?;

    let mut state = State {
        start,
        pidfd,
        pipes,
        progress,
        link,
        wake,
        watch: watch_handlers
            .iter()
            .copied()
            .filter(|s| s.is_catchable())
            .collect(),
        pid,
        main_program: executable
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        plan: plan.to_vec(),
        probe,
        mark_counts: vec![0; plan.len()],
        request_bases: vec![None; plan.len()],
        marks: Vec::new(),
        serving,
    };
    let result = state.drive(&tree, limits);
    if result.is_err() {
        tree.kill(&state.pidfd);
    }
    // Clients still running once the tree is gone get a moment to see it and end by
    // themselves; then they are cut off.
    let until = Instant::now() + CLIENT_GRACE;
    while !state.serving.clients_ended() && Instant::now() < until {
        let wake = [(state.serving.wake_fd(), PollFlags::IN)];
        let _ = super::pipes::wait_io(&mut [], Duration::from_millis(20), &wake);
    }
    let (ready_at, stop) = (state.serving.ready_seen(), state.serving.stop.clone());
    let serving = std::mem::replace(&mut state.serving, Serving::new(Lifecycle::default())?);
    let clients = serving.finish();
    // Whatever happened, the main process is reaped and deregistered before we return.
    let (status, trace) = match tracer_thread {
        None => (state.reap(), None),
        Some(thread) => {
            let log = thread.join().unwrap_or_default();
            (log.main_status, Some(log))
        }
    };
    deregister(pid);
    reap_orphans();
    let ended = result?;
    let mut pipes = std::mem::take(&mut state.pipes).into_iter();
    let (stdout, stderr) = (
        pipes.next().map(Pipe::capture).unwrap_or_default(),
        pipes.next().map(Pipe::capture).unwrap_or_default(),
    );
    // The tracer has ended; what it shared is this thread's alone now.
    let (mut records, handlers) = {
        let mut progress = state.progress();
        (
            std::mem::take(&mut progress.records),
            std::mem::take(&mut progress.handlers),
        )
    };
    for record in &mut records {
        let clock = match &record.point {
            Point::Delay {
                clock: Clock::Handler(signal),
                ..
            } if *signal == record.signal => record.clock_started_at,
            _ => None,
        };
        record.handler_seen_at = handlers.get(&record.signal).copied().or(clock);
    }
    Ok(Run {
        status: status.unwrap_or(ExitStatus::Signal(Signal::SIGKILL)),
        exited_at: ended.exited_at,
        strikes: records,
        tree_gone_at: ended.tree_gone_at,
        killed: ended.killed,
        leftovers: ended.leftovers,
        stdout,
        stderr,
        tracking,
        handlers_seen: handlers,
        trace,
        marks: std::mem::take(&mut state.marks),
        ready_at,
        stop,
        clients,
    })
}

fn record(strike: &Strike) -> StrikeRecord {
    StrikeRecord {
        signal: strike.signal,
        to: strike.to,
        point: strike.point.clone(),
        process: strike.process.clone(),
        clock_started_at: None,
        sent_at: None,
        caught: false,
        handler_seen_at: None,
        hit: None,
        struck: None,
        unmatched: false,
        power: strike.power,
    }
}

struct State {
    start: Instant,
    pidfd: OwnedFd,
    pipes: Vec<Pipe>,
    progress: Arc<Mutex<Progress>>,
    /// With the tracer: what it shares, and the pipe it wakes this thread through.
    link: Option<Arc<Link>>,
    wake: Option<OwnedFd>,
    /// Signals whose handlers are still to be seen (census).
    watch: Vec<Signal>,
    /// The main process; also its process group's id.
    pid: i32,
    /// The name of the program the main process was started with (the file name of the
    /// executable), for when the tracer cannot say what it runs now.
    main_program: String,
    plan: Vec<Strike>,
    probe: Probe,
    /// Per plan strike at a probe point: the marks of its name counted while it was the
    /// strike whose turn it is.
    mark_counts: Vec<u64>,
    /// Per plan strike at a request point: how many requests the clients had sent when
    /// it became the strike whose turn it is.
    request_bases: Vec<Option<u64>>,
    marks: Vec<Mark>,
    /// Ready, clients and stop, for a server.
    serving: Serving,
}

struct Ended {
    exited_at: Duration,
    tree_gone_at: Option<Duration>,
    killed: Option<HarnessKill>,
    leftovers: Vec<ProcessInfo>,
}

impl State {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the tree must be gone: `deadline` (else `timeout`) after the first strike that
    /// reached the target; `None` while no strike has.
    fn drain_bound(&self, limits: Limits) -> Option<Duration> {
        let strike = self.progress().records.iter().find_map(|s| s.sent_at);
        // The scenario's stop asks it to stop as a strike does: the drain counts from it.
        let stop = self.serving.stop.as_ref().map(|s| s.sent_at);
        let sent = [strike, stop].into_iter().flatten().min()?;
        Some(sent + limits.deadline.unwrap_or(limits.timeout))
    }

    fn main_exited(&self) -> bool {
        super::readable_now(&self.pidfd)
    }

    /// Polls the pipes, the probe and `extras` (with `watch_main`: the main process's
    /// exit and the tracer's news too) for up to `wait`, then serves the marks that came.
    /// Returns true when the harness itself was asked to stop.
    fn wait(
        &mut self,
        wait: Duration,
        extras: &[(BorrowedFd, PollFlags)],
        watch_main: bool,
    ) -> Result<bool, RunError> {
        let mut all = extras.to_vec();
        if watch_main {
            all.push((self.pidfd.as_fd(), PollFlags::IN));
            if let Some(wake) = &self.wake {
                all.push((wake.as_fd(), PollFlags::IN));
            }
        }
        if let Some(fd) = self.probe.fd() {
            all.push((fd, PollFlags::IN));
        }
        let interrupted = wait_io(&mut self.pipes, wait, &all)?;
        drop(all);
        self.serve_marks();
        Ok(interrupted)
    }

    /// Reads the marks the target has made, strikes at the one a probe strike is due at,
    /// and lets each `mark` call return. A delay strike due by then is sent first: the
    /// target cannot get past a mark made after a delay's moment (its clock's event, a
    /// handler or an exec, seen before the mark) without that strike.
    fn serve_marks(&mut self) {
        for line in self.probe.read_lines() {
            self.fire_due_strikes();
            let mark = Mark::parse(&line, self.now());
            self.strike_at_mark(&mark.name);
            if self.marks.len() < MARK_CAP {
                self.marks.push(mark);
            }
            self.probe.reply();
        }
    }

    /// Counts a mark for the probe strike whose turn it is, and sends that strike when
    /// this is its mark, waiting (bounded) until the signal has been delivered.
    fn strike_at_mark(&mut self, name: &str) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let index = progress.next;
        let Some(Point::Probe { name: wanted, nth }) = self.plan.get(index).map(|s| &s.point)
        else {
            return;
        };
        if wanted != name {
            return;
        }
        self.mark_counts[index] += 1;
        if self.mark_counts[index] != *nth {
            return;
        }
        let sent = self.send(&mut progress, index);
        drop(progress);
        if sent {
            let signal = self.plan[index].signal.number();
            let until = Instant::now() + DELIVERY_WAIT;
            while Instant::now() < until
                && !self.main_exited()
                && procfs::pending(self.pid, signal) == Some(true)
            {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    /// Sends plan strike `index` if the target is still alive, records it, and moves the
    /// plan on. Returns whether the signal was sent. It goes to the main process, or for a
    /// strike limited to a program, to the first process alive that runs it (none: it is
    /// not sent).
    fn send(&self, progress: &mut Progress, index: usize) -> bool {
        let strike = &self.plan[index];
        progress.next += 1;
        // A signal to a process that has already exited (a zombie) would "succeed"
        // without reaching anything: check first, and record the strike as missed.
        if self.main_exited() {
            return false;
        }
        let chosen = match &strike.process {
            Some(selector @ ProcessSelector::Program(_)) => {
                // Only the tracer knows what each process runs; such a strike needs it.
                match self
                    .link
                    .as_ref()
                    .and_then(|link| link.first_selected(selector, self.pid))
                {
                    Some(process) => Some(process),
                    None => {
                        progress.records[index].unmatched = true;
                        return false;
                    }
                }
            }
            Some(ProcessSelector::Main) | None => None,
        };
        let struck = chosen.clone().unwrap_or_else(|| self.main_process());
        progress.records[index].caught = procfs::catches(struck.pid, strike.signal.number());
        let sig = rustix::process::Signal::from_named_raw(strike.signal.number())
            .expect("a named signal");
        // Stamped before the send: the tracer, on its own thread, may record the delivery
        // before this thread runs again, and a delivery must never precede its sending.
        let at = self.start.elapsed();
        let pid = |pid: i32| Pid::from_raw(pid).ok_or(rustix::io::Errno::SRCH);
        let sent = match (strike.to, &chosen) {
            (Recipient::Process, None) => pidfd_send_signal(&self.pidfd, sig),
            // By pid: it was alive and unreaped a moment ago, and a pid is not reused
            // before the tracer has reaped it and the kernel has gone round every other.
            (Recipient::Process, Some(p)) => {
                pid(p.pid).and_then(|p| rustix::process::kill_process(p, sig))
            }
            (Recipient::Group, None) => {
                rustix::process::kill_process_group(Pid::from_raw(self.pid).unwrap(), sig)
            }
            // Its own group: the target's, unless it made one of its own.
            (Recipient::Group, Some(p)) => procfs::stat(p.pid)
                .ok_or(rustix::io::Errno::SRCH)
                .and_then(|s| pid(s.pgid))
                .and_then(|g| rustix::process::kill_process_group(g, sig)),
        };
        if sent.is_err() {
            return false;
        }
        progress.records[index].sent_at = Some(at);
        progress.records[index].struck = Some(struck);
        if let Some(link) = &self.link {
            link.struck.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        true
    }

    /// Whether a strike has reached the main process (or its group).
    fn main_struck(&self) -> bool {
        self.progress().records.iter().any(|r| {
            r.sent_at.is_some()
                && (r.to == Recipient::Group || r.struck.as_ref().is_none_or(|p| p.pid == self.pid))
        })
    }

    /// Sends the scenario's stop to the main process and records it.
    fn send_stop(&mut self, signal: Signal) {
        let sig = rustix::process::Signal::from_named_raw(signal.number()).expect("a named signal");
        let at = self.now();
        if pidfd_send_signal(&self.pidfd, sig).is_ok() {
            self.serving.stop = Some(StopRecord {
                signal,
                sent_at: at,
            });
        }
    }

    /// The main process and the program it runs: as the tracer last saw it exec, or the
    /// program it was started with.
    fn main_process(&self) -> StruckProcess {
        self.link
            .as_ref()
            .and_then(|link| link.tracee(self.pid))
            .filter(|p| !p.program.is_empty())
            .unwrap_or_else(|| StruckProcess {
                pid: self.pid,
                program: self.main_program.clone(),
            })
    }

    /// Empties the tracer's wake-up pipe (its news is in `progress`).
    fn drain_wake(&self) {
        if let Some(wake) = &self.wake {
            let mut buf = [0u8; 64];
            while matches!(rustix::io::read(wake, &mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Runs the case until the main process has exited and the tree is gone or killed.
    fn drive(&mut self, tree: &Tree, limits: Limits) -> Result<Ended, RunError> {
        let mut killed = None;
        // Phase 1: the main process is alive.
        loop {
            self.drain_wake();
            self.watch_handlers();
            self.serving.step(self.start, &self.pipes, &self.marks);
            self.fire_due_strikes();
            let (bound, reason) = match self.drain_bound(limits) {
                Some(bound) => (bound, KillReason::DrainOverran),
                None => (limits.timeout, KillReason::TimedOut),
            };
            if self.main_exited() {
                break;
            }
            let now = self.now();
            if now >= bound {
                tree.kill(&self.pidfd);
                killed = Some(HarnessKill { reason, at: now });
                break;
            }
            let struck = self.drain_bound(limits).is_some();
            if !struck && self.serving.never_ready(now) {
                tree.kill(&self.pidfd);
                killed = Some(HarnessKill {
                    reason: KillReason::NeverReady,
                    at: now,
                });
                break;
            }
            // A strike that hit another process of the tree (a worker) has not stopped
            // the main one: its stop is still due.
            if !self.main_struck()
                && let Some(signal) = self.serving.stop_due(now)
            {
                self.send_stop(signal);
                // The drain is bounded from the stop now: look again before sleeping.
                continue;
            }
            let wait = [self.next_wake(), self.serving.next_wake(), Some(bound)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(bound)
                .saturating_sub(now);
            let mut fds_wait = wait.max(Duration::from_micros(50));
            if !self.watch.is_empty() || self.waiting_for_handler() {
                fds_wait = fds_wait.min(HANDLER_POLL);
            }
            if let Some(interval) = self.serving.poll_interval() {
                fds_wait = fds_wait.min(interval);
            }
            let interrupted = if self.serving.is_idle() {
                self.wait(fds_wait, &[], true)?
            } else {
                // A client that ends may make the stop due.
                let wake = self.serving.wake_fd().try_clone_to_owned()?;
                self.wait(fds_wait, &[(wake.as_fd(), PollFlags::IN)], true)?
            };
            if interrupted {
                return Err(RunError::Interrupted);
            }
        }
        // The main process has exited (or is being killed).
        let exited_at = self.now();

        // Phase 2: the rest of the tree. What ends within the grace is part of the
        // shutdown; what still runs after it is left over. After a strike the leftovers
        // may still drain until the kill bound; with none, nothing is waited for.
        let mut leftovers = Vec::new();
        let mut tree_gone_at = None;
        if killed.is_none() {
            let bound = self.drain_bound(limits);
            let grace_end = match bound {
                Some(bound) => (exited_at + limits.grace).min(bound),
                None => exited_at + limits.grace,
            };
            if tree.others().is_empty() {
                tree_gone_at = Some(exited_at);
            } else if tree.wait_empty(self.start + grace_end, |d, extras| {
                self.wait(d, extras, false)
            })? {
                tree_gone_at = Some(self.now());
            } else {
                leftovers = tree
                    .others()
                    .into_iter()
                    .map(|pid| ProcessInfo {
                        pid,
                        command: procfs::command_line(pid),
                    })
                    .collect();
                let drained = match bound {
                    Some(bound) => tree
                        .wait_empty(self.start + bound, |d, extras| self.wait(d, extras, false))?,
                    None => false,
                };
                if drained {
                    tree_gone_at = Some(self.now());
                } else {
                    tree.kill(&self.pidfd);
                    killed = Some(HarnessKill {
                        reason: if bound.is_some() {
                            KillReason::DrainOverran
                        } else {
                            KillReason::Leftovers
                        },
                        at: self.now(),
                    });
                }
            }
        }
        // Phase 3: make sure everything is gone, then read the pipes to their end.
        if killed.is_some() {
            let until = Instant::now() + Duration::from_secs(10);
            if !tree.wait_empty(until, |d, extras| self.wait(d, extras, false))? {
                tree.kill(&self.pidfd);
            }
        }
        let until = Instant::now() + Duration::from_secs(2);
        while self.pipes.iter().any(|p| p.fd.is_some()) && Instant::now() < until {
            if self.wait(Duration::from_millis(50), &[], false)? {
                return Err(RunError::Interrupted);
            }
        }
        Ok(Ended {
            exited_at,
            tree_gone_at,
            killed,
            leftovers,
        })
    }

    /// Whether the next strike is a delay waiting for a handler to appear.
    fn waiting_for_handler(&self) -> bool {
        let progress = self.progress();
        let next = progress.next;
        next < self.plan.len()
            && matches!(
                self.plan[next].point,
                Point::Delay {
                    clock: Clock::Handler(_),
                    ..
                }
            )
            && progress.records[next].clock_started_at.is_none()
    }

    /// Records when handlers of watched signals first appear.
    fn watch_handlers(&mut self) {
        if self.watch.is_empty() {
            return;
        }
        let Some(mask) = procfs::caught_signals(self.pid) else {
            return;
        };
        let now = self.now();
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        self.watch.retain(|signal| {
            let caught = mask & (1 << (signal.number() - 1)) != 0;
            if caught {
                progress.handlers.entry(*signal).or_insert(now);
            }
            !caught
        });
    }

    /// When the loop must look again: the next delay strike's due time.
    fn next_wake(&self) -> Option<Duration> {
        let progress = self.progress();
        let record = progress.records.get(progress.next)?;
        let Point::Delay { after, .. } = self.plan[progress.next].point else {
            return None; // syscall and probe strikes are not due at a time
        };
        Some(record.clock_started_at? + after)
    }

    fn fire_due_strikes(&mut self) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        while progress.next < self.plan.len() {
            let index = progress.next;
            let strike = &self.plan[index];
            if let Point::Request { nth } = strike.point {
                // Counted from when it became this strike's turn: the first strike's
                // from the clients' start, a later one's from the strike before.
                let sent = self.serving.requests_sent();
                let due = *self.request_bases[index].get_or_insert(sent) + nth;
                self.serving.wake_at_request(due);
                if self.serving.requests_sent() < due {
                    return;
                }
                self.send(&mut progress, index);
                continue;
            }
            let Point::Delay { after, clock } = &strike.point else {
                // The tracer fires syscall strikes, `serve_marks` probe strikes; each
                // moves `next` on.
                return;
            };
            let now = self.start.elapsed();
            if progress.records[index].clock_started_at.is_none() {
                match clock {
                    Clock::Spawn => progress.records[index].clock_started_at = Some(Duration::ZERO),
                    Clock::Previous => {
                        // The strike before has been dealt with (it is this one's turn);
                        // if it never reached the target, count from now.
                        let before = index
                            .checked_sub(1)
                            .and_then(|i| progress.records[i].sent_at);
                        progress.records[index].clock_started_at = Some(before.unwrap_or(now));
                    }
                    Clock::Handler(signal) => {
                        // The tracer saw the rt_sigaction; else /proc shows the handler,
                        // and the time is taken after it did: never before it existed.
                        let seen = progress.handlers.get(signal).copied().or_else(|| {
                            procfs::catches(self.pid, signal.number()).then(|| self.start.elapsed())
                        });
                        match seen {
                            Some(at) => progress.records[index].clock_started_at = Some(at),
                            None => return,
                        }
                    }
                    Clock::Ready => match self.serving.ready_at {
                        Some(at) => progress.records[index].clock_started_at = Some(at),
                        None => return,
                    },
                    Clock::Exec(program) => {
                        // The tracer wakes this thread when it sees a new program's exec.
                        let seen = progress
                            .execs
                            .iter()
                            .find(|(name, _)| program.matches(name))
                            .map(|(_, at)| *at);
                        match seen {
                            Some(at) => progress.records[index].clock_started_at = Some(at),
                            None => return,
                        }
                    }
                }
            }
            if now < progress.records[index].clock_started_at.unwrap() + *after {
                return;
            }
            self.send(&mut progress, index);
        }
    }

    /// Reaps the main process (waiting for it: it has exited or been killed).
    fn reap(&mut self) -> Option<ExitStatus> {
        loop {
            match waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED) {
                Ok(Some(status)) => {
                    return Some(match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => ExitStatus::Code(code),
                        (None, Some(sig)) => ExitStatus::Signal(Signal::from_number(sig)?),
                        _ => return None,
                    });
                }
                Ok(None) => return None,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
    }
}
