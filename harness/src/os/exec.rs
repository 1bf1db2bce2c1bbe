//! Whether a program can be executed, decided before it is spawned.
//!
//! A traced child that fails its `exec` cannot say so: between `PTRACE_TRACEME` plus the
//! seccomp filter and the tracer's first stop, every trapped call fails with ENOSYS, so
//! the child can neither report the error nor exit, and stops on the signal of its
//! failed abort. Looking first — the PATH, the executable bit, a script's interpreter —
//! turns the usual mistakes into an error that names the program and why, and the
//! tracer's spawn only has to catch what slips past (see `tracer::spawn`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The search path `execvp` uses when `PATH` is unset (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// How many interpreters deep a script may go (the kernel allows a few more; a chain
/// this long is a loop).
const MAX_INTERPRETERS: usize = 4;

/// Why a program cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRunnable {
    /// The program as given.
    pub program: String,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A bare name that no directory of the PATH holds.
    NotOnPath,
    /// A bare name found on the PATH only as files that are not executable.
    OnPathNotExecutable(PathBuf),
    /// A path that does not exist.
    Missing,
    /// A path that is a directory or another non-file.
    NotAFile,
    /// A file without an executable bit (or on a `noexec` mount).
    NotExecutable,
    /// A script whose `#!` names an interpreter that does not exist.
    NoInterpreter(String),
    /// A script whose interpreter exists but cannot be executed.
    InterpreterNotExecutable(String),
    /// A script whose interpreters name each other past [`MAX_INTERPRETERS`].
    InterpreterLoop,
}

impl fmt::Display for NotRunnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = &self.program;
        match &self.why {
            Why::NotOnPath => write!(f, "`{program}`: not found on PATH"),
            Why::OnPathNotExecutable(at) => write!(
                f,
                "`{program}`: not executable (found on PATH at {})",
                at.display()
            ),
            Why::Missing => write!(f, "`{program}`: does not exist"),
            Why::NotAFile => write!(f, "`{program}`: not a file"),
            Why::NotExecutable => write!(f, "`{program}`: not executable"),
            Why::NoInterpreter(i) => {
                write!(f, "`{program}`: its interpreter `{i}` does not exist")
            }
            Why::InterpreterNotExecutable(i) => {
                write!(f, "`{program}`: its interpreter `{i}` is not executable")
            }
            Why::InterpreterLoop => write!(
                f,
                "`{program}`: its `#!` interpreters go more than {MAX_INTERPRETERS} deep"
            ),
        }
    }
}

impl std::error::Error for NotRunnable {}

/// Where `program` would be executed from, as `execvp` in `cwd` with the search path
/// `path` (`None`: unset) finds it, once checked that it can be: a file with an
/// executable bit and, for a script, an interpreter that is one too.
pub fn resolve(program: &OsStr, path: Option<&OsStr>, cwd: &Path) -> Result<PathBuf, NotRunnable> {
    let failed = |why| NotRunnable {
        program: program.to_string_lossy().into_owned(),
        why,
    };
    let found = if program.as_bytes().contains(&b'/') {
        let full = cwd.join(program);
        check_file(&full).map_err(failed)?;
        full
    } else {
        search(program, path, cwd).map_err(failed)?
    };
    check_interpreters(&found, cwd).map_err(failed)?;
    Ok(found)
}

/// Whether `program` (a bare name) is on the search path `path`.
pub fn on_path(program: &str, path: Option<&OsStr>) -> bool {
    search(OsStr::new(program), path, Path::new("/")).is_ok()
}

/// The first executable file named `program` in the directories of `path`.
fn search(program: &OsStr, path: Option<&OsStr>, cwd: &Path) -> Result<PathBuf, Why> {
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        // An empty entry is the working directory, as for `execvp`.
        let dir = if dir.is_empty() {
            cwd.to_path_buf()
        } else {
            cwd.join(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match check_file(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(Why::NotExecutable) => {
                not_executable.get_or_insert(candidate);
            }
            Err(_) => {}
        }
    }
    Err(match not_executable {
        Some(at) => Why::OnPathNotExecutable(at),
        None => Why::NotOnPath,
    })
}

fn check_file(path: &Path) -> Result<(), Why> {
    let meta = fs::metadata(path).map_err(|_| Why::Missing)?;
    if !meta.is_file() {
        return Err(Why::NotAFile);
    }
    executable(path).then_some(()).ok_or(Why::NotExecutable)
}

/// `access(X_OK)`: the mode bits as the kernel reads them for this process (root too
/// needs one executable bit), and a `noexec` mount.
fn executable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// Follows `#!` lines from `script` until a binary, checking each interpreter.
fn check_interpreters(script: &Path, cwd: &Path) -> Result<(), Why> {
    let mut current = script.to_path_buf();
    for _ in 0..MAX_INTERPRETERS {
        let Some(interpreter) = read_head(&current).as_deref().and_then(interpreter) else {
            return Ok(());
        };
        let shown = interpreter.to_string_lossy().into_owned();
        // The kernel takes the interpreter as a path, relative to the working directory.
        let full = cwd.join(&interpreter);
        match check_file(&full) {
            Ok(()) => current = full,
            Err(Why::Missing) => return Err(Why::NoInterpreter(shown)),
            Err(_) => return Err(Why::InterpreterNotExecutable(shown)),
        }
    }
    Err(Why::InterpreterLoop)
}

/// The first bytes of a file, where a `#!` line would be (the kernel reads 256).
fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    fs::File::open(path)
        .ok()?
        .take(256)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// The interpreter a script's first line names: `#!` then optional blanks, the path up
/// to the next blank or the end of the line. `None`: not a script, or no path named.
pub fn interpreter(head: &[u8]) -> Option<OsString> {
    let line = head.strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next().unwrap_or(line);
    let path = line
        .split(|&b| b == b' ' || b == b'\t')
        .find(|word| !word.is_empty())?;
    Some(OsStr::from_bytes(path).to_os_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn why(program: &str, path: Option<&str>, cwd: &Path) -> String {
        resolve(OsStr::new(program), path.map(OsStr::new), cwd)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_interpreter_is_the_first_word_after_the_hash_bang() {
        let i = |head: &[u8]| interpreter(head).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(i(b"#!/bin/sh\necho"), Some("/bin/sh".into()));
        assert_eq!(
            i(b"#! /usr/bin/env python3 -u\n"),
            Some("/usr/bin/env".into())
        );
        assert_eq!(i(b"#!\t/bin/bash"), Some("/bin/bash".into()));
        assert_eq!(i(b"#!\n"), None);
        assert_eq!(i(b"\x7fELF"), None);
        assert_eq!(i(b"echo hi"), None);
    }

    #[test]
    fn a_bare_name_is_looked_up_on_the_path_given() {
        let dir = tempfile::tempdir().unwrap();
        let tool = file(dir.path(), "tool", "#!/bin/sh\n", 0o755);
        let path = format!("/nonexistent:{}", dir.path().display());
        let found = resolve(OsStr::new("tool"), Some(OsStr::new(&path)), Path::new("/"));
        assert_eq!(found, Ok(tool));
        assert_eq!(
            why("no-such-program", Some(&path), Path::new("/")),
            "`no-such-program`: not found on PATH"
        );
        assert!(on_path("sh", None));
        assert!(!on_path("tool", None));
    }

    #[test]
    fn a_file_without_an_executable_bit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        file(dir.path(), "x.sh", "#!/bin/sh\n", 0o644);
        assert_eq!(why("./x.sh", None, dir.path()), "`./x.sh`: not executable");
        let path = dir.path().display().to_string();
        assert_eq!(
            why("x.sh", Some(&path), Path::new("/")),
            format!("`x.sh`: not executable (found on PATH at {path}/x.sh)")
        );
        assert_eq!(why("./nope", None, dir.path()), "`./nope`: does not exist");
        assert_eq!(why("/tmp", None, dir.path()), "`/tmp`: not a file");
    }

    #[test]
    fn a_script_needs_an_interpreter_that_exists_and_is_executable() {
        let dir = tempfile::tempdir().unwrap();
        file(dir.path(), "x.sh", "#!/no/such\necho\n", 0o755);
        assert_eq!(
            why("./x.sh", None, dir.path()),
            "`./x.sh`: its interpreter `/no/such` does not exist"
        );
        let plain = file(dir.path(), "plain", "", 0o644);
        file(
            dir.path(),
            "y.sh",
            &format!("#!{}\n", plain.display()),
            0o755,
        );
        assert_eq!(
            why("./y.sh", None, dir.path()),
            format!(
                "`./y.sh`: its interpreter `{}` is not executable",
                plain.display()
            )
        );
        // A script may name another script as its interpreter, down to a binary.
        let inner = file(dir.path(), "inner", "#!/bin/sh\n", 0o755);
        let outer = file(
            dir.path(),
            "outer",
            &format!("#!{}\n", inner.display()),
            0o755,
        );
        assert!(resolve(outer.as_os_str(), None, dir.path()).is_ok());
        let looped = dir.path().join("loop");
        file(
            dir.path(),
            "loop",
            &format!("#!{}\n", looped.display()),
            0o755,
        );
        assert_eq!(
            why("./loop", None, dir.path()),
            "`./loop`: its `#!` interpreters go more than 4 deep"
        );
    }
}
