//! Syscall classes, the numbers behind them, and the trace events the tracer records.
//!
//! Pure data: the tracer (`os::tracer`) fills [`Event`]s in; plans, the census and reports
//! read them. The numbers are x86_64's; on another architecture no class has numbers and
//! the tracer reports that it cannot run.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::strike::ProcessSelector;
use crate::values::{ExitStatus, PathGlob, ProgramGlob, Signal};

/// A group of syscalls that strike points and the census name together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyscallClass {
    /// write, pwrite64, writev, pwritev, pwritev2
    Write,
    /// fsync, fdatasync, sync_file_range, syncfs, sync
    Fsync,
    /// rename, renameat, renameat2
    Rename,
    /// open, openat, openat2, creat
    Open,
    /// close
    Close,
    /// unlink, unlinkat, rmdir
    Unlink,
    /// truncate, ftruncate
    Truncate,
    /// clone, clone3, fork, vfork: processes and threads
    Fork,
    /// rt_sigaction
    Sigaction,
    /// exit_group
    Exit,
    /// copy_file_range, sendfile, splice: data moved between files without write
    Copy,
    /// link, linkat, symlink, symlinkat
    Link,
    /// mkdir, mkdirat
    Mkdir,
    /// accept, accept4: a connection taken from a listening socket
    Accept,
}

impl SyscallClass {
    pub const ALL: [SyscallClass; 14] = [
        SyscallClass::Write,
        SyscallClass::Fsync,
        SyscallClass::Rename,
        SyscallClass::Open,
        SyscallClass::Close,
        SyscallClass::Unlink,
        SyscallClass::Truncate,
        SyscallClass::Fork,
        SyscallClass::Sigaction,
        SyscallClass::Exit,
        SyscallClass::Copy,
        SyscallClass::Link,
        SyscallClass::Mkdir,
        SyscallClass::Accept,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyscallClass::Write => "write",
            SyscallClass::Fsync => "fsync",
            SyscallClass::Rename => "rename",
            SyscallClass::Open => "open",
            SyscallClass::Close => "close",
            SyscallClass::Unlink => "unlink",
            SyscallClass::Truncate => "truncate",
            SyscallClass::Fork => "fork",
            SyscallClass::Sigaction => "sigaction",
            SyscallClass::Exit => "exit",
            SyscallClass::Copy => "copy",
            SyscallClass::Link => "link",
            SyscallClass::Mkdir => "mkdir",
            SyscallClass::Accept => "accept",
        }
    }

    /// Whether calls of this class name a file (so a strike point may filter by path).
    /// An accept names a listening socket, which has no path to match.
    pub fn has_path(self) -> bool {
        !matches!(
            self,
            SyscallClass::Fork
                | SyscallClass::Sigaction
                | SyscallClass::Exit
                | SyscallClass::Accept
        )
    }

    /// The syscalls of this class: (number, name).
    pub fn syscalls(self) -> &'static [(i64, &'static str)] {
        table::of(self)
    }

    /// The class and name of a syscall number, if it belongs to one.
    pub fn of(nr: i64) -> Option<(SyscallClass, &'static str)> {
        SyscallClass::ALL.into_iter().find_map(|class| {
            class
                .syscalls()
                .iter()
                .find(|(n, _)| *n == nr)
                .map(|(_, name)| (class, *name))
        })
    }
}

impl fmt::Display for SyscallClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The classes a tracer traps; every other syscall runs without stopping.
pub type ClassSet = BTreeSet<SyscallClass>;

/// Classes trapped in every traced case beyond the plan's own, so that the trace around a
/// strike shows what the program did next (did it still fsync, rename, unlink, fork?).
/// They are rare calls: trapping them costs nothing measurable.
pub const CONTEXT_CLASSES: [SyscallClass; 5] = [
    SyscallClass::Fsync,
    SyscallClass::Rename,
    SyscallClass::Unlink,
    SyscallClass::Truncate,
    SyscallClass::Fork,
];

/// Which side of a syscall a strike lands on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Before the syscall runs: it has not happened when the signal arrives.
    #[default]
    Entry,
    /// After the syscall returned, before the program sees the result.
    Exit,
}

/// The sides a syscall point may strike: `"entry"`, `"exit"`, `"both"`, or a list. Kept
/// sorted, entry first, so shrinking and exhaustive order try the entry first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Whens(Vec<When>);

impl Whens {
    pub fn one(when: When) -> Whens {
        Whens(vec![when])
    }

    pub fn new(mut whens: Vec<When>) -> Whens {
        whens.sort_by_key(|w| *w == When::Exit);
        whens.dedup();
        Whens(whens)
    }

    pub fn all(&self) -> &[When] {
        &self.0
    }

    pub fn contains(&self, when: When) -> bool {
        self.0.contains(&when)
    }
}

impl Default for Whens {
    fn default() -> Self {
        Whens::one(When::Entry)
    }
}

impl fmt::Display for Whens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            _ => f.write_str("both"),
        }
    }
}

impl Serialize for Whens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Whens {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "\"entry\", \"exit\", \"both\" or a list of them"
        )]
        enum Raw {
            One(String),
            Many(Vec<When>),
        }
        let whens = match Raw::deserialize(d)? {
            Raw::One(text) => match text.as_str() {
                "entry" => vec![When::Entry],
                "exit" => vec![When::Exit],
                "both" => vec![When::Entry, When::Exit],
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "unknown `when` `{other}`: expected \"entry\", \"exit\" or \"both\""
                    )));
                }
            },
            Raw::Many(list) if list.is_empty() => {
                return Err(serde::de::Error::custom(
                    "an empty `when` list: give \"entry\", \"exit\" or both",
                ));
            }
            Raw::Many(list) => list,
        };
        Ok(Whens::new(whens))
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            When::Entry => "entry",
            When::Exit => "exit",
        })
    }
}

/// Whether a call with these paths is one a strike point with `glob` counts. Paths inside
/// the sandbox are relative to it; a call with two paths (rename) matches by either.
pub fn matches(glob: Option<&PathGlob>, paths: &[String]) -> bool {
    match glob {
        None => true,
        Some(glob) => paths.iter().any(|p| glob.matches(p)),
    }
}

/// One thing the tracer saw a process do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Order in the whole tree, from 1.
    pub seq: u64,
    /// Since the target was spawned.
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
    /// The process (thread group) and the thread.
    pub pid: i32,
    pub tid: i32,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// A trapped syscall, seen at its entry.
    Syscall(Call),
    /// A signal reached the process (its handler runs, or its default action).
    Signal { signal: Signal },
    /// The process replaced its program.
    Exec { command: String },
    /// The process ended.
    Exit { status: ExitStatus },
}

/// A syscall as the trace shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub class: SyscallClass,
    /// The syscall's own name (`pwrite64`, `renameat2`, …).
    pub name: String,
    /// The file descriptor it works on, for calls that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// The files it names: the fd's path, or the path arguments (rename: from, then to).
    /// Sandbox-relative inside the sandbox; `pipe:[…]` and the like for other fds.
    pub paths: Vec<String>,
    /// What else matters about it: sizes, offsets, flags, the signal of a sigaction.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Its return value, when the tracer saw it return (exit strikes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// The call an entry strike rewound, run again after the signal: the same call, not
    /// counted again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
}

/// How a restarted call is told apart in reports.
pub(crate) const RESTARTED: &str = "again, after the signal";

impl Call {
    /// A call of `class` naming one path and nothing more (for hand-built censuses).
    #[cfg(test)]
    pub fn naming(class: SyscallClass, path: &str) -> Call {
        Call {
            class,
            name: class.name().into(),
            fd: None,
            paths: vec![path.into()],
            detail: String::new(),
            result: None,
            restarted: false,
        }
    }

    /// The files it names, as one label: `out.json`, `a.tmp → a`.
    pub fn path_label(&self) -> String {
        self.paths.join(" → ")
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.paths.is_empty() {
            write!(f, " {}", self.path_label())?;
        }
        match (self.detail.is_empty(), self.restarted) {
            (true, false) => {}
            (false, false) => write!(f, " ({})", self.detail)?,
            (true, true) => write!(f, " ({RESTARTED})")?,
            (false, true) => write!(f, " ({}, {RESTARTED})", self.detail)?,
        }
        if let Some(result) = self.result {
            write!(f, " = {result}")?;
        }
        Ok(())
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Syscall(call) => write!(f, "{call}"),
            What::Signal { signal } => write!(f, "{signal} delivered"),
            What::Exec { command } => write!(f, "exec {command}"),
            What::Exit { status } => write!(f, "{status}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{:<5} {:>9.3} ms  pid {:<7} {}",
            self.seq,
            self.at.as_secs_f64() * 1000.0,
            self.pid,
            self.what
        )?;
        if self.tid != self.pid {
            write!(f, "  [thread {}]", self.tid)?;
        }
        Ok(())
    }
}

/// What the tracer counted over a whole run: the strike space of syscall points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCensus {
    /// The classes that were trapped; calls of other classes were not counted.
    pub classes: ClassSet,
    /// Calls per class and paths, in the order first seen.
    pub calls: Vec<CallCount>,
    /// Every process of the tree, in the order started.
    pub processes: Vec<TracedProcess>,
    /// Signal handlers installed (`sigaction` trapped), first per process and signal.
    pub handlers: Vec<InstalledHandler>,
    /// The programs exec'd, in order: the target's own first, then every exec in the tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<ExecSeen>,
    #[serde(skip)]
    index: std::collections::HashMap<(SyscallClass, Vec<String>), usize>,
    /// Calls per class, paths, process and the program it ran at the time: what a strike
    /// limited to a process counts.
    #[serde(skip)]
    by_process: std::collections::HashMap<(SyscallClass, Vec<String>, i32, String), u64>,
}

/// A program a process of the tree exec'd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSeen {
    pub pid: i32,
    /// Its name, as [`ProgramGlob`]s match it.
    pub program: String,
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    pub class: SyscallClass,
    pub paths: Vec<String>,
    pub count: u64,
    /// The `seq` of the first such call.
    pub first: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedProcess {
    pub pid: i32,
    /// The traced process that started it; `None` for the target itself.
    pub parent: Option<i32>,
    /// Its command line, as of its last exec.
    pub command: String,
    /// The name of the program it runs, as of its last exec (its parent's, if it never
    /// exec'd): the file name the exec named, as [`ProgramGlob`]s match it.
    #[serde(default)]
    pub program: String,
    /// Threads it started.
    pub threads: u32,
    pub status: Option<ExitStatus>,
    #[serde(with = "crate::units::millis")]
    pub started_at: Duration,
    #[serde(with = "crate::units::opt_millis")]
    pub exited_at: Option<Duration>,
    /// The signals delivered to it (signal-delivery stops; SIGCHLD left out), in order.
    /// A SIGKILL has no delivery stop: it shows as the exit status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Delivered>,
}

/// A signal delivered to a process of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub signal: Signal,
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
    /// Whether it ran a handler (else its default action, or it was ignored).
    pub handled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledHandler {
    pub signal: Signal,
    pub pid: i32,
    #[serde(with = "crate::units::millis")]
    pub at: Duration,
}

impl SyscallCensus {
    pub fn new(classes: ClassSet) -> SyscallCensus {
        SyscallCensus {
            classes,
            ..SyscallCensus::default()
        }
    }

    /// Counts one call, made by process `pid` running `program`.
    pub fn add_call(&mut self, call: &Call, seq: u64, pid: i32, program: &str) {
        *self
            .by_process
            .entry((call.class, call.paths.clone(), pid, program.to_string()))
            .or_insert(0) += 1;
        let key = (call.class, call.paths.clone());
        match self.index.get(&key) {
            Some(&i) => self.calls[i].count += 1,
            None => {
                self.index.insert(key, self.calls.len());
                self.calls.push(CallCount {
                    class: call.class,
                    paths: call.paths.clone(),
                    count: 1,
                    first: seq,
                });
            }
        }
    }

    /// How many calls of `class` naming a path that matches `glob` the run made.
    pub fn count(&self, class: SyscallClass, glob: Option<&PathGlob>) -> u64 {
        self.calls
            .iter()
            .filter(|c| c.class == class && matches(glob, &c.paths))
            .map(|c| c.count)
            .sum()
    }

    /// How many calls of `class` naming a path that matches `glob` the processes that
    /// `process` selects made (every process's, with `None`).
    pub fn count_in(
        &self,
        class: SyscallClass,
        glob: Option<&PathGlob>,
        process: Option<&ProcessSelector>,
    ) -> u64 {
        let Some(process) = process else {
            return self.count(class, glob);
        };
        let main = self.processes.first().map_or(0, |p| p.pid);
        self.by_process
            .iter()
            .filter(|((c, paths, pid, program), _)| {
                *c == class && matches(glob, paths) && process.selects(*pid, main, program)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The first exec of a program whose name matches.
    pub fn first_exec(&self, glob: &ProgramGlob) -> Option<&ExecSeen> {
        self.execs.iter().find(|e| glob.matches(&e.program))
    }

    /// Whether any process of the tree ran a program whose name matches.
    pub fn ran(&self, glob: &ProgramGlob) -> bool {
        self.processes.iter().any(|p| glob.matches(&p.program)) || self.first_exec(glob).is_some()
    }

    pub fn process(&mut self, pid: i32) -> Option<&mut TracedProcess> {
        self.processes.iter_mut().rev().find(|p| p.pid == pid)
    }
}

#[cfg(target_arch = "x86_64")]
mod table {
    use super::SyscallClass;

    pub fn of(class: SyscallClass) -> &'static [(i64, &'static str)] {
        match class {
            SyscallClass::Write => &[
                (1, "write"),
                (18, "pwrite64"),
                (20, "writev"),
                (296, "pwritev"),
                (328, "pwritev2"),
            ],
            SyscallClass::Fsync => &[
                (74, "fsync"),
                (75, "fdatasync"),
                (277, "sync_file_range"),
                (306, "syncfs"),
                (162, "sync"),
            ],
            SyscallClass::Rename => &[(82, "rename"), (264, "renameat"), (316, "renameat2")],
            SyscallClass::Open => &[
                (2, "open"),
                (85, "creat"),
                (257, "openat"),
                (437, "openat2"),
            ],
            SyscallClass::Close => &[(3, "close")],
            SyscallClass::Unlink => &[(87, "unlink"), (263, "unlinkat"), (84, "rmdir")],
            SyscallClass::Truncate => &[(76, "truncate"), (77, "ftruncate")],
            SyscallClass::Fork => &[(56, "clone"), (57, "fork"), (58, "vfork"), (435, "clone3")],
            SyscallClass::Sigaction => &[(13, "rt_sigaction")],
            SyscallClass::Exit => &[(231, "exit_group")],
            SyscallClass::Copy => &[(40, "sendfile"), (275, "splice"), (326, "copy_file_range")],
            SyscallClass::Link => &[
                (86, "link"),
                (88, "symlink"),
                (265, "linkat"),
                (266, "symlinkat"),
            ],
            SyscallClass::Mkdir => &[(83, "mkdir"), (258, "mkdirat")],
            SyscallClass::Accept => &[(43, "accept"), (288, "accept4")],
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod table {
    use super::SyscallClass;

    pub fn of(_: SyscallClass) -> &'static [(i64, &'static str)] {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_belongs_to_one_class() {
        let mut seen = BTreeSet::new();
        for class in SyscallClass::ALL {
            assert!(!class.syscalls().is_empty(), "{class} has syscalls");
            for &(nr, name) in class.syscalls() {
                assert!(seen.insert(nr), "{name} ({nr}) is in one class only");
                assert_eq!(SyscallClass::of(nr), Some((class, name)));
            }
        }
        assert_eq!(SyscallClass::of(0), None, "read is in no class");
        assert_eq!(SyscallClass::of(59), None, "execve is never trapped");
    }

    #[test]
    fn globs_match_either_path_of_a_rename() {
        let glob: PathGlob = "out.json".parse().unwrap();
        let rename = vec![".out.json.tmp-7".to_string(), "out.json".to_string()];
        assert!(matches(Some(&glob), &rename));
        assert!(!matches(Some(&glob), &["other.json".to_string()]));
        assert!(matches(None, &["pipe:[1]".to_string()]));
        let temp: PathGlob = ".out.json.tmp*".parse().unwrap();
        assert!(matches(Some(&temp), &rename[..1]));
        assert!(!matches(Some(&temp), &rename[1..]));
    }

    #[test]
    fn the_census_counts_calls_per_class_and_path() {
        let call = Call::naming;
        let mut census = SyscallCensus::new(ClassSet::new());
        for seq in 1..=3 {
            census.add_call(&call(SyscallClass::Write, "out.json.tmp"), seq, 1, "w");
        }
        census.add_call(&call(SyscallClass::Write, "pipe:[9]"), 4, 1, "w");
        census.add_call(&call(SyscallClass::Fsync, "out.json.tmp"), 5, 1, "w");
        assert_eq!(census.calls.len(), 3);
        assert_eq!((census.calls[0].count, census.calls[0].first), (3, 1));
        let glob: PathGlob = "out.json*".parse().unwrap();
        assert_eq!(census.count(SyscallClass::Write, Some(&glob)), 3);
        assert_eq!(census.count(SyscallClass::Write, None), 4);
        assert_eq!(census.count(SyscallClass::Rename, None), 0);
    }

    #[test]
    fn a_count_limited_to_a_process_counts_its_calls_under_the_program_it_ran() {
        let call = Call::naming;
        let mut census = SyscallCensus::new(ClassSet::new());
        census.processes.push(TracedProcess {
            pid: 10,
            parent: None,
            command: "python3 tree.py".into(),
            program: "python3".into(),
            threads: 0,
            status: None,
            started_at: Duration::ZERO,
            exited_at: None,
            signals: Vec::new(),
        });
        let write = |out: &str| call(SyscallClass::Write, out);
        census.add_call(&write("main.out"), 1, 10, "python3");
        census.add_call(&write("main.out"), 2, 10, "python3");
        // Pid 11 wrote once before its exec, as the python3 it was forked from, then as sh.
        census.add_call(&write("sh.out"), 3, 11, "python3");
        census.add_call(&write("sh.out"), 4, 11, "sh");
        census.add_call(&write("sh.out"), 5, 11, "sh");
        census.add_call(&write("perl.out"), 6, 12, "perl");
        let out: PathGlob = "*.out".parse().unwrap();
        let program = |g: &str| ProcessSelector::Program(g.parse().unwrap());
        let count =
            |p: Option<&ProcessSelector>| census.count_in(SyscallClass::Write, Some(&out), p);
        assert_eq!(count(None), 6);
        assert_eq!(count(Some(&ProcessSelector::Main)), 2);
        assert_eq!(count(Some(&program("sh"))), 2);
        assert_eq!(count(Some(&program("python*"))), 3);
        assert_eq!(count(Some(&program("p*"))), 4);
        assert_eq!(count(Some(&program("rsync"))), 0);
        let sh: PathGlob = "sh.out".parse().unwrap();
        assert_eq!(
            census.count_in(SyscallClass::Write, Some(&sh), Some(&program("python*"))),
            1
        );
    }

    #[test]
    fn a_restarted_call_shows_as_again_after_the_signal() {
        let mut call = Call::naming(SyscallClass::Write, "out.json");
        call.restarted = true;
        assert_eq!(call.to_string(), "write out.json (again, after the signal)");
        call.detail = "65536 bytes".into();
        assert_eq!(
            call.to_string(),
            "write out.json (65536 bytes, again, after the signal)"
        );
        call.restarted = false;
        assert_eq!(call.to_string(), "write out.json (65536 bytes)");
    }
}
