//! The tracer: ptrace plus a seccomp filter, so a target stops only at the syscalls of the
//! classes a case needs, and a strike lands exactly at the entry or exit of one of them.
//!
//! ```text
//!  tracer thread                                 target (and every child and thread)
//!  ─────────────                                 ─────────────────────────────────
//!  spawn ─────────────── pre_exec: PTRACE_TRACEME, seccomp filter ──▶ exec ─▶ SIGTRAP stop
//!  SETOPTIONS (TRACESECCOMP|FORK|VFORK|CLONE|EXEC|SYSGOOD|EXITKILL), CONT
//!  loop waitpid(-1, __WALL|__WNOTHREAD):
//!    seccomp stop     decode (class, paths), count, record; a strike due here?
//!                       entry: rewind onto the `syscall` instruction, signal, CONT
//!                       exit:  PTRACE_SYSCALL, then at the exit stop: signal, CONT
//!    fork/clone/exec  follow the new task, note the process tree
//!    signal stop      pass the signal on (the harness's own strikes come through here)
//!    exit             note the status; the main process's is the case's
//!  until no tracee is left (ECHILD)
//! ```
//!
//! ptrace is per thread: the thread that spawned the target is its tracer, so this loop
//! runs on a thread of its own and the case thread (pipes, timers, delay strikes) talks to
//! it through [`Link`]. `__WNOTHREAD` keeps each tracer to its own tracees, so cases can
//! run in parallel threads. An entry strike "rewinds" the call (skips it and moves the
//! instruction pointer back onto it) before signalling: the signal is then delivered
//! before the call runs, exactly as if it had arrived a moment earlier, and a handler that
//! returns lets the call run normally. Filters cannot be removed, so the tracer serves the
//! tree until the last tracee is gone; EXITKILL kills the tree if the harness dies.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::ptrace::{self, Options};
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use super::procfs;
use super::run::{Progress, spawn_registered};
use super::seccomp::Filter;
use crate::outcome::{HandlerIo, ProcessTrace};
use crate::scenario::{ExitStatus, PathGlob, Recipient, Signal};
use crate::syscalls::{
    Call, ClassSet, Delivered, Event, InstalledHandler, SyscallCensus, SyscallClass, TracedProcess,
    What, When, matches,
};

/// How many events per process the outcome keeps from before the first strike.
pub const WINDOW_BEFORE: usize = 8;
/// How many events per process the outcome keeps from after the first strike.
pub const WINDOW_AFTER: usize = 24;
/// How many events a census keeps in order (the counts are always complete).
pub const EVENT_CAP: usize = 20_000;

/// What to trace and where to strike.
#[derive(Debug, Clone)]
pub struct TraceSetup {
    /// The classes the filter traps.
    pub classes: ClassSet,
    /// The plan's syscall strikes.
    pub strikes: Vec<SyscallStrike>,
    /// Paths under this directory are shown relative to it.
    pub root: PathBuf,
    /// Keep every event in order (census, `killpoint trace`), not only the windows
    /// around the first strike.
    pub keep_events: bool,
    /// Follow each signal handler from its delivery to its `rt_sigreturn` and note the
    /// files it writes or syncs (`handler-no-io`).
    pub handler_io: bool,
}

/// A strike of the plan that lands at a syscall.
#[derive(Debug, Clone)]
pub struct SyscallStrike {
    /// Its index in the plan: it fires only when every strike before it has.
    pub index: usize,
    pub signal: Signal,
    pub to: Recipient,
    pub class: SyscallClass,
    pub path: Option<PathGlob>,
    /// Which matching call, from 1 over the whole tree.
    pub nth: u64,
    pub when: When,
}

/// What the case thread and the tracer share.
pub struct Link {
    pub progress: Arc<Mutex<Progress>>,
    /// Set by whoever sends the first strike: the trace windows switch from "before" to
    /// "after" there.
    pub struck: AtomicBool,
    /// The live traced processes, so that killing the tree can reach every one of them.
    pub tracees: Mutex<BTreeSet<i32>>,
    /// Written to (one byte) when the tracer has news for the case thread.
    wake: OwnedFd,
}

impl Link {
    /// A link and the read end of its wake-up pipe.
    pub fn new(progress: Arc<Mutex<Progress>>) -> io::Result<(Arc<Link>, OwnedFd)> {
        let (read, write) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(io::Error::from)?;
        let link = Link {
            progress,
            struck: AtomicBool::new(false),
            tracees: Mutex::new(BTreeSet::new()),
            wake: write,
        };
        Ok((Arc::new(link), read))
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, b"!");
    }

    pub fn tracees(&self) -> Vec<i32> {
        self.tracees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// What the tracer saw of a whole run.
#[derive(Debug, Default)]
pub struct TraceLog {
    /// How the target's main process ended.
    pub main_status: Option<ExitStatus>,
    pub census: SyscallCensus,
    /// Every event in order (with `keep_events`), up to [`EVENT_CAP`].
    pub events: Vec<Event>,
    pub events_dropped: u64,
    /// Per process: the events just before the first strike and those after it.
    pub windows: Vec<ProcessTrace>,
    /// A ptrace request that failed in a way that makes the trace incomplete.
    pub failure: Option<String>,
    /// Files written or synced inside signal handlers (with `handler_io`).
    pub handler_io: Vec<HandlerIo>,
}

/// A running traced target.
pub struct Traced {
    pub child: Child,
    pub start: Instant,
    /// The main process's pidfd, opened before the tracer could reap it.
    pub pidfd: std::os::fd::OwnedFd,
    pub thread: JoinHandle<TraceLog>,
}

/// Why a target cannot be traced.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "cannot trace `{program}`: {step} failed: {error}\n  {hint}\n  Delay strikes (`at = {{ after = … }}`) work without ptrace; syscall strikes and `after_handler` need it."
    )]
    Unavailable {
        program: String,
        step: &'static str,
        error: io::Error,
        hint: String,
    },
    #[error("cannot start `{program}`: {error}")]
    Spawn { program: String, error: io::Error },
    #[error("the tracer thread could not start: {0}")]
    Thread(io::Error),
}

/// The steps of the traced child's set-up, reported back through a pipe when one fails.
const STEP_TRACEME: u8 = 1;
const STEP_SECCOMP: u8 = 2;

/// Spawns `command` under the tracer. The returned thread serves the target's tree until
/// it has exited, then returns what it saw.
pub fn spawn(
    mut command: Command,
    program: String,
    setup: TraceSetup,
    link: Arc<Link>,
) -> Result<Traced, TraceError> {
    if SyscallClass::Write.syscalls().is_empty() {
        return Err(TraceError::Unavailable {
            program,
            step: "choosing syscalls",
            error: io::Error::from(io::ErrorKind::Unsupported),
            hint: "syscall strikes are implemented for x86_64 Linux only".into(),
        });
    }
    let filter = Filter::new(&setup.classes);
    let (step_read, step_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| TraceError::Spawn {
            program: program.clone(),
            error: e.into(),
        })?;
    // SAFETY: the closure runs between fork and exec and makes only system calls (ptrace,
    // seccomp, prctl, write) on values prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let fail = |step: u8| {
                let error = io::Error::last_os_error();
                let _ = rustix::io::write(&step_write, &[step]);
                Err(error)
            };
            let null = std::ptr::null_mut::<libc::c_void>();
            if libc::ptrace(libc::PTRACE_TRACEME, 0, null, null) != 0 {
                return fail(STEP_TRACEME);
            }
            if filter.install().is_err() {
                return fail(STEP_SECCOMP);
            }
            Ok(())
        });
    }
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("killpoint-tracer".into())
        .spawn(move || {
            let child = match spawn_registered(&mut command) {
                Ok(child) => child,
                Err(error) => {
                    let _ = sender.send(Err(error));
                    return TraceLog::default();
                }
            };
            let start = Instant::now();
            let main = child.id() as i32;
            // The pidfd is opened here, before this thread can reap the child: a target
            // that ends at once is reaped by `serve` before the case thread could open it.
            let pidfd = match rustix::process::Pid::from_raw(main)
                .ok_or(rustix::io::Errno::SRCH)
                .and_then(|pid| {
                    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                }) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = sender.send(Err(e.into()));
                    return TraceLog::default();
                }
            };
            if sender.send(Ok((child, start, pidfd))).is_err() {
                return TraceLog::default();
            }
            Tracer::new(main, start, setup, link).serve()
        })
        .map_err(TraceError::Thread)?;
    match receiver.recv() {
        Ok(Ok((child, start, pidfd))) => Ok(Traced {
            child,
            start,
            pidfd,
            thread,
        }),
        Ok(Err(error)) => {
            let _ = thread.join();
            let mut step = [0u8];
            let step = match rustix::io::read(&step_read, &mut step) {
                Ok(1) => step[0],
                _ => 0,
            };
            Err(match step {
                STEP_TRACEME => TraceError::Unavailable {
                    program,
                    step: "ptrace(PTRACE_TRACEME)",
                    hint: why_no_ptrace(),
                    error,
                },
                STEP_SECCOMP => TraceError::Unavailable {
                    program,
                    step: "installing the seccomp filter",
                    hint: "the kernel or a container policy refuses seccomp filters (CONFIG_SECCOMP_FILTER, or a sandbox that forbids seccomp(2))".into(),
                    error,
                },
                _ => TraceError::Spawn { program, error },
            })
        }
        Err(_) => {
            let _ = thread.join();
            Err(TraceError::Thread(io::Error::other(
                "the tracer thread ended early",
            )))
        }
    }
}

/// The likeliest reason ptrace is refused, from what this machine shows.
fn why_no_ptrace() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let tracer = status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0);
    if tracer != 0 {
        return format!(
            "killpoint is itself being traced by pid {tracer} ({}), and a process has only one tracer: run killpoint outside strace, gdb or `nextest --tracer`",
            procfs::command_line(tracer)
        );
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if scope == "3" {
        return "ptrace is disabled on this machine (kernel.yama.ptrace_scope = 3; only a reboot lowers it)".into();
    }
    "ptrace is refused here: a container policy (a seccomp profile, AppArmor, or missing CAP_SYS_PTRACE) may forbid it; allow ptrace for the container, e.g. `--cap-add SYS_PTRACE --security-opt seccomp=unconfined`".into()
}

/// What the tracer knows of one task (a thread; a process is its leader thread).
struct Task {
    tgid: i32,
    /// Its first stop (SIGSTOP for a new task, SIGTRAP after exec for the target) is
    /// still to come and must be swallowed.
    started: bool,
    /// A call rewound by an entry strike: when it comes again, it is the same call.
    replay: Option<Replay>,
    /// What to do at this task's next syscall-exit stop.
    at_exit: Option<AtExit>,
    /// The signal handlers it is running, innermost last, with when each was entered:
    /// while there is one, the task stops at every syscall (PTRACE_SYSCALL) until the
    /// handler's `rt_sigreturn`.
    handlers: Vec<(Signal, Duration)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replay {
    nr: u64,
    args: [u64; 6],
    ip: u64,
    sp: u64,
}

enum AtExit {
    /// Fire the plan's strike `strike`, landing at `event`.
    Strike { strike: usize, event: Event },
    /// See whether the rt_sigaction installing a handler for this signal succeeded.
    Handler(Signal),
}

#[derive(Default)]
struct Window {
    before: VecDeque<Event>,
    after: Vec<Event>,
    more_after: u64,
}

struct Tracer {
    main: i32,
    start: Instant,
    setup: TraceSetup,
    link: Arc<Link>,
    tasks: HashMap<i32, Task>,
    /// Matching calls seen so far, per syscall strike.
    counts: Vec<u64>,
    seq: u64,
    log: TraceLog,
    windows: HashMap<i32, Window>,
    /// The order processes appeared in, for the windows.
    order: Vec<i32>,
    root: PathBuf,
    /// Tasks whose exit was handled: a fork event for one of them (the child can exit
    /// before its parent's event is seen) must not bring it back.
    dead: std::collections::HashSet<i32>,
}

/// A decoded `waitpid` status.
enum Stop {
    Exited(ExitStatusRaw),
    Event(i32),
    /// A syscall-entry or -exit stop (PTRACE_SYSCALL).
    Syscall,
    Signal(i32),
}

enum ExitStatusRaw {
    Code(i32),
    Signal(i32),
}

impl Tracer {
    fn new(main: i32, start: Instant, setup: TraceSetup, link: Arc<Link>) -> Tracer {
        let root = std::fs::canonicalize(&setup.root).unwrap_or_else(|_| setup.root.clone());
        let mut census = SyscallCensus::new(setup.classes.clone());
        census.processes.push(TracedProcess {
            pid: main,
            parent: None,
            command: String::new(),
            threads: 0,
            status: None,
            started_at: Duration::ZERO,
            exited_at: None,
            signals: Vec::new(),
        });
        link.tracees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(main);
        let mut tasks = HashMap::new();
        tasks.insert(
            main,
            Task {
                tgid: main,
                started: false,
                replay: None,
                at_exit: None,
                handlers: Vec::new(),
            },
        );
        Tracer {
            main,
            start,
            counts: vec![0; setup.strikes.len()],
            setup,
            link,
            tasks,
            seq: 0,
            log: TraceLog {
                census,
                ..TraceLog::default()
            },
            windows: HashMap::new(),
            order: vec![main],
            root,
            dead: Default::default(),
        }
    }

    /// Serves the tree until no tracee is left.
    fn serve(mut self) -> TraceLog {
        loop {
            let mut raw = 0;
            // SAFETY: waitpid with a valid pointer to an int.
            let tid = unsafe { libc::waitpid(-1, &mut raw, libc::__WALL | libc::__WNOTHREAD) };
            if tid < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => break,
                    _ => {
                        self.log.failure =
                            Some(format!("waitpid failed: {}", io::Error::last_os_error()));
                        break;
                    }
                }
            }
            match decode_status(raw) {
                Stop::Exited(status) => self.exited(tid, status),
                Stop::Event(event) => self.ptrace_event(tid, event),
                Stop::Syscall => self.syscall_stop(tid),
                Stop::Signal(signal) => self.signal_stop(tid, signal),
            }
        }
        self.finish()
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn finish(mut self) -> TraceLog {
        let mut windows = std::mem::take(&mut self.windows);
        self.log.windows = self
            .order
            .iter()
            .filter_map(|pid| {
                let w = windows.remove(pid)?;
                let command = self
                    .log
                    .census
                    .processes
                    .iter()
                    .rev()
                    .find(|p| p.pid == *pid)
                    .map(|p| p.command.clone())
                    .unwrap_or_default();
                Some(ProcessTrace {
                    pid: *pid,
                    command,
                    before: w.before.into(),
                    after: w.after,
                    more_after: w.more_after,
                })
            })
            .collect();
        self.log
    }

    fn record(&mut self, pid: i32, tid: i32, what: What) -> Event {
        self.seq += 1;
        let event = Event {
            seq: self.seq,
            at: self.now(),
            pid,
            tid,
            what,
        };
        if self.setup.keep_events {
            if self.log.events.len() < EVENT_CAP {
                self.log.events.push(event.clone());
            } else {
                self.log.events_dropped += 1;
            }
        } else {
            let window = self.windows.entry(pid).or_default();
            if self.link.struck.load(Ordering::SeqCst) {
                if window.after.len() < WINDOW_AFTER {
                    window.after.push(event.clone());
                } else {
                    window.more_after += 1;
                }
            } else {
                if window.before.len() == WINDOW_BEFORE {
                    window.before.pop_front();
                }
                window.before.push_back(event.clone());
            }
        }
        event
    }

    fn resume(&self, tid: i32, signal: i32) {
        let request = if self.tasks.get(&tid).is_some_and(|t| !t.handlers.is_empty()) {
            libc::PTRACE_SYSCALL // in a handler: watch every call until rt_sigreturn
        } else {
            libc::PTRACE_CONT
        };
        // SAFETY: ptrace on a tracee in a ptrace-stop; a vanished tracee gives ESRCH.
        unsafe {
            libc::ptrace(
                request,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                signal as usize as *mut libc::c_void,
            )
        };
    }

    fn resume_to_exit(&self, tid: i32) {
        // SAFETY: as `resume`.
        unsafe {
            libc::ptrace(
                libc::PTRACE_SYSCALL,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
    }

    fn exited(&mut self, tid: i32, raw: ExitStatusRaw) {
        self.dead.insert(tid);
        let Some(task) = self.tasks.remove(&tid) else {
            return;
        };
        if task.tgid != tid {
            return; // a thread; its process goes on
        }
        let status = match raw {
            ExitStatusRaw::Code(code) => Some(ExitStatus::Code(code)),
            ExitStatusRaw::Signal(n) => Signal::from_number(n).map(ExitStatus::Signal),
        };
        let now = self.now();
        if let Some(status) = status {
            self.record(tid, tid, What::Exit { status });
        }
        if let Some(process) = self.log.census.process(tid) {
            process.status = status;
            process.exited_at = Some(now);
        }
        self.link
            .tracees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tid);
        if tid == self.main {
            self.log.main_status = status;
            self.link.wake();
        }
    }

    fn signal_stop(&mut self, tid: i32, signal: i32) {
        if !self.tasks.contains_key(&tid) {
            self.dead.remove(&tid); // a new task, even if its pid was used before
        }
        let task = self.tasks.entry(tid).or_insert_with(|| Task {
            tgid: procfs::tgid(tid).unwrap_or(tid),
            started: false,
            replay: None,
            at_exit: None,
            handlers: Vec::new(),
        });
        if !task.started {
            task.started = true;
            if tid == self.main && signal == libc::SIGTRAP {
                // The stop after exec: from here on, follow everything.
                let options = Options::PTRACE_O_TRACESYSGOOD
                    | Options::PTRACE_O_TRACESECCOMP
                    | Options::PTRACE_O_TRACEFORK
                    | Options::PTRACE_O_TRACEVFORK
                    | Options::PTRACE_O_TRACECLONE
                    | Options::PTRACE_O_TRACEEXEC
                    | Options::PTRACE_O_EXITKILL;
                if let Err(e) = ptrace::setoptions(Pid::from_raw(tid), options) {
                    self.log.failure = Some(format!("PTRACE_SETOPTIONS failed: {e}"));
                }
                if let Some(p) = self.log.census.process(tid) {
                    p.command = procfs::command_line(tid);
                }
                self.resume(tid, 0);
                return;
            }
            if signal == libc::SIGSTOP {
                self.resume(tid, 0); // a new task's initial stop
                return;
            }
        }
        // A signal-delivery stop, or a group stop (no siginfo): pass the signal on.
        if ptrace::getsiginfo(Pid::from_raw(tid)).is_err() {
            self.resume(tid, 0);
            return;
        }
        let tgid = task.tgid;
        self.note_restart(tid);
        if let Some(signal) = Signal::from_number(signal) {
            self.record(tgid, tid, What::Signal { signal });
            if signal.number() != libc::SIGCHLD {
                let delivered = Delivered {
                    signal,
                    at: self.now(),
                    handled: procfs::catches(tgid, signal.number()),
                };
                if let Some(p) = self.log.census.process(tgid) {
                    p.signals.push(delivered);
                }
                if self.setup.handler_io
                    && delivered.handled
                    && let Some(task) = self.tasks.get_mut(&tid)
                {
                    task.handlers.push((signal, delivered.at));
                }
            }
        }
        self.resume(tid, signal);
    }

    fn ptrace_event(&mut self, tid: i32, event: i32) {
        let pid = Pid::from_raw(tid);
        match event {
            libc::PTRACE_EVENT_SECCOMP => return self.syscall_entry(tid),
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(pid) {
                    self.new_task(tid, new as i32);
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                // A non-leader thread that execs takes the leader's tid.
                if let Ok(old) = ptrace::getevent(pid)
                    && old as i32 != tid
                {
                    self.tasks.remove(&(old as i32));
                }
                let command = procfs::command_line(tid);
                if let Some(p) = self.log.census.process(tid) {
                    p.command = command.clone();
                }
                self.record(tid, tid, What::Exec { command });
            }
            _ => {}
        }
        // A fork, clone or exec stop comes before the call's exit stop: resuming with
        // PTRACE_CONT would lose it.
        if self.tasks.get(&tid).is_some_and(|t| t.at_exit.is_some()) {
            self.resume_to_exit(tid);
        } else {
            self.resume(tid, 0);
        }
    }

    fn new_task(&mut self, parent_tid: i32, new: i32) {
        let parent = self.tasks.get(&parent_tid).map_or(parent_tid, |t| t.tgid);
        if self.dead.contains(&new) {
            return; // it has come and gone already
        }
        let Some(tgid) = self
            .tasks
            .get(&new)
            .map(|t| t.tgid)
            .or_else(|| procfs::tgid(new))
        else {
            return; // gone before we could look
        };
        // Its first stop may already have come (and been swallowed) before this event.
        self.tasks.entry(new).or_insert(Task {
            tgid,
            started: false,
            replay: None,
            at_exit: None,
            handlers: Vec::new(),
        });
        if tgid == new {
            self.link
                .tracees
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(new);
            let command = self
                .log
                .census
                .process(parent)
                .map(|p| p.command.clone())
                .unwrap_or_default();
            let started_at = self.now();
            self.log.census.processes.push(TracedProcess {
                pid: new,
                parent: Some(parent),
                command,
                threads: 0,
                status: None,
                started_at,
                exited_at: None,
                signals: Vec::new(),
            });
            self.order.push(new);
        } else if let Some(p) = self.log.census.process(tgid) {
            p.threads += 1;
        }
    }

    fn syscall_entry(&mut self, tid: i32) {
        let Ok(info) = ptrace::syscall_info(Pid::from_raw(tid)) else {
            return self.resume(tid, 0);
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
            return self.resume(tid, 0);
        }
        // SAFETY: `op` says the seccomp member of the union is the one filled in.
        let (nr, args) = unsafe { (info.u.seccomp.nr, info.u.seccomp.args) };
        let replay = Replay {
            nr,
            args,
            ip: info.instruction_pointer,
            sp: info.stack_pointer,
        };
        let Some(task) = self.tasks.get_mut(&tid) else {
            return self.resume(tid, 0);
        };
        // The call an entry strike rewound, made again after the handler returned: it is
        // the same call, not the next one, so it is shown but not counted.
        let again = task.replay == Some(replay);
        if again {
            task.replay = None;
        }
        let tgid = task.tgid;
        let Some((class, name)) = SyscallClass::of(nr as i64) else {
            return self.resume(tid, 0);
        };
        let mut call = self.decode(tid, class, name, &args);
        if again {
            call.detail = join_detail(&call.detail, AGAIN);
            self.record(tgid, tid, What::Syscall(call));
            // An exit strike waiting for this call's real return.
            if self.tasks.get(&tid).is_some_and(|t| t.at_exit.is_some()) {
                return self.resume_to_exit(tid);
            }
            return self.resume(tid, 0);
        }
        let handler = (class == SyscallClass::Sigaction)
            .then(|| installs_handler(tid, &args))
            .flatten();
        // Is a strike due at this call? Count it for the syscall strike whose turn it is:
        // a plan's later strike counts its calls from the strike before it.
        // Only the strike whose turn it is counts the call: a plan's later strike counts
        // from the strike before it. Plan progress is read only for a call some strike
        // would count.
        let counts = |s: &SyscallStrike| s.class == class && matches(s.path.as_ref(), &call.paths);
        let mut due = None;
        if self.setup.strikes.iter().any(counts) {
            let turn = self.turn();
            if let Some(i) = self
                .setup
                .strikes
                .iter()
                .position(|s| s.index == turn && counts(s))
            {
                self.counts[i] += 1;
                if self.counts[i] == self.setup.strikes[i].nth {
                    due = Some(i);
                }
            }
        }
        // Only a census (or `killpoint trace`) keeps the counts per class and path; a case
        // throws them away, so it does not pay for them at every stop.
        if self.setup.keep_events {
            self.log.census.add_call(&call, self.seq + 1);
        }
        let event = self.record(tgid, tid, What::Syscall(call));

        if let Some(i) = due
            && self.its_turn(i)
        {
            match self.setup.strikes[i].when {
                When::Entry => {
                    self.rewind(tid, nr);
                    self.fire(i, tid, tgid, event);
                    if let Some(task) = self.tasks.get_mut(&tid) {
                        task.replay = Some(replay);
                    }
                    return self.resume(tid, 0);
                }
                When::Exit => {
                    if let Some(task) = self.tasks.get_mut(&tid) {
                        task.at_exit = Some(AtExit::Strike { strike: i, event });
                    }
                    return self.resume_to_exit(tid);
                }
            }
        }
        if let Some(signal) = handler
            && let Some(task) = self.tasks.get_mut(&tid)
        {
            task.at_exit = Some(AtExit::Handler(signal));
            return self.resume_to_exit(tid);
        }
        self.resume(tid, 0)
    }

    /// A syscall stop: the exit of a call a strike or a handler check waits on, or, in a
    /// signal handler, the entry of any call.
    fn syscall_stop(&mut self, tid: i32) {
        let info = ptrace::syscall_info(Pid::from_raw(tid)).ok();
        match info {
            Some(info) if info.op == libc::PTRACE_SYSCALL_INFO_ENTRY => {
                // SAFETY: `op` says the entry member of the union is the one filled in.
                let (nr, args) = unsafe { (info.u.entry.nr, info.u.entry.args) };
                self.handler_call(tid, nr, &args);
                self.resume(tid, 0)
            }
            _ => self.syscall_exit(tid),
        }
    }

    /// A call made inside a signal handler: its return ends the handler; a write to a
    /// regular file or a sync is noted.
    fn handler_call(&mut self, tid: i32, nr: u64, args: &[u64; 6]) {
        let Some(task) = self.tasks.get_mut(&tid) else {
            return;
        };
        if nr as i64 == libc::SYS_rt_sigreturn {
            task.handlers.pop();
            return;
        }
        let (tgid, Some(&(signal, entered_at))) = (task.tgid, task.handlers.last()) else {
            return;
        };
        let Some((class, name)) = SyscallClass::of(nr as i64) else {
            return;
        };
        if !matches!(class, SyscallClass::Write | SyscallClass::Fsync) {
            return;
        }
        // Pipes and sockets (a self-pipe, a wake-up fd) are how a handler hands work on.
        let fd = args[0] as i32;
        if !std::fs::metadata(format!("/proc/{tid}/fd/{fd}")).is_ok_and(|m| m.is_file()) {
            return;
        }
        let call = self.decode(tid, class, name, args);
        let text = match class {
            SyscallClass::Write => {
                format!("{} {} to {}", call.name, call.detail, call.path_label())
            }
            _ => format!("{} {}", call.name, call.path_label()),
        };
        let at = self.now();
        self.log.handler_io.push(HandlerIo {
            pid: tgid,
            tid,
            signal,
            entered_at,
            at,
            call: text,
        });
    }

    fn syscall_exit(&mut self, tid: i32) {
        let Some(task) = self.tasks.get_mut(&tid) else {
            return self.resume(tid, 0);
        };
        let tgid = task.tgid;
        let action = task.at_exit.take();
        let result = ptrace::syscall_info(Pid::from_raw(tid))
            .ok()
            .filter(|i| i.op == libc::PTRACE_SYSCALL_INFO_EXIT)
            // SAFETY: `op` says the exit member of the union is the one filled in.
            .map(|i| unsafe { i.u.exit.sval });
        // Interrupted by a signal, the call will run again: wait for that return.
        if result.is_some_and(|r| RESTARTS.contains(&r)) {
            if let Some(task) = self.tasks.get_mut(&tid) {
                task.at_exit = action;
            }
            return self.resume(tid, 0);
        }
        match action {
            Some(AtExit::Strike { strike, mut event }) => {
                if let What::Syscall(call) = &mut event.what {
                    call.result = result;
                }
                self.fire(strike, tid, tgid, event);
            }
            Some(AtExit::Handler(signal)) if result == Some(0) => {
                let at = self.now();
                let known = self
                    .log
                    .census
                    .handlers
                    .iter()
                    .any(|h| h.pid == tgid && h.signal == signal);
                if !known {
                    self.log.census.handlers.push(InstalledHandler {
                        signal,
                        pid: tgid,
                        at,
                    });
                }
                let mut progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
                if tgid == self.main && !progress.handlers.contains_key(&signal) {
                    progress.handlers.insert(signal, at);
                    drop(progress);
                    self.link.wake();
                }
            }
            _ => {}
        }
        self.resume(tid, 0)
    }

    /// A trapped call that a signal interrupted will run again (the kernel restarts it):
    /// that run is the same call, not the next one.
    #[cfg(target_arch = "x86_64")]
    fn note_restart(&mut self, tid: i32) {
        let Ok(regs) = ptrace::getregs(Pid::from_raw(tid)) else {
            return;
        };
        let trapped = SyscallClass::of(regs.orig_rax as i64)
            .is_some_and(|(class, _)| self.setup.classes.contains(&class));
        if trapped
            && RESTARTS.contains(&(regs.rax as i64))
            && let Some(task) = self.tasks.get_mut(&tid)
        {
            task.replay = Some(Replay {
                nr: regs.orig_rax,
                args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
                ip: regs.rip,
                sp: regs.rsp,
            });
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn note_restart(&mut self, _tid: i32) {}

    /// The plan strike whose turn it is (every one before it has been dealt with).
    fn turn(&self) -> usize {
        let progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
        progress.next
    }

    /// Whether every strike before plan strike `i` has been dealt with.
    fn its_turn(&self, i: usize) -> bool {
        self.turn() == self.setup.strikes[i].index
    }

    /// Skips the call the task is stopped at and moves it back onto the `syscall`
    /// instruction, so that it runs again once the signal has been dealt with.
    #[cfg(target_arch = "x86_64")]
    fn rewind(&mut self, tid: i32, nr: u64) {
        let pid = Pid::from_raw(tid);
        match ptrace::getregs(pid) {
            Ok(mut regs) => {
                regs.orig_rax = u64::MAX; // -1: do not run the call now
                regs.rax = nr; // the call number, for when it runs again
                regs.rip -= 2; // `syscall` is two bytes long
                if let Err(e) = ptrace::setregs(pid, regs) {
                    self.log.failure = Some(format!("PTRACE_SETREGS failed: {e}"));
                }
            }
            Err(e) => self.log.failure = Some(format!("PTRACE_GETREGS failed: {e}")),
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn rewind(&mut self, _tid: i32, _nr: u64) {
        self.log.failure = Some("entry strikes are implemented for x86_64 only".into());
    }

    /// Sends strike `i`'s signal: to the thread that made the call, or to the group.
    fn fire(&mut self, i: usize, tid: i32, tgid: i32, mut event: Event) {
        let strike = &self.setup.strikes[i];
        let signal = strike.signal.number();
        if let What::Syscall(call) = &mut event.what
            && strike.class == SyscallClass::Write
        {
            add_offset(tid, call);
        }
        let caught = procfs::catches(tgid, signal);
        // SAFETY: plain signal-sending syscalls with integer arguments.
        let sent = unsafe {
            match strike.to {
                // At the thread that made the call, unless it blocks the signal (a program
                // that leaves signals to one `sigwait` thread): then to the process.
                Recipient::Process if procfs::blocks(tid, signal) => libc::kill(tgid, signal) == 0,
                Recipient::Process => libc::syscall(libc::SYS_tgkill, tgid, tid, signal) == 0,
                Recipient::Group => libc::kill(-self.main, signal) == 0,
            }
        };
        let index = strike.index;
        let mut progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
        let record = &mut progress.records[index];
        record.caught = caught;
        record.hit = Some(event);
        if sent {
            record.sent_at = Some(self.start.elapsed());
            self.link.struck.store(true, Ordering::SeqCst);
        }
        progress.next = index + 1;
        drop(progress);
        self.link.wake();
    }

    /// The paths and details of a call, read from the stopped task.
    fn decode(&self, tid: i32, class: SyscallClass, name: &str, a: &[u64; 6]) -> Call {
        let fd = |i: usize| self.fd_path(tid, a[i] as i32);
        let at = |dirfd: usize, path: usize| self.path_arg(tid, Some(a[dirfd] as i32), a[path]);
        let plain = |path: usize| self.path_arg(tid, None, a[path]);
        let (paths, detail) = match (class, name) {
            (SyscallClass::Write, "write") => (vec![fd(0)], bytes(a[2])),
            (SyscallClass::Write, "pwrite64") => {
                (vec![fd(0)], format!("{} at offset {}", bytes(a[2]), a[3]))
            }
            (SyscallClass::Write, "writev") => (vec![fd(0)], iov_bytes(tid, a[1], a[2])),
            (SyscallClass::Write, _) => (
                vec![fd(0)],
                format!("{} at offset {}", iov_bytes(tid, a[1], a[2]), a[3]),
            ),
            (SyscallClass::Fsync, _) => (vec![fd(0)], String::new()),
            (SyscallClass::Rename, "rename") => (vec![plain(0), plain(1)], String::new()),
            (SyscallClass::Rename, _) => (vec![at(0, 1), at(2, 3)], String::new()),
            (SyscallClass::Open, "open") => (vec![plain(0)], open_flags(a[1])),
            (SyscallClass::Open, "creat") => (
                vec![plain(0)],
                open_flags((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64),
            ),
            (SyscallClass::Open, "openat") => (vec![at(0, 1)], open_flags(a[2])),
            (SyscallClass::Open, _) => (
                vec![at(0, 1)],
                read_u64(tid, a[2]).map(open_flags).unwrap_or_default(),
            ),
            (SyscallClass::Close, _) => (vec![fd(0)], String::new()),
            (SyscallClass::Unlink, "unlink") => (vec![plain(0)], String::new()),
            (SyscallClass::Unlink, _) => (
                vec![at(0, 1)],
                if a[2] as i32 & libc::AT_REMOVEDIR != 0 {
                    "directory".into()
                } else {
                    String::new()
                },
            ),
            (SyscallClass::Truncate, "truncate") => (vec![plain(0)], format!("to {}", bytes(a[1]))),
            (SyscallClass::Truncate, _) => (vec![fd(0)], format!("to {}", bytes(a[1]))),
            (SyscallClass::Fork, "clone") => (vec![], clone_kind(a[0])),
            (SyscallClass::Fork, "clone3") => (
                vec![],
                read_u64(tid, a[0]).map(clone_kind).unwrap_or_default(),
            ),
            (SyscallClass::Fork, _) => (vec![], "process".into()),
            (SyscallClass::Sigaction, _) => (vec![], sigaction_detail(tid, a)),
            (SyscallClass::Exit, _) => (vec![], format!("status {}", a[0] as i32)),
        };
        Call {
            class,
            name: name.to_string(),
            fd: fd_arg(class, name).then_some(a[0] as i32),
            paths,
            detail,
            result: None,
        }
    }

    /// The file behind a descriptor of `tid` (threads may have their own fd table).
    fn fd_path(&self, tid: i32, fd: i32) -> String {
        match std::fs::read_link(format!("/proc/{tid}/fd/{fd}")) {
            Ok(target) if target.is_absolute() => self.show(&target),
            // Not a file: a pipe, socket, … Standard streams get their names, which stay
            // the same from run to run where a pipe's inode number does not.
            Ok(target) => match fd {
                1 => "<stdout>".into(),
                2 => "<stderr>".into(),
                _ => target.to_string_lossy().into_owned(),
            },
            Err(_) => format!("<fd {fd}>"),
        }
    }

    /// A path argument, resolved against `dirfd` (or the cwd) and normalized.
    fn path_arg(&self, tid: i32, dirfd: Option<i32>, addr: u64) -> String {
        let Some(path) = read_string(tid, addr) else {
            return "<unreadable path>".into();
        };
        let path = PathBuf::from(OsString::from_vec(path));
        if path.is_absolute() {
            return self.show(&normalize(&path));
        }
        let base = match dirfd {
            Some(fd) if fd != libc::AT_FDCWD => std::fs::read_link(format!("/proc/{tid}/fd/{fd}")),
            _ => std::fs::read_link(format!("/proc/{tid}/cwd")),
        };
        match base {
            Ok(base) => self.show(&normalize(&base.join(&path))),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }

    /// A path as reports show it: relative inside the root, absolute outside it.
    fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            Ok(_) => ".".into(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// The kernel's "restart this call" return values (ERESTARTSYS, ERESTARTNOINTR,
/// ERESTARTNOHAND, ERESTART_RESTARTBLOCK): a tracer sees them when a signal interrupts a
/// call that then runs again.
const RESTARTS: [i64; 4] = [-512, -513, -514, -516];

/// The detail of a call that an entry strike rewound, when it runs after all.
pub const AGAIN: &str = "again, after the signal";

fn join_detail(detail: &str, more: &str) -> String {
    if detail.is_empty() {
        more.to_string()
    } else {
        format!("{detail}, {more}")
    }
}

/// Whether the call's first argument is a file descriptor.
fn fd_arg(class: SyscallClass, name: &str) -> bool {
    match class {
        SyscallClass::Write | SyscallClass::Fsync | SyscallClass::Close => true,
        SyscallClass::Truncate => name == "ftruncate",
        _ => false,
    }
}

fn decode_status(raw: i32) -> Stop {
    if libc::WIFEXITED(raw) {
        Stop::Exited(ExitStatusRaw::Code(libc::WEXITSTATUS(raw)))
    } else if libc::WIFSIGNALED(raw) {
        Stop::Exited(ExitStatusRaw::Signal(libc::WTERMSIG(raw)))
    } else {
        let signal = libc::WSTOPSIG(raw);
        let event = (raw >> 16) & 0xff;
        if signal == libc::SIGTRAP | 0x80 {
            Stop::Syscall
        } else if event != 0 {
            Stop::Event(event)
        } else {
            Stop::Signal(signal)
        }
    }
}

/// Reads a NUL-terminated string from the task's memory (at most 4 KiB).
fn read_string(tid: i32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr as usize;
    while out.len() < 4096 {
        // Never cross a page in one read: the next page may be unmapped.
        let len = (4096 - at % 4096).min(256);
        let mut buf = [0u8; 256];
        let n = read_memory(tid, at, &mut buf[..len])?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n;
    }
    Some(out)
}

fn read_memory(tid: i32, addr: usize, buf: &mut [u8]) -> Option<usize> {
    let len = buf.len();
    process_vm_readv(
        Pid::from_raw(tid),
        &mut [io::IoSliceMut::new(buf)],
        &[RemoteIoVec { base: addr, len }],
    )
    .ok()
}

fn read_u64(tid: i32, addr: u64) -> Option<u64> {
    if addr == 0 {
        return None;
    }
    let mut buf = [0u8; 8];
    (read_memory(tid, addr as usize, &mut buf)? == 8).then(|| u64::from_ne_bytes(buf))
}

/// Whether an rt_sigaction call installs a handler (not SIG_DFL or SIG_IGN), and for which
/// signal.
fn installs_handler(tid: i32, a: &[u64; 6]) -> Option<Signal> {
    let handler = read_u64(tid, a[1])?; // `sa_handler` leads `struct sigaction`
    (handler > 1)
        .then(|| Signal::from_number(a[0] as i32))
        .flatten()
}

fn sigaction_detail(tid: i32, a: &[u64; 6]) -> String {
    let signal = Signal::from_number(a[0] as i32)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("signal {}", a[0]));
    let action = match (a[1], read_u64(tid, a[1])) {
        (0, _) => "query",
        (_, Some(0)) => "default",
        (_, Some(1)) => "ignore",
        (_, Some(_)) => "handler",
        (_, None) => "?",
    };
    format!("{signal} → {action}")
}

fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// The total size of an iovec array in the task's memory.
fn iov_bytes(tid: i32, addr: u64, count: u64) -> String {
    let count = count.min(64) as usize;
    let mut buf = vec![0u8; count * 16];
    match read_memory(tid, addr as usize, &mut buf) {
        Some(n) if n == buf.len() => {
            let total: u64 = buf
                .chunks(16)
                .map(|iov| u64::from_ne_bytes(iov[8..16].try_into().unwrap()))
                .sum();
            bytes(total)
        }
        _ => format!("{count} buffers"),
    }
}

/// Adds the file offset a plain `write` or `writev` writes at (from `/proc/TID/fdinfo`;
/// after the call, the position has moved past what it wrote).
fn add_offset(tid: i32, call: &mut Call) {
    if call.name != "write" && call.name != "writev" {
        return;
    }
    let Some(fd) = call.fd else { return };
    let Some(pos) = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|p| p.trim().parse::<i64>().ok())
        })
    else {
        return;
    };
    let offset = pos - call.result.filter(|&r| r > 0).unwrap_or(0);
    if offset < 0 {
        return; // not a seekable file (a pipe's "position" counts what went through)
    }
    call.detail = format!("{} at offset {offset}", call.detail);
}

fn open_flags(flags: u64) -> String {
    let flags = flags as i32;
    let mut names = vec![match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    }];
    for (bit, name) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_TMPFILE & !libc::O_DIRECTORY, "O_TMPFILE"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    names.join("|")
}

fn clone_kind(flags: u64) -> String {
    let flags = flags as i32;
    if flags & libc::CLONE_THREAD != 0 {
        "thread".into()
    } else if flags & libc::CLONE_VFORK != 0 {
        "vfork".into()
    } else {
        "process".into()
    }
}

/// Removes `.` and resolves `..` lexically (the file may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(
            normalize(Path::new("/tmp/x/./a/../out.json")),
            PathBuf::from("/tmp/x/out.json")
        );
    }

    #[test]
    fn open_flags_read_as_names() {
        let flags = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64;
        assert_eq!(open_flags(flags), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0), "O_RDONLY");
    }

    #[test]
    fn wait_statuses_decode() {
        // Layouts from <sys/wait.h>: exit code in bits 8..16; a stop is 0x7f with the
        // signal above it and a ptrace event above that.
        assert!(matches!(
            decode_status(3 << 8),
            Stop::Exited(ExitStatusRaw::Code(3))
        ));
        assert!(matches!(
            decode_status(libc::SIGKILL),
            Stop::Exited(ExitStatusRaw::Signal(9))
        ));
        assert!(matches!(
            decode_status(((libc::SIGTRAP | 0x80) << 8) | 0x7f),
            Stop::Syscall
        ));
        assert!(matches!(
            decode_status((libc::PTRACE_EVENT_SECCOMP << 16) | (libc::SIGTRAP << 8) | 0x7f),
            Stop::Event(libc::PTRACE_EVENT_SECCOMP)
        ));
        assert!(matches!(
            decode_status((libc::SIGTERM << 8) | 0x7f),
            Stop::Signal(15)
        ));
    }
}
