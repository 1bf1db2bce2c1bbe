//! Keys of `[expect]` for teardown promises: side effects that must happen exactly once,
//! crash signatures, and how seriously handler I/O is taken.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Pattern, WorkPath};

/// `[[expect.once]]`: a side effect of teardown that must appear exactly once, however
/// many signals arrive: `marker = "^FLUSHED"`, counted in stdout, stderr or a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnceSpec {
    /// A regular expression; each matching line is one occurrence.
    pub marker: Pattern,
    /// Where to count: `"stdout"` (the default), `"stderr"`, or a file in the sandbox.
    #[serde(rename = "in", default)]
    pub source: MarkerSource,
}

impl OnceSpec {
    /// The text this marker is counted in, from a run's stdout, stderr and the marker
    /// files read after it; `None` for a file the run left absent.
    pub fn text<'a>(
        &self,
        stdout: &'a str,
        stderr: &'a str,
        files: &'a BTreeMap<WorkPath, Option<String>>,
    ) -> Option<&'a str> {
        match &self.source {
            MarkerSource::Stdout => Some(stdout),
            MarkerSource::Stderr => Some(stderr),
            MarkerSource::File(path) => files.get(path)?.as_deref(),
        }
    }

    /// The lines of `text` the marker matches, numbered from 1.
    pub fn hits<'a>(&self, text: &'a str) -> Vec<(usize, &'a str)> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| self.marker.is_match(line))
            .map(|(i, line)| (i + 1, line))
            .collect()
    }
}

/// Where a once marker is counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MarkerSource {
    #[default]
    Stdout,
    Stderr,
    File(WorkPath),
}

impl std::fmt::Display for MarkerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MarkerSource::Stdout => f.write_str("stdout"),
            MarkerSource::Stderr => f.write_str("stderr"),
            MarkerSource::File(path) => write!(f, "{path}"),
        }
    }
}

impl Serialize for MarkerSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MarkerSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "stdout" => MarkerSource::Stdout,
            "stderr" => MarkerSource::Stderr,
            path => MarkerSource::File(path.parse().map_err(serde::de::Error::custom)?),
        })
    }
}

/// How a finding of an advisory invariant counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Not checked.
    Off,
    /// Shown in the report; the scenario still passes.
    #[default]
    Warn,
    /// A violation like any other.
    Violation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        once: Vec<OnceSpec>,
    }

    #[test]
    fn markers_count_in_stdout_by_default_or_where_told() {
        let text = r#"
            once = [
              { marker = "^FLUSHED" },
              { marker = "^END ", in = "store.log" },
              { marker = "bye", in = "stderr" },
            ]"#;
        let once = toml::from_str::<Wrap>(text).unwrap().once;
        assert_eq!(once[0].source, MarkerSource::Stdout);
        assert_eq!(
            once[1].source,
            MarkerSource::File("store.log".parse().unwrap())
        );
        assert_eq!(once[2].source, MarkerSource::Stderr);
        assert_eq!(once[1].marker.as_str(), "^END ");
    }

    #[test]
    fn a_marker_file_outside_the_sandbox_is_refused() {
        let text = r#"once = [{ marker = "x", in = "/etc/passwd" }]"#;
        let error = toml::from_str::<Wrap>(text).err().unwrap().to_string();
        assert!(error.contains("/etc/passwd"), "{error}");
    }
}
