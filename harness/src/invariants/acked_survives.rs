//! `acked-survives`: every piece of work the target acknowledged is still there afterwards.
//!
//! Acknowledgements are the ids on stdout lines matching `[expect.acked] ack`, or the
//! arguments of its probe marks (`ack = { probe = "ack" }`); what
//! survived is read after the case from `survivors` (a file, a JSON array in a file, or a
//! command's stdout). The promise is checked after a clean run and after a graceful stop;
//! after SIGKILL only when the scenario says `after_kill = true` (work acknowledged only
//! once it is durable). When the harness had to kill the tree, nothing is promised: the
//! invariant that made it kill (`drain-deadline`, `exit-code`) reports the case.

use std::collections::HashSet;

use super::{Context, Verdict};
use crate::values::Signal;

/// At most this many missing ids are listed in the evidence.
const LISTED: usize = 10;

pub fn check(ctx: &Context) -> Verdict {
    let Some(spec) = &ctx.expect.acked else {
        return Verdict::Held;
    };
    let outcome = ctx.outcome;
    if outcome
        .killed
        .as_ref()
        .is_some_and(|kill| kill.at <= outcome.exited_at)
    {
        return Verdict::Held;
    }
    let first = outcome.first_delivered();
    if first.is_some_and(|s| s.signal == Signal::SIGKILL) && !spec.after_kill {
        return Verdict::Held;
    }
    let acked = spec.ack.reported(outcome);
    if acked.is_empty() {
        return Verdict::Held;
    }
    let Some(read) = &outcome.survivors else {
        return Verdict::violated(vec!["what survived was not read".into()]);
    };
    let survivors = match &read.ids {
        Ok(ids) => ids,
        Err(why) => {
            return Verdict::violated(vec![
                format!(
                    "{} id(s) acknowledged ({}), but what survived cannot be read",
                    acked.len(),
                    span(&acked)
                ),
                why.clone(),
            ]);
        }
    };
    let present: HashSet<&String> = survivors.iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !present.contains(id)).collect();
    if missing.is_empty() {
        return Verdict::Held;
    }
    let listed: Vec<&str> = missing.iter().take(LISTED).map(|s| s.as_str()).collect();
    let more = missing.len().saturating_sub(LISTED);
    let mut evidence = vec![
        format!(
            "{} of {} acknowledged id(s) did not survive: {}{}",
            missing.len(),
            acked.len(),
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
        format!(
            "{} holds {} id(s){}",
            read.from,
            survivors.len(),
            if survivors.is_empty() {
                String::new()
            } else {
                format!(" ({})", span(survivors))
            }
        ),
    ];
    if let Some(strike) = first {
        evidence.push(format!(
            "after {}{}",
            strike.signal,
            if strike.caught {
                " (it had a handler)"
            } else {
                ""
            }
        ));
    }
    if outcome.stdout.total_bytes > outcome.stdout.text.len() as u64 {
        evidence.push(format!(
            "stdout was cut at {} bytes: acknowledgements after that were not seen",
            outcome.stdout.text.len()
        ));
    }
    Verdict::violated(evidence)
}

/// `first … last` of a list of ids.
fn span(ids: &[String]) -> String {
    match ids {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::SurvivorsRead;
    use crate::outcome::{HarnessKill, KillReason};

    fn judge(outcome: &crate::outcome::Outcome, after_kill: bool) -> Verdict {
        let mut spec = acked_spec();
        spec.after_kill = after_kill;
        let e = Expect {
            acked: Some(spec),
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

    fn stopped(acks: &str, survivors: Result<Vec<&str>, &str>) -> crate::outcome::Outcome {
        let mut o = clean_outcome();
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(40))];
        o.status = crate::values::ExitStatus::Code(14);
        o.stdout.text = acks.into();
        o.survivors = Some(SurvivorsRead {
            from: "store.log".into(),
            ids: survivors
                .map(|v| v.into_iter().map(String::from).collect())
                .map_err(String::from),
        });
        o
    }

    #[test]
    fn every_acknowledged_id_present_holds() {
        let o = stopped("ACK 1\nACK 2\n", Ok(vec!["2", "1", "3"]));
        assert_eq!(judge(&o, false), Verdict::Held);
    }

    #[test]
    fn a_lost_acknowledged_id_is_named() {
        let o = stopped("ACK 1\nACK 2\nACK 3\nACK 4\n", Ok(vec!["1", "2"]));
        let Verdict::Violated { evidence } = judge(&o, false) else {
            panic!("3 and 4 were lost")
        };
        assert_eq!(
            evidence,
            [
                "2 of 4 acknowledged id(s) did not survive: 3, 4",
                "store.log holds 2 id(s) (1 … 2)",
                "after SIGTERM (it had a handler)",
            ]
        );
    }

    #[test]
    fn unreadable_survivors_with_acknowledged_work_is_a_violation() {
        let o = stopped("ACK 1\n", Err("ckpt.json: not valid JSON: EOF"));
        let Verdict::Violated { evidence } = judge(&o, false) else {
            panic!("a torn checkpoint")
        };
        assert_eq!(
            evidence,
            [
                "1 id(s) acknowledged (1), but what survived cannot be read",
                "ckpt.json: not valid JSON: EOF",
            ]
        );
        // Nothing acknowledged: nothing was promised.
        let o = stopped("", Err("ckpt.json: not valid JSON: EOF"));
        assert_eq!(judge(&o, false), Verdict::Held);
    }

    #[test]
    fn sigkill_is_checked_only_when_the_scenario_promises_it() {
        let mut o = stopped("ACK 1\nACK 2\n", Ok(vec!["1"]));
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(40))];
        assert_eq!(judge(&o, false), Verdict::Held);
        assert!(judge(&o, true).is_violated());
    }

    #[test]
    fn a_tree_the_harness_killed_is_left_to_the_other_invariants() {
        let mut o = stopped("ACK 1\nACK 2\n", Ok(vec![]));
        o.killed = Some(HarnessKill {
            reason: KillReason::DrainOverran,
            at: at_ms(90),
        });
        assert_eq!(judge(&o, true), Verdict::Held);
    }

    #[test]
    fn many_missing_ids_are_listed_up_to_ten() {
        let acks: String = (1..=25).map(|i| format!("ACK {i}\n")).collect();
        let o = stopped(&acks, Ok(vec![]));
        let Verdict::Violated { evidence } = judge(&o, false) else {
            panic!("all lost")
        };
        assert_eq!(
            evidence[0],
            "25 of 25 acknowledged id(s) did not survive: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more"
        );
        assert_eq!(evidence[1], "store.log holds 0 id(s)");
    }
}
