//! Reading a stopped task: its `waitpid` status, and the paths and details of the call
//! it is stopped at, from its registers' arguments, its memory and `/proc`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use super::serve::Tracer;
use crate::syscalls::{Call, SyscallClass};
use crate::values::Signal;

/// A decoded `waitpid` status.
pub(super) enum Stop {
    Exited(ExitStatusRaw),
    Event(i32),
    /// A syscall-entry or -exit stop (PTRACE_SYSCALL).
    Syscall,
    Signal(i32),
}

pub(super) enum ExitStatusRaw {
    Code(i32),
    Signal(i32),
}

impl Tracer {
    /// The paths and details of a call, read from the stopped task.
    pub(super) fn decode(&self, tid: i32, class: SyscallClass, name: &str, a: &[u64; 6]) -> Call {
        let fd = |i: usize| self.fd_path(tid, a[i] as i32);
        let at = |dirfd: usize, path: usize| self.path_arg(tid, Some(a[dirfd] as i32), a[path]);
        let plain = |path: usize| self.path_arg(tid, None, a[path]);
        let raw = |text: usize| {
            read_string(tid, a[text])
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_else(|| "<unreadable path>".into())
        };
        let (paths, detail) = match (class, name) {
            (SyscallClass::Write, "write") => (vec![fd(0)], bytes(a[2])),
            (SyscallClass::Write, "pwrite64") => {
                (vec![fd(0)], format!("{} at offset {}", bytes(a[2]), a[3]))
            }
            (SyscallClass::Write, "writev") => (vec![fd(0)], iov_bytes(tid, a[1], a[2])),
            (SyscallClass::Write, _) => (
                vec![fd(0)],
                format!("{} at offset {}", iov_bytes(tid, a[1], a[2]), a[3]),
            ),
            (SyscallClass::Fsync, "sync") => (vec![], String::new()),
            (SyscallClass::Fsync, _) => (vec![fd(0)], String::new()),
            (SyscallClass::Rename, "rename") => (vec![plain(0), plain(1)], String::new()),
            (SyscallClass::Rename, _) => (vec![at(0, 1), at(2, 3)], String::new()),
            (SyscallClass::Open, "open") => (vec![plain(0)], open_flags(a[1])),
            (SyscallClass::Open, "creat") => (
                vec![plain(0)],
                open_flags((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64),
            ),
            (SyscallClass::Open, "openat") => (vec![at(0, 1)], open_flags(a[2])),
            (SyscallClass::Open, _) => (
                vec![at(0, 1)],
                read_u64(tid, a[2]).map(open_flags).unwrap_or_default(),
            ),
            (SyscallClass::Close, _) => (vec![fd(0)], String::new()),
            (SyscallClass::Unlink, "unlink") => (vec![plain(0)], String::new()),
            (SyscallClass::Unlink, "rmdir") => (vec![plain(0)], "directory".into()),
            (SyscallClass::Unlink, _) => (
                vec![at(0, 1)],
                if a[2] as i32 & libc::AT_REMOVEDIR != 0 {
                    "directory".into()
                } else {
                    String::new()
                },
            ),
            (SyscallClass::Truncate, "truncate") => (vec![plain(0)], format!("to {}", bytes(a[1]))),
            (SyscallClass::Truncate, _) => (vec![fd(0)], format!("to {}", bytes(a[1]))),
            (SyscallClass::Fork, "clone") => (vec![], clone_kind(a[0])),
            (SyscallClass::Fork, "clone3") => (
                vec![],
                read_u64(tid, a[0]).map(clone_kind).unwrap_or_default(),
            ),
            (SyscallClass::Fork, _) => (vec![], "process".into()),
            (SyscallClass::Sigaction, _) => (vec![], sigaction_detail(tid, a)),
            (SyscallClass::Exit, _) => (vec![], format!("status {}", a[0] as i32)),
            // From → to, as a rename reads: the source file, then the destination.
            (SyscallClass::Copy, "sendfile") => (vec![fd(1), fd(0)], bytes(a[3])),
            (SyscallClass::Copy, _) => (vec![fd(0), fd(2)], bytes(a[4])),
            // A symlink's target is text, not a path the call opens: shown as written.
            (SyscallClass::Link, "link") => (vec![plain(0), plain(1)], String::new()),
            (SyscallClass::Link, "linkat") => (vec![at(0, 1), at(2, 3)], String::new()),
            (SyscallClass::Link, "symlink") => (vec![raw(0), plain(1)], "symbolic".into()),
            (SyscallClass::Link, _) => (vec![raw(0), at(1, 2)], "symbolic".into()),
            (SyscallClass::Mkdir, "mkdir") => (vec![plain(0)], format!("mode {:o}", a[1])),
            (SyscallClass::Mkdir, _) => (vec![at(0, 1)], format!("mode {:o}", a[2])),
            // The listening socket has no path; its descriptor is the detail.
            (SyscallClass::Accept, _) => (vec![], format!("listening fd {}", a[0] as i32)),
        };
        Call {
            class,
            name: name.to_string(),
            fd: fd_arg(class, name).then_some(a[0] as i32),
            paths,
            detail,
            result: None,
            restarted: false,
        }
    }

    /// The file behind a descriptor of `tid` (threads may have their own fd table).
    fn fd_path(&self, tid: i32, fd: i32) -> String {
        match std::fs::read_link(format!("/proc/{tid}/fd/{fd}")) {
            Ok(target) if target.is_absolute() => self.show(&target),
            // Not a file: a pipe, socket, … Standard streams get their names, which stay
            // the same from run to run where a pipe's inode number does not.
            Ok(target) => match fd {
                1 => "<stdout>".into(),
                2 => "<stderr>".into(),
                _ => target.to_string_lossy().into_owned(),
            },
            Err(_) => format!("<fd {fd}>"),
        }
    }

    /// A path argument, resolved against `dirfd` (or the cwd) and normalized.
    fn path_arg(&self, tid: i32, dirfd: Option<i32>, addr: u64) -> String {
        let Some(path) = read_string(tid, addr) else {
            return "<unreadable path>".into();
        };
        let path = PathBuf::from(OsString::from_vec(path));
        match absolute(tid, dirfd, &path) {
            Some(abs) => self.show(&abs),
            None => path.to_string_lossy().into_owned(),
        }
    }

    /// A path as reports show it: relative inside the root, absolute outside it.
    fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            Ok(_) => ".".into(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// A path argument of `tid`'s call read from its memory, resolved against `dirfd` (or its
/// cwd) and normalized lexically.
pub(super) fn path_at(tid: i32, dirfd: Option<i32>, addr: u64) -> Option<PathBuf> {
    let path = PathBuf::from(OsString::from_vec(read_string(tid, addr)?));
    absolute(tid, dirfd, &path)
}

fn absolute(tid: i32, dirfd: Option<i32>, path: &Path) -> Option<PathBuf> {
    if path.is_absolute() {
        return Some(normalize(path));
    }
    let base = match dirfd {
        Some(fd) if fd != libc::AT_FDCWD => std::fs::read_link(format!("/proc/{tid}/fd/{fd}")),
        _ => std::fs::read_link(format!("/proc/{tid}/cwd")),
    };
    base.ok().map(|base| normalize(&base.join(path)))
}

/// A NUL-terminated string of `tid`'s memory, as text (a symlink's target).
pub(super) fn string_at(tid: i32, addr: u64) -> Option<String> {
    read_string(tid, addr).map(|t| String::from_utf8_lossy(&t).into_owned())
}

/// `len` bytes of `tid`'s memory at `addr`, or `None` if they cannot all be read.
pub(super) fn bytes_at(tid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = read_memory(tid, addr as usize + done, &mut buf[done..])?;
        if n == 0 {
            return None;
        }
        done += n;
    }
    Some(buf)
}

/// The first `len` bytes an iovec array of `tid` (`count` entries at `addr`) points to.
pub(super) fn iov_bytes_at(tid: i32, addr: u64, count: u64, len: usize) -> Option<Vec<u8>> {
    let count = count.min(1024) as usize;
    let raw = bytes_at(tid, addr, count * 16)?;
    let mut out = Vec::with_capacity(len);
    for iov in raw.chunks(16) {
        if out.len() >= len {
            break;
        }
        let base = u64::from_ne_bytes(iov[..8].try_into().expect("8 bytes"));
        let size = u64::from_ne_bytes(iov[8..].try_into().expect("8 bytes")) as usize;
        let take = size.min(len - out.len());
        out.extend(bytes_at(tid, base, take)?);
    }
    (out.len() == len).then_some(out)
}

/// A u64 of `tid`'s memory (an offset a call updated).
pub(super) fn u64_at(tid: i32, addr: u64) -> Option<u64> {
    read_u64(tid, addr)
}

/// Whether the call's first argument is a file descriptor.
fn fd_arg(class: SyscallClass, name: &str) -> bool {
    match class {
        SyscallClass::Fsync => name != "sync",
        SyscallClass::Write | SyscallClass::Close | SyscallClass::Copy => true,
        SyscallClass::Truncate => name == "ftruncate",
        _ => false,
    }
}

pub(super) fn decode_status(raw: i32) -> Stop {
    if libc::WIFEXITED(raw) {
        Stop::Exited(ExitStatusRaw::Code(libc::WEXITSTATUS(raw)))
    } else if libc::WIFSIGNALED(raw) {
        Stop::Exited(ExitStatusRaw::Signal(libc::WTERMSIG(raw)))
    } else {
        let signal = libc::WSTOPSIG(raw);
        let event = (raw >> 16) & 0xff;
        if signal == libc::SIGTRAP | 0x80 {
            Stop::Syscall
        } else if event != 0 {
            Stop::Event(event)
        } else {
            Stop::Signal(signal)
        }
    }
}

/// The name of the program a process runs, read just after its exec: the file name the
/// exec named (`AT_EXECFN` in its auxiliary vector), without its directory. That is the
/// name the kernel gives the process (`comm`) before cutting it to 15 bytes, and neither
/// a symlink's target (`sh`, not `dash`) nor the interpreter of a `#!` script. `comm`
/// stands in when the vector cannot be read.
pub(super) fn program_name(pid: i32) -> String {
    const AT_EXECFN: u64 = 31;
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap_or_default();
    let execfn = auxv
        .chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|(key, _)| *key == AT_EXECFN)
        .and_then(|(_, addr)| read_string(pid, addr));
    match execfn {
        Some(path) if !path.is_empty() => {
            let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
            String::from_utf8_lossy(name).into_owned()
        }
        _ => std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end_matches('\n').to_string())
            .unwrap_or_default(),
    }
}

/// Reads a NUL-terminated string from the task's memory (at most 4 KiB).
fn read_string(tid: i32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr as usize;
    while out.len() < 4096 {
        // Never cross a page in one read: the next page may be unmapped.
        let len = (4096 - at % 4096).min(256);
        let mut buf = [0u8; 256];
        let n = read_memory(tid, at, &mut buf[..len])?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n;
    }
    Some(out)
}

fn read_memory(tid: i32, addr: usize, buf: &mut [u8]) -> Option<usize> {
    let len = buf.len();
    process_vm_readv(
        Pid::from_raw(tid),
        &mut [io::IoSliceMut::new(buf)],
        &[RemoteIoVec { base: addr, len }],
    )
    .ok()
}

fn read_u64(tid: i32, addr: u64) -> Option<u64> {
    if addr == 0 {
        return None;
    }
    let mut buf = [0u8; 8];
    (read_memory(tid, addr as usize, &mut buf)? == 8).then(|| u64::from_ne_bytes(buf))
}

/// Whether an rt_sigaction call installs a handler (not SIG_DFL or SIG_IGN), and for which
/// signal.
pub(super) fn installs_handler(tid: i32, a: &[u64; 6]) -> Option<Signal> {
    let handler = read_u64(tid, a[1])?; // `sa_handler` leads `struct sigaction`
    (handler > 1)
        .then(|| Signal::from_number(a[0] as i32))
        .flatten()
}

fn sigaction_detail(tid: i32, a: &[u64; 6]) -> String {
    let signal = Signal::from_number(a[0] as i32)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("signal {}", a[0]));
    let action = match (a[1], read_u64(tid, a[1])) {
        (0, _) => "query",
        (_, Some(0)) => "default",
        (_, Some(1)) => "ignore",
        (_, Some(_)) => "handler",
        (_, None) => "?",
    };
    format!("{signal} → {action}")
}

fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// The total size of an iovec array in the task's memory.
fn iov_bytes(tid: i32, addr: u64, count: u64) -> String {
    let count = count.min(64) as usize;
    let mut buf = vec![0u8; count * 16];
    match read_memory(tid, addr as usize, &mut buf) {
        Some(n) if n == buf.len() => {
            let total: u64 = buf
                .chunks(16)
                .map(|iov| u64::from_ne_bytes(iov[8..16].try_into().unwrap()))
                .sum();
            bytes(total)
        }
        _ => format!("{count} buffers"),
    }
}

/// Adds the file offset a plain `write` or `writev` writes at (from `/proc/TID/fdinfo`;
/// after the call, the position has moved past what it wrote).
pub(super) fn add_offset(tid: i32, call: &mut Call) {
    if call.name != "write" && call.name != "writev" {
        return;
    }
    let Some(fd) = call.fd else { return };
    let Some(pos) = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|p| p.trim().parse::<i64>().ok())
        })
    else {
        return;
    };
    let offset = pos - call.result.filter(|&r| r > 0).unwrap_or(0);
    if offset < 0 {
        return; // not a seekable file (a pipe's "position" counts what went through)
    }
    call.detail = format!("{} at offset {offset}", call.detail);
}

fn open_flags(flags: u64) -> String {
    let flags = flags as i32;
    let mut names = vec![match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    }];
    for (bit, name) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_TMPFILE & !libc::O_DIRECTORY, "O_TMPFILE"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    names.join("|")
}

fn clone_kind(flags: u64) -> String {
    let flags = flags as i32;
    if flags & libc::CLONE_THREAD != 0 {
        "thread".into()
    } else if flags & libc::CLONE_VFORK != 0 {
        "vfork".into()
    } else {
        "process".into()
    }
}

/// Removes `.` and resolves `..` lexically (the file may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(
            normalize(Path::new("/tmp/x/./a/../out.json")),
            PathBuf::from("/tmp/x/out.json")
        );
    }

    #[test]
    fn open_flags_read_as_names() {
        let flags = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64;
        assert_eq!(open_flags(flags), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0), "O_RDONLY");
    }

    #[test]
    fn wait_statuses_decode() {
        // Layouts from <sys/wait.h>: exit code in bits 8..16; a stop is 0x7f with the
        // signal above it and a ptrace event above that.
        assert!(matches!(
            decode_status(3 << 8),
            Stop::Exited(ExitStatusRaw::Code(3))
        ));
        assert!(matches!(
            decode_status(libc::SIGKILL),
            Stop::Exited(ExitStatusRaw::Signal(9))
        ));
        assert!(matches!(
            decode_status(((libc::SIGTRAP | 0x80) << 8) | 0x7f),
            Stop::Syscall
        ));
        assert!(matches!(
            decode_status((libc::PTRACE_EVENT_SECCOMP << 16) | (libc::SIGTRAP << 8) | 0x7f),
            Stop::Event(libc::PTRACE_EVENT_SECCOMP)
        ));
        assert!(matches!(
            decode_status((libc::SIGTERM << 8) | 0x7f),
            Stop::Signal(15)
        ));
    }
}
