//! `no-leftover-processes`: no process of the target's tree — children, daemonized
//! grandchildren — is still alive when the main process has exited.

use super::{Context, Verdict};

pub fn check(ctx: &Context) -> Verdict {
    let leftovers = &ctx.outcome.leftovers;
    if leftovers.is_empty() {
        return Verdict::Held;
    }
    let mut evidence = vec![format!(
        "{} process(es) still running when the main process exited: (the harness killed them)",
        leftovers.len()
    )];
    evidence.extend(
        leftovers
            .iter()
            .map(|p| format!("  pid {}: {}", p.pid, p.command)),
    );
    Verdict::violated(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Expect;
    use crate::invariants::testing::*;
    use crate::outcome::ProcessInfo;

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
        assert_eq!(evidence[1], "  pid 4242: sleep 1000");
    }
}
