//! The regressions file: `<scenario>.regressions` beside `<scenario>.toml`, one failing
//! case per line, replayed before any new case on every later run (as proptest does with
//! `proptest-regressions/`). Keep it in version control.
//!
//! ```text
//! # Cases of atomic-writer.toml that failed; replayed first on every run. Keep this file.
//! 9569642308515476273 # atomic-output: SIGTERM at the entry of write #9 to out.json
//! 9569642308515476273-1d # shrinks to: SIGTERM at the entry of write #1 to out.json
//! ```
//!
//! Where failures are kept is a [`FailurePersistence`], as in proptest: the campaign
//! loads the cases to replay from it and saves each new unexpected failure to it. The
//! file beside the scenario is [`FileRegressions`]; [`NoRegressions`] keeps nothing, and
//! [`MapRegressions`] keeps them in memory (a test, or a scenario built in one).
//!
//! A case is written the moment it fails, not at exit — a campaign that is killed or
//! interrupted while it shrinks has still recorded it — in one `write` to a file opened
//! for appending, then synced: concurrent runs do not interleave lines, and a crash can
//! at worst leave a last line without its newline, which reading ignores.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::plan::CaseId;
use crate::scenario::Scenario;

/// Where a scenario's failing cases are kept between runs.
pub trait FailurePersistence: Send + Sync {
    /// The cases to replay before any new one, in order.
    fn load(&self, scenario: &Scenario) -> Result<Vec<CaseId>, String>;
    /// Keeps a failing case, with a comment saying what it broke. An error is a note in
    /// the report, not a failure of the run.
    fn save(&self, scenario: &Scenario, id: &CaseId, comment: &str) -> Result<(), String>;
}

/// The regressions file beside a scenario file; a scenario with no file keeps nothing.
pub struct FileRegressions;

impl FailurePersistence for FileRegressions {
    fn load(&self, scenario: &Scenario) -> Result<Vec<CaseId>, String> {
        match &scenario.source {
            Some(file) => load(&path_for(file)),
            None => Ok(Vec::new()),
        }
    }

    fn save(&self, scenario: &Scenario, id: &CaseId, comment: &str) -> Result<(), String> {
        let Some(file) = &scenario.source else {
            return Ok(());
        };
        let path = path_for(file);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        append(&path, &name, id, comment)
            .map_err(|e| format!("could not record case {id} in {}: {e}", path.display()))
    }
}

/// Keeps nothing and replays nothing (`--no-regressions`).
pub struct NoRegressions;

impl FailurePersistence for NoRegressions {
    fn load(&self, _: &Scenario) -> Result<Vec<CaseId>, String> {
        Ok(Vec::new())
    }

    fn save(&self, _: &Scenario, _: &CaseId, _: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Keeps failing cases in memory, by scenario name, for as long as it lives.
#[derive(Default)]
pub struct MapRegressions {
    cases: Mutex<BTreeMap<String, Vec<CaseId>>>,
}

impl FailurePersistence for MapRegressions {
    fn load(&self, scenario: &Scenario) -> Result<Vec<CaseId>, String> {
        let cases = self.cases.lock().unwrap_or_else(|e| e.into_inner());
        Ok(cases.get(&scenario.name).cloned().unwrap_or_default())
    }

    fn save(&self, scenario: &Scenario, id: &CaseId, _: &str) -> Result<(), String> {
        let mut cases = self.cases.lock().unwrap_or_else(|e| e.into_inner());
        let known = cases.entry(scenario.name.clone()).or_default();
        if !known.contains(id) {
            known.push(id.clone());
        }
        Ok(())
    }
}

/// Where the regressions of the scenario file `scenario` live.
pub fn path_for(scenario: &Path) -> PathBuf {
    scenario.with_extension("regressions")
}

/// The cases recorded in `path`, in order, without repeats; none if it does not exist.
pub fn load(path: &Path) -> Result<Vec<CaseId>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let mut cases = Vec::new();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for (i, line) in complete.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let id: CaseId = entry
            .parse()
            .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if !cases.contains(&id) {
            cases.push(id);
        }
    }
    Ok(cases)
}

/// Appends `id` with a comment, unless the file already holds it.
pub fn append(path: &Path, scenario_file: &str, id: &CaseId, comment: &str) -> io::Result<()> {
    if load(path).is_ok_and(|known| known.contains(id)) {
        return Ok(());
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = String::new();
    if file.metadata()?.len() == 0 {
        text.push_str(&format!(
            "# Cases of {scenario_file} that failed; `killpoint run` replays them before any new\n# case. Keep this file in version control.\n"
        ));
    }
    let comment = comment.replace('\n', " ");
    text.push_str(&format!("{id} # {comment}\n"));
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_cases_load_in_order_once_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.regressions");
        assert_eq!(load(&path), Ok(vec![]), "no file: no cases");
        let a: CaseId = "12345".parse().unwrap();
        let b: CaseId = "12345-1d".parse().unwrap();
        append(&path, "x.toml", &a, "atomic-output: SIGTERM at …").unwrap();
        append(&path, "x.toml", &b, "shrinks to: SIGTERM at …").unwrap();
        append(&path, "x.toml", &a, "again").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Cases of x.toml that failed"), "{text}");
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            2,
            "{text}"
        );
        assert_eq!(load(&path), Ok(vec![a.clone(), b.clone()]));
        // A crash mid-append leaves a line without its newline: it is not a case.
        std::fs::write(&path, format!("{text}p3")).unwrap();
        assert_eq!(load(&path), Ok(vec![a, b]));
    }

    #[test]
    fn a_malformed_entry_is_an_error_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.regressions");
        std::fs::write(&path, "# header\n12\nnot-a-seed # oops\n").unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.ends_with("x.regressions:3: `not-a-seed` is not a case: expected a seed (`1234`), a shrunk case (`1234-5b`), an exhaustive point (`p17`) or `census`"), "{e}");
    }
}
