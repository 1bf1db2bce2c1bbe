//! Reading what survived a case: the file or command `[expect.acked] survivors` names.
//!
//! This is the I/O half of `acked-survives`; the ids are picked out of the text by the
//! pure [`IdReader`](crate::expect::IdReader) and judged by the invariant.

use std::path::Path;
use std::time::Duration;

use crate::expect::{AckedSpec, SurvivorSource};
use crate::os::command::{Helper, HelperError, run_helper};
use crate::outcome::SurvivorsRead;
use crate::targets::{Place, Resolved};

/// How long a survivors command may run before it is killed and the case's survivors
/// count as unreadable.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the survivors of a case run at `place`.
pub fn read(spec: &AckedSpec, command: Option<&Resolved>, place: Place) -> SurvivorsRead {
    let work = place.work;
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
        SurvivorSource::Command(written) => {
            let shown: Vec<&str> = written.iter().map(|a| a.raw.as_str()).collect();
            let argv = command
                .expect("a survivors command is resolved with the scenario")
                .argv(place);
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
    let helper = Helper {
        cwd: Some(work.to_path_buf()),
        timeout: Some(COMMAND_TIMEOUT),
        ..Helper::new(&argv[0], &argv[1..])
    };
    let output = run_helper(&helper).map_err(|e| match e {
        HelperError::Spawn { source, .. } => format!("cannot run `{shown}`: {source}"),
        HelperError::TimedOut { .. } => format!(
            "`{shown}` did not finish within {}s",
            COMMAND_TIMEOUT.as_secs()
        ),
        HelperError::Wait { source, .. } => format!("waiting for `{shown}`: {source}"),
        e @ HelperError::Interrupted { .. } => e.to_string(),
    })?;
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
