//! Judged cases and the verdict on a scenario: plain data, and the pure decisions that
//! make them.

use std::path::PathBuf;

use serde::Serialize;

use crate::expect::InvariantName;
use crate::invariants::Verdict;
use crate::outcome::Outcome;
use crate::plan::{CaseId, Plan};

/// One case, run and judged: its plan, what happened, and the promises it broke.
#[derive(Debug, Clone, Serialize)]
pub struct JudgedCase {
    /// Its place in the campaign, from 0 (reports count from 1).
    pub case_index: u64,
    /// What reruns exactly this case: `killpoint repro FILE --case ID`.
    pub case_id: CaseId,
    pub plan: Plan,
    /// The invariants the case violated, each with its evidence.
    pub violations: Vec<(InvariantName, Vec<String>)>,
    /// Advisory promises it broke.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<(InvariantName, Vec<String>)>,
    pub outcome: Outcome,
    /// Its sandbox, when kept for inspection.
    pub sandbox: Option<PathBuf>,
}

impl JudgedCase {
    /// A case from its verdicts: held ones are dropped, the others sorted into violations
    /// and warnings.
    pub fn new(
        case_index: u64,
        case_id: CaseId,
        plan: Plan,
        outcome: Outcome,
        verdicts: Vec<(InvariantName, Verdict)>,
    ) -> JudgedCase {
        let mut violations = Vec::new();
        let mut warnings = Vec::new();
        for (name, verdict) in verdicts {
            match verdict {
                Verdict::Held => {}
                Verdict::Violated { evidence } => violations.push((name, evidence)),
                Verdict::Warned { evidence } => warnings.push((name, evidence)),
            }
        }
        JudgedCase {
            case_index,
            case_id,
            plan,
            violations,
            warnings,
            outcome,
            sandbox: None,
        }
    }

    /// Whether every invariant held.
    pub fn held(&self) -> bool {
        self.violations.is_empty()
    }

    /// The names of the invariants it violated.
    pub fn violated(&self) -> Vec<InvariantName> {
        self.violations.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The case as the report lists every case run.
    pub fn summary(&self) -> CaseSummary {
        CaseSummary {
            index: self.case_index,
            id: self.case_id.clone(),
            plan: self.plan.clone(),
            violated: self.violated(),
            landed: self
                .outcome
                .strikes
                .iter()
                .filter(|s| s.sent_at.is_some())
                .count(),
        }
    }

    /// Its advisory findings, as the report shows the first of each.
    pub fn warnings(&self) -> Vec<Warning> {
        self.warnings
            .iter()
            .map(|(name, evidence)| Warning {
                invariant: name.clone(),
                case_index: self.case_index,
                case_id: self.case_id.clone(),
                evidence: evidence.clone(),
            })
            .collect()
    }
}

/// One case run, as the JSON report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub index: u64,
    pub id: CaseId,
    pub plan: Plan,
    /// The invariants it violated.
    pub violated: Vec<InvariantName>,
    /// How many of its strikes reached the target.
    pub landed: usize,
}

/// An advisory invariant broken in a case that otherwise passed or failed on its own.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub invariant: InvariantName,
    pub case_index: u64,
    pub case_id: CaseId,
    pub evidence: Vec<String>,
}

/// The verdict on a whole scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ScenarioResult {
    /// Every invariant held in every case.
    Passed,
    /// A planted bug was caught with the invariant the scenario declared.
    CaughtAsExpected,
    /// An invariant was violated that the scenario did not expect.
    Violated,
    /// The scenario declared a violation that no case produced.
    Missed,
    /// The scenario could not be run (bad target, failed census).
    Error { message: String },
    /// The harness was asked to stop.
    Interrupted,
}

impl ScenarioResult {
    pub fn ok(&self) -> bool {
        matches!(
            self,
            ScenarioResult::Passed | ScenarioResult::CaughtAsExpected
        )
    }
}

/// The verdict of a case's violations for a scenario expecting `expected` (its planted
/// bugs): the only place that decides it. A campaign in which no case failed is `Missed`
/// if it expected a violation ([`no_failure`]).
pub fn verdict(expected: &[InvariantName], violated: &[InvariantName]) -> ScenarioResult {
    if violated.is_empty() {
        ScenarioResult::Passed
    } else if !expected.is_empty() && violated.iter().all(|name| expected.contains(name)) {
        ScenarioResult::CaughtAsExpected
    } else {
        ScenarioResult::Violated
    }
}

/// The verdict of a campaign in which no case failed.
pub fn no_failure(expected: &[InvariantName]) -> ScenarioResult {
    if expected.is_empty() {
        ScenarioResult::Passed
    } else {
        ScenarioResult::Missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_caught_only_when_every_violation_was_declared() {
        use InvariantName::{AtomicOutput, ExitCode};
        assert_eq!(verdict(&[], &[]), ScenarioResult::Passed);
        assert_eq!(verdict(&[AtomicOutput], &[]), ScenarioResult::Passed);
        assert_eq!(no_failure(&[AtomicOutput]), ScenarioResult::Missed);
        assert_eq!(no_failure(&[]), ScenarioResult::Passed);
        assert_eq!(
            verdict(&[AtomicOutput], &[AtomicOutput]),
            ScenarioResult::CaughtAsExpected
        );
        assert_eq!(
            verdict(&[AtomicOutput], &[AtomicOutput, ExitCode]),
            ScenarioResult::Violated
        );
        assert_eq!(verdict(&[], &[ExitCode]), ScenarioResult::Violated);
    }
}
