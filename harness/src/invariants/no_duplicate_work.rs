//! `no-duplicate-work`: no unit of work is done twice. The units a case reported done
//! (`[expect.resume] work`, else `[expect.acked] ack`: stdout lines or probe marks) must not
//! be reported done again, neither later in the same case nor by the resume command run
//! after it. A resume that starts over, or one that distrusts the last unit its checkpoint
//! lists, redoes work someone was told was finished.

use std::collections::BTreeMap;

use super::{Context, Verdict};

/// At most this many repeated units are listed in the evidence.
const LISTED: usize = 10;

pub fn check(ctx: &Context) -> Verdict {
    let (Some(reports), Some(resume)) = (ctx.expect.work_reports(), &ctx.outcome.resume) else {
        return Verdict::Held;
    };
    let outcome = ctx.outcome;
    let case = reports.reported(outcome);
    let again = reports.ids(&resume.stdout.text, &resume.marks);
    // Per unit: how many times the case reported it, and how many times the resume did.
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for id in &case {
        counts.entry(id).or_default().0 += 1;
    }
    for id in &again {
        counts.entry(id).or_default().1 += 1;
    }
    let redone: Vec<&str> = counts
        .iter()
        .filter(|(_, (c, r))| *c > 0 && *r > 0)
        .map(|(id, _)| *id)
        .collect();
    let twice_in_case: Vec<&str> = counts
        .iter()
        .filter(|(_, (c, _))| *c > 1)
        .map(|(id, _)| *id)
        .collect();
    let twice_in_resume: Vec<&str> = counts
        .iter()
        .filter(|(_, (c, r))| *c == 0 && *r > 1)
        .map(|(id, _)| *id)
        .collect();
    let mut evidence = Vec::new();
    if !redone.is_empty() {
        evidence.push(format!(
            "{} unit(s) the case reported done were done again by the resume: {}",
            redone.len(),
            listed(&redone)
        ));
    }
    if !twice_in_case.is_empty() {
        evidence.push(format!(
            "{} unit(s) reported done twice in the case: {}",
            twice_in_case.len(),
            listed(&twice_in_case)
        ));
    }
    if !twice_in_resume.is_empty() {
        evidence.push(format!(
            "{} unit(s) reported done twice by the resume: {}",
            twice_in_resume.len(),
            listed(&twice_in_resume)
        ));
    }
    if evidence.is_empty() {
        return Verdict::Held;
    }
    evidence.push(format!("units of work are read from {reports}"));
    if let Some(strike) = outcome.first_delivered() {
        evidence.push(format!("the case was struck with {}", strike.signal));
    }
    Verdict::violated(evidence)
}

fn listed(ids: &[&str]) -> String {
    let more = ids.len().saturating_sub(LISTED);
    let shown = ids[..ids.len().min(LISTED)].join(", ");
    if more > 0 {
        format!("{shown} and {more} more")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::{Capture, Mark, ResumeRecord};
    use crate::values::{ExitStatus, Signal};

    fn expect(work: &str) -> Expect {
        let text = format!(
            "name = \"r\"\ncommand = [\"run\"]\n[[strike]]\nsignal = \"SIGTERM\"\n[expect.resume]\ncommand = [\"run\", \"--resume\"]\nwork = {work}\n"
        );
        crate::scenario::Scenario::parse(&text, std::path::Path::new("r.toml"))
            .unwrap()
            .expect
    }

    fn judge(expect: &Expect, case: &str, resume: &str, marks: Vec<Mark>) -> Verdict {
        let census = census(b"{}");
        let mut outcome = clean_outcome();
        outcome.strikes = vec![struck(Signal::SIGKILL, at_ms(30))];
        outcome.stdout.text = case.into();
        outcome.marks = marks;
        outcome.resume = Some(ResumeRecord {
            status: ExitStatus::Code(0),
            duration: at_ms(50),
            killed: None,
            stdout: Capture {
                text: resume.into(),
                total_bytes: resume.len() as u64,
            },
            stderr: Capture::default(),
            marks: vec![],
            outputs: vec![],
        });
        check(&Context {
            expect,
            census: &census,
            plan: &no_plan(),
            outcome: &outcome,
        })
    }

    #[test]
    fn a_resume_that_picks_up_after_the_last_reported_unit_holds() {
        let e = expect(r"'^DONE unit=(\d+)$'");
        let v = judge(
            &e,
            "DONE unit=1\nDONE unit=2\n",
            "DONE unit=3\nDONE unit=4\n",
            vec![],
        );
        assert_eq!(v, Verdict::Held);
    }

    #[test]
    fn a_unit_done_again_by_the_resume_is_named() {
        let e = expect(r"'^DONE unit=(\d+)$'");
        let Verdict::Violated { evidence } = judge(
            &e,
            "DONE unit=1\nDONE unit=2\n",
            "DONE unit=2\nDONE unit=3\n",
            vec![],
        ) else {
            panic!("violated")
        };
        assert_eq!(
            evidence,
            [
                "1 unit(s) the case reported done were done again by the resume: 2",
                r"units of work are read from stdout lines matching `^DONE unit=(\d+)$`",
                "the case was struck with SIGKILL",
            ]
        );
    }

    #[test]
    fn work_reported_as_probe_marks_counts_too_and_so_does_a_repeat_within_the_case() {
        let e = expect(r#"{ probe = "ack" }"#);
        let mark = |line: &str| Mark::parse(line, at_ms(1));
        let Verdict::Violated { evidence } = judge(
            &e,
            "",
            "",
            vec![mark("ack 5"), mark("unit 6"), mark("ack 5")],
        ) else {
            panic!("violated")
        };
        assert_eq!(evidence[0], "1 unit(s) reported done twice in the case: 5");
        assert_eq!(
            evidence[1],
            "units of work are read from `ack ID` probe marks"
        );
    }
}
