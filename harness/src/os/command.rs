//! Helper commands: programs the harness runs to completion beside its cases (a
//! survivors command after each case, `cargo build` for `{bin:NAME}`, `python3` for
//! `{python}`), their outputs captured.
//!
//! A helper is one of the harness's registered children (see [`super::children`]), so
//! no case's orphan reaping can take it, and it is waited for on its own pid only. It
//! runs in a process group of its own, and a timeout or an interruption kills the whole
//! group: `cargo build` leaves rustc and build scripts running if only cargo is killed,
//! and they hold its pipes and its build directory's lock.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::process::{Pid, PidfdFlags, Signal, kill_process_group, pidfd_open, pidfd_send_signal};

use super::children::{deregister, spawn_registered};
use super::interrupt;
use super::pipes::{Pipe, poll_pipes};

/// A helper command to run to completion: stdout and stderr are captured (both read
/// while it runs, so a chatty helper cannot block).
#[derive(Debug, Clone)]
pub(crate) struct Helper {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Its working directory; `None`: the harness's.
    pub cwd: Option<PathBuf>,
    /// Added to the harness's environment.
    pub env: Vec<(OsString, OsString)>,
    /// How long it may take (until it has exited and both pipes are closed) before it is
    /// killed; `None`: no bound.
    pub timeout: Option<Duration>,
    /// Whether the harness's own interruption (SIGINT/SIGTERM to it) kills it at once.
    pub interruptible: bool,
    /// What it reads on stdin.
    pub stdin: Stdin,
    /// When this descriptor becomes readable, the helper's group is killed and what it
    /// printed until then is returned as if it had ended (a client cut off as the case
    /// ends).
    pub cancel: Option<Arc<OwnedFd>>,
    /// A network namespace to run in (a case's own, with `isolate_network`).
    pub netns: Option<Arc<OwnedFd>>,
}

/// A helper's stdin. Content is given as a file, never through a pipe the harness would
/// have to keep fed while it also reads the helper's output.
#[derive(Debug, Clone, Default)]
pub(crate) enum Stdin {
    /// `/dev/null`.
    #[default]
    Null,
    /// A file, opened for reading (an output judged by a `normalize` command).
    File(PathBuf),
    /// These bytes, from an anonymous in-memory file (a case's outcome for a checker).
    Bytes(Vec<u8>),
}

impl Stdin {
    fn open(&self) -> io::Result<Stdio> {
        Ok(match self {
            Stdin::Null => Stdio::null(),
            Stdin::File(path) => std::fs::File::open(path)?.into(),
            Stdin::Bytes(bytes) => {
                use std::io::{Seek, Write};
                let fd =
                    rustix::fs::memfd_create("killpoint-stdin", rustix::fs::MemfdFlags::CLOEXEC)?;
                let mut file = std::fs::File::from(fd);
                file.write_all(bytes)?;
                file.rewind()?;
                file.into()
            }
        })
    }
}

impl Helper {
    /// `program` with `args`, in the harness's directory and environment, unbounded and
    /// not interruptible.
    pub(crate) fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Helper {
        Helper {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            timeout: None,
            interruptible: false,
            stdin: Stdin::Null,
            cancel: None,
            netns: None,
        }
    }
}

/// How a helper ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HelperError {
    #[error("cannot start `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("`{program}` did not finish within {after:?}")]
    TimedOut { program: String, after: Duration },
    #[error("`{program}` was interrupted")]
    Interrupted { program: String },
    #[error("waiting for `{program}`: {source}")]
    Wait { program: String, source: io::Error },
}

/// Runs `helper` to completion and returns its status and outputs. On a timeout or an
/// interruption it is killed (SIGKILL); whatever happens, it is reaped before this
/// returns.
pub(crate) fn run_helper(helper: &Helper) -> Result<Finished, HelperError> {
    let program = helper.program.to_string_lossy().into_owned();
    let stdin = helper.stdin.open().map_err(|source| HelperError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut command = Command::new(&helper.program);
    command
        .args(&helper.args)
        .envs(helper.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = &helper.cwd {
        command.current_dir(cwd);
    }
    if let Some(netns) = &helper.netns {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&**netns);
        // SAFETY: between fork and exec, one system call on a descriptor that stays open
        // (the helper holds it) until the child has exec'd.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = spawn_registered(&mut command).map_err(|source| {
        // A working directory that is gone fails the spawn with the same ENOENT as a
        // program that is not there: say which it was.
        let source = match &helper.cwd {
            Some(cwd) if source.kind() == io::ErrorKind::NotFound && !cwd.is_dir() => {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("its working directory {} is not there", cwd.display()),
                )
            }
            _ => source,
        };
        HelperError::Spawn {
            program: program.clone(),
            source,
        }
    })?;
    let pid = child.id() as i32;
    let ended = watch(&mut child, helper, &program);
    // Reaped on its own pid (`Child::wait`), and only then deregistered.
    let status = match ended {
        Ok(pipes) => child
            .wait()
            .map(|status| (status, pipes))
            .map_err(|source| HelperError::Wait {
                program: program.clone(),
                source,
            }),
        Err((e, pidfd)) => {
            // Not reaped yet, so the pid is still its own, and its group's id.
            let _ = kill_process_group(
                Pid::from_raw(pid).expect("a spawned child has a pid"),
                Signal::KILL,
            );
            match pidfd {
                Some(pidfd) => {
                    let _ = pidfd_send_signal(&pidfd, Signal::KILL);
                }
                None => {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
            Err(e)
        }
    };
    deregister(pid);
    let (status, [stdout, stderr]) = status?;
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// Reads the helper's pipes until it has exited and both are closed; on an error, the
/// helper's pidfd (if it was opened) to kill it through.
fn watch(
    child: &mut Child,
    helper: &Helper,
    program: &str,
) -> Result<[Vec<u8>; 2], (HelperError, Option<OwnedFd>)> {
    let failed = |source: io::Error| HelperError::Wait {
        program: program.to_string(),
        source,
    };
    let start = Instant::now();
    // Only this thread reaps the child (it is registered), so it is still there.
    let pidfd = pidfd_open(
        Pid::from_raw(child.id() as i32).expect("a spawned child has a pid"),
        PidfdFlags::empty(),
    )
    .map_err(|e| (failed(e.into()), None))?;
    let mut pipes = match Pipe::of_child(child, usize::MAX) {
        Ok(pipes) => pipes,
        Err(e) => return Err((failed(e), Some(pidfd))),
    };
    let mut exited = false;
    let mut cancelled = false;
    loop {
        if exited && pipes.iter().all(|p| p.fd.is_none()) {
            break;
        }
        let wait = match helper.timeout {
            Some(timeout) => match timeout.checked_sub(start.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => {
                    let e = HelperError::TimedOut {
                        program: program.to_string(),
                        after: timeout,
                    };
                    return Err((e, Some(pidfd)));
                }
            },
            None => Duration::from_secs(60),
        };
        // An exited child's pidfd stays readable: once seen, it is watched no more.
        let mut watched = Vec::new();
        if !exited {
            watched.push((pidfd.as_fd(), PollFlags::IN));
        }
        let cancel_at = watched.len();
        if let Some(cancel) = helper.cancel.as_ref().filter(|_| !cancelled) {
            watched.push((cancel.as_fd(), PollFlags::IN));
        }
        if helper.interruptible {
            watched.push((interrupt::fd(), PollFlags::IN));
        }
        let ready = poll_pipes(&mut pipes, wait, &watched);
        drop(watched);
        let ready = match ready {
            Ok(ready) => ready,
            Err(e) => return Err((failed(e), Some(pidfd))),
        };
        if helper.interruptible && ready[ready.len() - 1] {
            let e = HelperError::Interrupted {
                program: program.to_string(),
            };
            return Err((e, Some(pidfd)));
        }
        if helper.cancel.is_some() && !cancelled && ready.get(cancel_at) == Some(&true) {
            // Not reaped yet (only this thread reaps it), so its pid is still its group's
            // id. The loop goes on until it has exited and its pipes are closed.
            cancelled = true;
            let _ = kill_process_group(
                Pid::from_raw(child.id() as i32).expect("a spawned child has a pid"),
                Signal::KILL,
            );
        }
        exited |= !exited && ready[0];
    }
    let mut pipes = pipes.into_iter().map(Pipe::into_bytes);
    Ok([
        pipes.next().unwrap_or_default(),
        pipes.next().unwrap_or_default(),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::procfs;
    use super::*;

    fn sh(script: &str) -> Helper {
        Helper::new("sh", ["-c", script])
    }

    #[test]
    fn status_stdout_and_stderr_are_returned_in_its_directory_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let helper = Helper {
            cwd: Some(dir.path().to_path_buf()),
            env: vec![("KILLPOINT_TEST_VALUE".into(), "seven".into())],
            ..sh("pwd; echo \"$KILLPOINT_TEST_VALUE\"; echo oops >&2; exit 3")
        };
        let done = run_helper(&helper).unwrap();
        assert_eq!(done.status.code(), Some(3));
        let here = dir.path().canonicalize().unwrap();
        assert_eq!(
            String::from_utf8(done.stdout).unwrap(),
            format!("{}\nseven\n", here.display())
        );
        assert_eq!(done.stderr, b"oops\n");
    }

    #[test]
    fn a_helper_that_fills_both_pipes_finishes_with_everything_read() {
        let done = run_helper(&sh(
            "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2",
        ))
        .unwrap();
        assert!(done.status.success());
        assert_eq!((done.stdout.len(), done.stderr.len()), (300_000, 300_000));
    }

    #[test]
    fn a_helper_past_its_timeout_is_killed_and_the_error_names_it() {
        let started = Instant::now();
        let helper = Helper {
            timeout: Some(Duration::from_millis(100)),
            ..Helper::new("sleep", ["10"])
        };
        let e = run_helper(&helper).unwrap_err();
        assert!(matches!(e, HelperError::TimedOut { .. }), "{e}");
        assert_eq!(e.to_string(), "`sleep` did not finish within 100ms");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Killed and reaped: no child of the harness runs it any more, not even a zombie.
        let me = std::process::id() as i32;
        let children: Vec<i32> = procfs::all_pids()
            .into_iter()
            .filter(|&pid| procfs::stat(pid).is_some_and(|s| s.ppid == me))
            .filter(|&pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
            })
            .collect();
        assert_eq!(children, Vec::<i32>::new());
    }

    #[test]
    fn a_working_directory_that_is_gone_is_said_to_be_the_cause() {
        let gone = tempfile::tempdir().unwrap().path().to_path_buf();
        let e = run_helper(&Helper {
            cwd: Some(gone.clone()),
            ..Helper::new("true", Vec::<&str>::new())
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot start `true`: its working directory {} is not there",
                gone.display()
            )
        );
    }

    #[test]
    fn a_program_that_cannot_start_is_named() {
        let e = run_helper(&Helper::new("/nonexistent/killpoint-helper", ["x"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot start `/nonexistent/killpoint-helper`: "),
            "{e}"
        );
    }
}
