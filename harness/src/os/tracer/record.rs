//! The write log of a power-loss case: while a power strike is armed, every mutating call
//! of the tree on the sandbox — the write family with its offset and bytes, truncate, open
//! that creates or truncates, rename, link, symlink, unlink, mkdir, the sync family — is
//! recorded in order as a [`crate::power::Op`], beside a snapshot of the sandbox taken at
//! spawn. `power.rs` computes the crash states from the two.
//!
//! ```text
//!  entry stop   remember the call: its paths resolved now (they may not exist after),
//!               whether the file it opens with O_CREAT was there
//!  exit stop    it succeeded: turn it into operations on nodes; a write's bytes are read
//!               from the tracee's buffer (process_vm_readv), a copy's from the file
//! ```
//!
//! Files are known by node: a number the recorder gives each file and directory, found
//! again from its inode (device and number, through `/proc/TID/fd/N` or the path). A file
//! created under an inode number the file system had freed is a new node. Only the sandbox
//! is recorded: calls on other files are left out, and a rename into or out of it is
//! noted as a warning (the model does not follow files across its edge).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::decode::{bytes_at, iov_bytes_at, path_at, string_at, u64_at};
use crate::power::{Content, Kind, Node, Op, ROOT, Tree};
use crate::syscalls::SyscallClass;

/// The largest file the snapshot at spawn reads whole; a larger one is noted and kept
/// empty in the model.
const SNAPSHOT_FILE_CAP: u64 = 256 * 1024 * 1024;

/// What the recorder saw of a run: the sandbox at spawn, the operations in order, the
/// names of each node (the first path it had, and the last), and what the model could
/// not follow.
#[derive(Debug, Clone, Default)]
pub struct WriteLog {
    pub initial: Tree,
    pub ops: Vec<Op>,
    pub names: crate::power::Names,
    pub warnings: Vec<String>,
}

/// A call seen at its entry, waiting for its exit.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    class: SyscallClass,
    name: &'static str,
    args: [u64; 6],
    /// Its path arguments, absolute.
    paths: Vec<PathBuf>,
    /// For an open: whether the file was there before the call.
    existed: bool,
}

pub(super) struct Recorder {
    root: PathBuf,
    log: WriteLog,
    nodes: HashMap<(u64, u64), Node>,
    next: Node,
}

impl Recorder {
    /// A recorder for the sandbox at `root`, its snapshot taken now (before the target
    /// runs).
    pub(super) fn new(root: &Path) -> Recorder {
        let mut recorder = Recorder {
            root: root.to_path_buf(),
            log: WriteLog {
                initial: Tree::empty(),
                ..WriteLog::default()
            },
            nodes: HashMap::new(),
            next: ROOT + 1,
        };
        if let Ok(meta) = fs::symlink_metadata(root) {
            recorder.nodes.insert((meta.dev(), meta.ino()), ROOT);
        }
        recorder.name(ROOT, String::new());
        recorder.snapshot(root, ROOT, "");
        recorder
    }

    fn snapshot(&mut self, dir: &Path, node: Node, prefix: &str) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut listing = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let child = self.fresh(&meta);
            let shown = format!("{prefix}{name}");
            self.name(child, shown.clone());
            let content = if meta.is_dir() {
                self.snapshot(&path, child, &format!("{shown}/"));
                None
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap_or_default();
                Some(Content::Symlink(target.to_string_lossy().into_owned()))
            } else if meta.len() > SNAPSHOT_FILE_CAP {
                self.log.warnings.push(format!(
                    "{shown} ({} bytes) is larger than the snapshot takes: its content before the run is not modelled",
                    meta.len()
                ));
                Some(Content::File(Vec::new()))
            } else {
                Some(Content::File(fs::read(&path).unwrap_or_default()))
            };
            if let Some(content) = content {
                self.log.initial.nodes.insert(child, content);
            }
            listing.insert(name, child);
        }
        self.log.initial.nodes.insert(node, Content::Dir(listing));
    }

    /// Notes a path `node` has (its first one stays its name; a later one is where it is
    /// now).
    fn name(&mut self, node: Node, path: String) {
        match self.log.names.first.get(&node) {
            None => {
                self.log.names.first.insert(node, path);
            }
            Some(first) if *first != path => {
                self.log.names.last.insert(node, path);
            }
            Some(_) => {
                self.log.names.last.remove(&node);
            }
        }
    }

    /// A new node for this inode (a new file, or an inode number come back).
    fn fresh(&mut self, meta: &fs::Metadata) -> Node {
        let node = self.next;
        self.next += 1;
        self.nodes.insert((meta.dev(), meta.ino()), node);
        node
    }

    /// The node of an existing inode (a new one if it was never seen: a file the model
    /// did not see made, whose writes then reach no name).
    fn node(&mut self, meta: &fs::Metadata) -> Node {
        match self.nodes.get(&(meta.dev(), meta.ino())) {
            Some(&node) => node,
            None => self.fresh(meta),
        }
    }

    /// Whether `path` is inside the sandbox (the root itself included).
    fn inside(&self, path: &Path) -> bool {
        path.starts_with(&self.root)
    }

    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string_lossy().into_owned())
    }

    /// The node of the directory holding `path`, and the entry's name.
    fn entry(&mut self, path: &Path) -> Option<(Node, String)> {
        let parent = path.parent()?;
        if !self.inside(parent) {
            return None;
        }
        let meta = fs::metadata(parent).ok()?;
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some((self.node(&meta), name))
    }

    /// The regular file or directory behind `tid`'s descriptor, if inside the sandbox.
    fn fd_node(&mut self, tid: i32, fd: u64) -> Option<Node> {
        let link = format!("/proc/{tid}/fd/{}", fd as i32);
        let target = fs::read_link(&link).ok()?;
        if !self.inside(&target) {
            return None;
        }
        let meta = fs::metadata(&link).ok()?;
        (meta.is_file() || meta.is_dir()).then(|| {
            let node = self.node(&meta);
            let shown = self.shown(&target);
            self.name(node, shown);
            node
        })
    }

    /// What to remember of a call at its entry; `None` for a call the log does not need.
    pub(super) fn enter(
        &self,
        tid: i32,
        class: SyscallClass,
        name: &'static str,
        args: &[u64; 6],
    ) -> Option<Pending> {
        let a = args;
        let at = |dirfd: usize, path: usize| path_at(tid, Some(a[dirfd] as i32), a[path]);
        let plain = |path: usize| path_at(tid, None, a[path]);
        let paths: Vec<Option<PathBuf>> = match (class, name) {
            (SyscallClass::Write | SyscallClass::Fsync | SyscallClass::Copy, _) => vec![],
            (SyscallClass::Truncate, "truncate") => vec![plain(0)],
            (SyscallClass::Truncate, _) => vec![],
            (SyscallClass::Open, "open" | "creat") => vec![plain(0)],
            (SyscallClass::Open, _) => vec![at(0, 1)],
            (SyscallClass::Rename, "rename") => vec![plain(0), plain(1)],
            (SyscallClass::Rename, _) => vec![at(0, 1), at(2, 3)],
            (SyscallClass::Unlink, "unlink" | "rmdir") => vec![plain(0)],
            (SyscallClass::Unlink, _) => vec![at(0, 1)],
            (SyscallClass::Link, "link") => vec![plain(0), plain(1)],
            (SyscallClass::Link, "linkat") => vec![at(0, 1), at(2, 3)],
            (SyscallClass::Link, "symlink") => vec![plain(1)],
            (SyscallClass::Link, _) => vec![at(1, 2)],
            (SyscallClass::Mkdir, "mkdir") => vec![plain(0)],
            (SyscallClass::Mkdir, _) => vec![at(0, 1)],
            _ => return None,
        };
        let paths: Vec<PathBuf> = paths.into_iter().collect::<Option<_>>()?;
        // Only calls that may touch the sandbox: fd calls are checked at their exit.
        if !paths.is_empty() && !paths.iter().any(|p| self.inside(p)) {
            return None;
        }
        let existed = class == SyscallClass::Open
            && paths
                .first()
                .is_some_and(|p| fs::symlink_metadata(p).is_ok());
        Some(Pending {
            class,
            name,
            args: *args,
            paths,
            existed,
        })
    }

    /// A call that returned `result`: what it did, into the log.
    pub(super) fn exit(&mut self, tid: i32, call: Pending, result: i64) {
        if result < 0 {
            return;
        }
        let a = call.args;
        match (call.class, call.name) {
            (SyscallClass::Write, name) => self.write(tid, name, &a, result as u64),
            (SyscallClass::Copy, name) => self.copy(tid, name, &a, result as u64),
            (SyscallClass::Fsync, "sync" | "syncfs") => self.log.ops.push(Op::SyncAll),
            (SyscallClass::Fsync, "sync_file_range") => {}
            (SyscallClass::Fsync, _) => {
                if let Some(node) = self.fd_node(tid, a[0]) {
                    self.log.ops.push(Op::Sync { node });
                }
            }
            (SyscallClass::Truncate, "truncate") => {
                let node = fs::metadata(&call.paths[0]).ok().map(|m| self.node(&m));
                if let Some(node) = node {
                    self.log.ops.push(Op::Truncate { node, len: a[1] });
                }
            }
            (SyscallClass::Truncate, _) => {
                if let Some(node) = self.fd_node(tid, a[0]) {
                    self.log.ops.push(Op::Truncate { node, len: a[1] });
                }
            }
            (SyscallClass::Open, name) => self.open(tid, name, &call, result),
            (SyscallClass::Rename, name) => {
                let flags = if name == "renameat2" { a[4] } else { 0 };
                self.rename(&call.paths[0], &call.paths[1], flags);
            }
            (SyscallClass::Unlink, _) => {
                if let Some((parent, name)) = self.entry(&call.paths[0]) {
                    self.log.ops.push(Op::Remove { parent, name });
                }
            }
            (SyscallClass::Link, "link" | "linkat") => {
                let meta = fs::symlink_metadata(&call.paths[1]).ok();
                if let (Some(meta), Some((parent, name))) = (meta, self.entry(&call.paths[1])) {
                    let node = self.node(&meta);
                    self.log.ops.push(Op::Link { parent, name, node });
                }
            }
            (SyscallClass::Link, _) => {
                let target = string_at(tid, a[0]).unwrap_or_default();
                self.create(&call.paths[0], Kind::Symlink(target));
            }
            (SyscallClass::Mkdir, _) => self.create(&call.paths[0], Kind::Dir),
            _ => {}
        }
    }

    /// A new entry at `path`, of a new node.
    fn create(&mut self, path: &Path, kind: Kind) {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        let Some((parent, name)) = self.entry(path) else {
            return;
        };
        let node = self.fresh(&meta);
        self.name(node, self.shown(path));
        self.log.ops.push(Op::Create {
            parent,
            name,
            node,
            kind,
        });
    }

    fn open(&mut self, tid: i32, name: &str, call: &Pending, fd: i64) {
        let a = call.args;
        let flags = match name {
            "open" => a[1],
            "creat" => (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            "openat" => a[2],
            _ => u64_at(tid, a[2]).unwrap_or(0), // openat2: `struct open_how` leads with flags
        } as i32;
        let path = &call.paths[0];
        if !self.inside(path) {
            return;
        }
        if flags & libc::O_TMPFILE == libc::O_TMPFILE {
            self.log.warnings.push(format!(
                "an O_TMPFILE file in {} is not modelled",
                self.shown(path)
            ));
            return;
        }
        if flags & libc::O_CREAT != 0 && !call.existed {
            self.create(path, Kind::File);
            return;
        }
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if flags & libc::O_TRUNC != 0
            && writes
            && let Some(node) = self.fd_node(tid, fd as u64)
        {
            self.log.ops.push(Op::Truncate { node, len: 0 });
        }
    }

    fn rename(&mut self, from: &Path, to: &Path, flags: u64) {
        const RENAME_EXCHANGE: u64 = 2;
        let (inside_from, inside_to) = (self.inside(from), self.inside(to));
        if !inside_from && !inside_to {
            return;
        }
        if flags & RENAME_EXCHANGE != 0 || inside_from != inside_to {
            self.log.warnings.push(format!(
                "rename of {} → {} is not modelled ({})",
                self.shown(from),
                self.shown(to),
                if flags & RENAME_EXCHANGE != 0 {
                    "an exchange"
                } else {
                    "across the sandbox's edge"
                }
            ));
            return;
        }
        let (Some(from_entry), Some(to_entry)) = (self.entry(from), self.entry(to)) else {
            return;
        };
        if let Ok(meta) = fs::symlink_metadata(to) {
            let node = self.node(&meta);
            self.name(node, self.shown(to));
        }
        self.log.ops.push(Op::Rename {
            from: from_entry,
            to: to_entry,
        });
    }

    /// A write of `n` bytes: its offset and bytes, and a sync after it through an
    /// `O_SYNC`/`O_DSYNC` descriptor.
    fn write(&mut self, tid: i32, name: &str, a: &[u64; 6], n: u64) {
        if n == 0 {
            return;
        }
        let Some(node) = self.fd_node(tid, a[0]) else {
            return;
        };
        let info = FdInfo::read(tid, a[0]);
        let positioned =
            matches!(name, "pwrite64" | "pwritev") || (name == "pwritev2" && a[3] as i64 != -1);
        let offset = if positioned {
            a[3]
        } else {
            match info.as_ref().map(|i| i.pos) {
                Some(pos) => pos.saturating_sub(n),
                None => return self.unreadable(node, "its offset"),
            }
        };
        let bytes = match name {
            "write" | "pwrite64" => bytes_at(tid, a[1], n as usize),
            _ => iov_bytes_at(tid, a[1], a[2], n as usize),
        };
        let Some(bytes) = bytes else {
            return self.unreadable(node, "its bytes");
        };
        self.push_write(node, offset, bytes, info.is_some_and(|i| i.synchronous));
    }

    /// Data moved into a file without a write (`copy_file_range`, `sendfile`, `splice`):
    /// its bytes are read back from the file, where they now are.
    fn copy(&mut self, tid: i32, name: &str, a: &[u64; 6], n: u64) {
        if n == 0 {
            return;
        }
        let (out_fd, out_offset) = match name {
            "sendfile" => (a[0], 0),
            _ => (a[2], a[3]),
        };
        let Some(node) = self.fd_node(tid, out_fd) else {
            return;
        };
        let info = FdInfo::read(tid, out_fd);
        // A given offset is moved on by the call; else the descriptor's position is.
        let end = match out_offset {
            0 => info.as_ref().map(|i| i.pos),
            ptr => u64_at(tid, ptr),
        };
        let Some(offset) = end.map(|e| e.saturating_sub(n)) else {
            return self.unreadable(node, "its offset");
        };
        let mut bytes = vec![0u8; n as usize];
        let read = fs::File::open(format!("/proc/{tid}/fd/{}", out_fd as i32))
            .and_then(|f| f.read_exact_at(&mut bytes, offset));
        if read.is_err() {
            return self.unreadable(node, "its bytes");
        }
        self.push_write(node, offset, bytes, info.is_some_and(|i| i.synchronous));
    }

    /// A write into the log, and the sync an `O_SYNC`/`O_DSYNC` descriptor makes of it.
    fn push_write(&mut self, node: Node, offset: u64, bytes: Vec<u8>, synchronous: bool) {
        self.log.ops.push(Op::Write {
            node,
            offset,
            bytes,
        });
        if synchronous {
            self.log.ops.push(Op::Sync { node });
        }
    }

    fn unreadable(&mut self, node: Node, what: &str) {
        let name = self.log.names.of(node);
        self.log
            .warnings
            .push(format!("a write to {name}: {what} could not be read"));
    }

    pub(super) fn finish(self) -> WriteLog {
        self.log
    }
}

/// What `/proc/TID/fdinfo/FD` says of a descriptor.
struct FdInfo {
    pos: u64,
    /// Opened `O_SYNC` or `O_DSYNC`: each write is durable when it returns.
    synchronous: bool,
}

impl FdInfo {
    fn read(tid: i32, fd: u64) -> Option<FdInfo> {
        let text = fs::read_to_string(format!("/proc/{tid}/fdinfo/{}", fd as i32)).ok()?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        let pos = field("pos:")?.parse().ok()?;
        let flags = i32::from_str_radix(&field("flags:")?, 8).ok()?;
        Some(FdInfo {
            pos,
            synchronous: flags & (libc::O_SYNC | libc::O_DSYNC) != 0,
        })
    }
}
