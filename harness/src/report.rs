//! Reports: the human text and the machine-readable JSON of a campaign.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::campaign::{ScenarioReport, ScenarioResult};
use crate::invariants::ms;
use crate::outcome::{FileState, Outcome};

/// A whole campaign, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct CampaignReport {
    pub seed: u64,
    pub cases: Option<u32>,
    pub jobs: usize,
    pub scenarios: Vec<ScenarioReport>,
    pub interrupted: bool,
}

impl CampaignReport {
    /// killpoint's exit code for this report: 0 every scenario as expected, 1 a violation
    /// (or a planted bug missed), 2 a scenario could not run, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted
            || self
                .scenarios
                .iter()
                .any(|s| s.result == ScenarioResult::Interrupted)
        {
            130
        } else if self
            .scenarios
            .iter()
            .any(|s| matches!(s.result, ScenarioResult::Error { .. }))
        {
            2
        } else if self.scenarios.iter().all(|s| s.result.ok()) {
            0
        } else {
            1
        }
    }
}

/// Writes the JSON report atomically: a reader sees the old file or the whole new one.
pub fn write_json(report: &CampaignReport, path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut file, report)?;
    file.write_all(b"\n")?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The command that reruns exactly one case of a scenario.
pub fn rerun_command(report: &ScenarioReport, case_seed: u64) -> String {
    let file = report
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| report.scenario.clone());
    format!("killpoint run {file} --case {case_seed}")
}

/// The human report of one scenario.
pub fn scenario_text(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", report.scenario, report.name);
    if let Some(census) = &report.census {
        let outputs: Vec<String> = census
            .golden
            .iter()
            .map(|(path, g)| match g {
                Some(g) => format!("{path} {} bytes", g.size),
                None => format!("{path} absent"),
            })
            .collect();
        let handlers: Vec<String> = census
            .handlers
            .iter()
            .map(|(s, h)| format!("{s} at {}", ms(h.at)))
            .collect();
        let _ = writeln!(
            out,
            "  census: {} in {}{}{}",
            census.status,
            ms(census.duration),
            if outputs.is_empty() {
                String::new()
            } else {
                format!("; {}", outputs.join(", "))
            },
            if handlers.is_empty() {
                "; no handlers seen".to_string()
            } else {
                format!("; handlers: {}", handlers.join(", "))
            },
        );
    }
    let checked: Vec<&str> = report.checked.iter().map(|n| n.as_str()).collect();
    let cases = format!("{} of {} cases", report.cases_run, report.cases_planned);
    match &report.result {
        ScenarioResult::Passed => {
            let _ = writeln!(
                out,
                "  PASSED: {cases}, every invariant held ({})",
                checked.join(", ")
            );
        }
        ScenarioResult::Missed => {
            let expected: Vec<&str> = report.expected.iter().map(|n| n.as_str()).collect();
            let _ = writeln!(
                out,
                "  MISSED: expected a violation of {}, but every invariant held in {cases}",
                expected.join(" or ")
            );
        }
        ScenarioResult::Error { message } => {
            let _ = writeln!(out, "  ERROR: {message}");
        }
        ScenarioResult::Interrupted => {
            let _ = writeln!(out, "  INTERRUPTED after {cases}");
        }
        ScenarioResult::CaughtAsExpected | ScenarioResult::Violated => {
            let failure = report
                .failure
                .as_ref()
                .expect("a violation has a failing case");
            let names: Vec<&str> = failure.violations.iter().map(|(n, _)| n.as_str()).collect();
            let head = if report.result == ScenarioResult::CaughtAsExpected {
                "CAUGHT as expected"
            } else {
                "VIOLATED"
            };
            let _ = writeln!(
                out,
                "  {head}: {} at case {} of {} (case seed {})",
                names.join(", "),
                failure.case_index + 1,
                report.cases_planned,
                failure.case_seed
            );
            let _ = writeln!(out, "    plan: {}", failure.plan);
            for (name, evidence) in &failure.violations {
                let _ = writeln!(out, "    {name}:");
                for line in evidence {
                    let _ = writeln!(out, "      {line}");
                }
            }
            let _ = writeln!(out, "    {}", outcome_line(&failure.outcome));
            for quoted in stderr_tail(&failure.outcome) {
                let _ = writeln!(out, "      stderr: {quoted}");
            }
            if let Some(dir) = &failure.sandbox {
                let _ = writeln!(out, "    sandbox kept: {}", dir.display());
            }
            let _ = writeln!(
                out,
                "    rerun: {}",
                rerun_command(report, failure.case_seed)
            );
        }
    }
    out
}

fn outcome_line(outcome: &Outcome) -> String {
    let outputs: Vec<String> = outcome
        .outputs
        .iter()
        .map(|o| {
            let state = match &o.after {
                FileState::Absent => "absent".to_string(),
                FileState::Prior => "prior".to_string(),
                FileState::Golden => "complete".to_string(),
                FileState::Other { size, .. } => format!("partial, {size} bytes"),
            };
            format!("{} {state}", o.path)
        })
        .collect();
    let mut line = format!("outcome: {} at {}", outcome.status, ms(outcome.exited_at));
    if !outputs.is_empty() {
        let _ = write!(line, "; {}", outputs.join(", "));
    }
    line
}

fn stderr_tail(outcome: &Outcome) -> Vec<String> {
    let lines: Vec<&str> = outcome
        .stderr
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(3)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The closing lines of a campaign: counts, the seed, and the exit code's meaning.
pub fn summary_text(report: &CampaignReport) -> String {
    let count =
        |f: fn(&ScenarioResult) -> bool| report.scenarios.iter().filter(|s| f(&s.result)).count();
    let passed = count(|r| *r == ScenarioResult::Passed);
    let caught = count(|r| *r == ScenarioResult::CaughtAsExpected);
    let failed = count(|r| matches!(r, ScenarioResult::Violated | ScenarioResult::Missed));
    let errors = count(|r| matches!(r, ScenarioResult::Error { .. }));
    let mut out = format!(
        "{} scenario(s): {passed} passed, {caught} caught as expected, {failed} failed, {errors} could not run",
        report.scenarios.len()
    );
    if report.exit_code() == 130 {
        out.push_str(" (interrupted)");
    }
    let _ = write!(
        out,
        "\nseed {} (rerun the campaign with --seed {})",
        report.seed, report.seed
    );
    out
}

/// serde adapter: a `Duration` as milliseconds (a float), for the JSON report.
pub mod millis {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(
            f64::deserialize(d)?.max(0.0) / 1000.0,
        ))
    }
}

/// serde adapter: an `Option<Duration>` as milliseconds or null.
pub mod opt_millis {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
    }
}
