//! Power loss: what a file system may hold after the machine lost power, computed from the
//! tree's mutating calls in order (the write log) and the sandbox as it was at spawn.
//!
//! # The persistence model
//!
//! After a SIGKILL the page cache still holds every `write()`; after a power failure only
//! what was made durable is there. killpoint assumes the least a POSIX file system
//! promises, the model LazyFS emulates and ALICE's default:
//!
//! - data written to a file (the write family, truncate) since the file's last `fsync` or
//!   `fdatasync` may be lost; a write through a descriptor opened `O_SYNC` or `O_DSYNC`
//!   is durable when the call returns;
//! - a directory entry created, renamed, linked or removed since the last `fsync` of its
//!   directory may be lost (a rename touches two directories: it is durable once both
//!   have been synced after it, and is lost or kept whole);
//! - `sync` and `syncfs` make everything durable; `sync_file_range` makes nothing durable
//!   (it promises nothing about metadata, nor that the data reached the disk).
//!
//! Real file systems are often kinder: ext4 with `data=ordered` writes a file's data
//! before the rename that replaces another file commits (`auto_da_alloc`), and most file
//! systems persist a new file's entry with the file's own `fsync`. The model deliberately
//! does not count on either: a program that does is correct on one file system and
//! configuration, not by what it asked for. Writes through a shared `mmap` and `io_uring`
//! are outside the model (the tracer does not see them): a run that makes them is warned
//! about, not passed in silence.
//!
//! # Crash states
//!
//! An operation is *durable* when a later sync covers it, *pending* otherwise. From one
//! moment of power loss the model gives several states ([`CrashState`]):
//!
//! - `lose-all`: every pending operation lost;
//! - `prefix(k)`: the first `k` pending operations kept, in program order (a file system
//!   that writes back in order and was interrupted);
//! - `torn`: the pending operations before the last pending write kept, and that write cut
//!   at the first page boundary it crosses.
//!
//! [`crash_state`] is a pure function of the sandbox at spawn ([`Tree`]) and the log
//! ([`Op`]); the OS layer records one and writes the other back to the sandbox.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A file or directory as the log knows it: numbered by the recorder, so that an inode
/// number the file system reuses for a new file is a new node.
pub type Node = u32;

/// The sandbox's root directory: node 0.
pub const ROOT: Node = 0;

/// The page size a torn write is cut at.
pub const PAGE: u64 = 4096;

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    File(Vec<u8>),
    Dir(BTreeMap<String, Node>),
    Symlink(String),
}

/// The sandbox's files and directories: every node, the root among them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: BTreeMap<Node, Content>,
}

impl Tree {
    /// An empty root directory.
    pub fn empty() -> Tree {
        Tree {
            nodes: BTreeMap::from([(ROOT, Content::Dir(BTreeMap::new()))]),
        }
    }

    /// The node at a slash-separated path from the root (`""` is the root).
    pub fn lookup(&self, path: &str) -> Option<Node> {
        let mut node = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match self.nodes.get(&node)? {
                Content::Dir(entries) => node = *entries.get(part)?,
                _ => return None,
            }
        }
        Some(node)
    }

    /// Every file and symlink reachable from the root, by path, with its content (a
    /// symlink's is its target); directories by path with `None`.
    pub fn files(&self) -> BTreeMap<String, Option<&Content>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((path, node)) = stack.pop() {
            match self.nodes.get(&node) {
                Some(Content::Dir(entries)) => {
                    if !path.is_empty() {
                        out.insert(path.clone(), None);
                    }
                    for (name, child) in entries {
                        let child_path = if path.is_empty() {
                            name.clone()
                        } else {
                            format!("{path}/{name}")
                        };
                        // A directory reached twice (a bad log) is not walked again.
                        if !out.contains_key(&child_path) {
                            stack.push((child_path, *child));
                        }
                    }
                }
                Some(content) => {
                    out.insert(path, Some(content));
                }
                None => {}
            }
        }
        out
    }

    fn entries(&mut self, dir: Node) -> Option<&mut BTreeMap<String, Node>> {
        match self.nodes.get_mut(&dir) {
            Some(Content::Dir(entries)) => Some(entries),
            _ => None,
        }
    }

    /// Applies one operation (whole, or a write cut to its first `keep` bytes). An
    /// operation on something the state does not have (its creation was lost) changes
    /// nothing, as on a disk.
    fn apply(&mut self, op: &Op, keep: Option<usize>) {
        match op {
            Op::Write {
                node,
                offset,
                bytes,
            } => {
                let bytes = &bytes[..keep.unwrap_or(bytes.len()).min(bytes.len())];
                if let Some(Content::File(data)) = self.nodes.get_mut(node) {
                    let start = *offset as usize;
                    let end = start + bytes.len();
                    if data.len() < end {
                        data.resize(end, 0);
                    }
                    data[start..end].copy_from_slice(bytes);
                }
            }
            Op::Truncate { node, len } => {
                if let Some(Content::File(data)) = self.nodes.get_mut(node) {
                    data.resize(*len as usize, 0);
                }
            }
            Op::Create {
                parent,
                name,
                node,
                kind,
            } => {
                self.nodes.insert(
                    *node,
                    match kind {
                        Kind::File => Content::File(Vec::new()),
                        Kind::Dir => Content::Dir(BTreeMap::new()),
                        Kind::Symlink(target) => Content::Symlink(target.clone()),
                    },
                );
                if let Some(entries) = self.entries(*parent) {
                    entries.insert(name.clone(), *node);
                }
            }
            Op::Link { parent, name, node } => {
                if self.nodes.contains_key(node)
                    && let Some(entries) = self.entries(*parent)
                {
                    entries.insert(name.clone(), *node);
                }
            }
            Op::Remove { parent, name } => {
                if let Some(entries) = self.entries(*parent) {
                    entries.remove(name);
                }
            }
            Op::Rename { from, to } => {
                let moved = self.entries(from.0).and_then(|e| e.remove(&from.1));
                if let Some(node) = moved
                    && let Some(entries) = self.entries(to.0)
                {
                    entries.insert(to.1.clone(), node);
                }
            }
            Op::Sync { .. } | Op::SyncAll => {}
        }
    }
}

/// What a created node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
}

/// One mutating call of the tree, as the log records it (only calls that succeeded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `bytes` written at `offset` (an `O_APPEND` write at the end the file had).
    Write {
        node: Node,
        offset: u64,
        bytes: Vec<u8>,
    },
    Truncate {
        node: Node,
        len: u64,
    },
    /// A new file, directory or symlink `name` in `parent` (`open` with `O_CREAT` that
    /// created it, `mkdir`, `symlink`).
    Create {
        parent: Node,
        name: String,
        node: Node,
        kind: Kind,
    },
    /// Another name for an existing node (`link`).
    Link {
        parent: Node,
        name: String,
        node: Node,
    },
    /// A name removed (`unlink`, `rmdir`).
    Remove {
        parent: Node,
        name: String,
    },
    /// A name moved, replacing what `to` named.
    Rename {
        from: (Node, String),
        to: (Node, String),
    },
    /// `fsync` or `fdatasync` of a file or directory (or a write through an `O_SYNC`
    /// descriptor, right after it).
    Sync {
        node: Node,
    },
    /// `sync`, `syncfs`.
    SyncAll,
}

impl Op {
    /// The nodes whose sync makes this operation durable (all of them).
    fn synced_by(&self) -> Vec<Node> {
        match self {
            Op::Write { node, .. } | Op::Truncate { node, .. } => vec![*node],
            Op::Create { parent, .. } | Op::Link { parent, .. } | Op::Remove { parent, .. } => {
                vec![*parent]
            }
            Op::Rename { from, to } if from.0 == to.0 => vec![from.0],
            Op::Rename { from, to } => vec![from.0, to.0],
            Op::Sync { .. } | Op::SyncAll => Vec::new(),
        }
    }

    fn is_sync(&self) -> bool {
        matches!(self, Op::Sync { .. } | Op::SyncAll)
    }
}

/// Which state a power loss leaves, of those the model allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashState {
    /// Every pending operation lost.
    LoseAll,
    /// The first `n` pending operations kept, in program order.
    Prefix(usize),
    /// The pending operations before the last pending write kept, that write cut at the
    /// first page boundary it crosses.
    Torn,
}

impl fmt::Display for CrashState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashState::LoseAll => f.write_str("every pending operation lost"),
            CrashState::Prefix(n) => write!(f, "the first {n} pending operation(s) kept"),
            CrashState::Torn => f.write_str("the last pending write torn at a page boundary"),
        }
    }
}

/// Which operations of `log` are pending: not made durable by a later sync.
pub fn pending(log: &[Op]) -> Vec<bool> {
    let mut pending = vec![false; log.len()];
    // Walking back: a sync covers what came before it.
    let mut synced: std::collections::BTreeSet<Node> = Default::default();
    let mut all = false;
    for (i, op) in log.iter().enumerate().rev() {
        match op {
            Op::SyncAll => all = true,
            Op::Sync { node } => {
                synced.insert(*node);
            }
            _ => {
                pending[i] = !all && !op.synced_by().iter().all(|n| synced.contains(n));
            }
        }
    }
    pending
}

/// The state the sandbox is left in by a power loss after the operations of `log`, as
/// `state` chooses; `None` when that state is not one of this log's (a prefix longer than
/// the pending operations, a torn write where none crosses a page boundary).
pub fn crash_state(initial: &Tree, log: &[Op], state: CrashState) -> Option<Tree> {
    let pending = pending(log);
    let pending_count = pending.iter().filter(|p| **p).count();
    // How many pending operations are kept whole, and which write is cut (and where).
    let (kept, cut): (usize, Option<(usize, usize)>) = match state {
        CrashState::LoseAll => (0, None),
        CrashState::Prefix(n) if n <= pending_count => (n, None),
        CrashState::Prefix(_) => return None,
        CrashState::Torn => {
            let (index, rank) = last_pending_write(log, &pending)?;
            let Op::Write { offset, bytes, .. } = &log[index] else {
                unreachable!("a write")
            };
            let boundary = (offset / PAGE + 1) * PAGE;
            let end = offset + bytes.len() as u64;
            if end <= boundary {
                return None; // within one page: it cannot tear
            }
            (rank, Some((index, (boundary - offset) as usize)))
        }
    };
    let mut tree = initial.clone();
    let mut rank = 0;
    for (i, op) in log.iter().enumerate() {
        if !pending[i] {
            tree.apply(op, None);
            continue;
        }
        match cut {
            Some((index, keep)) if index == i => tree.apply(op, Some(keep)),
            _ if rank < kept => tree.apply(op, None),
            _ => {}
        }
        rank += 1;
    }
    Some(tree)
}

/// The last pending write: its index in the log and how many pending operations come
/// before it.
fn last_pending_write(log: &[Op], pending: &[bool]) -> Option<(usize, usize)> {
    let index = (0..log.len())
        .rev()
        .find(|&i| pending[i] && matches!(log[i], Op::Write { .. }))?;
    let rank = pending[..index].iter().filter(|p| **p).count();
    Some((index, rank))
}

/// How many states of each kind the log allows: `(pending, torn)` — prefixes `0..=pending`
/// (0 is lose-all; `pending` is what a SIGKILL leaves), and whether a torn state exists.
pub fn states(log: &[Op]) -> (usize, bool) {
    let pending = pending(log);
    let count = pending.iter().filter(|p| **p).count();
    let torn = last_pending_write(log, &pending).is_some_and(|(i, _)| {
        let Op::Write { offset, bytes, .. } = &log[i] else {
            return false;
        };
        offset + bytes.len() as u64 > (offset / PAGE + 1) * PAGE
    });
    (count, torn)
}

/// The paths a node had: its first (its name in reports), and where it is now if it moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub first: BTreeMap<Node, String>,
    pub last: BTreeMap<Node, String>,
}

impl Names {
    /// `node` as a report names it: `.tmp-7 (renamed out.json)`, `.` for the root.
    pub fn of(&self, node: Node) -> String {
        let shown = |n: &String| {
            if n.is_empty() {
                ".".to_string()
            } else {
                n.clone()
            }
        };
        let first = self
            .first
            .get(&node)
            .map(shown)
            .unwrap_or_else(|| format!("node {node}"));
        match self.last.get(&node) {
            Some(last) => format!("{first} (renamed {})", shown(last)),
            None => first,
        }
    }
}

/// The pending operations of `log` in words, for a report: what a power loss at its end
/// may lose and why, each node named by the paths it had. Consecutive pending writes to
/// one file are one line.
pub fn describe_pending(log: &[Op], names: &Names) -> Vec<String> {
    let pending = pending(log);
    let mut lines: Vec<String> = Vec::new();
    // A run of pending writes to one node: (node, writes, bytes, first offset).
    let mut run: Option<(Node, usize, usize, u64)> = None;
    let flush = |run: &mut Option<(Node, usize, usize, u64)>, lines: &mut Vec<String>| {
        if let Some((node, count, total, offset)) = run.take() {
            lines.push(if count == 1 {
                format!(
                    "write of {total} byte(s) at {offset} to {}: not durable, the file was not fsynced after it",
                    names.of(node)
                )
            } else {
                format!(
                    "{count} writes of {total} byte(s) in all, from offset {offset}, to {}: not durable, the file was not fsynced after them",
                    names.of(node)
                )
            });
        }
    };
    for (op, _) in log
        .iter()
        .zip(&pending)
        .filter(|(op, p)| **p && !op.is_sync())
    {
        if let Op::Write {
            node,
            offset,
            bytes,
        } = op
        {
            match &mut run {
                Some((n, count, total, _)) if n == node => {
                    *count += 1;
                    *total += bytes.len();
                }
                _ => {
                    flush(&mut run, &mut lines);
                    run = Some((*node, 1, bytes.len(), *offset));
                }
            }
            continue;
        }
        flush(&mut run, &mut lines);
        lines.push(describe(op, names));
    }
    flush(&mut run, &mut lines);
    lines
}

/// One pending operation other than a write, in words.
fn describe(op: &Op, names: &Names) -> String {
    let in_dir = |parent: &Node, entry: &str| {
        let dir = names.of(*parent);
        if dir == "." {
            entry.to_string()
        } else {
            format!("{dir}/{entry}")
        }
    };
    match op {
        Op::Truncate { node, len } => format!(
            "truncate of {} to {len} byte(s): not durable, the file was not fsynced after it",
            names.of(*node)
        ),
        Op::Create {
            parent, name, kind, ..
        } => format!(
            "creation of {}{}: not durable, directory {} was not fsynced after it",
            in_dir(parent, name),
            match kind {
                Kind::Dir => " (a directory)",
                Kind::Symlink(_) => " (a symlink)",
                Kind::File => "",
            },
            names.of(*parent)
        ),
        Op::Link { parent, name, .. } => format!(
            "link {}: not durable, directory {} was not fsynced after it",
            in_dir(parent, name),
            names.of(*parent)
        ),
        Op::Remove { parent, name } => format!(
            "removal of {}: not durable, directory {} was not fsynced after it",
            in_dir(parent, name),
            names.of(*parent)
        ),
        Op::Rename { from, to } => {
            let dirs = if from.0 == to.0 {
                format!("directory {} was", names.of(from.0))
            } else {
                format!(
                    "directories {} and {} were",
                    names.of(from.0),
                    names.of(to.0)
                )
            };
            format!(
                "rename of {} → {}: not durable, {dirs} not fsynced after it",
                in_dir(&from.0, &from.1),
                in_dir(&to.0, &to.1)
            )
        }
        Op::Write { .. } | Op::Sync { .. } | Op::SyncAll => {
            unreachable!("writes are described in runs, syncs not at all")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox at spawn: `input` (node 1) holds "old".
    fn initial() -> Tree {
        let mut tree = Tree::empty();
        tree.nodes.insert(1, Content::File(b"old".to_vec()));
        if let Some(Content::Dir(e)) = tree.nodes.get_mut(&ROOT) {
            e.insert("input".into(), 1);
        }
        tree
    }

    fn create(name: &str, node: Node) -> Op {
        Op::Create {
            parent: ROOT,
            name: name.into(),
            node,
            kind: Kind::File,
        }
    }

    fn write(node: Node, offset: u64, bytes: &[u8]) -> Op {
        Op::Write {
            node,
            offset,
            bytes: bytes.to_vec(),
        }
    }

    fn rename(from: &str, to: &str) -> Op {
        Op::Rename {
            from: (ROOT, from.into()),
            to: (ROOT, to.into()),
        }
    }

    fn file<'a>(tree: &'a Tree, path: &str) -> Option<&'a [u8]> {
        match tree.nodes.get(&tree.lookup(path)?)? {
            Content::File(data) => Some(data),
            _ => None,
        }
    }

    /// The atomic writer's steps: temp file, its data, fsync, rename, directory fsync.
    fn atomic(fsync_file: bool, fsync_dir: bool) -> Vec<Op> {
        let mut log = vec![create("out.tmp", 2), write(2, 0, b"new data")];
        if fsync_file {
            log.push(Op::Sync { node: 2 });
        }
        log.push(rename("out.tmp", "out"));
        if fsync_dir {
            log.push(Op::Sync { node: ROOT });
        }
        log
    }

    #[test]
    fn a_correct_atomic_write_survives_every_crash_state() {
        let log = atomic(true, true);
        assert_eq!(states(&log), (0, false), "nothing pending");
        let after = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&after, "out"), Some(&b"new data"[..]));
        assert_eq!(file(&after, "out.tmp"), None);
        assert_eq!(file(&after, "input"), Some(&b"old"[..]));
    }

    #[test]
    fn a_rename_of_an_unsynced_file_can_come_back_empty() {
        // No fsync of the temp file: the directory fsync makes its entry and the rename
        // durable, not its data.
        let log = atomic(false, true);
        let after = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&after, "out"), Some(&b""[..]));
        let names = Names {
            first: BTreeMap::from([(ROOT, String::new()), (2, "out.tmp".into())]),
            last: BTreeMap::from([(2, "out".into())]),
        };
        assert_eq!(
            describe_pending(&log, &names),
            [
                "write of 8 byte(s) at 0 to out.tmp (renamed out): not durable, the file was not fsynced after it"
            ]
        );
        // Writes in a row to one file are one line.
        let log = vec![write(1, 0, b"ab"), write(1, 2, b"cde"), create("x", 3)];
        let names = Names {
            first: BTreeMap::from([(ROOT, String::new()), (1, "input".into())]),
            last: BTreeMap::new(),
        };
        assert_eq!(
            describe_pending(&log, &names),
            [
                "2 writes of 5 byte(s) in all, from offset 0, to input: not durable, the file was not fsynced after them",
                "creation of x: not durable, directory . was not fsynced after it",
            ]
        );
    }

    #[test]
    fn a_rename_without_a_directory_fsync_may_be_lost_whole() {
        let log = atomic(true, false);
        assert_eq!(states(&log), (2, false), "the create and the rename");
        let lost = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&lost, "out"), None, "neither name is durable");
        assert_eq!(file(&lost, "out.tmp"), None);
        // Kept in order: first the temp file's entry (its data was synced), then the rename.
        let one = crash_state(&initial(), &log, CrashState::Prefix(1)).unwrap();
        assert_eq!(file(&one, "out.tmp"), Some(&b"new data"[..]));
        assert_eq!(file(&one, "out"), None);
        let two = crash_state(&initial(), &log, CrashState::Prefix(2)).unwrap();
        assert_eq!(file(&two, "out"), Some(&b"new data"[..]));
        assert_eq!(crash_state(&initial(), &log, CrashState::Prefix(3)), None);
        let names = Names {
            first: BTreeMap::from([(ROOT, String::new())]),
            last: BTreeMap::new(),
        };
        assert_eq!(
            describe_pending(&log, &names)[1],
            "rename of out.tmp → out: not durable, directory . was not fsynced after it"
        );
    }

    #[test]
    fn writes_in_place_are_lost_or_torn_at_a_page_boundary() {
        // Rewrites `input` in place with two pages and a bit: no fsync.
        let data = vec![b'x'; 2 * PAGE as usize + 10];
        let log = vec![Op::Truncate { node: 1, len: 0 }, write(1, 0, &data)];
        let lost = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&lost, "input"), Some(&b"old"[..]));
        let torn = crash_state(&initial(), &log, CrashState::Torn).unwrap();
        assert_eq!(file(&torn, "input"), Some(&data[..PAGE as usize]));
        assert_eq!(states(&log), (2, true));
        // A write within one page cannot tear.
        let small = vec![write(1, 10, b"abc")];
        assert_eq!(crash_state(&initial(), &small, CrashState::Torn), None);
        // A write at 4000 of 200 bytes tears at 4096: 96 bytes kept.
        let across = vec![write(1, 4000, &[b'y'; 200])];
        let torn = crash_state(&initial(), &across, CrashState::Torn).unwrap();
        assert_eq!(file(&torn, "input").unwrap().len(), 4096);
    }

    #[test]
    fn sync_makes_everything_durable_and_an_o_sync_write_is_its_own_sync() {
        let mut log = atomic(false, false);
        log.push(Op::SyncAll);
        assert_eq!(states(&log), (0, false));
        let after = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&after, "out"), Some(&b"new data"[..]));
        // The recorder logs an O_SYNC write as a write and a sync of its file.
        let log = vec![write(1, 0, b"NEW"), Op::Sync { node: 1 }];
        let after = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&after, "input"), Some(&b"NEW"[..]));
    }

    #[test]
    fn a_rename_across_directories_needs_both_synced() {
        let mut tree = initial();
        tree.nodes.insert(3, Content::Dir(BTreeMap::new()));
        if let Some(Content::Dir(e)) = tree.nodes.get_mut(&ROOT) {
            e.insert("done".into(), 3);
        }
        let log = vec![
            Op::Rename {
                from: (ROOT, "input".into()),
                to: (3, "input".into()),
            },
            Op::Sync { node: 3 },
        ];
        let lost = crash_state(&tree, &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&lost, "input"), Some(&b"old"[..]), "undone whole");
        assert_eq!(file(&lost, "done/input"), None);
        let mut log = log;
        log.push(Op::Sync { node: ROOT });
        let kept = crash_state(&tree, &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&kept, "done/input"), Some(&b"old"[..]));
        assert_eq!(file(&kept, "input"), None);
    }

    #[test]
    fn a_removal_not_synced_brings_the_file_back() {
        let log = vec![Op::Remove {
            parent: ROOT,
            name: "input".into(),
        }];
        let after = crash_state(&initial(), &log, CrashState::LoseAll).unwrap();
        assert_eq!(file(&after, "input"), Some(&b"old"[..]));
        assert_eq!(
            after.files().keys().collect::<Vec<_>>(),
            ["input"],
            "{:?}",
            after.files()
        );
    }
}
