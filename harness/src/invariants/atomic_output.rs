//! `atomic-output`: every declared output is absent, its prior content, or complete (the
//! census's golden) — never truncated or partial — and after a graceful stop no temp file
//! is left beside it.

use super::{Context, Verdict};
use crate::expect::{Judge, OutputSpec};
use crate::outcome::{Difference, FileState, Outcome, OutputRecord};
use crate::values::ExitStatus;

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let mut evidence: Vec<String> = Vec::new();
    for output in &outcome.outputs {
        if let Some(partial) = describe_partial(output, ctx.expect.output(&output.path)) {
            evidence.push(partial);
            // After a power loss: the operations whose loss made it so.
            evidence.extend(super::durable_output::lost_with_power(
                outcome,
                output.path.as_str(),
            ));
        }
    }

    if ctx.expect.no_temp_leftovers
        && !outcome.stray_files.is_empty()
        && let Cleanup::Owed(rule) = cleanup(outcome)
    {
        evidence.push(format!(
            "left behind: {} (not there before the run, nor after the uninterrupted one); {rule}",
            outcome.stray_files.join(", ")
        ));
    }

    if evidence.is_empty() {
        Verdict::Held
    } else {
        Verdict::violated(evidence)
    }
}

/// Whether new files left beside the outputs break the promise: they do unless whoever
/// would have removed them was killed by a signal no handler can catch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// The process that owned the clean-up could have run it; why, in words.
    Owed(String),
    /// Nobody could have cleaned up; why, in words.
    Excused(String),
}

/// The rule that applies to the files a run left behind. Only the main process's fate
/// and the harness's own kill count: a worker killed by SIGKILL does not excuse a main
/// process that lived on and could have removed what the worker left.
pub fn cleanup(outcome: &Outcome) -> Cleanup {
    if outcome.power.is_some() {
        return Cleanup::Excused(
            "the power failed: no process could remove them (a program cleans such files up when it starts again)"
                .into(),
        );
    }
    if let Some(kill) = &outcome.killed {
        return Cleanup::Excused(format!(
            "the harness killed what was left of the tree with SIGKILL at {} ({})",
            crate::units::ms(kill.at),
            kill.reason.describe()
        ));
    }
    let strike = outcome.first_delivered();
    match outcome.status {
        ExitStatus::Signal(signal) if !signal.is_catchable() => Cleanup::Excused(format!(
            "the main process was killed by {signal}, which no handler can catch"
        )),
        ExitStatus::Signal(signal) => {
            let caught = strike.is_some_and(|s| s.signal == signal && s.caught);
            Cleanup::Owed(if caught {
                format!("the main process caught {signal}, then died of it without removing them")
            } else {
                format!(
                    "the main process died of {signal}, a signal it could have caught to remove them"
                )
            })
        }
        ExitStatus::Code(code) => Cleanup::Owed(match strike {
            Some(strike) => format!(
                "after {}, the main process lived on and exited {code} without removing them",
                strike.signal
            ),
            None => format!("no strike reached it, and it exited {code} without removing them"),
        }),
    }
}

fn describe_partial(output: &OutputRecord, spec: Option<&OutputSpec>) -> Option<String> {
    if let FileState::Rejected {
        size,
        sha256,
        by,
        output: said,
    } = &output.after
    {
        let said = if said.is_empty() {
            String::new()
        } else {
            format!("; it said: {}", said.replace('\n', " | "))
        };
        return Some(format!(
            "{} ({size} bytes, sha256 {}…) is not complete: {by}; {}{said}",
            output.path,
            &sha256[..12],
            before(&output.before)
        ));
    }
    let FileState::Other {
        size,
        sha256,
        difference,
    } = &output.after
    else {
        return None;
    };
    let Difference {
        offset,
        expected_size,
        found,
        expected,
    } = difference;
    let what = if *size == 0 {
        format!("empty: truncated to 0 of the complete {expected_size} bytes")
    } else if offset == size && size < expected_size {
        format!("truncated: its {size} bytes are the first {size} of the complete {expected_size}")
    } else {
        format!(
            "{size} bytes, differing from the complete {expected_size} at byte {offset}: found `{found}`, expected `{expected}`"
        )
    };
    // Offsets and bytes of a normalized output are those of the normalized content.
    let normalized = match spec.map(|s| &s.judge) {
        Some(Judge::Normalize(command)) => {
            let command: Vec<&str> = command.iter().map(|a| a.raw.as_str()).collect();
            format!(", once normalized by `{}`,", command.join(" "))
        }
        _ => String::new(),
    };
    Some(format!(
        "{}{normalized} is {what} (sha256 {}…); {}",
        output.path,
        &sha256[..12],
        before(&output.before)
    ))
}

fn before(state: &FileState) -> String {
    match state {
        FileState::Absent => "it did not exist before".to_string(),
        FileState::Prior => "its prior content was lost".to_string(),
        other => format!("before the run it was {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::values::Signal;

    const GOLDEN: &[u8] = b"{\"items\":[0,1,2,3,4,5,6,7]}";

    fn judge(outcome: &Outcome) -> Verdict {
        let e = Expect {
            outputs: vec!["out.json".parse().unwrap()],
            ..Expect::default()
        };
        let (c, p) = (census(GOLDEN), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome,
        })
    }

    fn with_after(found: Option<&[u8]>, prior: Option<&[u8]>) -> Outcome {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(20))];
        o.status = crate::values::ExitStatus::Code(14);
        o.outputs[0].before = FileState::classify(prior, prior, Some(GOLDEN));
        o.outputs[0].after = FileState::classify(found, prior, Some(GOLDEN));
        o
    }

    #[test]
    fn absent_prior_and_golden_all_hold() {
        assert_eq!(judge(&with_after(None, None)), Verdict::Held);
        assert_eq!(
            judge(&with_after(Some(b"old"), Some(b"old"))),
            Verdict::Held
        );
        assert_eq!(
            judge(&with_after(Some(GOLDEN), Some(b"old"))),
            Verdict::Held
        );
    }

    #[test]
    fn a_truncated_output_is_a_violation_with_its_sizes() {
        let Verdict::Violated { evidence } = judge(&with_after(Some(&GOLDEN[..10]), Some(b"old")))
        else {
            panic!("a truncated file must be caught")
        };
        assert_eq!(evidence.len(), 1);
        assert!(
            evidence[0].starts_with(
                "out.json is truncated: its 10 bytes are the first 10 of the complete 27 (sha256 "
            ),
            "{}",
            evidence[0]
        );
        assert!(
            evidence[0].ends_with("; its prior content was lost"),
            "{}",
            evidence[0]
        );
    }

    #[test]
    fn an_emptied_output_is_named_as_such() {
        let Verdict::Violated { evidence } = judge(&with_after(Some(b""), Some(b"old"))) else {
            panic!("an emptied file must be caught")
        };
        assert!(
            evidence[0].starts_with("out.json is empty: truncated to 0 of the complete 27 bytes"),
            "{}",
            evidence[0]
        );
    }

    #[test]
    fn a_corrupt_output_shows_where_it_differs() {
        let mut corrupt = GOLDEN.to_vec();
        corrupt[3] = b'X';
        let Verdict::Violated { evidence } = judge(&with_after(Some(&corrupt), None)) else {
            panic!("a changed byte must be caught")
        };
        assert!(
            evidence[0].contains("differing from the complete 27 at byte 3: found `Xems"),
            "{}",
            evidence[0]
        );
    }

    #[test]
    fn a_temp_file_left_after_a_caught_sigterm_is_a_violation() {
        let mut o = with_after(None, None);
        o.stray_files = vec![".out.json.tmp-77".into()];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("temp leftover")
        };
        assert_eq!(
            evidence,
            vec![
                "left behind: .out.json.tmp-77 (not there before the run, nor after the uninterrupted one); after SIGTERM, the main process lived on and exited 14 without removing them"
            ]
        );
    }

    #[test]
    fn a_temp_file_left_after_sigkill_is_excused() {
        let mut o = with_after(None, None);
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(20))];
        o.status = ExitStatus::Signal(Signal::SIGKILL);
        o.stray_files = vec![".out.json.tmp-77".into()];
        assert_eq!(judge(&o), Verdict::Held);
        assert_eq!(
            cleanup(&o),
            Cleanup::Excused(
                "the main process was killed by SIGKILL, which no handler can catch".into()
            )
        );
    }

    #[test]
    fn dying_of_a_catchable_signal_without_a_handler_owes_the_clean_up() {
        let mut o = with_after(None, None);
        let mut strike = struck(Signal::SIGTERM, at_ms(20));
        strike.caught = false;
        o.strikes = vec![strike];
        o.status = ExitStatus::Signal(Signal::SIGTERM);
        o.stray_files = vec!["tmpab12cd".into()];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("a program that could have caught SIGTERM owes the clean-up")
        };
        assert!(
            evidence[0].ends_with(
                "the main process died of SIGTERM, a signal it could have caught to remove them"
            ),
            "{}",
            evidence[0]
        );
    }

    #[test]
    fn a_worker_killed_by_sigkill_does_not_excuse_the_main_process_that_lived_on() {
        let mut o = with_after(None, None);
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(20))];
        o.status = ExitStatus::Code(1);
        o.stray_files = vec!["part.tmp".into()];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("the main process lived on and could have cleaned up")
        };
        assert!(
            evidence[0].ends_with(
                "after SIGKILL, the main process lived on and exited 1 without removing them"
            ),
            "{}",
            evidence[0]
        );
    }
}
