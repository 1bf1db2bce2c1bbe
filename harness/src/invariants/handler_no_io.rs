//! `handler-no-io`: a signal handler sets a flag and returns; it writes and syncs no
//! files. A handler that flushes a store or checkpoints a database races the very code it
//! interrupted (which may hold the lock or be halfway through the same file). The tracer
//! follows each thread from the signal-delivery stop that enters a handler to its
//! `rt_sigreturn` and notes the writes to regular files and the syncs in between; writes
//! to pipes and sockets (a self-pipe, a wake-up fd) are the async-signal-safe way to hand
//! work over and are not counted. By default a finding is a warning.

use super::{Context, Verdict};
use crate::units::ms;

/// How many calls the evidence lists.
const LISTED: usize = 5;

pub fn check(ctx: &Context) -> Verdict {
    let found = &ctx.outcome.handler_io;
    if found.is_empty() {
        return Verdict::Held;
    }
    let mut evidence = vec![format!(
        "{} file write{} or sync{} inside signal handlers:",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        if found.len() == 1 { "" } else { "s" },
    )];
    for io in found.iter().take(LISTED) {
        let thread = if io.tid == io.pid {
            String::new()
        } else {
            format!(" thread {}", io.tid)
        };
        evidence.push(format!(
            "  pid {}{thread}, in its {} handler (entered at {}): {} at {}",
            io.pid,
            io.signal,
            ms(io.entered_at),
            io.call,
            ms(io.at)
        ));
    }
    if found.len() > LISTED {
        evidence.push(format!("  … {} more", found.len() - LISTED));
    }
    Verdict::violated(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{Expect, Severity};
    use crate::invariants::testing::*;
    use crate::outcome::HandlerIo;
    use crate::values::Signal;

    fn io(call: &str, at: u64) -> HandlerIo {
        HandlerIo {
            pid: 40,
            tid: 41,
            signal: Signal::SIGTERM,
            entered_at: at_ms(100),
            at: at_ms(at),
            call: call.into(),
        }
    }

    #[test]
    fn a_handler_that_writes_is_caught_and_its_calls_listed() {
        let (e, c, p) = (Expect::default(), census(b""), no_plan());
        let mut o = clean_outcome();
        let judge = |o: &crate::outcome::Outcome| {
            check(&Context {
                expect: &e,
                census: &c,
                plan: &p,
                outcome: o,
            })
        };
        assert_eq!(judge(&o), Verdict::Held);
        o.handler_io = vec![
            io("write 64 B to store.log", 101),
            io("fdatasync store.log", 102),
        ];
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("handler I/O must be found")
        };
        assert_eq!(
            evidence,
            vec![
                "2 file writes or syncs inside signal handlers:",
                "  pid 40 thread 41, in its SIGTERM handler (entered at 100.0 ms): write 64 B to store.log at 101.0 ms",
                "  pid 40 thread 41, in its SIGTERM handler (entered at 100.0 ms): fdatasync store.log at 102.0 ms",
            ]
        );
    }

    #[test]
    fn by_default_a_finding_is_a_warning_and_a_scenario_can_make_it_a_violation() {
        let (c, p) = (census(b""), no_plan());
        let mut o = clean_outcome();
        o.handler_io = vec![io("write 1 B to a.log", 101)];
        let verdict = |expect: &Expect| {
            crate::invariants::judge(
                &Context {
                    expect,
                    census: &c,
                    plan: &p,
                    outcome: &o,
                },
                &[],
            )
            .into_iter()
            .find(|(n, _)| *n == crate::invariants::InvariantName::HandlerNoIo)
            .map(|(_, v)| v)
        };
        assert!(matches!(
            verdict(&Expect::default()),
            Some(Verdict::Warned { .. })
        ));
        let strict = Expect {
            handler_io: Severity::Violation,
            ..Expect::default()
        };
        assert!(matches!(verdict(&strict), Some(Verdict::Violated { .. })));
        let off = Expect {
            handler_io: Severity::Off,
            ..Expect::default()
        };
        assert_eq!(verdict(&off), None);
    }
}
