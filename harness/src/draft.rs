//! `killpoint new NAME -- CMD ARGS…`: a starting scenario file, drafted from traced runs.
//!
//! ```text
//!  observe ×2 (OS, thin)       a fresh sandbox with the setup files, the command under the
//!        │                     tracer (every class trapped), the files before and after
//!        ▼
//!  propose (pure)              outputs, clean statuses, strike entries at the outputs'
//!        │                     opens, truncates, writes, copies, fsyncs and renames
//!        ▼
//!  render (pure)               the TOML, a comment above each key: what it means and what
//!                              the user should decide
//! ```
//!
//! The command runs twice, each time in a fresh sandbox, because one run cannot tell a
//! random name from a fixed one: a temp file renamed over an output (`sedGsyU6j` → `in.txt`)
//! is struck through a glob that must match the name of every later run (`sed*`), and only
//! a second name shows which part changes. The second run also shows which files differ
//! between two clean runs: `atomic-output` compares every case with the uninterrupted run
//! byte for byte, so such a file cannot be an output as it stands.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::os::run::{self, Launch, Limits, RunError};
use crate::os::sandbox::Sandbox;
use crate::os::tracer::TraceSetup;
use crate::outcome::KillReason;
use crate::setup::SetupEntry;
use crate::syscalls::{CallCount, SyscallCensus, SyscallClass};
use crate::units::ms;
use crate::values::{ExitStatus, PathGlob, Signal};

/// The signals every proposed strike entry may send: the two polite stops and the one no
/// program can catch.
pub const SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGKILL];

/// The most outputs that get strike entries of their own; more would make a strike space
/// nobody reads. The rest are still declared as outputs.
pub const STRUCK_OUTPUTS: usize = 8;

/// One traced run of the command in a fresh sandbox.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub status: Option<ExitStatus>,
    pub duration: Duration,
    pub syscalls: SyscallCensus,
    /// Regular files in the sandbox before the run (the setup files) and after it,
    /// sandbox-relative, with their bytes.
    pub before: BTreeMap<String, Vec<u8>>,
    pub after: BTreeMap<String, Vec<u8>>,
    /// Command lines of processes still running after the main process ended (killed then).
    pub leftovers: Vec<String>,
    /// The end of the command's stderr.
    pub stderr: String,
}

/// An output the draft declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: String,
    pub size: u64,
    /// The size of the setup file it replaced; `None`: the run created it.
    pub prior: Option<u64>,
    /// The file renamed over it, when the program wrote a temp file first.
    pub temp: Option<Temp>,
}

/// A file written and then renamed over an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temp {
    /// Its name in the first run and in the second.
    pub names: [String; 2],
    /// A glob that matches both (`None`: no glob could, e.g. a random directory).
    pub glob: Option<String>,
}

/// A file left out of `outputs`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub path: String,
    pub why: String,
}

/// One proposed `[[strike]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrikeEntry {
    /// The output it is about.
    pub output: String,
    pub class: SyscallClass,
    /// The glob, as written in the file.
    pub path: String,
    /// `"entry"`, `"exit"` or `"both"`.
    pub when: &'static str,
    /// Matching calls in the first run and the second.
    pub counts: [u64; 2],
    /// Whether `path` names the output's temp file rather than the output.
    pub temp: bool,
}

/// What the draft proposes, decided from two observations alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proposal {
    pub outputs: Vec<Output>,
    pub left_out: Vec<LeftOut>,
    /// Setup files the run removed.
    pub removed: Vec<String>,
    /// The statuses the two runs ended with, each once.
    pub clean: Vec<ExitStatus>,
    pub strikes: Vec<StrikeEntry>,
    /// Outputs beyond [`STRUCK_OUTPUTS`], or whose calls the two runs did not both make:
    /// declared, but no strike entry names them.
    pub unstruck: Vec<String>,
    /// Signals the main process installed handlers for, in signal order.
    pub handlers: Vec<Signal>,
    pub leftovers: Vec<String>,
    /// A `timeout` with room to spare over the runs' durations.
    pub timeout: Duration,
}

/// Whether `path` is one the sandbox holds (relative), not a stream, pipe or absolute path.
fn in_sandbox(path: &str) -> bool {
    !path.starts_with('/') && !path.starts_with('<') && !path.contains(":[")
}

/// The glob that matches exactly `path`.
fn exact(path: &str) -> String {
    glob::Pattern::escape(path)
}

/// The last path a call names: the destination of a rename or a copy.
fn destination(row: &CallCount) -> Option<&str> {
    row.paths.last().map(String::as_str)
}

/// Calls of `class` that write to a file `glob` matches: for a rename or a copy, its
/// destination; for the others, any path they name.
fn count_to(census: &SyscallCensus, class: SyscallClass, glob: &str) -> u64 {
    let Ok(glob) = glob.parse::<PathGlob>() else {
        return 0;
    };
    census
        .calls
        .iter()
        .filter(|row| row.class == class)
        .filter(|row| match class {
            SyscallClass::Rename | SyscallClass::Copy => {
                destination(row).is_some_and(|p| glob.matches(p))
            }
            _ => row.paths.iter().any(|p| glob.matches(p)),
        })
        .map(|row| row.count)
        .sum()
}

/// The files renamed over `output` in a run, in the order first seen.
fn renamed_over<'a>(census: &'a SyscallCensus, output: &str) -> Vec<&'a str> {
    census
        .calls
        .iter()
        .filter(|row| row.class == SyscallClass::Rename && row.paths.len() == 2)
        .filter(|row| row.paths[1] == output && in_sandbox(&row.paths[0]))
        .map(|row| row.paths[0].as_str())
        .collect()
}

/// The classes a proposal strikes a written file at, in the order a writer makes them,
/// with the side each is struck on. An open is struck at its exit (the file exists,
/// empty or truncated, nothing written yet: where bzip2, cp, install and patch were
/// found wanting); a truncate at its exit (the prior content has just gone); the rest on
/// both sides.
const WRITER_CLASSES: [(SyscallClass, &str); 5] = [
    (SyscallClass::Open, "exit"),
    (SyscallClass::Truncate, "exit"),
    (SyscallClass::Write, "both"),
    (SyscallClass::Copy, "both"),
    (SyscallClass::Fsync, "both"),
];

/// The length of a random part, at least: mkstemp's `XXXXXX`.
const RANDOM_PART: usize = 6;

/// A glob for a file whose name may have a random part, from the names two runs gave it.
///
/// The same name twice is that name. Otherwise the glob keeps what the two names share at
/// both ends and stars the rest: `sedGsyU6j` and `sedq3LxAb` give `sed*`. Two random parts
/// can share their first or last characters by chance, which would tie the glob to one
/// run's name, so the shared end is kept only from its first character that is not a
/// letter or digit (`.tmp`, `.part`), and the starred part is widened to six characters
/// into the shared beginning (mkstemp's `XXXXXX` is six). `None` if the names are in
/// different directories.
pub fn temp_glob(a: &str, b: &str) -> Option<String> {
    if a == b {
        return Some(exact(a));
    }
    let split = |p: &str| -> (String, String) {
        match p.rfind('/') {
            Some(i) => (p[..=i].to_string(), p[i + 1..].to_string()),
            None => (String::new(), p.to_string()),
        }
    };
    let ((dir_a, name_a), (dir_b, name_b)) = (split(a), split(b));
    if dir_a != dir_b {
        return None;
    }
    let (ca, cb): (Vec<char>, Vec<char>) = (name_a.chars().collect(), name_b.chars().collect());
    let shortest = ca.len().min(cb.len());
    let mut prefix = ca.iter().zip(&cb).take_while(|(x, y)| x == y).count();
    let mut suffix = ca
        .iter()
        .rev()
        .zip(cb.iter().rev())
        .take(shortest - prefix)
        .take_while(|(x, y)| x == y)
        .count();
    // The shared end, from its first character that is not a letter or digit.
    let end: Vec<char> = ca[ca.len() - suffix..].to_vec();
    let kept_from = end
        .iter()
        .position(|c| !c.is_alphanumeric())
        .unwrap_or(end.len());
    suffix -= kept_from;
    let varying = shortest - prefix - suffix;
    if varying < RANDOM_PART {
        prefix = prefix.saturating_sub(RANDOM_PART - varying);
    }
    let start: String = ca[..prefix].iter().collect();
    let end: String = ca[ca.len() - suffix..].iter().collect();
    let glob = format!("{}{}*{}", exact(&dir_a), exact(&start), exact(&end));
    let pattern: PathGlob = glob.parse().ok()?;
    (pattern.matches(a) && pattern.matches(b)).then_some(glob)
}

/// A first difference between two byte strings, in words.
fn difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if a.len() == b.len() {
        format!(
            "the two runs wrote different bytes, {} each, the first difference at offset {at}",
            a.len()
        )
    } else {
        format!(
            "the two runs wrote different bytes, {} and {}, the first difference at offset {at}",
            a.len(),
            b.len()
        )
    }
}

/// Whether a run created, replaced or changed `path`: new, different from its setup
/// content, or the destination of a write, truncate, rename or copy.
fn touched(run: &Observation, path: &str) -> bool {
    let glob = exact(path);
    run.before.get(path) != run.after.get(path)
        || [
            SyscallClass::Write,
            SyscallClass::Truncate,
            SyscallClass::Rename,
            SyscallClass::Copy,
        ]
        .into_iter()
        .any(|class| count_to(&run.syscalls, class, &glob) > 0)
}

/// What to propose from two runs of the same command, each in a fresh sandbox with the
/// same setup files.
pub fn propose(first: &Observation, second: &Observation) -> Proposal {
    let mut proposal = Proposal::default();
    let candidates = |run: &Observation| -> BTreeSet<String> {
        run.after
            .keys()
            .filter(|p| touched(run, p))
            .cloned()
            .collect()
    };
    let (mine, theirs) = (candidates(first), candidates(second));
    for path in &mine {
        let (a, b) = (&first.after[path], second.after.get(path));
        match b {
            None => proposal.left_out.push(LeftOut {
                path: path.clone(),
                why: "the second run did not leave it (a name that changes from run to run?)"
                    .into(),
            }),
            Some(b) if a != b => proposal.left_out.push(LeftOut {
                path: path.clone(),
                why: difference(a, b),
            }),
            Some(_) => proposal.outputs.push(Output {
                path: path.clone(),
                size: a.len() as u64,
                prior: first.before.get(path).map(|p| p.len() as u64),
                temp: None,
            }),
        }
    }
    for path in theirs.difference(&mine) {
        proposal.left_out.push(LeftOut {
            path: path.clone(),
            why: "only the second run left it (a name that changes from run to run?)".into(),
        });
    }
    proposal.removed = first
        .before
        .keys()
        .filter(|p| !first.after.contains_key(*p))
        .cloned()
        .collect();

    for output in &mut proposal.outputs {
        let (a, b) = (
            renamed_over(&first.syscalls, &output.path),
            renamed_over(&second.syscalls, &output.path),
        );
        if let (Some(a), Some(b)) = (a.first(), b.first()) {
            output.temp = Some(Temp {
                names: [a.to_string(), b.to_string()],
                glob: temp_glob(a, b),
            });
        }
    }

    let outputs = proposal.outputs.clone();
    for output in &outputs {
        let before = proposal.strikes.len();
        if proposal.strikes_for_outputs() < STRUCK_OUTPUTS {
            let files = std::iter::once((exact(&output.path), false)).chain(
                output
                    .temp
                    .as_ref()
                    .and_then(|t| t.glob.clone())
                    .map(|g| (g, true)),
            );
            for (glob, temp) in files {
                let counts = |class| {
                    [
                        count_to(&first.syscalls, class, &glob),
                        count_to(&second.syscalls, class, &glob),
                    ]
                };
                // Opens are struck only for files the program writes: an input it reads
                // (sed's, before its temp file replaces it) has nothing to tear there.
                let writes = [
                    SyscallClass::Write,
                    SyscallClass::Truncate,
                    SyscallClass::Copy,
                ]
                .into_iter()
                .any(|class| counts(class)[0] > 0);
                if !writes {
                    continue;
                }
                for (class, when) in WRITER_CLASSES {
                    let counts = counts(class);
                    // Both runs must make the call: the census of every campaign is
                    // another run, and a point it never reaches is an error there.
                    if counts[0] > 0 && counts[1] > 0 {
                        proposal.strikes.push(StrikeEntry {
                            output: output.path.clone(),
                            class,
                            path: glob.clone(),
                            when,
                            counts,
                            temp,
                        });
                    }
                }
            }
            let renames = [
                count_to(&first.syscalls, SyscallClass::Rename, &exact(&output.path)),
                count_to(&second.syscalls, SyscallClass::Rename, &exact(&output.path)),
            ];
            if renames[0] > 0 && renames[1] > 0 {
                proposal.strikes.push(StrikeEntry {
                    output: output.path.clone(),
                    class: SyscallClass::Rename,
                    path: exact(&output.path),
                    when: "both",
                    counts: renames,
                    temp: false,
                });
            }
        }
        if proposal.strikes.len() == before {
            proposal.unstruck.push(output.path.clone());
        }
    }

    for status in [first.status, second.status].into_iter().flatten() {
        if !proposal.clean.contains(&status) {
            proposal.clean.push(status);
        }
    }
    let main = first.syscalls.processes.first().map(|p| p.pid);
    let mut handlers: Vec<Signal> = first
        .syscalls
        .handlers
        .iter()
        .filter(|h| Some(h.pid) == main)
        .map(|h| h.signal)
        .collect();
    handlers.sort();
    handlers.dedup();
    proposal.handlers = handlers;
    proposal.leftovers = first.leftovers.clone();
    // Ten times the slower run, and never under five seconds: a loaded CI machine is
    // slower than the one the draft was made on.
    let slowest = first.duration.max(second.duration);
    proposal.timeout = Duration::from_secs((slowest.as_secs_f64() * 10.0).ceil().max(5.0) as u64);
    proposal
}

impl Proposal {
    /// How many outputs have strike entries so far.
    fn strikes_for_outputs(&self) -> usize {
        self.strikes
            .iter()
            .map(|s| s.output.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// What the file is drafted for: everything [`render`] needs beyond the proposal.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    /// The command as the scenario writes it (see [`scenario_arg`], [`beside_file`]).
    pub command: Vec<String>,
    /// The command as the user typed it, for comments.
    pub command_line: String,
    /// `killpoint new …` as typed.
    pub invocation: String,
    /// `[setup]`: each file's name in the sandbox and its `from`, relative to the file.
    pub setup: Vec<(String, String)>,
    /// The two runs' durations.
    pub durations: [Duration; 2],
}

/// A command argument as a scenario writes it: braces doubled, so a literal `{` is not
/// taken for a placeholder.
pub fn scenario_arg(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// A program beside the scenario file, `relative` to its directory: `{dir}/relative`.
pub fn beside_file(relative: &Path) -> String {
    format!("{{dir}}/{}", scenario_arg(&relative.to_string_lossy()))
}

/// A TOML string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn quoted_list<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| quote(i.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// A status as `[expect]` writes it: a code, or a quoted signal name.
fn status_value(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => c.to_string(),
        ExitStatus::Signal(s) => quote(s.name()),
    }
}

/// Text for a comment: one line.
fn flat(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\r' { '⏎' } else { c })
        .collect()
}

/// Appends `text` as `#` comment lines wrapped at about 90 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split(' ') {
        if line.len() > 1 && line.len() + 1 + word.len() > 90 {
            let _ = writeln!(out, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn calls(class: SyscallClass, n: u64) -> String {
    let (one, many) = match class {
        SyscallClass::Open => ("open", "opens"),
        SyscallClass::Truncate => ("truncate", "truncates"),
        SyscallClass::Write => ("write", "writes"),
        SyscallClass::Copy => ("copy (copy_file_range, sendfile or splice)", "copies"),
        SyscallClass::Fsync => ("fsync", "fsyncs"),
        SyscallClass::Rename => ("rename", "renames"),
        other => return format!("{n} {other} call(s)"),
    };
    plural(n, one, many)
}

/// What a strike entry means, for the comment above it.
fn strike_comment(entry: &StrikeEntry, output: &Output) -> String {
    let file = if entry.temp {
        format!("the temp file {}", entry.path)
    } else {
        output.path.clone()
    };
    let counts = match entry.counts {
        [a, b] if a == b => calls(entry.class, a),
        [a, b] => format!("{} ({b} in the second run)", calls(entry.class, a)),
    };
    match entry.class {
        SyscallClass::Open => format!(
            "The exit of the open of {file} ({counts}): the file exists, empty if the open created or truncated it, and nothing is written yet."
        ),
        SyscallClass::Truncate => format!(
            "The exit of the truncate of {file} ({counts}): its prior content has just gone."
        ),
        SyscallClass::Write => format!(
            "The writes to {file} ({counts}): at the entry the data is not written yet; at the exit it is, and the program has not seen the result."
        ),
        SyscallClass::Copy => format!(
            "The copies into {file} ({counts}, data moved without write, as cp does): entry or exit."
        ),
        SyscallClass::Fsync => {
            format!("The fsyncs of {file} ({counts}): entry (written, not yet durable) or exit.")
        }
        SyscallClass::Rename => format!(
            "The rename that publishes {file} ({counts}): at the entry the temp file is complete and not yet in place; at the exit it is in place."
        ),
        other => format!("The {other} calls naming {file} ({counts})."),
    }
}

/// How the program made an output, for the line that heads its strike entries.
fn made(output: &Output) -> String {
    let how = match &output.temp {
        Some(temp) => format!(
            "written to a temp file, {} (`{}` and `{}` in the two runs), then renamed over it",
            temp.glob.as_deref().unwrap_or("which no glob matches"),
            temp.names[0],
            temp.names[1]
        ),
        None => "written in place".to_string(),
    };
    format!("--- {}: {how}.", output.path)
}

/// The scenario file: keys the proposal decided, and a comment above each saying what it
/// means and what the user should decide.
pub fn render(request: &Request, proposal: &Proposal) -> String {
    let mut out = String::new();
    let durations = match request.durations {
        [a, b] => format!("{} and {}", ms(a), ms(b)),
    };
    let statuses: Vec<String> = proposal.clean.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(out, "# Drafted by\n#   {}", flat(&request.invocation));
    comment(
        &mut out,
        &format!(
            "which ran the command twice under killpoint's tracer, each time in a fresh sandbox with the setup files copied in: it ended with {} ({durations}).",
            statuses.join(" and ")
        ),
    );
    comment(
        &mut out,
        "Review it before trusting a verdict: every key below says what it means, and the lines that begin with \"Decide:\" are the user's to decide. A strike found by this draft is only as good as its expectations: a program is judged against what its documentation promises, not against what one run did.",
    );
    if let Some(status) = proposal.clean.iter().find(|s| **s != ExitStatus::Code(0)) {
        comment(
            &mut out,
            &format!(
                "Decide: the command ended with {status}, not exit 0. If that is not how a successful run ends, fix the command and draft again."
            ),
        );
    }
    for line in proposal_notes(proposal) {
        comment(&mut out, &line);
    }
    out.push('\n');

    comment(&mut out, "The scenario's name, shown in reports.");
    let _ = writeln!(out, "name = {}", quote(&request.name));
    comment(
        &mut out,
        "Decide: one line saying what this scenario checks.",
    );
    let _ = writeln!(out, "description = {}", quote(&flat(&request.command_line)));
    comment(
        &mut out,
        "The program and its arguments, run in each case's sandbox, which is also its working directory ({work} names it; {dir} is this file's directory).",
    );
    let _ = writeln!(out, "command = {}", quoted_list(&request.command));
    comment(
        &mut out,
        &format!(
            "How long an uninterrupted run may take before it counts as hung: ten times the slower run ({}), at least 5s.",
            ms(request.durations[0].max(request.durations[1]))
        ),
    );
    let _ = writeln!(
        out,
        "timeout = {}",
        quote(&crate::values::format_duration(proposal.timeout))
    );
    out.push('\n');

    let program = request
        .command_line
        .split_whitespace()
        .next()
        .unwrap_or("PROGRAM");
    let program = program.rsplit('/').next().unwrap_or(program);
    comment(
        &mut out,
        &format!(
            "Decide: the programs the command needs, each with the Debian package that provides it (`dpkg -S $(command -v {program})` says which), so that a machine without one skips the scenario and says what to install."
        ),
    );
    let _ = writeln!(out, "# [requires]");
    let _ = writeln!(out, "# {program} = \"PACKAGE\"");
    out.push('\n');

    if !request.setup.is_empty() {
        comment(
            &mut out,
            "Files copied into every sandbox before the run, from beside this file (`from` is relative to it): the program's inputs, and the prior content of an output it replaces.",
        );
        let _ = writeln!(out, "[setup]");
        for (name, from) in &request.setup {
            let _ = writeln!(out, "{} = {{ from = {} }}", quote(name), quote(from));
        }
        out.push('\n');
    }

    comment(
        &mut out,
        "The strike space: each case picks one entry, one of its signals and one point (nth = \"1..\": any of the calls the uninterrupted run makes). SIGTERM and SIGINT ask the program to stop, and it may clean up first; SIGKILL cannot be caught.",
    );
    comment(
        &mut out,
        "Decide: keep SIGKILL where the outputs must survive a crash (a temp file renamed into place can promise that; a file written in place cannot), and add the signals the program documents (SIGHUP, SIGQUIT).",
    );
    let signals = quoted_list(SIGNALS.iter().map(|s| s.name()));
    if proposal.strikes.is_empty() {
        out.push('\n');
        comment(
            &mut out,
            if proposal.outputs.is_empty() {
                "The runs created or replaced no file in the sandbox, so there is no write to strike at: this entry strikes after a delay drawn over the uninterrupted run's duration."
            } else {
                "The trace saw no open, write, copy, fsync or rename of the outputs that both runs made: this entry strikes after a delay drawn over the uninterrupted run's duration."
            },
        );
        let _ = writeln!(out, "[[strike]]");
        let _ = writeln!(out, "signal = {signals}");
    }
    let mut current: Option<&str> = None;
    for entry in &proposal.strikes {
        let output = proposal
            .outputs
            .iter()
            .find(|o| o.path == entry.output)
            .expect("a strike entry is about a declared output");
        out.push('\n');
        if current != Some(entry.output.as_str()) {
            current = Some(entry.output.as_str());
            comment(&mut out, &made(output));
        }
        comment(&mut out, &strike_comment(entry, output));
        let _ = writeln!(out, "[[strike]]");
        let _ = writeln!(out, "signal = {signals}");
        let _ = writeln!(
            out,
            "at = {{ syscall = {}, path = {}, nth = \"1..\", when = {} }}",
            quote(entry.class.name()),
            quote(&entry.path),
            quote(entry.when)
        );
    }
    out.push('\n');

    let _ = writeln!(out, "[expect]");
    comment(
        &mut out,
        "The exit status of a run no strike reached: as the runs ended.",
    );
    let _ = writeln!(
        out,
        "clean = [{}]",
        proposal
            .clean
            .iter()
            .map(|s| status_value(*s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let handlers = match proposal.handlers.as_slice() {
        [] => "The trace saw no signal handler installed: SIGTERM and SIGINT most likely kill it, which is [\"SIGTERM\", \"SIGINT\"]."
            .to_string(),
        some => format!(
            "The trace saw handlers installed for {}: it may clean up and then exit with a code of its own, or die of the signal ([\"SIGTERM\", \"SIGINT\"]).",
            some.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        ),
    };
    comment(
        &mut out,
        &format!(
            "Decide: the statuses the program promises after SIGTERM or SIGINT, from its documentation; unchecked while commented out. {handlers} (After SIGKILL: `killed`, default [\"SIGKILL\"].)"
        ),
    );
    let _ = writeln!(out, "# interrupted = [\"SIGTERM\", \"SIGINT\"]");
    if proposal.outputs.is_empty() {
        comment(
            &mut out,
            "No outputs: the runs created or replaced no file that both left with the same bytes, so atomic-output is off. Decide: list here the files the program promises never to leave torn.",
        );
        let _ = writeln!(out, "# outputs = [\"FILE\"]");
    } else {
        comment(
            &mut out,
            "Decide: the files that must be atomic, each absent, its prior content, or byte for byte what the uninterrupted run wrote, never torn; and no new file may be left beside them after a graceful stop. These are the files the runs created or replaced: remove any the program makes no promise about.",
        );
        let _ = writeln!(out, "outputs = [");
        for output in &proposal.outputs {
            let _ = writeln!(
                out,
                "    {},  # {}",
                quote(&output.path),
                flat(&output_note(output))
            );
        }
        let _ = writeln!(out, "]");
    }
    comment(
        &mut out,
        "Decide: how long the whole process tree may take to be gone after a strike; unchecked while commented out.",
    );
    let _ = writeln!(out, "# deadline = \"2s\"");
    comment(
        &mut out,
        "Also checked without a key: no process of the tree outlives the main one (no_leftover_processes), and stderr shows no crash (no_crash_output).",
    );
    out
}

/// What an output's line in `outputs` says about it.
fn output_note(output: &Output) -> String {
    let made = match output.prior {
        None => format!("created, {} bytes", output.size),
        Some(prior) => format!(
            "replaced: a setup file of {prior} bytes, {} bytes after the run",
            output.size
        ),
    };
    match &output.temp {
        Some(temp) => format!(
            "{made}, renamed into place from {}",
            temp.glob.as_deref().unwrap_or(&temp.names[0])
        ),
        None => made,
    }
}

/// The header's notes on what the runs did beyond the outputs.
fn proposal_notes(proposal: &Proposal) -> Vec<String> {
    let mut notes = Vec::new();
    if !proposal.left_out.is_empty() {
        let files: Vec<String> = proposal
            .left_out
            .iter()
            .map(|l| format!("{}: {}", l.path, l.why))
            .collect();
        notes.push(format!(
            "Not declared as outputs: {}. Compared byte for byte with the uninterrupted run, a file that differs between clean runs would be judged torn in every case. Decide: declare it judged instead, `{{ path = \"FILE\", valid = [\"CMD\", \"{{path}}\"] }}` (a command that exits 0 on a complete file: `sqlite3 {{path}} \"PRAGMA quick_check\"`-like), or `{{ path = \"FILE\", normalize = [\"CMD\"] }}` (both sides piped through it before they are compared: `sed 1d` drops a time stamp on the first line); or make the program deterministic (a fixed seed, no time stamps).",
            files.join("; ")
        ));
    }
    for temp in proposal
        .outputs
        .iter()
        .filter_map(|o| o.temp.as_ref().filter(|t| t.glob.is_none()).map(|t| (o, t)))
    {
        notes.push(format!(
            "{} is renamed into place from `{}` (`{}` in the second run), and no glob matches both names: its temp file has no strike entry.",
            temp.0.path, temp.1.names[0], temp.1.names[1]
        ));
    }
    if !proposal.unstruck.is_empty() {
        notes.push(format!(
            "No strike entry names {}: {}.",
            proposal.unstruck.join(", "),
            if proposal.strikes.is_empty() {
                "the trace saw no call writing them that both runs made"
            } else {
                "either the trace saw no call writing them that both runs made, or entries for the first outputs are enough to start with"
            }
        ));
    }
    if !proposal.removed.is_empty() {
        notes.push(format!(
            "The run removed {} (from [setup]); an absent output is allowed, so a removal is not checked.",
            proposal.removed.join(", ")
        ));
    }
    if !proposal.leftovers.is_empty() {
        notes.push(format!(
            "Decide: the command left {} running after it exited ({}), killed then; no_leftover_processes will report that as a violation found by the uninterrupted run.",
            plural(proposal.leftovers.len() as u64, "process", "processes"),
            proposal
                .leftovers
                .iter()
                .map(|l| flat(l))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    notes
}

/// The summary `killpoint new` prints after writing the file.
pub fn summary(file: &str, request: &Request, proposal: &Proposal) -> String {
    let mut out = String::new();
    let statuses: Vec<String> = proposal.clean.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(out, "killpoint new: wrote {file}");
    let _ = writeln!(
        out,
        "  ran twice: {} → {} ({} and {})",
        flat(&request.command_line),
        statuses.join(" and "),
        ms(request.durations[0]),
        ms(request.durations[1])
    );
    if proposal.outputs.is_empty() {
        let _ = writeln!(
            out,
            "  outputs: none (the runs created or replaced no file)"
        );
    } else {
        let list: Vec<String> = proposal
            .outputs
            .iter()
            .map(|o| format!("{} ({})", o.path, output_note(o)))
            .collect();
        let _ = writeln!(out, "  outputs: {}", list.join("; "));
    }
    for left in &proposal.left_out {
        let _ = writeln!(out, "  not an output: {}: {}", left.path, left.why);
    }
    if proposal.strikes.is_empty() {
        let _ = writeln!(
            out,
            "  strikes: 1 entry, after a delay (no write of an output to strike at)"
        );
    } else {
        let points: Vec<String> = proposal
            .strikes
            .iter()
            .map(|s| format!("{} {}", s.class, s.path))
            .collect();
        let _ = writeln!(
            out,
            "  strikes: {} entries, SIGTERM/SIGINT/SIGKILL at {}",
            proposal.strikes.len(),
            points.join(", ")
        );
    }
    if let Some(status) = proposal.clean.iter().find(|s| **s != ExitStatus::Code(0)) {
        let _ = writeln!(
            out,
            "  warning: the command ended with {status}; `clean` says so, check that it is how a successful run ends"
        );
    }
    if !proposal.leftovers.is_empty() {
        let _ = writeln!(
            out,
            "  warning: the command left {} running after it exited",
            plural(proposal.leftovers.len() as u64, "process", "processes")
        );
    }
    let _ = writeln!(
        out,
        "next: review the lines that begin with \"Decide:\", then\n  killpoint check {file}\n  killpoint run {file}"
    );
    out
}

/// `path` relative to the directory `from` (both absolute): `../data/in.txt`.
pub fn relative(from: &Path, path: &Path) -> PathBuf {
    let (a, b): (Vec<Component>, Vec<Component>) =
        (from.components().collect(), path.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for part in &b[common..] {
        out.push(part);
    }
    out
}

/// Whether `name` can name a scenario and its file: letters, digits, `.`, `_` and `-`,
/// beginning with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.ends_with(".toml") {
        return Err(format!(
            "`{name}`: NAME is the scenario's name, without .toml (the file is NAME.toml, or --out PATH)"
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first || name.len() > 100 || !chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!(
            "`{name}` is not a scenario name: letters, digits, `.`, `_` and `-`, beginning with a letter or digit, e.g. gzip-keep"
        ));
    }
    Ok(())
}

/// Why a draft could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// killpoint itself was asked to stop.
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Failed(String),
}

impl From<RunError> for DraftError {
    fn from(e: RunError) -> DraftError {
        match e {
            RunError::Interrupted => DraftError::Interrupted,
            e => DraftError::Failed(e.to_string()),
        }
    }
}

/// Runs the command once under the tracer, every class trapped, in a fresh sandbox made
/// from `setup`; the sandbox is removed when this returns, also when interrupted.
pub fn observe(
    program: &Path,
    args: &[OsString],
    setup: &[SetupEntry],
    timeout: Duration,
) -> Result<Observation, DraftError> {
    let sandbox = Sandbox::create(setup)
        .map_err(|e| DraftError::Failed(format!("cannot make a sandbox: {e}")))?;
    let files = |when: &str| {
        sandbox
            .files()
            .map_err(|e| DraftError::Failed(format!("cannot read the sandbox's files {when}: {e}")))
    };
    let before = files("before the run")?;
    let launch = Launch {
        program: program.to_path_buf(),
        args: args.to_vec(),
        env: Default::default(),
        cwd: sandbox.path().to_path_buf(),
        capture: true,
        isolate_network: false,
    };
    let trace = TraceSetup {
        classes: SyscallClass::ALL.into_iter().collect(),
        strikes: Vec::new(),
        root: sandbox.path().to_path_buf(),
        keep_events: true,
        handler_io: false,
        record: false,
    };
    run::become_subreaper();
    let ran = run::run(
        &launch,
        &[],
        &[],
        Limits {
            timeout,
            deadline: None,
            grace: crate::expect::DEFAULT_LEFTOVER_GRACE,
        },
        Some(trace),
        Default::default(),
    )?;
    if ran
        .killed
        .as_ref()
        .is_some_and(|k| k.reason == KillReason::TimedOut)
    {
        return Err(DraftError::Failed(format!(
            "`{}` ran past the timeout ({}) and was killed: a scenario needs a command that finishes by itself; give --timeout a longer time if it needs one",
            program.display(),
            crate::values::format_duration(timeout)
        )));
    }
    let log = ran.trace.unwrap_or_default();
    if let Some(failure) = log.failure {
        return Err(DraftError::Failed(format!(
            "the trace of `{}` is incomplete: {failure}",
            program.display()
        )));
    }
    let after = files("after the run")?;
    let stderr: Vec<&str> = ran.stderr.text.lines().collect();
    Ok(Observation {
        status: Some(ran.status),
        duration: ran.exited_at,
        syscalls: log.census,
        before,
        after,
        leftovers: ran.leftovers.into_iter().map(|p| p.command).collect(),
        stderr: stderr[stderr.len().saturating_sub(5)..].join("\n"),
    })
}

/// What `killpoint new` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    /// Files or directories to copy into the sandbox, as given.
    pub setup: Vec<PathBuf>,
    /// Where to write the file; default `NAME.toml` in `cwd`.
    pub out: Option<PathBuf>,
    pub force: bool,
    /// The most one run may take.
    pub timeout: Duration,
    pub command: Vec<OsString>,
    /// `killpoint new …` as typed, for the header.
    pub invocation: String,
    /// The directory relative paths are taken from.
    pub cwd: PathBuf,
}

/// What `killpoint new` wrote.
#[derive(Debug)]
pub struct Written {
    /// The file, as the user named it (or `NAME.toml`).
    pub file: PathBuf,
    pub request: Request,
    pub proposal: Proposal,
}

fn failed(message: impl Into<String>) -> DraftError {
    DraftError::Failed(message.into())
}

/// Drafts the scenario and writes it: checks the name, the file and the setup files
/// before anything runs, runs the command twice, writes the file only once it parses and
/// its setup files resolve from where it is (atomically; without `force`, never over an
/// existing file).
pub fn draft(options: &Options) -> Result<Written, DraftError> {
    check_name(&options.name).map_err(failed)?;
    let file = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", options.name)));
    let full = options.cwd.join(&file);
    if !options.force && std::fs::symlink_metadata(&full).is_ok() {
        return Err(failed(format!(
            "{} already exists: give --force to replace it, or --out PATH to write elsewhere",
            file.display()
        )));
    }
    let parent = full.parent().unwrap_or(Path::new("/"));
    let dir = std::fs::canonicalize(parent).map_err(|e| {
        failed(format!(
            "cannot write {}: its directory {}: {e}",
            file.display(),
            parent.display()
        ))
    })?;

    // Each setup file goes into the sandbox under its own name, and the scenario copies it
    // from where it is, relative to the scenario file, as `killpoint run` will.
    let mut setup = Vec::new();
    let mut table = BTreeMap::new();
    for given in &options.setup {
        let at = std::fs::canonicalize(options.cwd.join(given))
            .map_err(|e| failed(format!("setup file {}: {e}", given.display())))?;
        let name = at
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| failed(format!("setup file {}: has no file name", given.display())))?;
        let from = relative(&dir, &at);
        let work: crate::values::WorkPath = name
            .parse()
            .map_err(|e| failed(format!("setup file {}: {e}", given.display())))?;
        if table
            .insert(work, crate::setup::SetupFile::from_fixture(from.clone()))
            .is_some()
        {
            return Err(failed(format!(
                "two setup files are named {name}: each is copied into the sandbox under its own file name"
            )));
        }
        setup.push((name, from.to_string_lossy().into_owned()));
    }
    let entries = crate::setup::resolve(&table, &dir).map_err(failed)?;

    let mut text_args = Vec::new();
    for arg in &options.command {
        text_args.push(arg.to_str().map(str::to_string).ok_or_else(|| {
            failed(format!(
                "the argument {arg:?} is not UTF-8: a scenario file holds text"
            ))
        })?);
    }
    let (program, args) = text_args.split_first().expect("clap requires a command");
    // A program given by a relative path is beside the user, not in the sandbox: run it
    // from there, and write it relative to the scenario file ({dir}).
    let (launched, written) = if program.contains('/') && !program.starts_with('/') {
        let at = std::path::absolute(options.cwd.join(program))
            .map_err(|e| failed(format!("{program}: {e}")))?;
        let written = beside_file(&relative(&dir, &at));
        (at, written)
    } else {
        (PathBuf::from(program), scenario_arg(program))
    };
    let mut command = vec![written];
    command.extend(args.iter().map(|a| scenario_arg(a)));

    crate::os::leftovers::remove_once();
    let args: Vec<OsString> = options.command[1..].to_vec();
    let first = observe(&launched, &args, &entries, options.timeout)?;
    let second = observe(&launched, &args, &entries, options.timeout)?;
    let proposal = propose(&first, &second);
    let request = Request {
        name: options.name.clone(),
        command,
        command_line: shell_line(&text_args),
        invocation: options.invocation.clone(),
        setup,
        durations: [first.duration, second.duration],
    };
    let text = render(&request, &proposal);

    // A draft that does not parse, or whose fixtures do not resolve from where it is, is
    // a bug of this command: say so rather than leave a file `check` refuses.
    let mut scenario = crate::scenario::Scenario::parse(&text, &full).map_err(|e| {
        failed(format!(
            "the drafted scenario does not check, which is a bug in killpoint new: {e}\n{text}"
        ))
    })?;
    scenario.source = Some(full.clone());
    scenario.setup_entries().map_err(|e| {
        failed(format!(
            "the drafted scenario's setup does not resolve, which is a bug in killpoint new: {e}"
        ))
    })?;
    write(&full, &text, options.force)
        .map_err(|e| failed(format!("cannot write {}: {e}", file.display())))?;
    Ok(Written {
        file,
        request,
        proposal,
    })
}

/// Writes `text` to `path` through a temp file beside it and a rename, so an interrupted
/// `killpoint new` leaves the old file or the new one, never half of one; without
/// `replace`, an existing file stays and is an error.
fn write(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".killpoint-new-")
        .tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    if replace {
        temp.persist(path).map_err(|e| e.error)?;
    } else {
        temp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// A command line as a shell would take it back: words quoted where they need it.
pub fn shell_line<T: AsRef<str>>(words: &[T]) -> String {
    words
        .iter()
        .map(|w| {
            let w = w.as_ref();
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                w.to_string()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::{Call, InstalledHandler, TracedProcess};

    /// A census of these calls, in order: (class, paths).
    fn census(calls: &[(SyscallClass, &[&str])]) -> SyscallCensus {
        let mut census = SyscallCensus::new(SyscallClass::ALL.into_iter().collect());
        for (seq, (class, paths)) in calls.iter().enumerate() {
            let mut call = Call::naming(*class, paths[0]);
            call.paths = paths.iter().map(|p| p.to_string()).collect();
            census.add_call(&call, seq as u64 + 1, 10, "prog");
        }
        census
    }

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
            .collect()
    }

    fn run(
        calls: &[(SyscallClass, &[&str])],
        before: &[(&str, &str)],
        after: &[(&str, &str)],
    ) -> Observation {
        Observation {
            status: Some(ExitStatus::Code(0)),
            duration: Duration::from_millis(8),
            syscalls: census(calls),
            before: files(before),
            after: files(after),
            leftovers: Vec::new(),
            stderr: String::new(),
        }
    }

    use SyscallClass::{Copy, Fsync, Open, Rename, Truncate, Write};

    /// sed -i: the input is read, a temp file `sedXXXXXX` written and renamed over it.
    fn sed(temp: &str) -> Observation {
        run(
            &[
                (Open, &["in.txt"]),
                (Open, &[temp]),
                (Write, &[temp]),
                (Write, &[temp]),
                (Rename, &[temp, "in.txt"]),
            ],
            &[("in.txt", "banana\n")],
            &[("in.txt", "bbnana\n")],
        )
    }

    fn request(name: &str, command: &[&str]) -> Request {
        Request {
            name: name.into(),
            command: command.iter().map(|a| scenario_arg(a)).collect(),
            command_line: shell_line(command),
            invocation: format!("killpoint new {name} -- {}", shell_line(command)),
            setup: Vec::new(),
            durations: [Duration::from_millis(8), Duration::from_millis(9)],
        }
    }

    /// Comment lines joined back into the sentences they were wrapped from.
    fn unwrapped(text: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        for line in text.lines() {
            // A commented-out key stays on its line.
            let key = |rest: &str| {
                rest.starts_with('[')
                    || rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            };
            match (out.last_mut(), line.strip_prefix("# ")) {
                (Some(last), Some(rest))
                    if last.starts_with('#') && !key(rest) && !last.get(2..).is_some_and(key) =>
                {
                    last.push(' ');
                    last.push_str(rest);
                }
                _ => out.push(line.to_string()),
            }
        }
        out.join("\n") + "\n"
    }

    /// The rendered proposal, parsed back as a scenario.
    fn parsed(request: &Request, proposal: &Proposal) -> crate::scenario::Scenario {
        let text = render(request, proposal);
        crate::scenario::Scenario::parse(&text, Path::new("draft.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn points(scenario: &crate::scenario::Scenario) -> Vec<String> {
        scenario
            .strikes
            .iter()
            .map(|s| match &s.at {
                crate::strike::PointSpec::Syscall(p) => format!(
                    "{} {} {}",
                    p.syscall,
                    p.path.as_ref().map(|g| g.as_str()).unwrap_or("-"),
                    p.when
                ),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_temp_file_renamed_over_its_input_is_struck_through_a_glob_of_both_names() {
        let proposal = propose(&sed("sedGsyU6j"), &sed("sedq3LxAb"));
        assert_eq!(
            proposal.outputs,
            [Output {
                path: "in.txt".into(),
                size: 7,
                prior: Some(7),
                temp: Some(Temp {
                    names: ["sedGsyU6j".into(), "sedq3LxAb".into()],
                    glob: Some("sed*".into()),
                }),
            }]
        );
        let strikes: Vec<(SyscallClass, &str, &str, [u64; 2], bool)> = proposal
            .strikes
            .iter()
            .map(|s| (s.class, s.path.as_str(), s.when, s.counts, s.temp))
            .collect();
        // No open of in.txt: sed only reads it.
        assert_eq!(
            strikes,
            [
                (Open, "sed*", "exit", [1, 1], true),
                (Write, "sed*", "both", [2, 2], true),
                (Rename, "in.txt", "both", [1, 1], false),
            ]
        );
        assert!(proposal.left_out.is_empty() && proposal.unstruck.is_empty());
        assert_eq!(proposal.clean, [ExitStatus::Code(0)]);
        assert_eq!(proposal.timeout, Duration::from_secs(5));

        let scenario = parsed(
            &request("sed-in-place", &["sed", "-i", "s/a/b/", "in.txt"]),
            &proposal,
        );
        assert_eq!(
            points(&scenario),
            ["open sed* exit", "write sed* both", "rename in.txt both"]
        );
        assert_eq!(
            scenario
                .expect
                .outputs
                .iter()
                .map(|o| o.path.as_str())
                .collect::<Vec<_>>(),
            ["in.txt"]
        );
        assert_eq!(scenario.expect.clean, [ExitStatus::Code(0)]);
        assert_eq!(
            scenario.expect.interrupted, None,
            "left for the user to decide"
        );
        assert!(scenario.strikes.iter().all(|s| s.signal.0 == SIGNALS));
    }

    #[test]
    fn an_in_place_writer_is_struck_at_its_open_truncate_writes_and_fsync() {
        let sort = || {
            run(
                &[
                    (Open, &["words.txt"]),
                    (Open, &["out.txt"]),
                    (Truncate, &["out.txt"]),
                    (Write, &["out.txt"]),
                    (Write, &["out.txt"]),
                    (Write, &["out.txt"]),
                    (Fsync, &["out.txt"]),
                    (Write, &["<stderr>"]),
                ],
                &[("words.txt", "b\na\n")],
                &[("words.txt", "b\na\n"), ("out.txt", "a\nb\n")],
            )
        };
        let proposal = propose(&sort(), &sort());
        assert_eq!(proposal.outputs.len(), 1);
        assert_eq!(proposal.outputs[0].prior, None, "created by the run");
        let strikes: Vec<(SyscallClass, &str, [u64; 2])> = proposal
            .strikes
            .iter()
            .map(|s| (s.class, s.when, s.counts))
            .collect();
        assert_eq!(
            strikes,
            [
                (Open, "exit", [1, 1]),
                (Truncate, "exit", [1, 1]),
                (Write, "both", [3, 3]),
                (Fsync, "both", [1, 1]),
            ]
        );
        assert!(proposal.strikes.iter().all(|s| s.path == "out.txt"));
        let scenario = parsed(
            &request("sort", &["sort", "-o", "out.txt", "words.txt"]),
            &proposal,
        );
        assert_eq!(scenario.strikes.len(), 4);
    }

    #[test]
    fn a_copy_is_struck_at_its_destination_and_a_source_is_no_output() {
        let cp = || {
            run(
                &[
                    (Open, &["big.txt"]),
                    (Open, &["dst.txt"]),
                    (Copy, &["big.txt", "dst.txt"]),
                    (Copy, &["big.txt", "dst.txt"]),
                ],
                &[("big.txt", "data")],
                &[("big.txt", "data"), ("dst.txt", "data")],
            )
        };
        let proposal = propose(&cp(), &cp());
        assert_eq!(
            proposal
                .outputs
                .iter()
                .map(|o| o.path.as_str())
                .collect::<Vec<_>>(),
            ["dst.txt"]
        );
        let strikes: Vec<(SyscallClass, &str)> = proposal
            .strikes
            .iter()
            .map(|s| (s.class, s.path.as_str()))
            .collect();
        assert_eq!(strikes, [(Open, "dst.txt"), (Copy, "dst.txt")]);
    }

    #[test]
    fn files_that_differ_between_the_runs_are_left_out_and_said_so() {
        let first = run(
            &[(Write, &["out.txt"]), (Write, &["stamp.txt"])],
            &[],
            &[
                ("out.txt", "same"),
                ("stamp.txt", "12:00:01"),
                ("tmpA1b2C3", "x"),
            ],
        );
        let second = run(
            &[(Write, &["out.txt"]), (Write, &["stamp.txt"])],
            &[],
            &[
                ("out.txt", "same"),
                ("stamp.txt", "12:00:02!"),
                ("tmpZ9y8X7", "x"),
            ],
        );
        let proposal = propose(&first, &second);
        assert_eq!(
            proposal
                .outputs
                .iter()
                .map(|o| o.path.as_str())
                .collect::<Vec<_>>(),
            ["out.txt"]
        );
        assert_eq!(
            proposal.left_out,
            [
                LeftOut {
                    path: "stamp.txt".into(),
                    why: "the two runs wrote different bytes, 8 and 9, the first difference at offset 7".into()
                },
                LeftOut {
                    path: "tmpA1b2C3".into(),
                    why: "the second run did not leave it (a name that changes from run to run?)".into()
                },
                LeftOut {
                    path: "tmpZ9y8X7".into(),
                    why: "only the second run left it (a name that changes from run to run?)".into()
                },
            ]
        );
        let text = unwrapped(&render(&request("stamp", &["stamp"]), &proposal));
        assert!(
            text.contains("Not declared as outputs: stamp.txt: the two runs wrote different bytes, 8 and 9, the first difference at offset 7; tmpA1b2C3: the second run did not leave it"),
            "{text}"
        );
    }

    #[test]
    fn a_call_only_one_run_made_is_not_a_strike_point() {
        // The census of a campaign is another run: a point it may not reach is an error.
        let first = run(
            &[(Write, &["out.txt"]), (Fsync, &["out.txt"])],
            &[],
            &[("out.txt", "x")],
        );
        let second = run(&[(Write, &["out.txt"])], &[], &[("out.txt", "x")]);
        let proposal = propose(&first, &second);
        let strikes: Vec<SyscallClass> = proposal.strikes.iter().map(|s| s.class).collect();
        assert_eq!(strikes, [Write]);
    }

    #[test]
    fn without_writes_to_strike_at_the_draft_strikes_after_a_delay_and_still_parses() {
        let mut quiet = run(&[(Write, &["<stdout>"])], &[], &[]);
        quiet.status = Some(ExitStatus::Code(3));
        let mut other = quiet.clone();
        other.status = Some(ExitStatus::Code(0));
        let proposal = propose(&quiet, &other);
        assert!(proposal.outputs.is_empty() && proposal.strikes.is_empty());
        assert_eq!(proposal.clean, [ExitStatus::Code(3), ExitStatus::Code(0)]);
        let request = request("quiet", &["awk", "BEGIN {print 1}"]);
        let text = unwrapped(&render(&request, &proposal));
        assert!(
            text.contains(
                "\n[[strike]]\nsignal = [\"SIGTERM\", \"SIGINT\", \"SIGKILL\"]\n\n[expect]\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nclean = [3, 0]\n"), "{text}");
        assert!(
            text.contains(" Decide: the command ended with exit 3, not exit 0."),
            "{text}"
        );
        let scenario = parsed(&request, &proposal);
        assert!(matches!(
            scenario.strikes[0].at,
            crate::strike::PointSpec::Delay { .. }
        ));
        assert!(scenario.expect.outputs.is_empty());
        // The braces of the awk program were doubled, and read back as written.
        assert_eq!(scenario.command[1].raw, "BEGIN {{print 1}}");
        assert_eq!(
            scenario.command[1].parts,
            [crate::values::ArgPart::Text("BEGIN {print 1}".into())]
        );
    }

    #[test]
    fn handlers_of_the_main_process_are_named_for_the_interrupted_decision() {
        let mut gzip = run(&[(Write, &["big.txt.gz"])], &[], &[("big.txt.gz", "z")]);
        for (pid, signal) in [
            (10, Signal::SIGTERM),
            (10, Signal::SIGINT),
            (11, Signal::SIGHUP),
        ] {
            gzip.syscalls.handlers.push(InstalledHandler {
                signal,
                pid,
                at: Duration::from_millis(1),
            });
        }
        gzip.syscalls.processes.push(TracedProcess {
            pid: 10,
            parent: None,
            command: "gzip".into(),
            program: "gzip".into(),
            threads: 0,
            status: Some(ExitStatus::Code(0)),
            started_at: Duration::ZERO,
            exited_at: None,
            signals: Vec::new(),
        });
        let proposal = propose(&gzip, &gzip);
        assert_eq!(proposal.handlers, [Signal::SIGINT, Signal::SIGTERM]);
        let text = unwrapped(&render(
            &request("gzip", &["gzip", "-k", "big.txt"]),
            &proposal,
        ));
        assert!(
            text.contains("The trace saw handlers installed for SIGINT, SIGTERM:"),
            "{text}"
        );
        assert!(
            text.contains("\n# interrupted = [\"SIGTERM\", \"SIGINT\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn outputs_past_the_limit_are_declared_without_strike_entries() {
        let names: Vec<String> = (0..10).map(|i| format!("part-{i:02}")).collect();
        let calls: Vec<(SyscallClass, Vec<&str>)> =
            names.iter().map(|n| (Write, vec![n.as_str()])).collect();
        let calls: Vec<(SyscallClass, &[&str])> =
            calls.iter().map(|(c, p)| (*c, p.as_slice())).collect();
        let after: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
        let split = run(&calls, &[], &after);
        let proposal = propose(&split, &split);
        assert_eq!(proposal.outputs.len(), 10);
        assert_eq!(proposal.strikes.len(), STRUCK_OUTPUTS);
        assert_eq!(proposal.unstruck, ["part-08", "part-09"]);
        let scenario = parsed(&request("split", &["split"]), &proposal);
        assert_eq!(scenario.expect.outputs.len(), 10);
    }

    #[test]
    fn temp_globs_star_the_part_that_changes_and_match_both_names() {
        let glob = |a, b| temp_glob(a, b);
        assert_eq!(
            glob("out.json.tmp", "out.json.tmp").as_deref(),
            Some("out.json.tmp")
        );
        assert_eq!(glob("sedGsyU6j", "sedq3LxAb").as_deref(), Some("sed*"));
        // Random parts that happen to share a first or a last character.
        assert_eq!(glob("sedGsyU6j", "sedGq3LxA").as_deref(), Some("sed*"));
        assert_eq!(glob("sedAbc12j", "sedXyz98j").as_deref(), Some("sed*"));
        // A fixed ending that is not random is kept.
        assert_eq!(
            glob("tmpab12cd34.json", "tmpzz99yy88.json").as_deref(),
            Some("tmp*.json")
        );
        assert_eq!(
            glob("sub/.out.XAbc12", "sub/.out.Yz98qq").as_deref(),
            Some("sub/.out.*")
        );
        // A pid: the starred part is widened to six characters.
        assert_eq!(
            glob(".out.json.tmp-4123", ".out.json.tmp-987").as_deref(),
            Some(".out.json.t*")
        );
        assert_eq!(glob("a/x1", "b/x2"), None, "different directories");
        assert_eq!(
            glob("out[1].txt", "out[1].txt").as_deref(),
            Some("out[[]1[]].txt")
        );
        assert!(
            "out[[]1[]].txt"
                .parse::<PathGlob>()
                .unwrap()
                .matches("out[1].txt")
        );
    }

    #[test]
    fn relative_paths_climb_out_of_the_scenario_directory() {
        let rel = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(rel("/w/s", "/w/s/big.txt"), "big.txt");
        assert_eq!(rel("/w/s", "/w/data/big.txt"), "../data/big.txt");
        assert_eq!(rel("/w/s/deep", "/x"), "../../../x");
    }

    #[test]
    fn names_commands_and_shell_lines() {
        assert!(check_name("gzip-keep_2.x").is_ok());
        assert!(
            check_name("gzip.toml")
                .unwrap_err()
                .contains("without .toml")
        );
        for bad in ["", "-x", "a/b", "a b", ".hidden"] {
            assert!(
                check_name(bad)
                    .unwrap_err()
                    .contains("is not a scenario name"),
                "{bad}"
            );
        }
        assert_eq!(scenario_arg("{print $1}"), "{{print $1}}");
        assert_eq!(beside_file(Path::new("bin/w{1}.py")), "{dir}/bin/w{{1}}.py");
        assert_eq!(
            shell_line(&["sed", "-i", "s/a b/c/", "it's"]),
            "sed -i 's/a b/c/' 'it'\\''s'"
        );
    }
}
