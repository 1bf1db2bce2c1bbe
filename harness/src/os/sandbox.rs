//! The sandbox: a fresh directory per case, set up with the scenario's files, removed
//! afterwards unless a failing case's is kept for inspection.
//!
//! While it is in use, a file beside it (`killpoint-XXXXXX.owner`) names its owner (see
//! [`super::leftovers`]): the mark is outside the directory, so the target never sees
//! it, and a kept sandbox drops it, so no later run takes a kept one for a leftover.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt;

use super::leftovers::Owner;
use crate::setup::{EntryKind, SetupEntry};
use crate::values::{PathGlob, WorkPath};

const PREFIX: &str = "killpoint-";
const MARK: &str = ".owner";

#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// Dropped after the directory (fields drop in order).
    mark: OwnerMark,
    /// The loopback port picked for the run in it, when the scenario uses `{port}`: the
    /// case's network place, as the directory is its place on disk.
    pub port: Option<u16>,
}

/// The owner file beside a sandbox, removed when dropped.
#[derive(Debug)]
struct OwnerMark(PathBuf);

impl Drop for OwnerMark {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn mark_path(dir: &Path) -> PathBuf {
    let mut name: OsString = dir.as_os_str().to_owned();
    name.push(MARK);
    PathBuf::from(name)
}

/// The owner a mark's text names: `killpoint PID START`.
fn parse_mark(text: &str) -> Option<Owner> {
    let mut words = text.split_whitespace();
    (words.next()? == "killpoint").then_some(())?;
    Some(Owner {
        pid: words.next()?.parse().ok()?,
        start: words.next()?.parse().ok()?,
    })
}

/// Removes the marked sandboxes in the temp directory whose owner is gone, with their
/// marks; returns each one's owner pid.
pub(crate) fn remove_stale() -> Vec<i32> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(dir) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(MARK))
            .map(|id| entry.path().with_file_name(format!("{PREFIX}{id}")))
        else {
            continue;
        };
        let Some(owner) = fs::read_to_string(entry.path())
            .ok()
            .as_deref()
            .and_then(parse_mark)
        else {
            continue;
        };
        if owner.running() {
            continue;
        }
        let gone = fs::remove_dir_all(&dir).is_ok();
        // Another killpoint may be removing the same leftovers: count what this one did.
        if fs::remove_file(entry.path()).is_ok() && gone {
            removed.push(owner.pid);
        }
    }
    removed
}

impl Sandbox {
    /// Makes a sandbox, marked as this process's, and writes the setup files into it.
    pub fn create(setup: &[SetupEntry]) -> io::Result<Sandbox> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir()?;
        let me = Owner::me();
        let mark = OwnerMark(mark_path(dir.path()));
        fs::write(&mark.0, format!("killpoint {} {}\n", me.pid, me.start))?;
        let sandbox = Sandbox {
            dir,
            mark,
            port: None,
        };
        let root = sandbox.dir.path();
        for entry in setup {
            let full = root.join(&entry.path);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            match &entry.kind {
                EntryKind::File { bytes, .. } => fs::write(&full, bytes)?,
                EntryKind::Dir { .. } => fs::create_dir_all(&full)?,
                EntryKind::Symlink(target) => std::os::unix::fs::symlink(target, &full)?,
            }
        }
        // Times last, deepest first: making a directory's entries changes its mtime. A
        // program that records its input's mtime (gzip's header, tar) then makes the same
        // bytes in every run. Modes last too, so that read-only files and directories
        // can be written first.
        for entry in setup.iter().rev() {
            let full = root.join(&entry.path);
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.mtime);
            match &entry.kind {
                EntryKind::File { mode, .. } => {
                    fs::File::options()
                        .write(true)
                        .open(&full)?
                        .set_modified(at)?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(*mode))?;
                }
                EntryKind::Dir { mode } => {
                    fs::File::open(&full)?.set_modified(at)?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(*mode))?;
                }
                EntryKind::Symlink(_) => {}
            }
        }
        Ok(sandbox)
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

    /// The entries a temp leftover is looked for among, as sandbox-relative paths:
    /// those matching `scope` anywhere in the sandbox, or, with no scope, every entry of
    /// the outputs' directories; less those matching `allow`.
    pub fn list(
        &self,
        outputs: &[WorkPath],
        scope: &[PathGlob],
        allow: &[PathGlob],
    ) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        if scope.is_empty() {
            let dirs: BTreeSet<&str> = outputs.iter().map(|o| o.parent()).collect();
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
        } else {
            walk(self.dir.path(), "", &mut |path| {
                if scope.iter().any(|g| g.matches(path)) {
                    all.insert(path.to_string());
                }
            });
        }
        all.retain(|path| !allow.iter().any(|g| g.matches(path)));
        all
    }

    /// Every regular file in the sandbox, recursively, with its bytes: what `killpoint new`
    /// compares before and after a run.
    pub fn files(&self) -> io::Result<std::collections::BTreeMap<String, Vec<u8>>> {
        let mut paths = Vec::new();
        walk(self.dir.path(), "", &mut |path| {
            paths.push(path.to_string())
        });
        let mut files = std::collections::BTreeMap::new();
        for path in paths {
            let full = self.dir.path().join(&path);
            if fs::symlink_metadata(&full)?.is_file() {
                files.insert(path, fs::read(&full)?);
            }
        }
        Ok(files)
    }

    /// Puts the sandbox in the state `tree` says (a power loss's crash state): everything
    /// in it is removed, then the tree's directories, files and symlinks are written.
    pub fn put(&self, tree: &crate::power::Tree) -> io::Result<()> {
        use crate::power::{Content, ROOT};
        for entry in fs::read_dir(self.dir.path())? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        let mut stack = vec![(self.dir.path().to_path_buf(), ROOT)];
        while let Some((dir, node)) = stack.pop() {
            let Some(Content::Dir(entries)) = tree.nodes.get(&node) else {
                continue;
            };
            for (name, child) in entries {
                let path = dir.join(name);
                match tree.nodes.get(child) {
                    Some(Content::Dir(_)) => {
                        fs::create_dir(&path)?;
                        stack.push((path, *child));
                    }
                    Some(Content::File(data)) => fs::write(&path, data)?,
                    Some(Content::Symlink(target)) => std::os::unix::fs::symlink(target, &path)?,
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Keeps the directory on disk and returns its path. Its owner mark goes: a kept
    /// sandbox is the user's, and no later run removes it.
    pub fn keep(self) -> PathBuf {
        let Sandbox { dir, mark, .. } = self;
        let path = dir.keep();
        drop(mark);
        path
    }
}

/// Calls `found` with every entry under `dir` (`prefix` is its sandbox-relative path),
/// depth first, without following symlinks.
fn walk(dir: &Path, prefix: &str, found: &mut dyn FnMut(&str)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        found(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), &path, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_entries_are_made_with_their_bytes_modes_links_and_mtimes() {
        use crate::setup::{EntryKind, SETUP_MTIME, SetupEntry};
        use std::os::unix::fs::MetadataExt;
        let entry = |path: &str, kind: EntryKind, mtime: u64| SetupEntry {
            path: path.into(),
            kind,
            mtime,
        };
        let sandbox = Sandbox::create(&[
            entry("repo", EntryKind::Dir { mode: 0o750 }, SETUP_MTIME),
            entry(
                "repo/run.sh",
                EntryKind::File {
                    bytes: b"#!/bin/sh\n".to_vec(),
                    mode: 0o755,
                },
                SETUP_MTIME,
            ),
            entry(
                "repo/HEAD",
                EntryKind::Symlink("run.sh".into()),
                SETUP_MTIME,
            ),
            entry(
                "data.bin",
                EntryKind::File {
                    bytes: vec![0, 255, 7],
                    mode: 0o444,
                },
                1_000_000_000,
            ),
        ])
        .unwrap();
        let root = sandbox.path();
        let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!(fs::read(root.join("data.bin")).unwrap(), [0, 255, 7]);
        assert_eq!(meta("data.bin").mode() & 0o7777, 0o444);
        assert_eq!(meta("data.bin").mtime(), 1_000_000_000);
        assert_eq!(meta("repo/run.sh").mode() & 0o7777, 0o755);
        assert_eq!(meta("repo/run.sh").mtime(), SETUP_MTIME as i64);
        // The directory's time is set after its entries were made in it.
        assert_eq!(meta("repo").mtime(), SETUP_MTIME as i64);
        assert_eq!(meta("repo").mode() & 0o7777, 0o750);
        assert_eq!(
            fs::read_link(root.join("repo/HEAD")).unwrap(),
            Path::new("run.sh")
        );
    }

    #[test]
    fn a_mark_names_its_owner() {
        assert_eq!(
            parse_mark("killpoint 1234 98765\n"),
            Some(Owner {
                pid: 1234,
                start: 98765
            })
        );
        assert_eq!(parse_mark("1234 98765"), None);
        assert_eq!(parse_mark("killpoint 1234"), None);
    }

    #[test]
    fn a_sandbox_is_marked_while_in_use_and_a_kept_one_is_not() {
        let sandbox = Sandbox::create(&[]).unwrap();
        let mark = mark_path(sandbox.path());
        let me = Owner::me();
        assert_eq!(
            fs::read_to_string(&mark).unwrap(),
            format!("killpoint {} {}\n", me.pid, me.start)
        );
        let kept = sandbox.keep();
        assert!(kept.is_dir() && !mark.exists());
        fs::remove_dir(&kept).unwrap();
        let dropped = Sandbox::create(&[]).unwrap();
        let (dir, mark) = (dropped.path().to_path_buf(), mark_path(dropped.path()));
        drop(dropped);
        assert!(!dir.exists() && !mark.exists());
    }
}
