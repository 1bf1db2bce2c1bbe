//! `exit-code`: the exit status is one the scenario documents for the situation.
//!
//! The situation is decided by the first strike that reached a live target: none → `clean`,
//! SIGKILL → `killed`, any other signal → `interrupted`. A strike can land after the work
//! was done (between the last check of the shutdown flag and exit), so a clean status after
//! a strike is accepted too — but only when the work is finished: every declared output
//! complete and, with `[expect.acked]`, every id the census acknowledged acknowledged
//! again. A run that reports success must have done what a clean run does.

use std::time::Duration;

use super::{Context, Verdict};
use crate::census::Census;
use crate::outcome::{KillReason, StrikeRecord};
use crate::units::ms;
use crate::values::{ExitStatus, Signal};

pub fn check(ctx: &Context) -> Verdict {
    let (expect, outcome) = (ctx.expect, ctx.outcome);
    let status = outcome.status;

    if let Some(kill) = &outcome.killed
        && kill.at <= outcome.exited_at
    {
        // The harness ended the main process: its status says nothing of the target.
        return match kill.reason {
            KillReason::TimedOut => Verdict::violated(vec![format!(
                "no strike reached it and it was still running when the timeout ran out; killed at {}",
                ms(kill.at)
            )]),
            KillReason::DrainOverran if expect.deadline.is_some() => Verdict::Held,
            _ => Verdict::violated(vec![format!(
                "it never exited after the strike; killed at {}",
                ms(kill.at)
            )]),
        };
    }

    let Some(strike) = outcome.first_delivered() else {
        if expect.clean.contains(&status) {
            return Verdict::Held;
        }
        return Verdict::violated(vec![
            format!(
                "no strike reached it, and it ended with {status} at {}",
                ms(outcome.exited_at)
            ),
            format!("documented for a clean run: {}", list(&expect.clean)),
        ]);
    };

    let (situation, allowed) = if strike.signal == Signal::SIGKILL {
        ("killed", Some(&expect.killed))
    } else {
        ("interrupted", expect.interrupted.as_ref())
    };
    let Some(allowed) = allowed else {
        return Verdict::Held;
    };
    if allowed.contains(&status) {
        return Verdict::Held;
    }
    let handler = handler_then(strike, ctx.census);
    let sent = format!(
        "{} sent at {} ({})",
        strike.signal,
        ms(strike.sent_at.unwrap_or_default()),
        handler.describe(strike.signal)
    );
    let unfinished = unfinished_work(ctx);
    // After its work, on its way out, a program may give its handler up (Python does
    // as it finalizes): a signal then takes its default action, which is no more a
    // broken promise than a clean exit at the same moment.
    // Only where the scenario says what the work is can it be seen to be finished.
    let declares_work = !expect.outputs.is_empty() || expect.acked.is_some();
    if handler.given_up()
        && status == ExitStatus::Signal(strike.signal)
        && declares_work
        && unfinished.is_empty()
    {
        return Verdict::Held;
    }
    // A caught signal can land after the work was done, between the last look at the
    // shutdown flag and exit. SIGKILL cannot: a clean exit after it means the kill hit
    // another process of the tree (a crashed child) and the main process hid it.
    if strike.signal != Signal::SIGKILL && expect.clean.contains(&status) && unfinished.is_empty() {
        return Verdict::Held;
    }
    // Unless the tracer saw no process of the tree die of it: then the SIGKILL came as the
    // main process was already exiting, and hit nothing.
    let killed_one = outcome
        .processes
        .iter()
        .any(|p| p.status == Some(ExitStatus::Signal(Signal::SIGKILL)));
    if strike.signal == Signal::SIGKILL
        && expect.clean.contains(&status)
        && unfinished.is_empty()
        && !outcome.processes.is_empty()
        && !killed_one
    {
        return Verdict::Held;
    }
    let mut evidence = vec![
        format!(
            "{sent}; it ended with {status} at {}",
            ms(outcome.exited_at)
        ),
        format!("documented when {situation}: {}", list(allowed)),
    ];
    if expect.clean.contains(&status) {
        evidence.push(if strike.signal == Signal::SIGKILL {
            format!(
                "{status} claims success, but a process of its tree was killed: a crash must not look like success"
            )
        } else {
            format!(
                "{status} claims success, but {}: a run that reports success must have finished its work",
                unfinished.join(", ")
            )
        });
    }
    Verdict::violated(evidence)
}

/// Whether the program could catch the struck signal when it was sent, told from what
/// was seen: the disposition at that moment, and when handlers appeared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum HandlerThen {
    Caught,
    /// No handler yet: the uninterrupted run installs one at this time.
    NotYet(Duration),
    /// It had one (seen in this run, or installed by the uninterrupted run at this time)
    /// and had given it up for the default action by then.
    GivenUp(Duration),
    /// No handler then, and none was seen in this run, though the uninterrupted run had
    /// one from this time.
    NotSeen(Duration),
    /// The census never saw it install one.
    Never,
    /// SIGKILL, SIGSTOP: no handler can catch it.
    Uncatchable,
}

impl HandlerThen {
    fn describe(self, signal: Signal) -> String {
        match self {
            HandlerThen::Caught => "it had a handler".into(),
            HandlerThen::NotYet(at) => format!(
                "it had no handler for it yet: the uninterrupted run installs one at {}",
                ms(at)
            ),
            HandlerThen::GivenUp(at) => format!(
                "it no longer had a handler for it: one was installed at {}, and {signal} was back to its default action",
                ms(at)
            ),
            HandlerThen::NotSeen(at) => format!(
                "it had no handler for it at that moment; the uninterrupted run had one from {}",
                ms(at)
            ),
            HandlerThen::Uncatchable => "no handler can catch it".into(),
            HandlerThen::Never => {
                format!(
                    "no handler for it: the uninterrupted run was never seen to install one for {signal}"
                )
            }
        }
    }

    fn given_up(self) -> bool {
        matches!(self, HandlerThen::GivenUp(_))
    }
}

fn handler_then(strike: &StrikeRecord, census: &Census) -> HandlerThen {
    if strike.caught {
        return HandlerThen::Caught;
    }
    if !strike.signal.is_catchable() {
        return HandlerThen::Uncatchable;
    }
    let sent = strike.sent_at.unwrap_or_default();
    // Only this run's own sight of a handler proves it was given up: the census's times
    // differ from a case's by the run's speed.
    if let Some(seen) = strike.handler_seen_at
        && seen <= sent
    {
        return HandlerThen::GivenUp(seen);
    }
    match census.handlers.get(&strike.signal) {
        Some(h) if h.at > sent => HandlerThen::NotYet(h.at),
        Some(h) => HandlerThen::NotSeen(h.at),
        None => HandlerThen::Never,
    }
}

/// What a clean run did that this one did not: outputs left unfinished, acknowledgements
/// never made.
fn unfinished_work(ctx: &Context) -> Vec<String> {
    let mut unfinished: Vec<String> = ctx
        .outcome
        .outputs
        .iter()
        .filter(|o| !o.after.is_complete())
        .map(|o| format!("{} is {}", o.path, o.after.name()))
        .collect();
    if let Some(spec) = &ctx.expect.acked {
        let census = spec.ack.reported(&ctx.census.run);
        let acked = spec.ack.reported(ctx.outcome);
        let acked: std::collections::HashSet<&String> = acked.iter().collect();
        let missing = census.iter().filter(|id| !acked.contains(id)).count();
        if missing > 0 {
            unfinished.push(format!(
                "{missing} of the {} ids a clean run acknowledges were never acknowledged",
                census.len()
            ));
        }
    }
    unfinished
}

fn list(statuses: &[ExitStatus]) -> String {
    if statuses.is_empty() {
        return "nothing".into();
    }
    statuses
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::{FileState, HarnessKill};

    fn expect() -> Expect {
        Expect {
            interrupted: Some(vec![ExitStatus::Code(14)]),
            outputs: vec!["out.json".parse().unwrap()],
            ..Expect::default()
        }
    }

    fn judge(outcome: &crate::outcome::Outcome) -> Verdict {
        let (e, c, p) = (expect(), census(b"{}"), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome,
        })
    }

    #[test]
    fn a_clean_run_must_exit_with_a_clean_code() {
        assert_eq!(judge(&clean_outcome()), Verdict::Held);
        let mut o = clean_outcome();
        o.status = ExitStatus::Code(3);
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("exit 3 is not clean")
        };
        assert_eq!(
            evidence[0],
            "no strike reached it, and it ended with exit 3 at 100.0 ms"
        );
        assert_eq!(evidence[1], "documented for a clean run: exit 0");
    }

    #[test]
    fn sigterm_followed_by_the_cancel_code_holds() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(40))];
        o.status = ExitStatus::Code(14);
        o.outputs[0].after = FileState::Absent;
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn exit_zero_after_sigterm_with_no_output_is_a_violation() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(40))];
        o.outputs[0].after = FileState::Absent;
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("exit 0 without output")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 40.0 ms (it had a handler); it ended with exit 0 at 100.0 ms"
        );
        assert_eq!(evidence[1], "documented when interrupted: exit 14");
        assert!(evidence[2].contains("out.json is absent"), "{evidence:?}");
    }

    #[test]
    fn exit_zero_after_a_late_strike_with_complete_output_holds() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(99))];
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn exit_zero_after_sigterm_with_work_unacknowledged_is_a_violation() {
        let e = Expect {
            interrupted: Some(vec![ExitStatus::Code(14)]),
            acked: Some(acked_spec()),
            ..Expect::default()
        };
        let mut c = census(b"{}");
        c.run.stdout.text = "ACK 1\nACK 2\nACK 3\n".into();
        let mut o = clean_outcome();
        o.outputs.clear();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(40))];
        o.stdout.text = "ACK 1\n".into();
        let p = no_plan();
        let judge = |o: &crate::outcome::Outcome| {
            check(&Context {
                expect: &e,
                census: &c,
                plan: &p,
                outcome: o,
            })
        };
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("exit 0 with work left")
        };
        assert_eq!(
            evidence[2],
            "exit 0 claims success, but 2 of the 3 ids a clean run acknowledges were never acknowledged: a run that reports success must have finished its work"
        );
        // Every id acknowledged: the strike came after the work was done.
        o.stdout.text = "ACK 1\nACK 2\nACK 3\n".into();
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn death_by_sigterm_is_a_violation_unless_documented() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(10))];
        o.status = ExitStatus::Signal(Signal::SIGTERM);
        assert!(judge(&o).is_violated());
    }

    #[test]
    fn sigkill_expects_death_by_sigkill() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(10))];
        o.status = ExitStatus::Signal(Signal::SIGKILL);
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn a_clean_exit_after_sigkill_is_a_hidden_crash() {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(10))];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("exit 0 after a child was killed")
        };
        assert_eq!(evidence[1], "documented when killed: killed by SIGKILL");
        assert_eq!(
            evidence[2],
            "exit 0 claims success, but a process of its tree was killed: a crash must not look like success"
        );
    }

    #[test]
    fn a_strike_that_missed_the_target_counts_as_clean() {
        let mut o = clean_outcome();
        let mut missed = struck(Signal::SIGTERM, at_ms(150));
        missed.sent_at = None;
        o.strikes = vec![missed];
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn a_hang_without_strikes_is_a_violation() {
        let mut o = clean_outcome();
        o.status = ExitStatus::Signal(Signal::SIGKILL);
        o.exited_at = at_ms(30_000);
        o.killed = Some(HarnessKill {
            reason: KillReason::TimedOut,
            at: at_ms(30_000),
        });
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("a hang")
        };
        assert!(evidence[0].contains("timeout"), "{evidence:?}");
    }

    #[test]
    fn the_evidence_says_whether_the_handler_was_not_there_yet_or_given_up() {
        let mut c = census(b"{}");
        c.handlers.insert(
            Signal::SIGTERM,
            crate::census::HandlerSeen { at: at_ms(30) },
        );
        let e = expect();
        let p = no_plan();
        let judge = |o: &crate::outcome::Outcome| {
            check(&Context {
                expect: &e,
                census: &c,
                plan: &p,
                outcome: o,
            })
        };
        let mut o = clean_outcome();
        let mut strike = struck(Signal::SIGTERM, at_ms(10));
        strike.caught = false;
        o.strikes = vec![strike.clone()];
        o.status = ExitStatus::Signal(Signal::SIGTERM);
        o.outputs[0].after = FileState::Absent;
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("death by SIGTERM before the handler, work unfinished")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 10.0 ms (it had no handler for it yet: the uninterrupted run installs one at 30.0 ms); it ended with killed by SIGTERM at 100.0 ms"
        );

        // Seen in the census only, the handler's absence proves nothing.
        strike.sent_at = Some(at_ms(95));
        o.strikes = vec![strike.clone()];
        o.outputs[0].after = FileState::Golden;
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("death by SIGTERM, no handler seen in this run")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 95.0 ms (it had no handler for it at that moment; the uninterrupted run had one from 30.0 ms); it ended with killed by SIGTERM at 100.0 ms"
        );

        // After the work, on the way out, the handler this run installed given up: the
        // default action.
        strike.handler_seen_at = Some(at_ms(31));
        o.strikes = vec![strike.clone()];
        o.outputs[0].after = FileState::Golden;
        assert_eq!(judge(&o), Verdict::Held);

        // Given up with the work unfinished: a violation that says so.
        o.outputs[0].after = FileState::Absent;
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("death by SIGTERM with the work unfinished")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 95.0 ms (it no longer had a handler for it: one was installed at 31.0 ms, and SIGTERM was back to its default action); it ended with killed by SIGTERM at 100.0 ms"
        );

        // A program that never installs one.
        strike.handler_seen_at = None;
        o.strikes = vec![strike];
        let bare = census(b"{}");
        let Verdict::Violated { evidence } = check(&Context {
            expect: &e,
            census: &bare,
            plan: &p,
            outcome: &o,
        }) else {
            panic!("death by SIGTERM with no handler at all")
        };
        assert!(
            evidence[0].contains(
                "(no handler for it: the uninterrupted run was never seen to install one for SIGTERM)"
            ),
            "{}",
            evidence[0]
        );
    }
}
