//! `no-crash-output`: stderr shows no crash. A program that ends with its documented code
//! but printed a traceback on the way crashed somewhere (a thread, a handler, a finalizer);
//! the report quotes the lines.

use std::sync::LazyLock;

use regex::Regex;

use super::{Context, Verdict};

/// Crash signatures, one line each, in the words runtimes print them.
const SIGNATURES: &[&str] = &[
    // Python: a traceback, a fatal error, an exception in a thread.
    r"^Traceback \(most recent call last\):",
    r"^Fatal Python error:",
    r"^Exception in thread ",
    r"reentrant call inside <",
    // Rust.
    r"^thread '.*' panicked at ",
    r"^thread '.*' has overflowed its stack",
    // C and C++ runtimes, the shell's report of a crashed child.
    r"Segmentation fault",
    r"\(core dumped\)",
    r"^terminate called after throwing",
    r"^\*\*\* .* \*\*\*",
    r"double free or corruption",
    // Sanitizers.
    r"^==\d+==ERROR: \w*Sanitizer",
    r"^WARNING: ThreadSanitizer",
    r": runtime error: ",
    // Go and the JVM.
    r"^panic: ",
    r"^fatal error: ",
    r#"^Exception in thread ".*" "#,
];

static BUILT_IN: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    SIGNATURES
        .iter()
        .map(|s| Regex::new(s).expect("a valid signature"))
        .collect()
});

/// How many crash lines the evidence quotes.
const QUOTED: usize = 6;

pub fn check(ctx: &Context) -> Verdict {
    let found = crash_lines(&ctx.outcome.stderr.text, &ctx.expect.crash_patterns);
    if found.is_empty() {
        return Verdict::Held;
    }
    let mut evidence = vec![format!(
        "stderr shows a crash ({} line{} match a crash signature):",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    )];
    for (number, line) in quoted(&ctx.outcome.stderr.text, &found) {
        evidence.push(format!("  line {number}: {line}"));
    }
    if found.len() > QUOTED {
        evidence.push(format!("  … {} more", found.len() - QUOTED));
    }
    Verdict::violated(evidence)
}

/// The numbers (from 1) of the lines of `text` that match a crash signature or one of
/// `extra`.
pub fn crash_lines(text: &str, extra: &[crate::expect::Pattern]) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            BUILT_IN.iter().any(|r| r.is_match(line)) || extra.iter().any(|p| p.is_match(line))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The lines to quote: the first crash lines, and for a Python traceback the exception
/// line that ends it (its first unindented line after the header).
fn quoted(text: &str, found: &[usize]) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for &number in found.iter().take(QUOTED) {
        let line = lines[number - 1];
        out.push((number, line.to_string()));
        if line.starts_with("Traceback ")
            && let Some(end) = (number..lines.len()).find(|&i| !lines[i].starts_with([' ', '\t']))
            && !found.contains(&(end + 1))
        {
            out.push((end + 1, lines[end].to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;

    fn judge(stderr: &str, expect: &Expect) -> Verdict {
        let (c, p) = (census(b""), no_plan());
        let mut o = clean_outcome();
        o.stderr.text = stderr.to_string();
        check(&Context {
            expect,
            census: &c,
            plan: &p,
            outcome: &o,
        })
    }

    fn evidence(stderr: &str) -> Vec<String> {
        match judge(stderr, &Expect::default()) {
            Verdict::Violated { evidence } => evidence,
            other => panic!("expected a crash in {stderr:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_python_traceback_is_quoted_with_its_exception() {
        let stderr = "starting\nTraceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n    print('stopping')\nRuntimeError: reentrant call inside <_io.BufferedWriter name='<stdout>'>\n";
        assert_eq!(
            evidence(stderr),
            vec![
                "stderr shows a crash (2 lines match a crash signature):",
                "  line 2: Traceback (most recent call last):",
                "  line 5: RuntimeError: reentrant call inside <_io.BufferedWriter name='<stdout>'>",
            ]
        );
    }

    #[test]
    fn a_keyboard_interrupt_traceback_is_a_crash_too() {
        let stderr = "Traceback (most recent call last):\n  File \"r.py\", line 9, in run\n    time.sleep(0.1)\nKeyboardInterrupt\n";
        assert_eq!(evidence(stderr)[2], "  line 4: KeyboardInterrupt");
    }

    #[test]
    fn panics_segfaults_and_sanitizers_are_crashes() {
        for line in [
            "thread 'main' panicked at src/main.rs:3:5:",
            "thread 'flusher' panicked at library/std/src/io/stdio.rs:1123:9:",
            "Segmentation fault (core dumped)",
            "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010",
            "WARNING: ThreadSanitizer: data race (pid=4242)",
            "store.c:41:9: runtime error: signed integer overflow",
            "terminate called after throwing an instance of 'std::runtime_error'",
            "*** stack smashing detected ***: terminated",
            "Fatal Python error: _enter_buffered_busy: could not acquire lock",
            "panic: runtime error: index out of range [3] with length 3",
        ] {
            assert_eq!(evidence(line)[1], format!("  line 1: {line}"), "{line}");
        }
    }

    #[test]
    fn ordinary_stderr_holds() {
        let stderr = "flush-store: stopped; every acknowledged record is on disk\nwarning: retrying flush (error: disk full)\n";
        assert_eq!(judge(stderr, &Expect::default()), Verdict::Held);
    }

    #[test]
    fn extra_patterns_extend_the_signatures() {
        let expect = Expect {
            crash_patterns: vec!["^FATAL ".parse().unwrap()],
            ..Expect::default()
        };
        let Verdict::Violated { evidence } = judge("ok\nFATAL lost the index\n", &expect) else {
            panic!("an extra pattern must count")
        };
        assert_eq!(evidence[1], "  line 2: FATAL lost the index");
        assert_eq!(
            judge("FATAL lost the index\n", &Expect::default()),
            Verdict::Held
        );
    }

    #[test]
    fn at_most_a_few_lines_are_quoted() {
        let stderr = "Segmentation fault\n".repeat(10);
        let evidence = evidence(&stderr);
        assert_eq!(evidence.len(), 1 + QUOTED + 1);
        assert_eq!(evidence.last().unwrap(), "  … 4 more");
    }
}
