//! `idempotent-teardown`: a second signal during shutdown, SIGINT then SIGTERM, or a
//! signal after the exit began changes nothing. The run ends as it would after the first
//! signal alone (no death by a later one), and each declared `once` marker — a final flush,
//! a trailer — appears exactly once: never twice, and once whenever the target finished
//! its own teardown.

use super::{Context, Verdict};
use crate::units::ms;
use crate::values::ExitStatus;

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let mut evidence = Vec::new();
    let delivered: Vec<_> = outcome.strikes.iter().filter(|s| s.delivered()).collect();
    // Died of a later signal: the first one's teardown did not make the rest harmless.
    if let (Some(first), ExitStatus::Signal(died)) = (delivered.first(), outcome.status)
        && first.caught
        && outcome.killed.is_none()
        && let Some((n, later)) = delivered
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, s)| s.signal == died && s.signal.is_catchable())
    {
        let (first_at, later_at) = (
            first.sent_at.unwrap_or_default(),
            later.sent_at.unwrap_or_default(),
        );
        evidence.push(format!(
            "strike {} ({died} at {}, {} after the first strike's {}) killed it during its teardown: death by {died}, where the first signal alone ends in an exit code",
            n + 1,
            ms(later_at),
            ms(later_at.saturating_sub(first_at)),
            first.signal,
        ));
    }
    // The target ran its own teardown to the end: an exit code it documents.
    let finished = outcome.killed.is_none()
        && matches!(outcome.status, ExitStatus::Code(_))
        && (ctx.expect.clean.contains(&outcome.status)
            || ctx
                .expect
                .interrupted
                .as_ref()
                .is_some_and(|codes| codes.contains(&outcome.status)));
    for spec in &ctx.expect.once {
        let text = spec.text(
            &outcome.stdout.text,
            &outcome.stderr.text,
            &outcome.marker_files,
        );
        let Some(text) = text else {
            if finished {
                evidence.push(format!(
                    "{} does not exist after a run that ended with {}, so `{}` never appeared",
                    spec.source,
                    outcome.status,
                    spec.marker.as_str()
                ));
            }
            continue;
        };
        let hits = spec.hits(text);
        if hits.len() > 1 {
            evidence.push(format!(
                "`{}` appears {} times in {}, once expected:",
                spec.marker.as_str(),
                hits.len(),
                spec.source
            ));
            for (number, line) in hits.iter().take(3) {
                evidence.push(format!("  line {number}: {line}"));
            }
        } else if hits.is_empty() && finished {
            evidence.push(format!(
                "`{}` never appears in {}, though the run ended with {}: its teardown did not happen",
                spec.marker.as_str(),
                spec.source,
                outcome.status
            ));
        }
    }
    if evidence.is_empty() {
        return Verdict::Held;
    }
    if delivered.len() > 1 {
        let signals: Vec<String> = delivered
            .iter()
            .map(|s| format!("{} at {}", s.signal, ms(s.sent_at.unwrap_or_default())))
            .collect();
        evidence.push(format!("signals delivered: {}", signals.join(", ")));
    }
    Verdict::violated(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::Outcome;
    use crate::values::Signal;

    fn expect() -> Expect {
        #[derive(serde::Deserialize)]
        struct Wrap {
            expect: Expect,
        }
        let text = r#"[expect]
            interrupted = [14]
            once = [{ marker = "^FLUSHED" }, { marker = "^END ", in = "store.log" }]"#;
        toml::from_str::<Wrap>(text).unwrap().expect
    }

    fn judge(o: &Outcome) -> Verdict {
        let (e, c, p) = (expect(), census(b""), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome: o,
        })
    }

    /// Stopped by SIGTERM at 50 ms and, in a storm, by `second` at 60 ms; exit 14.
    fn stopped(stdout: &str, store: &str, second: Option<Signal>) -> Outcome {
        let mut o = clean_outcome();
        o.status = ExitStatus::Code(14);
        o.strikes = vec![struck(Signal::SIGTERM, at_ms(50))];
        o.strikes.extend(second.map(|s| struck(s, at_ms(60))));
        o.stdout.text = stdout.into();
        o.marker_files
            .insert("store.log".parse().unwrap(), Some(store.into()));
        o
    }

    #[test]
    fn one_final_flush_after_two_signals_holds() {
        let o = stopped("ACK 1\nFLUSHED 1\n", "1 x\nEND 1\n", Some(Signal::SIGINT));
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn a_final_flush_run_twice_is_quoted() {
        let o = stopped(
            "ACK 1\nFLUSHED 1\nFLUSHED 1\n",
            "1 x\nEND 1\nEND 1\n",
            Some(Signal::SIGTERM),
        );
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("two flushes")
        };
        assert_eq!(
            evidence,
            vec![
                "`^FLUSHED` appears 2 times in stdout, once expected:",
                "  line 2: FLUSHED 1",
                "  line 3: FLUSHED 1",
                "`^END ` appears 2 times in store.log, once expected:",
                "  line 2: END 1",
                "  line 3: END 1",
                "signals delivered: SIGTERM at 50.0 ms, SIGTERM at 60.0 ms",
            ]
        );
    }

    #[test]
    fn a_teardown_that_ended_in_an_exit_code_must_leave_its_marker() {
        let o = stopped("ACK 1\n", "1 x\nEND 1\n", None);
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("no FLUSHED after exit 14")
        };
        assert_eq!(
            evidence,
            vec![
                "`^FLUSHED` never appears in stdout, though the run ended with exit 14: its teardown did not happen"
            ]
        );
    }

    #[test]
    fn a_killed_run_may_lack_its_marker_but_never_repeat_it() {
        let mut o = stopped("ACK 1\n", "1 x\n", None);
        o.status = ExitStatus::Signal(Signal::SIGKILL);
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(50))];
        assert_eq!(judge(&o), Verdict::Held);
        o.stdout.text = "FLUSHED 1\nFLUSHED 1\n".into();
        assert!(judge(&o).is_violated());
    }

    #[test]
    fn death_by_the_second_signal_is_a_teardown_that_was_not_idempotent() {
        let mut o = stopped("ACK 1\n", "1 x\n", Some(Signal::SIGINT));
        o.status = ExitStatus::Signal(Signal::SIGINT);
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("killed by the second signal")
        };
        assert_eq!(
            evidence[0],
            "strike 2 (SIGINT at 60.0 ms, 10.0 ms after the first strike's SIGTERM) killed it during its teardown: death by SIGINT, where the first signal alone ends in an exit code"
        );
    }
}
