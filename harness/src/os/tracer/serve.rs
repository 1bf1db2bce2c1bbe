//! Serving a traced tree: the waitpid loop and what it keeps track of — the tasks and
//! the process tree, ptrace events (fork, clone, exec), signal-delivery stops, the
//! syscall entry and exit stops, the calls made inside signal handlers, and the events
//! with their windows around the first strike.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::ptrace::{self, Options};
use nix::unistd::Pid;

use super::decode::{ExitStatusRaw, Stop, decode_status, installs_handler, program_name};
use super::record::{Pending, Recorder};
use super::strike::{RESTARTS, Replay};
use super::{EVENT_CAP, Link, SyscallStrike, TraceLog, TraceSetup, WINDOW_AFTER, WINDOW_BEFORE};
use crate::os::procfs;
use crate::outcome::{HandlerIo, ProcessTrace, StruckProcess};
use crate::syscalls::{
    Delivered, Event, ExecSeen, InstalledHandler, SyscallCensus, SyscallClass, TracedProcess, What,
    When, matches,
};
use crate::values::{ExitStatus, Signal};

/// What the tracer knows of one task (a thread; a process is its leader thread).
pub(super) struct Task {
    tgid: i32,
    /// The stop the kernel starts this task with, while it is still to come: SIGSTOP for
    /// a task followed from a fork or clone, SIGTRAP after exec for the target. It is
    /// swallowed when it comes, and only then: a real signal can be reported first.
    initial: Option<i32>,
    /// The fork or clone event that made it has been seen (or it is the target).
    announced: bool,
    /// A call rewound by an entry strike: when it comes again, it is the same call.
    pub(super) replay: Option<Replay>,
    /// What to do at this task's next syscall-exit stop.
    at_exit: Option<AtExit>,
    /// The signal handlers it is running, innermost last, with when each was entered:
    /// while there is one, the task stops at every syscall (PTRACE_SYSCALL) until the
    /// handler's `rt_sigreturn`.
    handlers: Vec<(Signal, Duration)>,
    /// A call the write log waits on the exit of.
    recording: Option<Pending>,
}

impl Task {
    /// A task whose initial stop, `initial`, is still to come.
    fn new(tgid: i32, initial: i32) -> Task {
        Task {
            tgid,
            initial: Some(initial),
            announced: false,
            replay: None,
            at_exit: None,
            handlers: Vec::new(),
            recording: None,
        }
    }
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

/// The tracer thread's state while it serves one target's tree.
pub(super) struct Tracer {
    pub(super) main: i32,
    pub(super) start: Instant,
    pub(super) setup: TraceSetup,
    pub(super) link: Arc<Link>,
    pub(super) tasks: HashMap<i32, Task>,
    /// Matching calls seen so far, per syscall strike.
    counts: Vec<u64>,
    seq: u64,
    pub(super) log: TraceLog,
    windows: HashMap<i32, Window>,
    /// The order processes appeared in, for the windows.
    order: Vec<i32>,
    pub(super) root: PathBuf,
    /// Tasks whose exit was handled before their parent's fork or clone event was seen
    /// (the child can run and exit first): that late event must not bring one back. It
    /// is forgotten once its event comes, as pids are reused: a later task with the same
    /// pid is a new one.
    dead: HashSet<i32>,
    /// The program each live process runs (by its pid), as of its last exec: what a
    /// strike limited to a program counts and strikes.
    pub(super) programs: HashMap<i32, String>,
    /// The write log being recorded (a power strike is armed).
    recorder: Option<Recorder>,
}

impl Tracer {
    pub(super) fn new(main: i32, start: Instant, setup: TraceSetup, link: Arc<Link>) -> Tracer {
        let root = std::fs::canonicalize(&setup.root).unwrap_or_else(|_| setup.root.clone());
        // The sandbox as it is before the target runs: what a power loss falls back to.
        let recorder = setup.record.then(|| Recorder::new(&root));
        let mut census = SyscallCensus::new(setup.classes.clone());
        census.processes.push(TracedProcess {
            pid: main,
            parent: None,
            command: String::new(),
            program: String::new(),
            threads: 0,
            status: None,
            started_at: Duration::ZERO,
            exited_at: None,
            signals: Vec::new(),
        });
        link.live().push(StruckProcess {
            pid: main,
            program: String::new(),
        });
        let mut tasks = HashMap::new();
        let target = Task {
            announced: true,
            ..Task::new(main, libc::SIGTRAP)
        };
        tasks.insert(main, target);
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
            programs: HashMap::new(),
            recorder,
        }
    }

    /// Serves the tree until no tracee is left.
    pub(super) fn serve(mut self) -> TraceLog {
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
        self.log.write_log = self.recorder.take().map(Recorder::finish);
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
        let task = self.tasks.remove(&tid);
        if !task.as_ref().is_some_and(|t| t.announced) {
            self.dead.insert(tid);
        }
        let Some(task) = task else {
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
        self.programs.remove(&tid);
        self.link.live().retain(|p| p.pid != tid);
        if tid == self.main {
            self.log.main_status = status;
            self.link.wake();
        }
    }

    fn signal_stop(&mut self, tid: i32, signal: i32) {
        if !self.tasks.contains_key(&tid) {
            self.dead.remove(&tid); // a new task, even if its pid was used before
        }
        let task = self
            .tasks
            .entry(tid)
            .or_insert_with(|| Task::new(procfs::tgid(tid).unwrap_or(tid), libc::SIGSTOP));
        // A group stop (no siginfo) is not a signal to pass on, nor a task's initial stop.
        if ptrace::getsiginfo(Pid::from_raw(tid)).is_err() {
            self.resume(tid, 0);
            return;
        }
        if task.initial == Some(signal) {
            task.initial = None;
            if tid == self.main {
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
                // Its exec, before the tracer could ask to be told of execs.
                self.exec_seen(tid);
            }
            self.resume(tid, 0); // the kernel's stop, not a signal anyone sent
            return;
        }
        // A signal-delivery stop: pass the signal on (the harness's own strikes come
        // through here).
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
                self.exec_seen(tid);
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
        if self.dead.remove(&new) {
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
        // Its first stops may already have come before this event.
        self.tasks
            .entry(new)
            .or_insert_with(|| Task::new(tgid, libc::SIGSTOP))
            .announced = true;
        if tgid == new {
            let command = self
                .log
                .census
                .process(parent)
                .map(|p| p.command.clone())
                .unwrap_or_default();
            // Until it execs, a child runs its parent's program.
            let program = self.programs.get(&parent).cloned().unwrap_or_default();
            self.programs.insert(new, program.clone());
            self.link.live().push(StruckProcess {
                pid: new,
                program: program.clone(),
            });
            let started_at = self.now();
            self.log.census.processes.push(TracedProcess {
                pid: new,
                parent: Some(parent),
                command,
                program,
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

    /// Process `pid` has just exec'd: its program is what it runs from now on, in the
    /// census, for strikes limited to a program, and for delays counted from an exec.
    fn exec_seen(&mut self, pid: i32) {
        let program = program_name(pid);
        let at = self.now();
        if let Some(p) = self.log.census.process(pid) {
            p.program = program.clone();
        }
        if let Some(p) = self.link.live().iter_mut().find(|p| p.pid == pid) {
            p.program = program.clone();
        }
        self.programs.insert(pid, program.clone());
        self.log.census.execs.push(ExecSeen {
            pid,
            program: program.clone(),
            at,
        });
        let mut progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
        if !progress.execs.iter().any(|(p, _)| *p == program) {
            progress.execs.push((program, at));
            drop(progress);
            self.link.wake();
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
        let recording = self
            .recorder
            .as_ref()
            .and_then(|r| r.enter(tid, class, name, &args));
        if again {
            call.restarted = true;
            self.record(tgid, tid, What::Syscall(call));
            // An exit strike waiting for this call's real return, or the write log.
            if let Some(task) = self.tasks.get_mut(&tid) {
                task.recording = recording;
                if task.at_exit.is_some() || task.recording.is_some() {
                    return self.resume_to_exit(tid);
                }
            }
            return self.resume(tid, 0);
        }
        let handler = (class == SyscallClass::Sigaction)
            .then(|| installs_handler(tid, &args))
            .flatten();
        // Is a strike due at this call? Only the strike whose turn it is counts the call: a
        // plan's later strike counts from the strike before it. Plan progress is read only
        // for a call some strike would count.
        let program = self.programs.get(&tgid).map_or("", String::as_str);
        let main = self.main;
        let counts = |s: &SyscallStrike| {
            s.class == class
                && matches(s.path.as_ref(), &call.paths)
                && s.process
                    .as_ref()
                    .is_none_or(|p| p.selects(tgid, main, program))
        };
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
            let program = self.programs.get(&tgid).map_or("", String::as_str);
            self.log.census.add_call(&call, self.seq + 1, tgid, program);
        }
        let event = self.record(tgid, tid, What::Syscall(call));

        if let Some(i) = due
            && self.its_turn(i)
        {
            match self.setup.strikes[i].when {
                // Rewound: the call does not run now, so the write log does not wait on it.
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
                        task.recording = recording;
                    }
                    return self.resume_to_exit(tid);
                }
            }
        }
        let Some(task) = self.tasks.get_mut(&tid) else {
            return self.resume(tid, 0);
        };
        if let Some(signal) = handler {
            task.at_exit = Some(AtExit::Handler(signal));
        }
        task.recording = recording;
        if task.at_exit.is_some() || task.recording.is_some() {
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
        let recording = task.recording.take();
        let result = ptrace::syscall_info(Pid::from_raw(tid))
            .ok()
            .filter(|i| i.op == libc::PTRACE_SYSCALL_INFO_EXIT)
            // SAFETY: `op` says the exit member of the union is the one filled in.
            .map(|i| unsafe { i.u.exit.sval });
        // Interrupted by a signal, the call will run again: wait for that return.
        if result.is_some_and(|r| RESTARTS.contains(&r)) {
            if let Some(task) = self.tasks.get_mut(&tid) {
                task.at_exit = action;
                task.recording = recording;
            }
            return self.resume(tid, 0);
        }
        // Into the log before a strike at this exit: the call has happened.
        if let (Some(recorder), Some(call), Some(result)) =
            (self.recorder.as_mut(), recording, result)
        {
            recorder.exit(tid, call, result);
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
}
