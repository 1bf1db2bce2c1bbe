//! `atomic-output`: every declared output is absent, its prior content, or complete (the
//! census's golden) — never truncated or partial — and after a graceful stop no temp file
//! is left beside it.

use super::{Context, Verdict};
use crate::outcome::{Difference, FileState, OutputRecord};

pub fn check(ctx: &Context) -> Verdict {
    let outcome = ctx.outcome;
    let mut evidence: Vec<String> = outcome
        .outputs
        .iter()
        .filter_map(describe_partial)
        .collect();

    // After SIGKILL, a signal the target had no handler for (its default action killed
    // it where it stood), or when the harness had to kill the tree, nobody could clean
    // up: temp files are expected then. After a graceful stop or a clean run they are not.
    let graceful = outcome.killed.is_none()
        && outcome
            .first_delivered()
            .is_none_or(|s| s.signal.is_catchable() && s.caught);
    if ctx.expect.no_temp_leftovers && graceful && !outcome.stray_files.is_empty() {
        let after = match outcome.first_delivered() {
            Some(strike) => format!("after {}", strike.signal),
            None => "after a clean run".to_string(),
        };
        evidence.push(format!(
            "left behind {after}: {} (not there after the census)",
            outcome.stray_files.join(", ")
        ));
    }

    if evidence.is_empty() {
        Verdict::Held
    } else {
        Verdict::violated(evidence)
    }
}

fn describe_partial(output: &OutputRecord) -> Option<String> {
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
    let before = match &output.before {
        FileState::Absent => "it did not exist before".to_string(),
        FileState::Prior => "its prior content was lost".to_string(),
        other => format!("before the run it was {other:?}"),
    };
    Some(format!(
        "{} is {what} (sha256 {}…); {before}",
        output.path,
        &sha256[..12]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::Outcome;
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
    fn a_temp_file_left_after_sigterm_is_a_violation() {
        let mut o = with_after(None, None);
        o.stray_files = vec![".out.json.tmp-77".into()];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("temp leftover")
        };
        assert_eq!(
            evidence,
            vec!["left behind after SIGTERM: .out.json.tmp-77 (not there after the census)"]
        );
    }

    #[test]
    fn a_temp_file_left_after_sigkill_is_expected() {
        let mut o = with_after(None, None);
        o.strikes = vec![struck(Signal::SIGKILL, at_ms(20))];
        o.stray_files = vec![".out.json.tmp-77".into()];
        assert_eq!(judge(&o), Verdict::Held);
    }

    #[test]
    fn a_temp_file_left_by_a_signal_without_a_handler_is_expected() {
        let mut o = with_after(None, None);
        let mut strike = struck(Signal::SIGTERM, at_ms(20));
        strike.caught = false;
        o.strikes = vec![strike];
        o.stray_files = vec![".out.json.tmp-77".into()];
        assert_eq!(judge(&o), Verdict::Held);
    }
}
