//! Running a scenario from Rust: [`Scenario::check`] in a test, [`Scenario::run`] for the
//! report as data, and [`Scenario::prepare`] for the cases one at a time, with the plan
//! strategy to draw them from in a `proptest!` block of one's own.
//!
//! A scenario built in a test reruns through that test: its report's rerun line is
//! `KILLPOINT_SEED=<case> cargo nextest run --workspace -E 'binary_id(…) & test(=…)'`.
//!
//! ```
//! use std::time::Duration;
//! use killpoint::{Expect, Scenario, Signal, Strike, SyscallClass};
//!
//! // A writer that replaces its output with `mv`, and on SIGTERM removes its temp file:
//! // never torn, nothing left behind, whatever the strike.
//! let atomic = Scenario::command("sh")
//!     .arg("-c")
//!     .arg("trap 'rm -f \"$1.tmp\"; exit 143' TERM; printf 'first\\nsecond\\n' > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"")
//!     .arg("writer")
//!     .arg_work("out.txt")
//!     .strike(Strike::syscall(SyscallClass::Write).signals([Signal::SIGTERM, Signal::SIGKILL]))
//!     .expect(Expect::atomic_output("out.txt"))
//!     .expect(Expect::exit_codes().interrupted([143]))
//!     .cases(8);
//! atomic.check();
//! ```
//!
//! ```should_panic
//! # use killpoint::{Expect, Scenario, Signal, Strike, SyscallClass};
//! // A writer that writes its output in place, line by line: a strike between the
//! // writes leaves it torn. `check()` panics with the report, seed and rerun line.
//! let in_place = Scenario::command("sh")
//!     .arg("-c")
//!     .arg("printf 'first\\n' > \"$1\"; printf 'second\\n' >> \"$1\"")
//!     .arg("writer")
//!     .arg_work("out.txt")
//!     .strike(Strike::syscall(SyscallClass::Write).path("out.txt").signal(Signal::SIGKILL))
//!     .expect(Expect::atomic_output("out.txt"))
//!     .cases(8);
//! in_place.check();
//! ```

use proptest::strategy::SBoxedStrategy;

use crate::campaign::{Campaign, CampaignOptions, Event};
use crate::case::Prepared;
use crate::census::Census;
use crate::judged::{JudgedCase, ScenarioResult};
use crate::plan::{CaseId, Plan};
use crate::report::{self, ScenarioReport};
use crate::scenario::Scenario;
use crate::space::StrikeSpace;

/// The master seed of a run when `KILLPOINT_SEED` does not name one: fixed, so a CI gate
/// is repeatable; a nightly run sets a new one.
pub const DEFAULT_SEED: u64 = 1;

impl Campaign {
    /// Runs one scenario (census, cases, shrinking, verdict) and reports what it found.
    pub fn run_scenario(&self, scenario: &Scenario) -> ScenarioReport {
        self.run_scenario_with(scenario, &|_| {})
    }

    /// As [`Campaign::run_scenario`], telling `events` each step as it happens.
    pub fn run_scenario_with(
        &self,
        scenario: &Scenario,
        events: &(dyn Fn(&Event) + Sync),
    ) -> ScenarioReport {
        ScenarioReport::new(scenario, self.run(scenario, events))
    }
}

impl Scenario {
    /// The programs of `[requires]` ([`Scenario::requires`]) that are not on the PATH,
    /// each with the Debian package that provides it: a test suite can skip, or say what
    /// to install, before it runs the scenario (which would be an error).
    pub fn missing_programs(&self) -> Vec<(String, String)> {
        crate::targets::missing_programs(self)
    }

    /// Runs the scenario's campaign (census, cases, shrinking) and returns its report.
    /// `KILLPOINT_SEED` and `KILLPOINT_CASES` apply; the seed is otherwise
    /// [`DEFAULT_SEED`]. Cases run one at a time: the test runner already runs tests side
    /// by side.
    pub fn run(&self) -> ScenarioReport {
        match CampaignOptions::from_env(DEFAULT_SEED) {
            Ok(options) => self.run_with(options),
            Err(message) => ScenarioReport::unrun(self, ScenarioResult::Error { message }),
        }
    }

    /// Runs the scenario's campaign with these options. With `KILLPOINT_REPORT_DIR` set,
    /// the JSON report is also written there ([`report::save_in_report_dir`]).
    pub fn run_with(&self, options: CampaignOptions) -> ScenarioReport {
        let seed = options.seed;
        let mut report = Campaign::new(options).run_scenario(self);
        if let Some(Err(e)) = report::save_in_report_dir(&report, seed) {
            report.notes.push(format!(
                "could not write the JSON report into ${}: {e}",
                report::REPORT_DIR
            ));
        }
        report
    }

    /// Runs the scenario's campaign and panics, with the whole report (the evidence, the
    /// minimal plan, the seed and the line that reruns the failing case), unless it held
    /// (or caught the planted bug it declares). The report is printed either way, so a
    /// passing test's captured output says what was tried.
    pub fn check(&self) {
        let report = self.run();
        let text = report::scenario_text(&report);
        println!("{text}");
        if !report.result.ok() {
            panic!("killpoint: shutdown promises broken\n{text}");
        }
    }

    /// Makes the census run and the strike space, for running cases one at a time:
    /// [`Cases::plans`] is the plan strategy, [`Cases::run`] runs and judges one plan.
    pub fn prepare(&self) -> Result<Cases, String> {
        let mut prepared = Prepared::new(self)?;
        let census = prepared.census().map_err(|e| e.to_string())?;
        prepared.vet_census(&census)?;
        let space = StrikeSpace::new(self, &census)?;
        Ok(Cases {
            prepared,
            census,
            space,
        })
    }
}

/// A scenario after its census: the plans its cases draw from, and a way to run one.
///
/// ```
/// use killpoint::{Expect, Scenario, Signal, Strike, SyscallClass};
/// use killpoint::proptest::prelude::*;
///
/// let cases = Scenario::command("sh")
///     .arg("-c")
///     .arg("trap 'rm -f \"$1.tmp\"; exit 143' TERM; printf 'whole\\n' > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"")
///     .arg("writer")
///     .arg_work("out.txt")
///     .strike(Strike::syscall(SyscallClass::Write).signals([Signal::SIGTERM, Signal::SIGKILL]))
///     .expect(Expect::atomic_output("out.txt"))
///     .expect(Expect::exit_codes().interrupted([143]))
///     .prepare()
///     .unwrap();
/// proptest!(ProptestConfig::with_cases(4), |(plan in cases.plans())| {
///     let case = cases.run(&plan).unwrap();
///     prop_assert!(case.held(), "{}", cases.text(&case));
/// });
/// ```
pub struct Cases {
    prepared: Prepared,
    census: Census,
    space: StrikeSpace,
}

impl Cases {
    /// The uninterrupted reference run.
    pub fn census(&self) -> &Census {
        &self.census
    }

    /// The plan strategy: plans drawn from the census's strike space, shrinking toward
    /// fewer strikes, earlier points and plainer signals.
    pub fn plans(&self) -> SBoxedStrategy<Plan> {
        self.space.strategy()
    }

    /// Runs one case under `plan` in a fresh sandbox (removed afterwards) and judges it.
    /// An error is a case that could not run (the target could not be started, the
    /// sandbox not made).
    pub fn run(&self, plan: &Plan) -> Result<JudgedCase, String> {
        let (case, _sandbox) = self
            .prepared
            .case(&self.census, 0, CaseId::seeded(0), plan.clone())
            .map_err(|e| e.to_string())?;
        Ok(case)
    }

    /// A case as a report shows it: the verdict, the plan, what each strike hit and the
    /// evidence.
    pub fn text(&self, case: &JudgedCase) -> String {
        report::case_text(case, &self.census)
    }
}
