//! killpoint's exit code for a campaign: the one place that decides it.

use super::data::CampaignReport;
use crate::judged::ScenarioResult;

impl CampaignReport {
    /// killpoint's exit code for this report: 0 every scenario as expected, 1 a violation
    /// (or a planted bug missed), 2 a scenario could not run, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted
            || self
                .scenarios
                .iter()
                .any(|s| s.result == ScenarioResult::Interrupted)
        {
            130
        } else if self
            .scenarios
            .iter()
            .any(|s| matches!(s.result, ScenarioResult::Error { .. }))
        {
            2
        } else if self.scenarios.iter().all(|s| s.result.ok()) {
            0
        } else {
            1
        }
    }
}
