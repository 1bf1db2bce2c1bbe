//! The JSON report: written atomically, and into `KILLPOINT_REPORT_DIR` for CI to keep.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::data::ScenarioReport;
use super::text::from_here;

/// Writes the JSON report atomically: a reader sees the old file or the whole new one.
pub fn write_json(report: &impl Serialize, path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut file, report)?;
    file.write_all(b"\n")?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where `KILLPOINT_REPORT_DIR` asks test runs to leave their JSON reports.
pub const REPORT_DIR: &str = "KILLPOINT_REPORT_DIR";

/// Writes a scenario's JSON report into the directory `KILLPOINT_REPORT_DIR` names, if it
/// names one (made if missing), as `<scenario>.seed-<seed>.json`: the file's path or the
/// test's name, with `/` and `::` as `__`. CI keeps the directory as an artifact.
pub fn save_in_report_dir(report: &ScenarioReport, seed: u64) -> Option<io::Result<PathBuf>> {
    let dir = PathBuf::from(std::env::var_os(REPORT_DIR)?);
    let stem = match (&report.file, &report.test) {
        (Some(file), _) => from_here(file),
        (None, Some(test)) => format!("{}::{}", test.binary_id, test.name),
        (None, None) => report.name.clone(),
    };
    let stem = stem
        .trim_start_matches('/')
        .replace("::", "__")
        .replace('/', "__");
    let path = dir.join(format!("{stem}.seed-{seed}.json"));
    Some(
        std::fs::create_dir_all(&dir)
            .and_then(|()| write_json(report, &path))
            .map(|()| path),
    )
}
