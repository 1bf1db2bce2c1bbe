//! fork-signal-stress: forks `--children N` children one after another and sends each a
//! SIGTERM just after its fork, at an instant drawn from `--seed`; then accounts for every
//! signal. It checks the tracer, not a shutdown pattern: a signal that reaches a traced
//! process must do exactly what it does untraced, in the window right after fork too.
//!
//! Child `i` is of kind `i % 5`, each with one way the signal must be seen to arrive:
//! - `default`: spins; it must die of SIGTERM.
//! - `handler`: inherits the parent's SIGTERM handler (set before the fork) and spins until
//!   it has run; it must exit 3.
//! - `thread`: starts a thread, and both spin; the process must die of SIGTERM.
//! - `exec`: execs this program with `--pause` (signals at their default action); it must
//!   die of SIGTERM, before or after the exec.
//! - `spawn`: as `exec`, started with `std::process::Command` (a vfork-like spawn); the
//!   signal comes as soon as the spawn returns.
//!
//! The signal is sent with kill(2) (to the process) or tgkill(2) (to its first thread),
//! either at once or after spinning up to `--spin` µs; both are drawn per child. A child
//! still alive `--wait` after its signal was sent has lost it: it is killed, and reported
//! on stderr with its state from `/proc`. One that ends otherwise than its kind says, or
//! that was ever reported stopped (SIGCHLD with `CLD_STOPPED`: nothing here stops a
//! child), is wrong.
//!
//! It prints one line, e.g. `5000 children (1000 default, 1000 handler, 1000 thread,
//! 1000 exec, 1000 spawn): 5000 signals accounted for, 0 lost, 0 wrong`, and exits 0
//! only if nothing was lost or wrong, 1 otherwise.
//!
//! Usage: fork-signal-stress [--children N] [--seed N] [--spin MICROS] [--wait DURATION]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KINDS: [&str; 5] = ["default", "handler", "thread", "exec", "spawn"];
/// What a `handler` child exits with once its handler has run.
const HANDLED: i32 = 3;

static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// How many times a child was reported stopped (SIGCHLD with CLD_STOPPED): nothing here
/// stops a child, so untraced this stays 0.
static STOPS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigterm(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

extern "C" fn on_sigchld(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if unsafe { (*info).si_code } == libc::CLD_STOPPED {
        STOPS.fetch_add(1, Ordering::SeqCst);
    }
}

fn main() -> ExitCode {
    killpoint_scenarios::main("fork-signal-stress", &["--pause"], |flags| {
        flags.check_known(&["--pause", "--children", "--seed", "--spin", "--wait"])?;
        if flags.has("--pause") {
            loop {
                // SAFETY: pause(2) has no arguments.
                unsafe { libc::pause() };
            }
        }
        watch_stops()?;
        let children = flags.number("--children", 1000)?;
        let wait = flags.duration("--wait", Duration::from_secs(2))?;
        let seed = flags.number("--seed", 1)?;
        let spin = flags.number("--spin", 200)?;
        let tally = own(children, seed, spin, wait)?;
        println!("{tally}");
        Ok(if tally.lost == 0 && tally.wrong == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// What became of the children.
#[derive(Default)]
struct Tally {
    per_kind: [u64; KINDS.len()],
    accounted: u64,
    lost: u64,
    wrong: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: u64 = self.per_kind.iter().sum();
        let kinds: Vec<String> = KINDS
            .iter()
            .zip(self.per_kind)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        write!(
            f,
            "{total} children ({}): {} signals accounted for, {} lost, {} wrong",
            kinds.join(", "),
            self.accounted,
            self.lost,
            self.wrong
        )
    }
}

/// splitmix64: a reproducible stream from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn set_sigterm(handler: libc::sighandler_t) -> Result<(), String> {
    // SAFETY: a zeroed sigaction with a handler that only stores to an atomic, or SIG_DFL.
    let ok = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) == 0
    };
    ok.then_some(())
        .ok_or_else(|| format!("sigaction: {}", std::io::Error::last_os_error()))
}

/// Counts the children reported stopped.
fn watch_stops() -> Result<(), String> {
    // SAFETY: a zeroed sigaction with a handler that only reads its siginfo and adds to an
    // atomic.
    let ok = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigchld as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()) == 0
    };
    ok.then_some(())
        .ok_or_else(|| format!("sigaction: {}", std::io::Error::last_os_error()))
}

fn spin_until(flag: &AtomicBool) -> ! {
    while !flag.load(Ordering::SeqCst) {
        std::hint::spin_loop();
    }
    // SAFETY: _exit(2) in a forked child.
    unsafe { libc::_exit(HANDLED) }
}

fn spin_forever() -> ! {
    let never = AtomicBool::new(false);
    while !never.load(Ordering::Relaxed) {
        std::hint::spin_loop();
    }
    unreachable!()
}

/// Forks the children and signals each.
fn own(children: u64, seed: u64, spin: u64, wait: Duration) -> Result<Tally, String> {
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let program = CString::new(me.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let pause = CString::new("--pause").expect("no NUL");
    let argv = [program.as_ptr(), pause.as_ptr(), std::ptr::null()];
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    for i in 0..children {
        let kind = (i % KINDS.len() as u64) as usize;
        let tgkill = rng.next().is_multiple_of(2);
        let draw = rng.next();
        // One child in four at once; the others after up to `spin` µs.
        let delay = if draw.is_multiple_of(4) || spin == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros((draw >> 2) % (spin + 1))
        };
        set_sigterm(if KINDS[kind] == "handler" {
            on_sigterm as *const () as libc::sighandler_t
        } else {
            libc::SIG_DFL
        })?;
        let pid = match KINDS[kind] {
            "spawn" => Command::new(&me)
                .arg("--pause")
                .spawn()
                .map_err(|e| format!("spawn: {e}"))?
                .id() as i32,
            _ => {
                // SAFETY: the parent is single-threaded; the child only spins, starts a
                // thread, or execs with arguments made before the fork.
                match unsafe { libc::fork() } {
                    -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
                    0 => match KINDS[kind] {
                        "handler" => spin_until(&SIGNALLED),
                        "thread" => {
                            std::thread::spawn(|| spin_forever());
                            spin_forever()
                        }
                        "exec" => {
                            // SAFETY: argv is NUL-terminated and outlives the call.
                            unsafe {
                                libc::execv(program.as_ptr(), argv.as_ptr());
                                libc::_exit(127)
                            }
                        }
                        _ => spin_forever(),
                    },
                    pid => pid,
                }
            }
        };
        let until = Instant::now() + delay;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        // SAFETY: signals to our own unreaped child.
        let sent = unsafe {
            if tgkill {
                libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGTERM) == 0
            } else {
                libc::kill(pid, libc::SIGTERM) == 0
            }
        };
        if !sent {
            return Err(format!("signal: {}", std::io::Error::last_os_error()));
        }
        tally.per_kind[kind] += 1;
        let how = format!(
            "child {i} ({}, {} after {delay:?})",
            KINDS[kind],
            if tgkill { "tgkill" } else { "kill" }
        );
        let expected = if KINDS[kind] == "handler" {
            Ended::Code(HANDLED)
        } else {
            Ended::Signal(libc::SIGTERM)
        };
        account(&mut tally, pid, wait, expected, &how)?;
    }
    Ok(tally)
}

#[derive(Debug, PartialEq)]
enum Ended {
    Code(i32),
    Signal(i32),
    Other(i32),
}

/// Waits up to `wait` for child `pid` to end and checks how it ended; a child still alive
/// then has lost its signal, and is killed.
fn account(
    tally: &mut Tally,
    pid: i32,
    wait: Duration,
    expected: Ended,
    how: &str,
) -> Result<(), String> {
    let stops = STOPS.load(Ordering::SeqCst);
    // SAFETY: pidfd_open(2) on our own unreaped child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if pidfd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    let deadline = Instant::now() + wait;
    let mut ended = false;
    while !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd.
        match unsafe { libc::poll(&mut fd, 1, left.as_millis() as i32) } {
            1 => ended = true,
            0 => break,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return Err(format!("poll: {}", std::io::Error::last_os_error())),
        }
    }
    if !ended {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_else(|| "?".into());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("?")
                .to_string()
        };
        eprintln!(
            "fork-signal-stress: {how}: lost: still alive {wait:?} after its signal (state {state}, SigPnd {}, ShdPnd {}, SigBlk {})",
            field("SigPnd:"),
            field("ShdPnd:"),
            field("SigBlk:")
        );
        tally.lost += 1;
        // SAFETY: SIGKILL to our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // SAFETY: pidfd is ours.
    unsafe { libc::close(pidfd) };
    let mut status = 0;
    // SAFETY: waitpid(2) for our own child, with a valid pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if !ended {
        return Ok(());
    }
    let got = if libc::WIFEXITED(status) {
        Ended::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ended::Signal(libc::WTERMSIG(status))
    } else {
        Ended::Other(status)
    };
    // Its stop was reported before its exit, so the handler has counted it by now.
    if STOPS.load(Ordering::SeqCst) != stops {
        eprintln!("fork-signal-stress: {how}: wrong: it was stopped, then {got:?}");
        tally.wrong += 1;
    } else if got == expected {
        tally.accounted += 1;
    } else {
        eprintln!("fork-signal-stress: {how}: wrong: {got:?}, expected {expected:?}");
        tally.wrong += 1;
    }
    Ok(())
}
