//! `durable-output`: after a power loss that came once the target had exited cleanly,
//! every declared output is complete. A clean exit is a promise that the work is done;
//! a program that renames a file it never fsynced, or never fsyncs the directory of its
//! rename, keeps that promise until the machine loses power. Only power strikes are
//! judged (`expect.durable`, on by default; the crash state is the one in
//! `Outcome::power`).

use super::{Context, Verdict};
use crate::outcome::{FileState, Outcome};
use crate::units::ms;

/// At most this many lost operations are quoted.
const QUOTED: usize = 6;

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let Some(power) = &outcome.power else {
        return Verdict::Held;
    };
    // The exit came first: the power failed after it, or the strike's point never came.
    let exited_first = power.at.is_none_or(|at| outcome.exited_at <= at);
    if !exited_first || !ctx.expect.clean.contains(&outcome.status) {
        return Verdict::Held;
    }
    let mut evidence = Vec::new();
    for output in &outcome.outputs {
        let state = match &output.after {
            FileState::Golden | FileState::Valid => continue,
            FileState::Absent => "absent".to_string(),
            FileState::Prior => "back to its prior content".to_string(),
            FileState::Rejected { size, .. } | FileState::Other { size, .. } => {
                format!("incomplete ({size} bytes)")
            }
        };
        evidence.push(format!(
            "{} is {state} after a power loss {}, once the target had {} at {}: that exit promised it",
            output.path,
            match power.at {
                Some(at) => format!("at {}", ms(at)),
                None => "after the run".to_string(),
            },
            outcome.status,
            ms(outcome.exited_at)
        ));
        evidence.extend(lost_with_power(outcome, output.path.as_str()));
    }
    if evidence.is_empty() {
        Verdict::Held
    } else {
        Verdict::violated(evidence)
    }
}

/// What the power loss lost that concerns `path` (every lost operation if none names
/// it), quoted for evidence.
pub(crate) fn lost_with_power(outcome: &Outcome, path: &str) -> Vec<String> {
    let Some(power) = &outcome.power else {
        return Vec::new();
    };
    let naming: Vec<&String> = power.lost.iter().filter(|l| l.contains(path)).collect();
    let lost = if naming.is_empty() {
        power.lost.iter().collect()
    } else {
        naming
    };
    let mut lines: Vec<String> = lost
        .iter()
        .take(QUOTED)
        .map(|l| format!("lost with the power: {l}"))
        .collect();
    if lost.len() > QUOTED {
        lines.push(format!("… and {} more", lost.len() - QUOTED));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::PowerRecord;
    use crate::power::CrashState;
    use crate::values::ExitStatus;

    fn judge(outcome: &Outcome) -> Verdict {
        let e = Expect {
            outputs: vec!["out.json".parse().unwrap()],
            power: true,
            ..Expect::default()
        };
        let (c, p) = (census(b"{}"), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome,
        })
    }

    fn after_power(at: Option<u64>, state: FileState) -> Outcome {
        let mut o = clean_outcome();
        o.outputs[0].after = state;
        o.power = Some(PowerRecord {
            at: at.map(Duration::from_millis),
            state: CrashState::LoseAll,
            recorded: 3,
            durable: 1,
            lost: vec![
                "creation of out.json.tmp: not durable, directory . was not fsynced after it"
                    .into(),
                "rename of out.json.tmp → out.json: not durable, directory . was not fsynced after it"
                    .into(),
            ],
            warnings: vec![],
        });
        o
    }

    #[test]
    fn an_output_lost_after_a_clean_exit_is_a_broken_promise_with_the_lost_operations() {
        let Verdict::Violated { evidence } = judge(&after_power(None, FileState::Absent)) else {
            panic!()
        };
        assert_eq!(
            evidence,
            [
                "out.json is absent after a power loss after the run, once the target had exit 0 at 100.0 ms: that exit promised it",
                "lost with the power: creation of out.json.tmp: not durable, directory . was not fsynced after it",
                "lost with the power: rename of out.json.tmp → out.json: not durable, directory . was not fsynced after it",
            ]
        );
    }

    #[test]
    fn a_power_loss_before_the_exit_or_a_complete_output_holds() {
        // Killed at 50 ms, before it exited at 100: nothing was promised yet.
        let mut o = after_power(Some(50), FileState::Absent);
        o.status = ExitStatus::Signal(crate::values::Signal::SIGKILL);
        assert_eq!(judge(&o), Verdict::Held);
        assert_eq!(judge(&after_power(None, FileState::Golden)), Verdict::Held);
        // No power loss: nothing to judge.
        let mut o = after_power(None, FileState::Absent);
        o.power = None;
        assert_eq!(judge(&o), Verdict::Held);
    }
}
