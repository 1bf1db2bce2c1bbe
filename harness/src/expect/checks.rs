//! `[[expect.check]]`: a promise of the user's own, stated as a command run in the
//! sandbox after every case — a cross-file contract ("the input is kept unless the output
//! is complete") without an invariant written in Rust.
//!
//! The command reads the case's outcome as JSON on stdin. Its exit status is the verdict:
//! 0 the promise held, 1 it was broken (what it printed is the evidence), anything else
//! the checker itself failed and the scenario cannot run. Reports name it
//! `check:NAME`, and `violation = "check:NAME"` declares it a planted bug.

use serde::{Deserialize, Serialize};

use super::values::Arg;

/// One `[[expect.check]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// One word: the invariant is reported as `check:NAME`.
    #[serde(deserialize_with = "check_name")]
    pub name: String,
    /// Run in the case's sandbox, with the scenario's env and `timeout`.
    #[serde(deserialize_with = "crate::scenario::non_empty_command")]
    pub command: Vec<Arg>,
}

/// The prefix of a checker's invariant name.
pub const PREFIX: &str = "check:";

impl CheckSpec {
    /// `check:NAME`.
    pub fn invariant(&self) -> super::InvariantName {
        super::InvariantName::Check(format!("{PREFIX}{}", self.name))
    }
}

/// Whether `name` can name a checker: one word of letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` is not a checker name: one word of letters, digits, `-` and `_`, e.g. \"input-kept\""
        ));
    }
    Ok(())
}

fn check_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    valid_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}
