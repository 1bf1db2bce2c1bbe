//! Reading what survived a case: the file or command `[expect.acked] survivors` names.
//!
//! This is the I/O half of `acked-survives`; the ids are picked out of the text by the
//! pure [`IdReader`](crate::scenario::IdReader) and judged by the invariant.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::{AckedSpec, Scenario, SurvivorSource};
use crate::targets::{self, Binaries};

/// How long a survivors command may run before it is killed and the case's survivors
/// count as unreadable.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What was read after a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurvivorsRead {
    /// Where they were read, for the report: `store.log`, `store.log (absent)`,
    /// ``the output of `verify {work}` ``.
    pub from: String,
    /// The ids, in order; or why none could be read (a torn file, a failed command).
    pub ids: Result<Vec<String>, String>,
}

/// Reads the survivors of a case whose sandbox is `work`.
pub fn read(
    spec: &AckedSpec,
    scenario: &Scenario,
    binaries: &Binaries,
    work: &Path,
) -> SurvivorsRead {
    match &spec.survivors.source {
        SurvivorSource::File(path) => match std::fs::read(work.join(path.as_str())) {
            Ok(bytes) => SurvivorsRead {
                from: path.to_string(),
                ids: spec
                    .survivors
                    .read
                    .ids(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| format!("{path}: {e}")),
            },
            // Absent: nothing survived (and nothing acknowledged needed to).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SurvivorsRead {
                from: format!("{path} (absent)"),
                ids: Ok(Vec::new()),
            },
            Err(e) => SurvivorsRead {
                from: path.to_string(),
                ids: Err(format!("cannot read {path}: {e}")),
            },
        },
        SurvivorSource::Command(command) => {
            let shown: Vec<&str> = command.iter().map(|a| a.raw.as_str()).collect();
            let argv = targets::fill(command, scenario, binaries, work);
            SurvivorsRead {
                from: format!("the output of `{}`", shown.join(" ")),
                ids: run_command(&argv, work).and_then(|out| spec.survivors.read.ids(&out)),
            }
        }
    }
}

/// Runs a survivors command in `work`; its stdout, or why it failed.
fn run_command(argv: &[std::ffi::OsString], work: &Path) -> Result<String, String> {
    let shown = argv[0].to_string_lossy().into_owned();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let pid = child.id();
    // Both pipes are read while waiting (wait_with_output), on a helper thread so that
    // this one can give up at the timeout.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(done) => done.map_err(|e| format!("waiting for `{shown}`: {e}"))?,
        Err(_) => {
            // Not reaped yet (the helper thread is still waiting), so the pid is its own.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(format!(
                "`{shown}` did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ));
        }
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let reason = err.trim();
        return Err(format!(
            "`{shown}` failed ({}){}{}",
            output.status,
            if reason.is_empty() { "" } else { ": " },
            reason.lines().take(5).collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
