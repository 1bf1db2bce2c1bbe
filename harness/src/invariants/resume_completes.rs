//! `resume-completes`: after any case, the `[expect.resume]` command finishes the work. It
//! ends as a clean run does (a status `[expect] clean` allows, within the `timeout`) and
//! leaves each resume output byte for byte as the uninterrupted run did: interrupted and
//! resumed, the work comes out the same as if it had never been interrupted.

use super::{Context, Verdict};
use crate::outcome::{Capture, FileState};

/// At most this many lines of the resume's stderr are quoted.
const STDERR_LINES: usize = 5;

pub fn check(ctx: &Context) -> Verdict {
    let Some(resume) = &ctx.outcome.resume else {
        return Verdict::Held;
    };
    let mut evidence = Vec::new();
    if let Some(kill) = &resume.killed {
        evidence.push(format!(
            "the resume did not finish: killed after {}",
            crate::units::ms(kill.at)
        ));
    } else if !ctx.expect.clean.contains(&resume.status) {
        evidence.push(format!(
            "the resume ended with {}, not as a clean run does ({})",
            resume.status,
            ctx.expect
                .clean
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    for output in &resume.outputs {
        let what = match &output.after {
            FileState::Golden | FileState::Valid => continue,
            FileState::Rejected { by, output, .. } => format!("rejected: {by}: {output}"),
            FileState::Other {
                size, difference, ..
            } => format!(
                "{size} bytes, differing from the uninterrupted run's {} at byte {}: found `{}`, expected `{}`",
                difference.expected_size, difference.offset, difference.found, difference.expected
            ),
            other => other.name().to_string(),
        };
        evidence.push(format!(
            "after the resume, {} is {what} (the case left it {})",
            output.path,
            output.before.name()
        ));
    }
    if evidence.is_empty() {
        return Verdict::Held;
    }
    evidence.extend(stderr_lines(&resume.stderr));
    Verdict::violated(evidence)
}

fn stderr_lines(stderr: &Capture) -> Vec<String> {
    let lines: Vec<&str> = stderr
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(STDERR_LINES)..]
        .iter()
        .map(|l| format!("resume stderr: {l}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::{Difference, HarnessKill, KillReason, OutputRecord, ResumeRecord};
    use crate::values::ExitStatus;

    fn resumed(status: ExitStatus, after: FileState) -> ResumeRecord {
        ResumeRecord {
            status,
            duration: at_ms(40),
            killed: None,
            stdout: Capture::default(),
            stderr: Capture {
                text: "runner: resuming\n".into(),
                total_bytes: 17,
            },
            marks: vec![],
            outputs: vec![OutputRecord {
                path: "out.json".parse().unwrap(),
                before: FileState::Other {
                    size: 3,
                    sha256: "0".repeat(64),
                    difference: Difference::between(b"{\"a", b"{\"b\"}"),
                },
                after,
            }],
        }
    }

    fn judge(resume: Option<ResumeRecord>) -> Verdict {
        let census = census(b"{\"b\"}");
        let mut outcome = clean_outcome();
        outcome.resume = resume;
        check(&Context {
            expect: &Expect::default(),
            census: &census,
            plan: &no_plan(),
            outcome: &outcome,
        })
    }

    #[test]
    fn a_clean_resume_that_completes_the_outputs_holds() {
        assert_eq!(
            judge(Some(resumed(ExitStatus::Code(0), FileState::Golden))),
            Verdict::Held
        );
        assert_eq!(judge(None), Verdict::Held, "no resume declared");
    }

    #[test]
    fn a_failed_resume_is_quoted_with_its_stderr() {
        let Verdict::Violated { evidence } =
            judge(Some(resumed(ExitStatus::Code(1), FileState::Golden)))
        else {
            panic!("violated")
        };
        assert_eq!(
            evidence,
            [
                "the resume ended with exit 1, not as a clean run does (exit 0)",
                "resume stderr: runner: resuming"
            ]
        );
    }

    #[test]
    fn an_output_the_resume_left_different_is_shown_where_it_departs() {
        let after = FileState::Other {
            size: 5,
            sha256: "1".repeat(64),
            difference: Difference::between(b"{\"c\"}", b"{\"b\"}"),
        };
        let Verdict::Violated { evidence } = judge(Some(resumed(ExitStatus::Code(0), after)))
        else {
            panic!("violated")
        };
        assert_eq!(
            evidence[0],
            r#"after the resume, out.json is 5 bytes, differing from the uninterrupted run's 5 at byte 2: found `c\"}`, expected `b\"}` (the case left it partial)"#
        );
        let mut killed = resumed(
            ExitStatus::Signal(crate::values::Signal::SIGKILL),
            FileState::Absent,
        );
        killed.killed = Some(HarnessKill {
            reason: KillReason::TimedOut,
            at: at_ms(5000),
        });
        let Verdict::Violated { evidence } = judge(Some(killed)) else {
            panic!("violated")
        };
        assert_eq!(
            &evidence[..2],
            [
                "the resume did not finish: killed after 5000.0 ms",
                "after the resume, out.json is absent (the case left it partial)"
            ]
        );
    }
}
