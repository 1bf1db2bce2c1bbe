//! The human report: what a campaign found, in words, with the lines that rerun it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use super::data::{CampaignReport, ScenarioReport};
use crate::campaign::Coverage;
use crate::census::Census;
use crate::expect::InvariantName;
use crate::invariants::atomic_output::{Cleanup, cleanup};
use crate::judged::{JudgedCase, ScenarioResult};
use crate::outcome::{FileState, Outcome, StrikeRecord};
use crate::plan::{CaseId, Plan, Point};
use crate::shrink::Stopped;
use crate::strike::ProcessSelector;
use crate::syscalls::{Event, RESTARTED, SyscallClass, What, matches};
use crate::units::ms;

/// The commands that rerun exactly one case. A scenario file's: with the CLI, and through
/// its test, named after the file's path from the workspace root
/// (`scenarios/atomic-writer.toml`), which is the file's path from the directory the
/// report is made in when that is the root, as it is under `cargo nextest` and in the
/// README's commands. A scenario built in a test: that test, with the case.
pub fn rerun_commands(report: &ScenarioReport, case: &CaseId) -> Vec<String> {
    if let Some(f) = &report.file {
        return vec![
            format!("killpoint repro {} --case {case}", f.display()),
            format!(
                "KILLPOINT_SEED={case} cargo nextest run -E 'test(={})'",
                from_here(f)
            ),
        ];
    }
    match &report.test {
        Some(test) => vec![format!(
            "KILLPOINT_SEED={case} cargo nextest run --workspace -E 'binary_id({}) & test(={})'",
            test.binary_id, test.name
        )],
        None => vec![format!(
            "KILLPOINT_SEED={case} and rerun the program that ran scenario `{}`",
            report.name
        )],
    }
}

/// A path as seen from the current directory (itself if it lies elsewhere).
pub(super) fn from_here(path: &Path) -> String {
    let here = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&here)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn write_rerun(out: &mut String, indent: &str, commands: &[String]) {
    for (i, command) in commands.iter().enumerate() {
        let label = if i == 0 { "rerun:" } else { "   or:" };
        let _ = writeln!(out, "{indent}{label} {command}");
    }
}

/// How much of the strike space was tried: `tried 96/96 points (exhaustive)`, `tried 64
/// of 3,210 points`; nothing for delay spaces, which are continuous.
pub fn coverage_text(coverage: &Coverage) -> Option<String> {
    let total = coverage.total?;
    Some(if coverage.exhaustive {
        format!(
            "tried {}/{} points (exhaustive)",
            thousands(coverage.tried),
            thousands(total)
        )
    } else {
        format!(
            "tried {} of {} points",
            thousands(coverage.tried),
            thousands(total)
        )
    })
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The census in one line: `exit 0 in 41.2 ms; out.json 1048576 bytes; handlers: …`.
fn census_line(census: &Census) -> String {
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
    let marks: Vec<String> = census
        .mark_counts
        .iter()
        .map(|(name, n)| format!("{name} ×{n}"))
        .collect();
    let serving = serving(&census.run);
    format!(
        "{} in {}{}{}{}{}",
        census.run.status,
        ms(census.duration()),
        if serving.is_empty() {
            String::new()
        } else {
            format!("; {}", serving.join(", "))
        },
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
        if marks.is_empty() {
            String::new()
        } else {
            format!("; probe marks: {}", marks.join(", "))
        },
    )
}

/// The first lines of a scenario's report: its name, and the census in one line.
fn header(report: &ScenarioReport) -> String {
    let mut out = String::new();
    if report.scenario == report.name {
        let _ = writeln!(out, "{}", report.scenario);
    } else {
        let _ = writeln!(out, "{} ({})", report.scenario, report.name);
    }
    if let Some(census) = &report.census {
        let _ = writeln!(out, "  census: {}", census_line(census));
    }
    out
}

/// The verbose report of one reproduced case (`killpoint repro`): the plan, what each
/// strike hit, the trace around it per process, stdout and stderr, every verdict, and
/// where the sandbox was kept.
pub fn repro_text(report: &ScenarioReport) -> String {
    let mut out = header(report);
    let Some(case) = &report.case else {
        match &report.result {
            ScenarioResult::Error { message } => {
                let _ = writeln!(out, "  ERROR: {message}");
            }
            ScenarioResult::Interrupted => {
                let _ = writeln!(out, "  INTERRUPTED");
            }
            _ => {}
        }
        return out;
    };
    let _ = writeln!(out, "  case {}", case.case_id);
    let _ = writeln!(out, "  plan: {}", case.plan);
    for record in &case.outcome.strikes {
        let mut line = format!("  strike: {}", record.signal);
        match (record.sent_at, &record.struck) {
            (Some(at), struck) => {
                let _ = write!(line, " sent at {}", ms(at));
                if let Some(struck) = struck {
                    let _ = write!(line, " to pid {} ({})", struck.pid, struck.program);
                }
                line.push_str(if record.caught {
                    ", a process with a handler for it"
                } else {
                    ", a process with no handler for it"
                });
            }
            (None, _) if record.unmatched => {
                let _ = write!(line, " never sent: {}", unmatched(record));
            }
            (None, _) => line.push_str(" never sent: the target was gone before its point"),
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(census) = &report.census {
        for line in strike_story(&case.outcome, census) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if case.outcome.processes.is_empty() {
        let _ = writeln!(
            out,
            "  trace: none (the case ran untraced: no ptrace, or `handler_io = \"off\"` with no deadline and no syscall point)"
        );
    }
    if let Some(first) = case.outcome.first_delivered() {
        let timeline = case.outcome.timeline(first.sent_at.unwrap_or_default());
        if !timeline.is_empty() {
            let _ = writeln!(out, "  timeline from the first strike ({}):", first.signal);
            for line in timeline {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    for process in &case.outcome.trace {
        let _ = writeln!(out, "  trace of pid {} ({}):", process.pid, process.command);
        for event in &process.before {
            let _ = writeln!(out, "    {event}");
        }
        let _ = writeln!(out, "    ── first strike ──");
        for event in &process.after {
            let _ = writeln!(out, "    {event}");
        }
        if process.more_after > 0 {
            let _ = writeln!(out, "    … {} more events", process.more_after);
        }
    }
    let _ = writeln!(out, "  {}", outcome_line(&case.outcome));
    write_timeline(&mut out, &case.outcome, "  ");
    let mut captures = vec![
        ("stdout", &case.outcome.stdout),
        ("stderr", &case.outcome.stderr),
    ];
    if let Some(resume) = &case.outcome.resume {
        let _ = writeln!(
            out,
            "  resume: {} in {}{}",
            resume.status,
            ms(resume.duration),
            if resume.killed.is_some() {
                " (killed: it ran past the timeout)"
            } else {
                ""
            }
        );
        captures.push(("resume stdout", &resume.stdout));
        captures.push(("resume stderr", &resume.stderr));
    }
    for (name, capture) in captures {
        let lines: Vec<&str> = capture.text.lines().collect();
        let shown = &lines[lines.len().saturating_sub(REPRO_LINES)..];
        let _ = writeln!(
            out,
            "  {name}: {} bytes{}",
            capture.total_bytes,
            if shown.len() < lines.len() {
                format!(", the last {} lines:", shown.len())
            } else if shown.is_empty() {
                String::new()
            } else {
                ":".into()
            }
        );
        for line in shown {
            let _ = writeln!(out, "    | {line}");
        }
    }
    let _ = writeln!(out, "  verdicts:");
    for name in &report.checked {
        let violated = case.violations.iter().find(|(n, _)| n == name);
        let warned = case.warnings.iter().find(|(n, _)| n == name);
        match (violated, warned) {
            (Some((_, evidence)), _) | (None, Some((_, evidence))) => {
                let head = if violated.is_some() {
                    "VIOLATED"
                } else {
                    "WARNING"
                };
                let _ = writeln!(out, "    {name}: {head}");
                for line in evidence {
                    let _ = writeln!(out, "      {line}");
                }
            }
            (None, None) => {
                let _ = writeln!(out, "    {name}: held");
            }
        }
    }
    if let Some(dir) = &case.sandbox {
        let _ = writeln!(out, "  sandbox kept: {}", dir.display());
    }
    out
}

/// How many lines of stdout and of stderr a reproduction shows.
const REPRO_LINES: usize = 40;

/// The human report of one scenario.
pub fn scenario_text(report: &ScenarioReport) -> String {
    let mut out = header(report);
    for note in &report.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for warning in &report.warnings {
        let _ = writeln!(
            out,
            "  WARNING: {} at case {} (rerun: {})",
            warning.invariant,
            warning.case_index + 1,
            rerun_commands(report, &warning.case_id)[0]
        );
        for line in &warning.evidence {
            let _ = writeln!(out, "    {line}");
        }
    }
    let checked: Vec<&str> = report.checked.iter().map(|n| n.as_str()).collect();
    let mut cases = format!("{} of {} cases run", report.cases_run, report.cases_planned);
    if report.regressions_replayed > 0 {
        let _ = write!(
            cases,
            ", {} from the regressions file",
            report.regressions_replayed
        );
    }
    if let Some(coverage) = report.coverage.as_ref().and_then(coverage_text) {
        let _ = write!(cases, ", {coverage}");
    }
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
            if let Some(failure) = &report.failure {
                let names: Vec<&str> = failure.violations.iter().map(|(n, _)| n.as_str()).collect();
                let _ = writeln!(
                    out,
                    "    found before the stop: a violation of {} at case {}",
                    names.join(", "),
                    failure.case_index + 1
                );
                let _ = writeln!(out, "    plan: {}", failure.plan);
                write_rerun(&mut out, "    ", &rerun_commands(report, &failure.case_id));
            }
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
            if failure.case_id == CaseId::Census {
                let _ = writeln!(
                    out,
                    "  {head}: {}, found by the uninterrupted run: no strike reached it",
                    names.join(", "),
                );
            } else {
                let _ = writeln!(
                    out,
                    "  {head}: {} at case {} ({cases})",
                    names.join(", "),
                    failure.case_index + 1,
                );
            }
            if let Some(shrink) = &report.shrink
                && shrink.steps > 0
            {
                let _ = writeln!(
                    out,
                    "    shrunk from: {} (case {})",
                    shrink.from_plan, shrink.from
                );
                let _ = writeln!(
                    out,
                    "      in {} step{} ({} runs, {}{})",
                    shrink.steps,
                    if shrink.steps == 1 { "" } else { "s" },
                    shrink.runs,
                    ms(shrink.elapsed),
                    match shrink.stopped {
                        Stopped::Minimal => "",
                        Stopped::Iterations => "; the run budget ran out",
                        Stopped::Time => "; the time budget ran out",
                        Stopped::Aborted => "; cut short",
                    }
                );
            }
            write_case(
                &mut out,
                &failure.plan,
                &failure.violations,
                &failure.outcome,
                report.census.as_ref(),
            );
            if let Some(dir) = &failure.sandbox {
                let _ = writeln!(out, "    sandbox kept: {}", dir.display());
            }
            write_rerun(&mut out, "    ", &rerun_commands(report, &failure.case_id));
            for other in &report.also_failed {
                let names: Vec<&str> = other.violated.iter().map(|n| n.as_str()).collect();
                let _ = writeln!(
                    out,
                    "  also failed: {} at case {}{}, plan {}",
                    names.join(", "),
                    other.index + 1,
                    if crate::judged::verdict(&report.expected, &other.violated)
                        == ScenarioResult::Violated
                    {
                        " (not declared)"
                    } else {
                        ""
                    },
                    other.plan
                );
                write_rerun(&mut out, "    ", &rerun_commands(report, &other.id)[..1]);
            }
        }
    }
    out
}

/// A server case's timeline (none for other cases), indented by `indent`.
fn write_timeline(out: &mut String, outcome: &Outcome, indent: &str) {
    let lines = super::timeline::server_timeline(outcome);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}timeline:");
    for line in lines {
        let _ = writeln!(out, "{indent}  {line}");
    }
}

/// One case, as a report shows it: the plan, what each strike hit, the evidence of each
/// violation, how the run ended and the end of its stderr.
fn write_case(
    out: &mut String,
    plan: &Plan,
    violations: &[(InvariantName, Vec<String>)],
    outcome: &Outcome,
    census: Option<&Census>,
) {
    let _ = writeln!(out, "    plan: {plan}");
    if let Some(census) = census {
        for line in strike_story(outcome, census) {
            let _ = writeln!(out, "    {line}");
        }
    }
    for (name, evidence) in violations {
        let _ = writeln!(out, "    {name}:");
        for line in evidence {
            let _ = writeln!(out, "      {line}");
        }
    }
    let _ = writeln!(out, "    {}", outcome_line(outcome));
    for quoted in stderr_tail(outcome) {
        let _ = writeln!(out, "      stderr: {quoted}");
    }
    write_timeline(out, outcome, "    ");
}

/// One case run through [`crate::Cases`]: its verdict, then the case as a failure report
/// shows it.
pub fn case_text(case: &JudgedCase, census: &Census) -> String {
    let mut out = String::new();
    if case.violations.is_empty() {
        let _ = writeln!(out, "  every invariant held");
    } else {
        let names: Vec<&str> = case.violations.iter().map(|(n, _)| n.as_str()).collect();
        let _ = writeln!(out, "  VIOLATED: {}", names.join(", "));
    }
    write_case(
        &mut out,
        &case.plan,
        &case.violations,
        &case.outcome,
        Some(census),
    );
    out
}

/// What each syscall strike hit and what the struck process did next, in words:
/// `struck: SIGTERM at the entry of write #3 to out.json (65536 bytes at offset 131072)`,
/// `then: SIGTERM delivered, write <stderr …> ×3, exit 14; no fsync, rename as the
/// uninterrupted run made after that call`.
pub fn strike_story(outcome: &Outcome, census: &Census) -> Vec<String> {
    let mut lines = Vec::new();
    for record in &outcome.strikes {
        if let Some(line) = chosen_process(record) {
            lines.push(line);
            continue;
        }
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
        if let Some(struck) = &record.struck {
            let _ = write!(line, " ({})", struck.program);
        }
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

/// Which process a delay strike limited to a program went to, or why it went nowhere:
/// `struck: SIGTERM at 12.3 ms, pid 812 (sh), the first `sh` process alive`.
fn chosen_process(record: &StrikeRecord) -> Option<String> {
    let Point::Delay { .. } = record.point else {
        return None;
    };
    if record.unmatched {
        return Some(format!("not struck: {}", unmatched(record)));
    }
    let (Some(at), Some(struck)) = (record.sent_at, &record.struck) else {
        return None;
    };
    // Without `process`, the main process: the plan already says so.
    let Some(ProcessSelector::Program(glob)) = &record.process else {
        return None;
    };
    Some(format!(
        "struck: {} at {}, pid {} ({}), the first `{glob}` process alive",
        record.signal,
        ms(at),
        struck.pid,
        struck.program
    ))
}

/// Why a delay strike limited to a program was not sent.
fn unmatched(record: &StrikeRecord) -> String {
    match &record.process {
        Some(ProcessSelector::Program(glob)) => {
            format!("no `{glob}` process was alive when it was due")
        }
        _ => "no process it could hit was alive when it was due".into(),
    }
}

/// Events as a short list, runs of the same call folded: `write out.json ×5, exit 0`.
fn condense(events: &[Event]) -> String {
    let label = |e: &Event| match &e.what {
        What::Syscall(call) => {
            let mut label = call.name.clone();
            if !call.paths.is_empty() {
                label = format!("{label} {}", call.path_label());
            }
            if call.restarted {
                let _ = write!(label, " ({RESTARTED})");
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
                FileState::Golden | FileState::Valid => "complete".to_string(),
                FileState::Rejected { size, .. } => format!("rejected, {size} bytes"),
                FileState::Other { size, .. } => format!("partial, {size} bytes"),
            };
            format!("{} {state}", o.path)
        })
        .collect();
    let mut line = format!("outcome: {} at {}", outcome.status, ms(outcome.exited_at));
    let serving = serving(outcome);
    if !serving.is_empty() {
        let _ = write!(line, "; {}", serving.join(", "));
    }
    if let Some(power) = &outcome.power {
        let _ = write!(
            line,
            "; power lost {}: {}, {} of {} operation(s) durable",
            match power.at {
                Some(at) => format!("at {}", ms(at)),
                None => "after the run".to_string(),
            },
            power.state,
            power.durable,
            power.recorded
        );
        if !power.warnings.is_empty() {
            let _ = write!(line, " (not modelled: {})", power.warnings.join("; "));
        }
    }
    if !outputs.is_empty() {
        let _ = write!(line, "; {}", outputs.join(", "));
    }
    // Files left that the rule excuses are shown with the rule, not hidden.
    if !outcome.stray_files.is_empty()
        && let Cleanup::Excused(why) = cleanup(outcome)
    {
        let _ = write!(
            line,
            "; left behind: {} (excused: {why})",
            outcome.stray_files.join(", ")
        );
    }
    line
}

/// A server's run in a few words: when it was ready, how each client ended, the stop.
fn serving(outcome: &Outcome) -> Vec<String> {
    let mut said = Vec::new();
    if let Some(at) = outcome.ready_at {
        said.push(format!("ready at {}", ms(at)));
    }
    for (i, client) in outcome.clients.iter().enumerate() {
        if let Some(history) = &client.history {
            said.push(format!("client {} {}", i + 1, history.summary()));
            continue;
        }
        let ended = match (&client.status, client.ended_at, &client.error) {
            (_, _, Some(error)) => format!("could not run ({error})"),
            (_, Some(at), _) if client.cut_off => format!("cut off at {}", ms(at)),
            (Some(status), Some(at), _) => format!("{status} at {}", ms(at)),
            _ => "no end seen".to_string(),
        };
        said.push(format!("client {} {ended}", i + 1));
    }
    if let Some(stop) = &outcome.stop {
        said.push(format!(
            "stopped with {} at {}",
            stop.signal,
            ms(stop.sent_at)
        ));
    }
    said
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
