//! Reports: the human text and the machine-readable JSON of a campaign.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use std::collections::BTreeSet;

use crate::campaign::{ScenarioReport, ScenarioResult};
use crate::census::Census;
use crate::invariants::ms;
use crate::os::tracer::AGAIN;
use crate::outcome::{FileState, Outcome, StrikeRecord};
use crate::plan::Point;
use crate::syscalls::{Event, SyscallClass, What, matches};

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
pub fn write_json(report: &impl Serialize, path: &Path) -> io::Result<()> {
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
            if let Some(case) = &report.case {
                let _ = writeln!(out, "    plan: {}", case.plan);
                if let Some(census) = &report.census {
                    for line in strike_story(&case.outcome, census) {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                let _ = writeln!(out, "    {}", outcome_line(&case.outcome));
            }
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
            if let Some(census) = &report.census {
                for line in strike_story(&failure.outcome, census) {
                    let _ = writeln!(out, "    {line}");
                }
            }
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

/// What each syscall strike hit and what the struck process did next, in words:
/// `struck: SIGTERM at the entry of write #3 to out.json (65536 bytes at offset 131072)`,
/// `then: SIGTERM delivered, write <stderr …> ×3, exit 14; no fsync, rename as the
/// uninterrupted run made after that call`.
pub fn strike_story(outcome: &Outcome, census: &Census) -> Vec<String> {
    let mut lines = Vec::new();
    for record in &outcome.strikes {
        let (Some(hit), Point::Syscall { nth, when, .. }) = (&record.hit, &record.point) else {
            continue;
        };
        let What::Syscall(call) = &hit.what else {
            continue;
        };
        let mut line = format!(
            "struck: {} at the {when} of {} #{nth}",
            record.signal, call.name
        );
        if !call.paths.is_empty() {
            let _ = write!(line, " to {}", call.path_label());
        }
        if !call.detail.is_empty() {
            let _ = write!(line, " ({})", call.detail);
        }
        if let Some(result) = call.result {
            let _ = write!(line, ", which returned {result}");
        }
        let _ = write!(line, ", in pid {}", hit.pid);
        if hit.tid != hit.pid {
            let _ = write!(line, " thread {}", hit.tid);
        }
        if record.sent_at.is_none() {
            line.push_str(" (not sent: the process had exited)");
        }
        lines.push(line);
        let Some(trace) = outcome.trace.iter().find(|p| p.pid == hit.pid) else {
            continue;
        };
        let mut then = format!("then: {}", condense(&trace.after));
        if trace.more_after > 0 {
            let _ = write!(then, " … and {} more", trace.more_after);
        }
        let skipped = skipped_after(census, record, outcome);
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|c| c.name()).collect();
            let _ = write!(
                then,
                "; no {} as the uninterrupted run made after that call",
                names.join(", ")
            );
        }
        lines.push(then);
    }
    lines
}

/// Events as a short list, runs of the same call folded: `write out.json ×5, exit 0`.
fn condense(events: &[Event]) -> String {
    let label = |e: &Event| match &e.what {
        What::Syscall(call) => {
            let mut label = call.name.clone();
            if !call.paths.is_empty() {
                label = format!("{label} {}", call.path_label());
            }
            if call.detail.ends_with(AGAIN) {
                label.push_str(" (again, after the signal)");
            }
            label
        }
        other => other.to_string(),
    };
    let mut runs: Vec<(String, usize)> = Vec::new();
    for event in events {
        let l = label(event);
        match runs.last_mut() {
            Some((last, n)) if *last == l => *n += 1,
            _ => runs.push((l, 1)),
        }
    }
    if runs.is_empty() {
        return "nothing more was seen".into();
    }
    runs.into_iter()
        .map(|(l, n)| if n == 1 { l } else { format!("{l} ×{n}") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The finishing calls (fsync, rename, unlink, truncate) the census made after the struck
/// call and the case never made after its strike.
fn skipped_after(census: &Census, record: &StrikeRecord, outcome: &Outcome) -> Vec<SyscallClass> {
    let Point::Syscall {
        syscall, path, nth, ..
    } = &record.point
    else {
        return Vec::new();
    };
    let matching = census.events.iter().enumerate().filter(|(_, e)| {
        matches!(&e.what, What::Syscall(c) if c.class == *syscall && matches(path.as_ref(), &c.paths))
    });
    let Some((position, _)) = matching.clone().nth(*nth as usize - 1) else {
        return Vec::new();
    };
    let classes_in = |events: &mut dyn Iterator<Item = &Event>| -> BTreeSet<SyscallClass> {
        events
            .filter_map(|e| match &e.what {
                What::Syscall(c) => Some(c.class),
                _ => None,
            })
            .filter(|c| {
                matches!(
                    c,
                    SyscallClass::Fsync
                        | SyscallClass::Rename
                        | SyscallClass::Unlink
                        | SyscallClass::Truncate
                )
            })
            .collect()
    };
    let expected = classes_in(&mut census.events[position + 1..].iter());
    let seen = classes_in(&mut outcome.trace.iter().flat_map(|p| p.after.iter()));
    expected.difference(&seen).copied().collect()
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
