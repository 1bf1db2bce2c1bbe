//! `signal-forwarded`: once a shutdown signal has reached the tree, no process exits
//! leaving a child running that was never told to end. Every child still running when its
//! parent exited must have received a termination signal (SIGTERM, SIGINT, SIGHUP,
//! SIGQUIT) between the strike and that exit; otherwise the parent orphaned it, and it
//! runs on with no one to stop it. A child that finished by itself first needed no
//! signal, and a parent the harness had to kill had no chance to forward. Needs the
//! tracer, which sees each signal delivered to each process.

use std::time::Duration;

use super::{Context, Verdict};
use crate::syscalls::TracedProcess;
use crate::units::ms;
use crate::values::{ExitStatus, Signal};

/// The signals that ask a process to end.
const TERMINATION: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let Some(strike) = outcome
        .first_delivered()
        .filter(|s| s.signal.is_catchable())
    else {
        return Verdict::Held; // SIGKILL leaves a parent no time to forward anything
    };
    let sent = strike.sent_at.unwrap_or_default();
    let killed_by_harness = outcome.killed.as_ref().map(|k| k.at);
    let processes = &outcome.processes;
    let mut evidence = Vec::new();
    for child in processes {
        let Some(parent) = child
            .parent
            .and_then(|pid| processes.iter().rev().find(|p| p.pid == pid))
        else {
            continue; // the main process: the harness signals it
        };
        // Only a parent that exited by itself, after the strike, could have forwarded.
        let Some(parent_exit) = parent.exited_at.filter(|&at| at >= sent) else {
            continue;
        };
        if killed_by_harness.is_some_and(|at| parent_exit >= at)
            || parent.status == Some(ExitStatus::Signal(Signal::SIGKILL))
        {
            continue;
        }
        let running_at_parent_exit =
            child.started_at <= parent_exit && child.exited_at.is_none_or(|at| at > parent_exit);
        if running_at_parent_exit && !told_to_end(child, sent, parent_exit) {
            evidence.push(format!(
                "pid {} ({}) was still running when its parent pid {} exited at {}, and had received no termination signal since the strike{}",
                child.pid,
                child.command,
                parent.pid,
                ms(parent_exit),
                match (child.status, child.exited_at) {
                    (Some(status), Some(at)) => format!("; it ran on until {} ({status})", ms(at)),
                    _ => String::new(),
                }
            ));
        }
    }
    if evidence.is_empty() {
        return Verdict::Held;
    }
    evidence.insert(
        0,
        format!("{} reached the target at {}:", strike.signal, ms(sent)),
    );
    evidence.push(format!("timeline from the strike ({}):", strike.signal));
    evidence.extend(outcome.timeline(sent).into_iter().map(|l| format!("  {l}")));
    Verdict::violated(evidence)
}

/// Whether `child` received a termination signal between the strike and its parent's
/// exit.
fn told_to_end(child: &TracedProcess, from: Duration, parent_exit: Duration) -> bool {
    child
        .signals
        .iter()
        .any(|d| TERMINATION.contains(&d.signal) && d.at >= from && d.at <= parent_exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::Outcome;
    use crate::syscalls::Delivered;

    fn process(pid: i32, parent: Option<i32>, exit_ms: u64, status: ExitStatus) -> TracedProcess {
        TracedProcess {
            pid,
            parent,
            command: if parent.is_none() {
                "supervisor".into()
            } else {
                format!("child {pid}")
            },
            program: String::new(),
            threads: 0,
            status: Some(status),
            started_at: at_ms(if parent.is_none() { 0 } else { 5 }),
            exited_at: Some(at_ms(exit_ms)),
            signals: vec![],
        }
    }

    fn term(at: u64) -> Delivered {
        Delivered {
            signal: Signal::SIGTERM,
            at: at_ms(at),
            handled: true,
        }
    }

    /// A supervisor (pid 1) with two children, SIGTERM at 100 ms.
    fn tree(children_signalled: bool, parent_exit: u64) -> Outcome {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(100))];
        let mut main = process(1, None, parent_exit, ExitStatus::Code(14));
        main.signals = vec![term(100)];
        let mut children = vec![
            process(2, Some(1), 300, ExitStatus::Code(0)),
            process(3, Some(1), 310, ExitStatus::Code(0)),
        ];
        if children_signalled {
            for c in &mut children {
                c.signals = vec![term(101)];
            }
        }
        o.processes = std::iter::once(main).chain(children).collect();
        o
    }

    fn judge(o: &Outcome) -> Verdict {
        let (e, c, p) = (Expect::default(), census(b""), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome: o,
        })
    }

    #[test]
    fn children_told_to_stop_before_the_parent_exits_hold() {
        assert_eq!(judge(&tree(true, 320)), Verdict::Held);
    }

    #[test]
    fn children_left_running_by_an_exiting_parent_are_named() {
        let Verdict::Violated { evidence } = judge(&tree(false, 102)) else {
            panic!("nothing was forwarded")
        };
        assert_eq!(evidence[0], "SIGTERM reached the target at 100.0 ms:");
        assert_eq!(
            evidence[1],
            "pid 2 (child 2) was still running when its parent pid 1 exited at 102.0 ms, and had received no termination signal since the strike; it ran on until 300.0 ms (exit 0)"
        );
        assert_eq!(evidence[3], "timeline from the strike (SIGTERM):");
        assert_eq!(
            evidence[4],
            "  pid 1 (supervisor): SIGTERM +0.0 ms, exit 14 +2.0 ms"
        );
        assert_eq!(evidence[5], "  pid 2 (child 2): exit 0 +200.0 ms");
    }

    #[test]
    fn a_child_that_ended_before_its_parent_needed_no_signal() {
        // Killed by its parent, or done with its work: either way gone first.
        assert_eq!(judge(&tree(false, 320)), Verdict::Held);
    }

    #[test]
    fn a_child_started_after_the_strike_and_orphaned_is_named() {
        let mut o = tree(false, 150);
        o.processes[1].started_at = at_ms(120);
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("started after the strike, then orphaned")
        };
        assert!(
            evidence[1].starts_with("pid 2 (child 2) was still running"),
            "{evidence:?}"
        );
    }

    #[test]
    fn a_parent_the_harness_killed_had_no_chance_to_forward() {
        let mut o = tree(false, 150);
        o.killed = Some(crate::outcome::HarnessKill {
            reason: crate::outcome::KillReason::DrainOverran,
            at: at_ms(150),
        });
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn a_signal_after_the_parent_exited_is_too_late() {
        let mut o = tree(false, 102);
        for c in &mut o.processes[1..] {
            c.signals = vec![term(150)];
        }
        assert!(judge(&o).is_violated());
    }

    #[test]
    fn after_sigkill_there_is_nothing_to_forward() {
        let mut o = tree(false, 100);
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(100))];
        assert_eq!(judge(&o), Verdict::Held);
    }
}
