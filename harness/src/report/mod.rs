//! Reports: the data a campaign's findings are reported as ([`data`]), rendered as text
//! ([`text`]) and JSON ([`json`]), and killpoint's exit code for them ([`exit`]).

pub mod data;
mod exit;
pub mod json;
pub mod text;
pub mod timeline;

pub use data::{CampaignReport, ScenarioReport, TestId};
pub use json::{REPORT_DIR, save_in_report_dir, write_json};
pub use text::{case_text, repro_text, rerun_commands, scenario_text, summary_text};
