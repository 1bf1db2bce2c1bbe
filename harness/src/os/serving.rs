//! A server's life in one run, as the case runner drives it: waiting for `ready`, the
//! clients started then, and the `stop` sent to end a run no strike reached.
//!
//! ```text
//!  spawn ──▶ ready? (a stdout/stderr line, a port accepting, a file, a probe mark)
//!               │ yes: ready_at; the clients start, each on a thread of its own
//!               │ not within its timeout, no strike sent: the tree is killed (never ready)
//!               ▼
//!            stop due? (every client finished, or a time after ready), no strike sent yet
//!               │ yes: the stop signal to the main process, recorded
//!               ▼
//!            the case ends: clients still running are cut off (their group killed), and
//!            what each printed is kept
//! ```
//!
//! The case runner's loop calls [`Serving::step`] on each turn and polls
//! [`Serving::wake_fd`], which becomes readable whenever a client ends, so a stop after the
//! clients is sent at once, not at the next timeout.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::client as load;
use super::command::{Helper, run_helper};
use super::pipes::Pipe;
use crate::client::BuiltInClient;
use crate::expect::Pattern;
use crate::history::History;
use crate::outcome::{Capture, ClientRecord, Mark, StopRecord};
use crate::server::StopAfter;
use crate::values::{ExitStatus, Signal};

/// What one run of a server must do beyond running: all resolved for this run (its port,
/// its sandbox).
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub ready: Option<ReadyWatch>,
    pub clients: Vec<ClientLaunch>,
    pub stop: Option<(Signal, StopAfter)>,
}

/// The ready condition of one run, and how long to wait for it (from spawn).
#[derive(Debug, Clone)]
pub struct ReadyWatch {
    pub on: ReadyCheck,
    pub timeout: Duration,
    /// The condition in words, for the error of a target never ready.
    pub shown: String,
}

#[derive(Debug, Clone)]
pub enum ReadyCheck {
    Stdout(Pattern),
    Stderr(Pattern),
    Port(u16),
    File(PathBuf),
    Probe(String),
}

/// A client to start: a command (its command line as shown, and how to run it), or
/// killpoint's own load client against the run's port.
#[derive(Debug, Clone)]
pub enum ClientLaunch {
    Command {
        shown: String,
        helper: Box<Helper>,
    },
    BuiltIn {
        shown: String,
        client: BuiltInClient,
        port: u16,
    },
}

impl ClientLaunch {
    pub fn command(
        shown: String,
        argv: Vec<std::ffi::OsString>,
        cwd: PathBuf,
        env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    ) -> ClientLaunch {
        ClientLaunch::Command {
            shown,
            helper: Box::new(Helper {
                cwd: Some(cwd),
                env,
                interruptible: true,
                ..Helper::new(&argv[0], &argv[1..])
            }),
        }
    }
}

/// The serving side of one run in progress.
pub(super) struct Serving {
    lifecycle: Lifecycle,
    pub ready_at: Option<Duration>,
    /// How far each stream has been searched for the ready line.
    scanned: [usize; 2],
    started: Vec<Duration>,
    results: Vec<Option<ClientRecord>>,
    running: usize,
    done_rx: mpsc::Receiver<(usize, ClientRecord)>,
    done_tx: mpsc::Sender<(usize, ClientRecord)>,
    /// Readable when a client has ended (a byte per client).
    wake_rx: OwnedFd,
    wake_tx: Arc<OwnedFd>,
    /// Written to cut the clients off; each client's helper watches the read end.
    cancel_tx: OwnedFd,
    cancel_rx: Arc<OwnedFd>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Each built-in client's stop, to end it as the case ends.
    stops: Vec<Arc<load::Stop>>,
    /// The requests the built-in clients have sent, for `request` strikes.
    sent: Arc<load::SentCount>,
    pub stop: Option<StopRecord>,
    /// The target's own network namespace (`isolate_network`): the ready probe and the
    /// clients join it.
    pub netns: Option<Arc<OwnedFd>>,
}

impl Serving {
    pub(super) fn new(lifecycle: Lifecycle) -> io::Result<Serving> {
        let (wake_rx, wake_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&wake_rx, true)?;
        let (cancel_rx, cancel_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (done_tx, done_rx) = mpsc::channel();
        let n = lifecycle.clients.len();
        let wake_tx = Arc::new(wake_tx);
        Ok(Serving {
            sent: Arc::new(load::SentCount::new(Arc::clone(&wake_tx))),
            ready_at: None,
            scanned: [0, 0],
            started: Vec::new(),
            results: vec![None; n],
            running: 0,
            done_rx,
            done_tx,
            wake_rx,
            wake_tx,
            cancel_tx,
            cancel_rx: Arc::new(cancel_rx),
            threads: Vec::new(),
            stops: Vec::new(),
            stop: None,
            netns: None,
            lifecycle,
        })
    }

    /// When the target met its ready condition; `None` without one (it then counts as
    /// ready at spawn, for its clients and stop, but nothing was awaited).
    pub(super) fn ready_seen(&self) -> Option<Duration> {
        self.lifecycle.ready.as_ref().and(self.ready_at)
    }

    /// Whether there is anything to do: a ready condition, clients or a stop.
    pub(super) fn is_idle(&self) -> bool {
        self.lifecycle.ready.is_none()
            && self.lifecycle.clients.is_empty()
            && self.lifecycle.stop.is_none()
    }

    /// How many requests the built-in clients have sent so far.
    pub(super) fn requests_sent(&self) -> u64 {
        self.sent.sent()
    }

    /// Makes [`Serving::wake_fd`] readable when the built-in clients have sent `n`
    /// requests.
    pub(super) fn wake_at_request(&self, n: u64) {
        self.sent.wake_at(n);
    }

    /// Readable when a client has ended, or the request [`Serving::wake_at_request`]
    /// names has been sent.
    pub(super) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_rx.as_fd()
    }

    /// While the target is not ready yet and the condition must be looked for by
    /// asking (a port, a file), how long the loop may sleep.
    pub(super) fn poll_interval(&self) -> Option<Duration> {
        match (&self.lifecycle.ready, self.ready_at) {
            (
                Some(ReadyWatch {
                    on: ReadyCheck::Port(_) | ReadyCheck::File(_),
                    ..
                }),
                None,
            ) => Some(Duration::from_millis(2)),
            _ => None,
        }
    }

    /// Looks for the ready condition (once ready: nothing more), starting the clients
    /// when it is met, or at once without one. `now` is the run's clock.
    pub(super) fn step(&mut self, start: Instant, pipes: &[Pipe], marks: &[Mark]) {
        self.collect();
        if self.ready_at.is_some() {
            return;
        }
        let [out, err] = &mut self.scanned;
        let ready = match self.lifecycle.ready.as_ref().map(|r| &r.on) {
            None => true,
            Some(ReadyCheck::Stdout(p)) => line_matches(pipes.first(), out, p),
            Some(ReadyCheck::Stderr(p)) => line_matches(pipes.get(1), err, p),
            Some(ReadyCheck::Port(port)) => super::net::accepts_in(*port, self.netns.as_deref()),
            Some(ReadyCheck::File(path)) => path.exists(),
            Some(ReadyCheck::Probe(name)) => marks.iter().any(|m| m.name == *name),
        };
        if ready {
            // Without a condition the target counts as ready at spawn.
            let at = match self.lifecycle.ready {
                None => Duration::ZERO,
                Some(_) => start.elapsed(),
            };
            self.ready_at = Some(at);
            self.start_clients(start);
        }
    }

    /// Whether the ready timeout has run out with the target not ready.
    pub(super) fn never_ready(&self, now: Duration) -> bool {
        match &self.lifecycle.ready {
            Some(watch) => self.ready_at.is_none() && now >= watch.timeout,
            None => false,
        }
    }

    /// When the loop must look again for the ready timeout or a timed stop.
    pub(super) fn next_wake(&self) -> Option<Duration> {
        match (self.ready_at, &self.lifecycle.ready, self.lifecycle.stop) {
            (None, Some(watch), _) => Some(watch.timeout),
            (Some(ready), _, Some((_, StopAfter::Delay(d)))) if self.stop.is_none() => {
                Some(ready + d)
            }
            _ => None,
        }
    }

    /// The stop signal, if it is due now (the caller sends it, and only if no strike has
    /// reached the target).
    pub(super) fn stop_due(&self, now: Duration) -> Option<Signal> {
        let (signal, after) = self.lifecycle.stop?;
        if self.stop.is_some() {
            return None;
        }
        let ready = self.ready_at?;
        let due = match after {
            StopAfter::Clients => self.running == 0 && self.results.iter().all(Option::is_some),
            StopAfter::Delay(d) => now >= ready + d,
        };
        due.then_some(signal)
    }

    fn start_clients(&mut self, start: Instant) {
        for (index, client) in self.lifecycle.clients.iter().enumerate() {
            let started_at = start.elapsed();
            self.started.push(started_at);
            let (done, wake) = (self.done_tx.clone(), Arc::clone(&self.wake_tx));
            self.running += 1;
            let thread = match client {
                ClientLaunch::Command { shown, helper } => {
                    let helper = Helper {
                        cancel: Some(Arc::clone(&self.cancel_rx)),
                        netns: self.netns.clone(),
                        ..(**helper).clone()
                    };
                    let shown = shown.clone();
                    let cancel = Arc::clone(&self.cancel_rx);
                    std::thread::spawn(move || {
                        let ran = run_helper(&helper);
                        let ended_at = start.elapsed();
                        // Cut off: the case ended first and wrote the cancel pipe.
                        let cut_off = super::readable_now(&*cancel);
                        let record = command_record(shown, started_at, ended_at, cut_off, ran);
                        let _ = done.send((index, record));
                        let _ = rustix::io::write(&*wake, b"x");
                    })
                }
                ClientLaunch::BuiltIn {
                    shown,
                    client,
                    port,
                } => {
                    let stop = Arc::new(load::Stop::new());
                    self.stops.push(Arc::clone(&stop));
                    let (shown, client, port) = (shown.clone(), client.clone(), *port);
                    let netns = self.netns.clone();
                    let sent = Arc::clone(&self.sent);
                    std::thread::spawn(move || {
                        // Threads it starts inherit the namespace it joined.
                        let history = match netns.as_deref().map(super::net::join) {
                            Some(Err(e)) => History::could_not_run(
                                shown.clone(),
                                client.requests(),
                                format!("cannot join the target's network namespace: {e}"),
                            ),
                            _ => {
                                // Bounded by the case itself, which stops it as it ends.
                                let deadline = Instant::now() + Duration::from_secs(3600);
                                load::run(&client, port, start, &stop, deadline, Some(sent))
                            }
                        };
                        let record = ClientRecord {
                            command: shown,
                            started_at,
                            ended_at: Some(history.ended_at),
                            status: None,
                            cut_off: stop.is_stopped(),
                            error: history.error.clone(),
                            stdout: Capture::default(),
                            stderr: Capture::default(),
                            history: Some(history),
                        };
                        let _ = done.send((index, record));
                        let _ = rustix::io::write(&*wake, b"x");
                    })
                }
            };
            self.threads.push(thread);
        }
    }

    /// Takes in the records of the clients that have ended.
    fn collect(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(rustix::io::read(&self.wake_rx, &mut buf), Ok(n) if n > 0) {}
        while let Ok((index, record)) = self.done_rx.try_recv() {
            self.results[index] = Some(record);
            self.running -= 1;
        }
    }

    /// Whether every client started has ended.
    pub(super) fn clients_ended(&mut self) -> bool {
        self.collect();
        self.running == 0
    }

    /// Ends the clients still running (their groups killed) and returns every client's
    /// record, in order; a client that never started (the target was never ready) has
    /// none.
    pub(super) fn finish(mut self) -> Vec<ClientRecord> {
        if self.running > 0 {
            let _ = rustix::io::write(&self.cancel_tx, b"x");
            for stop in &self.stops {
                stop.stop();
            }
        }
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
        self.collect();
        self.results.into_iter().flatten().collect()
    }
}

/// Whether a line of `pipe` matches, searching only the complete lines after `scanned`
/// (moved on past them).
fn line_matches(pipe: Option<&Pipe>, scanned: &mut usize, pattern: &Pattern) -> bool {
    let Some(pipe) = pipe else {
        return false;
    };
    let kept = pipe.kept();
    let from = *scanned;
    let Some(end) = kept[from..].iter().rposition(|&b| b == b'\n') else {
        return false;
    };
    let end = from + end + 1;
    *scanned = end;
    String::from_utf8_lossy(&kept[from..end])
        .lines()
        .any(|line| pattern.is_match(line))
}

/// The record of a command client's run.
fn command_record(
    command: String,
    started_at: Duration,
    ended_at: Duration,
    cut_off: bool,
    ran: Result<super::command::Finished, super::command::HelperError>,
) -> ClientRecord {
    let (status, error, stdout, stderr) = match ran {
        Ok(finished) => (
            exit_status(finished.status),
            None,
            capture(finished.stdout),
            capture(finished.stderr),
        ),
        Err(e) => (
            None,
            Some(e.to_string()),
            Capture::default(),
            Capture::default(),
        ),
    };
    ClientRecord {
        command,
        started_at,
        ended_at: Some(ended_at),
        status,
        cut_off,
        error,
        stdout,
        stderr,
        history: None,
    }
}

fn exit_status(status: std::process::ExitStatus) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Some(ExitStatus::Code(code)),
        (None, Some(signal)) => Signal::from_number(signal).map(ExitStatus::Signal),
        _ => None,
    }
}

fn capture(bytes: Vec<u8>) -> Capture {
    Capture {
        total_bytes: bytes.len() as u64,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
