//! `no-leftover-processes`: no process of the target's tree — children, daemonized
//! grandchildren — is still running `leftover_grace` after the main process has exited.
//! What ends within the grace is part of the shutdown (the timeline shows it); the
//! evidence says what became of each leftover, from what was seen, never assumed.

use super::{Context, Verdict};
use crate::units::ms;

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let leftovers = &outcome.leftovers;
    if leftovers.is_empty() {
        return Verdict::Held;
    }
    let grace = ctx.expect.grace();
    let mut evidence = vec![format!(
        "{} process(es) still running {} after the main process exited at {}:",
        leftovers.len(),
        ms(grace),
        ms(outcome.exited_at)
    )];
    for p in leftovers {
        let traced = outcome.processes.iter().find(|t| t.pid == p.pid);
        let fate = match (
            traced.and_then(|t| t.status.zip(t.exited_at)),
            &outcome.killed,
        ) {
            (Some((status, at)), Some(kill)) if at >= kill.at => format!(
                "killed by the harness at {} ({}): {status}",
                ms(kill.at),
                kill.reason.describe()
            ),
            (Some((status, at)), _) => format!("then ended by itself: {status} at {}", ms(at)),
            (None, Some(kill)) => format!(
                "killed by the harness at {} ({})",
                ms(kill.at),
                kill.reason.describe()
            ),
            (None, None) => match outcome.tree_gone_at {
                Some(gone) => format!("then ended by itself, by {}", ms(gone)),
                None => "never seen to end".to_string(),
            },
        };
        evidence.push(format!("  pid {}: {} — {fate}", p.pid, p.command));
    }
    Verdict::violated(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::ProcessInfo;
    use std::time::Duration;

    #[test]
    fn a_child_outliving_its_parent_is_named() {
        let (e, c, p) = (Expect::default(), census(b""), no_plan());
        let mut o = clean_outcome();
        assert_eq!(
            check(&Context {
                expect: &e,
                census: &c,
                plan: &p,
                outcome: &o
            }),
            Verdict::Held
        );
        o.exited_at = Duration::from_millis(100);
        o.tree_gone_at = Some(Duration::from_millis(900));
        o.leftovers = vec![ProcessInfo {
            pid: 4242,
            command: "sleep 1000".into(),
        }];
        let Verdict::Violated { evidence } = check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome: &o,
        }) else {
            panic!("a leftover must be caught")
        };
        assert_eq!(
            evidence,
            vec![
                "1 process(es) still running 500.0 ms after the main process exited at 100.0 ms:",
                "  pid 4242: sleep 1000 — then ended by itself, by 900.0 ms",
            ]
        );
        o.tree_gone_at = None;
        o.killed = Some(crate::outcome::HarnessKill {
            reason: crate::outcome::KillReason::Leftovers,
            at: Duration::from_millis(600),
        });
        let Verdict::Violated { evidence } = check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome: &o,
        }) else {
            panic!("a leftover must be caught")
        };
        assert_eq!(
            evidence[1],
            "  pid 4242: sleep 1000 — killed by the harness at 600.0 ms (processes of the tree were still running after the main process had ended)"
        );
    }
}
