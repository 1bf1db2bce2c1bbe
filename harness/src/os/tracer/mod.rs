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
//!
//! A task followed from a fork or clone starts with a SIGSTOP the kernel queues for it
//! (the target, with the SIGTRAP after its exec): that one stop is the tracer's, and is
//! swallowed. It is not always the task's first stop. A signal sent to the new thread
//! itself (tgkill) comes first when its number is lower, as the kernel hands a thread its
//! own pending signals lowest first, and a group stop can come first too. So each task
//! waits for its initial stop by its signal, and every signal-delivery stop before it is
//! passed on: taking the first stop for the initial one would inject that SIGSTOP later,
//! and the child would stop (its parent sees `CLD_STOPPED`) where untraced it never does.
//!
//! ```text
//!  mod.rs      what the rest of the harness sees: the set-up, the link, the log, spawn
//!  serve.rs    the waitpid loop: tasks, ptrace events, signal stops, syscall entry and
//!              exit stops, handler calls, the events and their windows
//!  strike.rs   landing a strike: whose turn, rewind, fire; restarted calls
//!  decode.rs   reading a stopped task: waitpid statuses, a call's paths and details
//! ```

mod decode;
mod record;
mod serve;
mod strike;

pub use record::WriteLog;

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use super::procfs;
use super::run::{Progress, spawn_registered};
use super::seccomp::Filter;
use crate::outcome::{HandlerIo, ProcessTrace, StruckProcess};
use crate::strike::{ProcessSelector, Recipient};
use crate::syscalls::{ClassSet, Event, SyscallCensus, SyscallClass, When};
use crate::values::{ExitStatus, PathGlob, Signal};
use serve::Tracer;

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
    /// Record the tree's mutating calls on the sandbox (`root`) into a write log, for a
    /// power strike: the filter must trap [`RECORDED_CLASSES`].
    pub record: bool,
}

/// The classes a write log needs trapped.
pub const RECORDED_CLASSES: [SyscallClass; 9] = [
    SyscallClass::Write,
    SyscallClass::Fsync,
    SyscallClass::Rename,
    SyscallClass::Open,
    SyscallClass::Unlink,
    SyscallClass::Truncate,
    SyscallClass::Link,
    SyscallClass::Mkdir,
    SyscallClass::Copy,
];

/// A strike of the plan that lands at a syscall.
#[derive(Debug, Clone)]
pub struct SyscallStrike {
    /// Its index in the plan: it fires only when every strike before it has.
    pub index: usize,
    pub signal: Signal,
    pub to: Recipient,
    pub class: SyscallClass,
    pub path: Option<PathGlob>,
    /// Which matching call, from 1 over the whole tree, or over the calls of the
    /// processes `process` selects.
    pub nth: u64,
    pub when: When,
    pub process: Option<ProcessSelector>,
}

/// What the case thread and the tracer share.
pub struct Link {
    pub progress: Arc<Mutex<Progress>>,
    /// Set by whoever sends the first strike: the trace windows switch from "before" to
    /// "after" there.
    pub struck: AtomicBool,
    /// The live traced processes, in the order they started, with the program each runs:
    /// killing the tree reaches every one of them, and a delay strike limited to a
    /// program picks the first that runs it.
    pub tracees: Mutex<Vec<StruckProcess>>,
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
            tracees: Mutex::new(Vec::new()),
            wake: write,
        };
        Ok((Arc::new(link), read))
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, b"!");
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<StruckProcess>> {
        self.tracees.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tracees(&self) -> Vec<i32> {
        self.live().iter().map(|p| p.pid).collect()
    }

    /// The live traced process `pid`, with the program it runs.
    pub fn tracee(&self, pid: i32) -> Option<StruckProcess> {
        self.live().iter().find(|p| p.pid == pid).cloned()
    }

    /// The first traced process, in the order they started, that `process` selects and
    /// that is still alive (a zombie the tracer has not reaped yet is not: a signal would
    /// reach nothing).
    pub fn first_selected(&self, process: &ProcessSelector, main: i32) -> Option<StruckProcess> {
        self.live()
            .iter()
            .filter(|p| process.selects(p.pid, main, &p.program))
            .find(|p| procfs::stat(p.pid).is_some_and(|s| s.state != 'Z' && s.state != 'X'))
            .cloned()
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
    /// The write log (with `record`).
    pub write_log: Option<WriteLog>,
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
        "cannot trace `{program}`: {step} failed: {error}\n  {hint}\n  Delay strikes (`at = {{ after = … }}`) work without ptrace; syscall strikes, `after_handler`, `after_exec` and `process = \"PROGRAM\"` need it."
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
    let pipe = |flags| {
        rustix::pipe::pipe_with(flags).map_err(|e| TraceError::Spawn {
            program: program.clone(),
            error: e.into(),
        })
    };
    let (step_read, step_write) = pipe(rustix::pipe::PipeFlags::CLOEXEC)?;
    // The child's pid, told before it is traced: if its exec fails, it stops where
    // nobody can wait for it, and this is how the case thread finds it.
    let (pid_read, pid_write) =
        pipe(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)?;
    // SAFETY: the closure runs between fork and exec and makes only system calls (getpid,
    // ptrace, seccomp, prctl, write) on values prepared before the fork; it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            let pid = libc::getpid();
            let _ = rustix::io::write(&pid_write, &pid.to_ne_bytes());
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
    let returned = Arc::new(Mutex::new(false));
    let spawn_returned = Arc::clone(&returned);
    let thread = std::thread::Builder::new()
        .name("killpoint-tracer".into())
        .spawn(move || {
            let spawned = spawn_registered(&mut command);
            // Before anything can resume the child: see `wait_for_spawn`.
            *spawn_returned.lock().unwrap_or_else(|e| e.into_inner()) = true;
            let child = match spawned {
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
    let (spawned, exec_failed) = wait_for_spawn(&receiver, &pid_read, &returned);
    match spawned {
        Ok(Ok((child, ..))) if exec_failed => {
            // Killed where it stopped: the tracer has reaped it, and the run is over.
            let pid = child.id() as i32;
            let _ = thread.join();
            super::children::deregister(pid);
            Err(TraceError::Spawn {
                program,
                error: io::Error::other(
                    "its exec failed in the traced child (the kernel refused to run it)",
                ),
            })
        }
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

/// How often the case thread looks at the child while the tracer thread spawns it.
const SPAWN_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// The signals a child whose exec failed stops on: std's abort when its report cannot be
/// written, the fault of glibc's last resort when `_exit` cannot exit. Not "any signal
/// but SIGTRAP": the kernel shows a task in its tracing stop a moment before it shows the
/// stop's signal, and that moment reads as signal 0.
const EXEC_FAILED: [i32; 4] = [libc::SIGABRT, libc::SIGSEGV, libc::SIGILL, libc::SIGBUS];

/// What the tracer thread's spawn gave: the child, its start and its pidfd.
type Spawned = io::Result<(Child, Instant, OwnedFd)>;

/// Waits for the tracer thread's spawn to return, and whether the child had to be killed
/// because its exec failed.
///
/// std's spawn returns once the exec succeeded or the child reported why it failed. A
/// traced child cannot report it: its write and its exit are trapped calls, which fail
/// with ENOSYS until the tracer's first stop sets its options, so it aborts and stops on
/// that signal, holding the pipe std waits on open. Such a child is seen in a tracing
/// stop on one of [`EXEC_FAILED`] while the spawn has not returned (`returned`, held while looking: until it is set, the tracer thread cannot
/// have resumed the child into any other stop); killing it lets the spawn return.
fn wait_for_spawn(
    receiver: &mpsc::Receiver<Spawned>,
    pid_read: &OwnedFd,
    returned: &Mutex<bool>,
) -> (Result<Spawned, mpsc::RecvError>, bool) {
    let mut pid = None;
    let mut killed = false;
    loop {
        match receiver.recv_timeout(SPAWN_POLL) {
            Ok(spawned) => return (Ok(spawned), killed),
            Err(mpsc::RecvTimeoutError::Disconnected) => return (Err(mpsc::RecvError), killed),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if pid.is_none() {
            let mut bytes = [0u8; 4];
            if let Ok(4) = rustix::io::read(pid_read, &mut bytes) {
                pid = Some(i32::from_ne_bytes(bytes));
            }
        }
        let returned = returned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = pid
            && !killed
            && !*returned
            && procfs::stopped_on(pid).is_some_and(|signal| EXEC_FAILED.contains(&signal))
        {
            // Still unreaped (the spawn has not returned), so the pid is the child's.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("a child's pid"),
                rustix::process::Signal::KILL,
            );
            killed = true;
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
