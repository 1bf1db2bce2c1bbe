//! The sandbox: a fresh directory per case, set up with the scenario's files, removed
//! afterwards unless a failing case's is kept for inspection.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::values::WorkPath;

/// The modification time of every setup file: 2024-01-01 00:00:00 UTC, in seconds since
/// the epoch.
pub const SETUP_MTIME: u64 = 1_704_067_200;

#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Makes a sandbox and writes the setup files into it.
    pub fn create(setup: &BTreeMap<WorkPath, Vec<u8>>) -> io::Result<Sandbox> {
        let dir = tempfile::Builder::new().prefix("killpoint-").tempdir()?;
        for (path, content) in setup {
            let full = dir.path().join(path.as_str());
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&full, content)?;
            // One fixed time for every setup file, so that a program that records its
            // input's mtime (gzip's header, tar) makes the same bytes in every run.
            fs::File::options().write(true).open(&full)?.set_modified(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(SETUP_MTIME),
            )?;
        }
        Ok(Sandbox { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file's content, or `None` if it does not exist.
    pub fn read(&self, path: &WorkPath) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.dir.path().join(path.as_str())) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every entry of the outputs' directories, as sandbox-relative paths.
    pub fn list(&self, outputs: &[WorkPath]) -> BTreeSet<String> {
        let dirs: BTreeSet<&str> = outputs.iter().map(|o| o.parent()).collect();
        let mut all = BTreeSet::new();
        for dir in dirs {
            let Ok(entries) = fs::read_dir(self.dir.path().join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                all.insert(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        all
    }

    /// Keeps the directory on disk and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}
