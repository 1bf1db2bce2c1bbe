//! `drain-deadline`: from the first strike that reached the target (or the scenario's
//! `stop`, if it came first), the whole process tree is gone within the scenario's
//! `deadline`.

use super::{Context, Verdict};
use crate::outcome::KillReason;
use crate::units::ms;

pub fn check(ctx: &Context) -> Verdict {
    let Some(deadline) = ctx.expect.deadline else {
        return Verdict::Held;
    };
    let outcome = ctx.outcome;
    let Some((signal, sent)) = outcome.first_stop() else {
        return Verdict::Held;
    };
    let what = if outcome.first_delivered().and_then(|s| s.sent_at) == Some(sent) {
        "sent"
    } else {
        "sent as the stop"
    };
    let overran = |gone: String| {
        let mut evidence = vec![
            format!("{signal} {what} at {}; {gone}", ms(sent)),
            format!("the deadline is {} after the strike", ms(deadline)),
        ];
        // With the tracer: who was late, and the whole tree's timeline.
        let bound = sent + deadline;
        for p in &outcome.processes {
            if let Some(at) = p.exited_at.filter(|&at| at > bound) {
                evidence.push(format!(
                    "pid {} ({}) ended {} after the strike",
                    p.pid,
                    p.command,
                    ms(at - sent)
                ));
            }
        }
        let timeline = outcome.timeline(sent);
        if !timeline.is_empty() {
            evidence.push(format!("timeline from the strike ({signal}):"));
            evidence.extend(timeline.into_iter().map(|l| format!("  {l}")));
        }
        Verdict::violated(evidence)
    };
    if let Some(kill) = outcome
        .killed
        .as_ref()
        .filter(|k| k.reason == KillReason::DrainOverran)
    {
        let main = if outcome.exited_at < kill.at {
            format!("the main process exited at {}, but ", ms(outcome.exited_at))
        } else {
            String::new()
        };
        return overran(format!(
            "{main}the tree was still running {} later and was killed at {}",
            ms(kill.at.saturating_sub(sent)),
            ms(kill.at)
        ));
    }
    match outcome.drain_time() {
        Some(drain) if drain > deadline => overran(format!(
            "the tree took {} to go, until {}",
            ms(drain),
            ms(sent + drain)
        )),
        _ => Verdict::Held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::{HarnessKill, Outcome};
    use crate::values::Signal;
    use std::time::Duration;

    fn judge(outcome: &Outcome) -> Verdict {
        let e = Expect {
            deadline: Some(Duration::from_secs(2)),
            ..Expect::default()
        };
        let (c, p) = (census(b""), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome,
        })
    }

    fn drained_at(gone_ms: u64) -> Outcome {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(100))];
        o.exited_at = at_ms(gone_ms);
        o.tree_gone_at = Some(at_ms(gone_ms));
        o
    }

    #[test]
    fn a_drain_within_the_deadline_holds() {
        assert_eq!(judge(&drained_at(2_100)), Verdict::Held);
    }

    #[test]
    fn a_drain_past_the_deadline_is_a_violation() {
        let Verdict::Violated { evidence } = judge(&drained_at(2_101)) else {
            panic!("2001 ms > 2 s")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 100.0 ms; the tree took 2001.0 ms to go, until 2101.0 ms"
        );
        assert_eq!(evidence[1], "the deadline is 2000.0 ms after the strike");
    }

    #[test]
    fn a_tree_the_harness_had_to_kill_overran() {
        let mut o = drained_at(600);
        o.tree_gone_at = None;
        o.killed = Some(HarnessKill {
            reason: KillReason::DrainOverran,
            at: at_ms(2_100),
        });
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("killed at the deadline")
        };
        assert_eq!(
            evidence[0],
            "SIGTERM sent at 100.0 ms; the main process exited at 600.0 ms, but the tree was still running 2000.0 ms later and was killed at 2100.0 ms"
        );
    }

    #[test]
    fn a_traced_overrun_names_the_late_processes_and_shows_the_timeline() {
        use crate::syscalls::{Delivered, TracedProcess};
        let mut o = drained_at(2_500);
        let process = |pid, parent, signalled: u64, exit: u64| TracedProcess {
            pid,
            parent,
            command: format!("sup {pid}"),
            program: "sup".into(),
            threads: 0,
            status: Some(crate::values::ExitStatus::Code(0)),
            started_at: at_ms(0),
            exited_at: Some(at_ms(exit)),
            signals: vec![Delivered {
                signal: Signal::SIGTERM,
                at: at_ms(signalled),
                handled: true,
            }],
        };
        // Drains stacked: each child is told only once the one before has gone.
        o.processes = vec![
            process(1, None, 100, 2_500),
            process(2, Some(1), 100, 900),
            process(3, Some(1), 900, 1_700),
            process(4, Some(1), 1_700, 2_499),
        ];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("2.4 s > 2 s")
        };
        assert_eq!(
            evidence[2..],
            [
                "pid 1 (sup 1) ended 2400.0 ms after the strike",
                "pid 4 (sup 4) ended 2399.0 ms after the strike",
                "timeline from the strike (SIGTERM):",
                "  pid 1 (sup 1): SIGTERM +0.0 ms, exit 0 +2400.0 ms",
                "  pid 2 (sup 2): SIGTERM +0.0 ms, exit 0 +800.0 ms",
                "  pid 3 (sup 3): SIGTERM +800.0 ms, exit 0 +1600.0 ms",
                "  pid 4 (sup 4): SIGTERM +1600.0 ms, exit 0 +2399.0 ms",
            ]
        );
    }

    #[test]
    fn without_a_strike_there_is_no_drain_to_judge() {
        assert_eq!(judge(&clean_outcome()), Verdict::Held);
    }
}
