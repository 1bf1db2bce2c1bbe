//! Running the `[expect.resume]` command after a case, in the case's sandbox: the I/O half
//! of `resume-completes` and `no-duplicate-work`, which judge the [`ResumeRecord`].

use crate::census::Census;
use crate::os::run::{self, Launch, Limits, RunError};
use crate::os::sandbox::Sandbox;
use crate::outcome::{FileState, OutputRecord, ResumeRecord};
use crate::scenario::Scenario;
use crate::targets::{self, Binaries};

/// Runs the resume command in `sandbox`, bounded by the scenario's `timeout`, and compares
/// the resume outputs with the census's. `None` when the scenario declares no resume.
pub fn run(
    scenario: &Scenario,
    binaries: &Binaries,
    census: &Census,
    sandbox: &Sandbox,
) -> Result<Option<ResumeRecord>, RunError> {
    let Some(spec) = &scenario.expect.resume else {
        return Ok(None);
    };
    let paths = scenario.expect.resume_outputs();
    let before: Vec<Option<Vec<u8>>> = paths
        .iter()
        .map(|p| sandbox.read(p))
        .collect::<Result<_, _>>()?;
    let mut argv = targets::fill(&spec.command, scenario, binaries, sandbox.path());
    let launch = Launch {
        program: argv.remove(0).into(),
        args: argv,
        env: scenario.env.clone(),
        cwd: sandbox.path().to_path_buf(),
        capture: true,
    };
    let limits = Limits {
        timeout: scenario.timeout,
        deadline: None,
    };
    let ran = run::run(&launch, &[], &[], limits, None)?;
    let mut outputs = Vec::new();
    for (path, before) in paths.iter().zip(&before) {
        let golden = census.golden_bytes(path);
        let after = sandbox.read(path)?;
        outputs.push(OutputRecord {
            path: path.clone(),
            before: FileState::classify(before.as_deref(), None, golden),
            after: FileState::classify(after.as_deref(), None, golden),
        });
    }
    Ok(Some(ResumeRecord {
        status: ran.status,
        duration: ran.exited_at,
        killed: ran.killed,
        stdout: ran.stdout,
        stderr: ran.stderr,
        marks: ran.marks,
        outputs,
    }))
}
