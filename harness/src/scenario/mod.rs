//! The Scenario: what to run, which strikes are allowed, what must hold.
//!
//! A scenario is written as a TOML file (see `scenarios/README.md` for the format) and
//! loads into [`Scenario`]; every key is checked, and a mistake is reported with the file,
//! line, column and key ([`ScenarioError`]).

pub mod build;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::expect::{
    AckedSpec, Expect, IdReader, MarkerSource, OnceSpec, Pattern, Reports, ResumeSpec, Severity,
    SurvivorSource, Survivors,
};
pub use crate::server::{ClientSpec, Port, ReadyOn, ReadySpec, StopAfter, StopSpec};
pub use crate::setup::{SetupContent, SetupFile};
pub use crate::strike::{PointSpec, ProbePoint, ProcessSelector, Recipient, Strike, SyscallPoint};
pub use crate::values::{
    Arg, ArgPart, DelayRange, ExitStatus, Nth, NthBound, PathGlob, ProgramGlob, Signal, SignalSet,
    WorkPath, format_duration, parse_duration,
};
pub use build::{ExitCodes, Expectation};

use crate::invariants::{self, Invariant};
use crate::strike::{RawPoint, RawStrike};
use crate::syscalls::{ClassSet, SyscallClass};
use crate::values;

/// What to run, which strikes may hit it, and what must hold afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, used in reports and test names.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The program and its arguments; `{work}`, `{dir}` and `{bin:NAME}` are filled in per
    /// case.
    #[serde(deserialize_with = "non_empty_command")]
    pub command: Vec<Arg>,
    /// Extra environment variables for the target.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A command run in each sandbox after `[setup]` and before the target (the census's
    /// and every case's), with the scenario's `env`: never traced, never struck, not part
    /// of the timeline. What it leaves is prior state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prepare: Vec<Arg>,
    /// Programs that must be on the PATH for the scenario to run, each with the Debian
    /// package that provides it, so that a machine without one is told what to install.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "requirements"
    )]
    pub requires: BTreeMap<String, String>,
    /// The longest an uninterrupted run may take before it counts as hung.
    #[serde(default = "default_timeout", with = "values::duration")]
    pub timeout: Duration,
    /// Files created in the sandbox before each run (path → text, or a fixture file
    /// copied byte for byte): the prior content of outputs, the inputs of the program.
    #[serde(default)]
    pub setup: BTreeMap<WorkPath, SetupFile>,
    /// How many cases a campaign runs when the command line does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases: Option<u32>,
    /// How many strikes one case may have (each picks an entry, a signal and a point);
    /// a later strike's point counts from the strike before it.
    #[serde(default = "one", deserialize_with = "strike_count")]
    pub max_strikes: u32,
    /// Try every point of the strike space instead of sampling `cases` of them.
    #[serde(default)]
    pub exhaustive: bool,
    /// The most points an exhaustive run may try.
    #[serde(default = "default_exhaustive_limit")]
    pub exhaustive_limit: u64,
    /// How long a failure may be shrunk.
    #[serde(default)]
    pub shrink: ShrinkBudget,
    /// When the target can take clients: strikes may count from it (`after_ready`), and
    /// the clients start then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadySpec>,
    /// How a run no strike reached ends (a server's census is a graceful stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSpec>,
    /// Commands started once the target is ready: its load.
    #[serde(rename = "client", default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientSpec>,
    /// Each run in a network namespace of its own, with its own loopback: a server with
    /// a fixed port runs in parallel cases (root or user namespaces needed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate_network: bool,
    /// The strike space: each case picks one entry, one of its signals and one point.
    #[serde(rename = "strike", default)]
    pub strikes: Vec<Strike>,
    #[serde(default)]
    pub expect: Expect,
    /// The file the scenario was loaded from (set by [`Scenario::load`]).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Promises of the user's own, judged on every case after the built-in invariants
    /// ([`Scenario::invariant`]); a file cannot declare them.
    #[serde(skip)]
    pub invariants: Vec<Invariant>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn one() -> u32 {
    1
}

/// The most strikes a plan may have: more is a storm, not a plan.
pub const MAX_STRIKES: u32 = 16;

fn strike_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    check_strike_count(n).map_err(serde::de::Error::custom)?;
    Ok(n)
}

fn check_strike_count(n: u32) -> Result<(), String> {
    if (1..=MAX_STRIKES).contains(&n) {
        Ok(())
    } else {
        Err(format!("`max_strikes` must be 1 to {MAX_STRIKES}, not {n}"))
    }
}

/// The default bound on an exhaustive run's points.
pub const DEFAULT_EXHAUSTIVE_LIMIT: u64 = 512;

fn default_exhaustive_limit() -> u64 {
    DEFAULT_EXHAUSTIVE_LIMIT
}

/// How much shrinking a failure may take: runs of the target, and wall time. Whichever
/// runs out first ends it, keeping the simplest failing plan found so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShrinkBudget {
    #[serde(default = "default_shrink_iterations")]
    pub iterations: u32,
    #[serde(default = "default_shrink_time", with = "values::duration")]
    pub time: Duration,
}

impl Default for ShrinkBudget {
    fn default() -> Self {
        ShrinkBudget {
            iterations: default_shrink_iterations(),
            time: default_shrink_time(),
        }
    }
}

fn default_shrink_iterations() -> u32 {
    128
}

fn default_shrink_time() -> Duration {
    Duration::from_secs(60)
}

fn requirements<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    // Each name is checked as it is read, so an error points at the name itself.
    struct Program(String);
    struct Package(String);
    impl<'de> Deserialize<'de> for Program {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let name = String::deserialize(d)?;
            check_program(&name).map_err(serde::de::Error::custom)?;
            Ok(Program(name))
        }
    }
    impl<'de> Deserialize<'de> for Package {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let name = String::deserialize(d)?;
            check_package(&name).map_err(serde::de::Error::custom)?;
            Ok(Package(name))
        }
    }
    impl PartialEq for Program {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Program {}
    impl PartialOrd for Program {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Program {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }
    let requires = BTreeMap::<Program, Package>::deserialize(d)?;
    Ok(requires.into_iter().map(|(p, q)| (p.0, q.0)).collect())
}

/// A `[requires]` program: a bare name, looked up on the PATH.
fn check_program(program: &str) -> Result<(), String> {
    if program.is_empty() || program.contains('/') || program.contains(char::is_whitespace) {
        return Err(format!(
            "`{program}` is not a program name: `[requires]` names programs looked up on the PATH, e.g. gzip = \"gzip\""
        ));
    }
    Ok(())
}

/// A Debian package name: lower case letters, digits, `+`, `-` and `.`, starting with a
/// letter or digit, at least two characters.
fn check_package(package: &str) -> Result<(), String> {
    let mut chars = package.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !first_ok || !rest_ok || package.len() < 2 {
        return Err(format!(
            "`{package}` is not a Debian package name (lower case letters, digits, `+`, `-` and `.`), e.g. \"{}\"",
            package.to_ascii_lowercase()
        ));
    }
    Ok(())
}

fn check_requirement(program: &str, package: &str) -> Result<(), String> {
    check_program(program)?;
    check_package(package)
}

/// The error for a required program that is not on the PATH.
pub fn not_installed(program: &str, package: &str) -> String {
    format!("{program} is not installed (Debian package {package}: apt-get install {package})")
}

pub(crate) fn non_empty_command<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Arg>, D::Error> {
    let command = Vec::<Arg>::deserialize(d)?;
    if command.is_empty() {
        return Err(serde::de::Error::custom(
            "the command is empty: give the program and its arguments, e.g. [\"{bin:atomic-writer}\", \"--output\", \"{work}/out.json\"]",
        ));
    }
    Ok(command)
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        let mut scenario = Scenario::parse(&text, path)?;
        scenario.source = Some(path.to_path_buf());
        Ok(scenario)
    }

    /// Parses and checks scenario text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let error = |key: Option<String>, span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = span.map(|s| line_column(text, s.start)).unwrap_or((1, 1));
            ScenarioError {
                path: path.to_path_buf(),
                line,
                column,
                key,
                message,
            }
        };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| error(None, e.span(), e.message().to_string()))?;
        let mut scenario: Scenario =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let key = e.path().to_string();
                let key = (key != ".").then_some(key);
                let inner = e.into_inner();
                error(key, inner.span(), inner.message().to_string())
            })?;
        scenario.expect.history = scenario
            .clients
            .iter()
            .any(|c| matches!(c, ClientSpec::BuiltIn(_)));
        scenario.expect.power = scenario.strikes.iter().any(|s| s.power);
        if let Err(Invalid { key, message }) = scenario.validate() {
            return Err(error(Some(key), None, message));
        }
        Ok(scenario)
    }

    /// The checks that span keys, made after every key has been read on its own: a file
    /// gets them from [`Scenario::parse`], a built scenario when it runs. The error names
    /// the key it is about.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.command.is_empty() {
            return Err(invalid(
                "command",
                "the command is empty: give the program and its arguments",
            ));
        }
        if self.strikes.is_empty() {
            return Err(invalid(
                "strike",
                "no [[strike]] entries: a scenario needs at least one, e.g.\n  [[strike]]\n  signal = [\"SIGTERM\", \"SIGINT\"]",
            ));
        }
        for (i, strike) in self.strikes.iter().enumerate() {
            if strike.signal.0.is_empty() {
                return Err(invalid(
                    format!("strike[{i}].signal"),
                    "the strike has no signal: name at least one, e.g. [\"SIGTERM\", \"SIGINT\"]",
                ));
            }
            // A built point has not been through the file's checks: put it through them.
            PointSpec::try_from(RawPoint::from(strike.at.clone()))
                .map_err(|message| invalid(format!("strike[{i}].at"), message))?;
            Strike::try_from(RawStrike::from(strike.clone()))
                .map_err(|message| invalid(format!("strike[{i}]"), message))?;
        }
        for (i, strike) in self.strikes.iter().enumerate() {
            if matches!(
                strike.at,
                PointSpec::Delay {
                    after_ready: true,
                    ..
                }
            ) && self.ready.is_none()
            {
                return Err(invalid(
                    format!("strike[{i}].at.after_ready"),
                    "`after_ready` counts from the moment the target is ready, and the scenario has no `ready`: add e.g. ready = { stdout = '^READY' }",
                ));
            }
            if matches!(strike.at, PointSpec::Request(_))
                && !self
                    .clients
                    .iter()
                    .any(|c| matches!(c, ClientSpec::BuiltIn(_)))
            {
                return Err(invalid(
                    format!("strike[{i}].at.request"),
                    "`request` counts the requests killpoint's own client sends, and the scenario has none: add e.g. [[client]] http = { url = \"http://127.0.0.1:{port}/\" } (a `command` client's requests are its own)",
                ));
            }
        }
        check_strike_count(self.max_strikes).map_err(|m| invalid("max_strikes", m))?;
        for (program, package) in &self.requires {
            check_requirement(program, package)
                .map_err(|m| invalid(format!("requires.{program}"), m))?;
        }
        if self
            .expect
            .resume
            .as_ref()
            .is_some_and(|r| r.command.is_empty())
        {
            return Err(invalid(
                "expect.resume.command",
                "the resume command is empty: e.g. [\"{bin:batch-runner}\", \"--resume\"]",
            ));
        }
        if let (Some(grace), Some(deadline)) = (self.expect.leftover_grace, self.expect.deadline)
            && grace > deadline
        {
            return Err(invalid(
                "expect.leftover_grace",
                format!(
                    "the leftover grace ({}) is longer than the deadline ({}): processes still running at the deadline are killed, so they are left over however long the grace",
                    crate::values::format_duration(grace),
                    crate::values::format_duration(deadline)
                ),
            ));
        }
        if let Some(stop) = &self.stop
            && stop.after == StopAfter::Clients
            && self.clients.is_empty()
        {
            return Err(invalid(
                "stop.after",
                "`after = \"clients\"` waits for clients, and there is no [[client]]: add one, or stop after a time (\"2s\")",
            ));
        }
        for (i, client) in self.clients.iter().enumerate() {
            if client.command().is_some_and(|c| c.is_empty()) {
                return Err(invalid(
                    format!("client[{i}].command"),
                    "the client's command is empty: e.g. [\"curl\", \"-s\", \"http://127.0.0.1:{port}/\"]",
                ));
            }
        }
        for (i, check) in self.expect.check.iter().enumerate() {
            crate::expect::valid_checker_name(&check.name)
                .map_err(|m| invalid(format!("expect.check[{i}].name"), m))?;
            if check.command.is_empty() {
                return Err(invalid(
                    format!("expect.check[{i}].command"),
                    "the checker's command is empty: e.g. [\"sh\", \"check.sh\"]",
                ));
            }
            if self.expect.check[..i].iter().any(|c| c.name == check.name) {
                return Err(invalid(
                    format!("expect.check[{i}].name"),
                    format!(
                        "two checkers are named `{}`: each is reported as `check:NAME`, so names must differ",
                        check.name
                    ),
                ));
            }
        }
        for name in &self.expect.violation {
            if let Err(how) = invariants::is_checked(name, &self.expect, &self.invariants) {
                return Err(invalid(
                    "expect.violation",
                    format!(
                        "`{name}` is expected to be violated, but this scenario does not check it ({how})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The scenario's name as shown in reports: the file path when there is one.
    pub fn label(&self) -> String {
        match &self.source {
            Some(path) => path.display().to_string(),
            None => self.name.clone(),
        }
    }

    /// Whether a strike point or a checked promise cannot work without the ptrace tracer:
    /// syscall, `after_handler` and `after_exec` points, a strike limited to a program,
    /// `signal_forwarded`, `handler_io = "violation"`.
    pub fn needs_tracer(&self) -> bool {
        self.strikes.iter().any(Strike::needs_tracer)
            || self.expect.signal_forwarded
            || self.expect.handler_io == Severity::Violation
    }

    /// Whether the tracer adds evidence to this scenario's report even where it is not
    /// needed: per-process timelines for a drain deadline, handler I/O warnings. Without
    /// ptrace such a scenario runs untraced, with a note.
    pub fn wants_tracer(&self) -> bool {
        self.needs_tracer()
            || self.expect.deadline.is_some()
            || self.expect.handler_io != Severity::Off
    }

    /// The syscall classes the strike points name (`sigaction` for `after_handler`).
    pub fn strike_classes(&self) -> ClassSet {
        self.strikes
            .iter()
            .filter_map(|s| match &s.at {
                PointSpec::Syscall(p) => Some(p.syscall),
                PointSpec::Delay {
                    after_handler: Some(_),
                    ..
                } => Some(SyscallClass::Sigaction),
                PointSpec::Delay { .. }
                | PointSpec::Probe(_)
                | PointSpec::Request(_)
                | PointSpec::AfterExit => None,
            })
            .collect()
    }

    /// Every signal the strike space may send.
    pub fn signals(&self) -> Vec<Signal> {
        let mut all: Vec<Signal> = self
            .strikes
            .iter()
            .flat_map(|s| s.signal.0.clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

impl Scenario {
    /// Every command the scenario runs: the target, then the helpers (prepare, survivors,
    /// outputs' `valid`/`normalize`, checkers, resume).
    pub fn commands(&self) -> Vec<&[Arg]> {
        let survivors = match self.expect.acked.as_ref().map(|a| &a.survivors.source) {
            Some(crate::expect::SurvivorSource::Command(command)) => Some(command.as_slice()),
            _ => None,
        };
        let mut all = vec![self.command.as_slice(), self.prepare.as_slice()];
        all.extend(survivors);
        all.extend(self.expect.outputs.iter().filter_map(|o| o.command()));
        all.extend(self.expect.check.iter().map(|c| c.command.as_slice()));
        all.extend(self.expect.resume.iter().map(|r| r.command.as_slice()));
        all.extend(self.clients.iter().filter_map(ClientSpec::command));
        all
    }

    /// Whether a command or the ready condition names `{port}`.
    pub fn uses_port(&self) -> bool {
        self.commands().into_iter().flatten().any(Arg::uses_port)
            || self.clients.iter().any(ClientSpec::uses_port)
            || matches!(
                self.ready.as_ref().map(|r| &r.on),
                Some(ReadyOn::Port(Port::Case))
            )
    }

    /// What `[setup]` puts in every sandbox, fixtures read from beside the scenario file
    /// (once per campaign: each case's sandbox gets the same bytes).
    pub fn setup_entries(&self) -> Result<Vec<crate::setup::SetupEntry>, String> {
        crate::setup::resolve(&self.setup, &crate::targets::scenario_dir(self))
    }
}

/// A scenario whose keys do not go together: the key it is about, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct Invalid {
    /// Dotted, as in the file: `strike[0].signal`, `expect.violation`.
    pub key: String,
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    pub column: usize,
    /// The key the error is about, dotted (`expect.deadline`, `strike[0].signal`).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        match &self.key {
            Some(key) => write!(f, ": key `{key}`: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{InvariantName, Judge};
    use crate::syscalls::{When, Whens};

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("s.toml"))
    }

    const MINIMAL: &str = r#"
name = "w"
command = ["{bin:atomic-writer}", "--output", "{work}/out.json"]
[[strike]]
signal = "SIGTERM"
"#;

    #[test]
    fn a_setup_file_is_text_or_a_fixture_read_from_beside_the_scenario_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("fixtures")).unwrap();
        std::fs::write(dir.path().join("fixtures/in.bin"), [0u8, 159, 146, 150]).unwrap();
        let text = format!(
            "{MINIMAL}[setup]\n\"a.txt\" = \"text\"\n\"in.bin\" = {{ from = \"fixtures/in.bin\" }}\n"
        );
        let file = dir.path().join("s.toml");
        std::fs::write(&file, &text).unwrap();
        let s = Scenario::load(&file).unwrap();
        assert_eq!(
            s.setup.get(&"in.bin".parse().unwrap()),
            Some(&SetupFile::from_fixture("fixtures/in.bin"))
        );
        let entries = s.setup_entries().unwrap();
        let bytes = |at: &str| match &entries
            .iter()
            .find(|e| e.path == Path::new(at))
            .unwrap()
            .kind
        {
            crate::setup::EntryKind::File { bytes, .. } => bytes.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(bytes("a.txt"), b"text");
        assert_eq!(bytes("in.bin"), [0u8, 159, 146, 150]);

        let missing = text.replace("fixtures/in.bin", "fixtures/gone.bin");
        std::fs::write(&file, &missing).unwrap();
        let s = Scenario::load(&file).unwrap();
        let e = s.setup_entries().unwrap_err();
        assert!(
            e.starts_with("`[setup] in.bin`: cannot read the fixture `")
                && e.contains("fixtures/gone.bin`: No such file or directory"),
            "{e}"
        );
    }

    #[test]
    fn a_leftover_grace_longer_than_the_deadline_is_an_error_and_the_default_fits_within_it() {
        let e = parse(&format!(
            "{MINIMAL}[expect]\ndeadline = \"1s\"\nleftover_grace = \"2s\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("expect.leftover_grace"), "{e}");
        assert!(
            e.message
                .starts_with("the leftover grace (2s) is longer than the deadline (1s)"),
            "{e}"
        );
        let s = parse(&format!("{MINIMAL}[expect]\ndeadline = \"200ms\"\n")).unwrap();
        assert_eq!(s.expect.grace(), Duration::from_millis(200));
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.expect.grace(), Duration::from_millis(500));
        let s = parse(&format!("{MINIMAL}[expect]\nleftover_grace = \"50ms\"\n")).unwrap();
        assert_eq!(s.expect.grace(), Duration::from_millis(50));
    }

    #[test]
    fn a_setup_file_may_be_generated_and_say_its_mode_and_mtime() {
        let s = parse(&format!(
            "{MINIMAL}[setup]\n\"big.txt\" = {{ bytes = 1000, seed = 3 }}\n\"run.sh\" = {{ from = \"run.sh\", mode = 0o755, mtime = 0 }}\n"
        ))
        .unwrap();
        assert_eq!(
            s.setup[&"big.txt".parse().unwrap()],
            SetupFile::generated(1000, 3)
        );
        assert_eq!(
            s.setup[&"run.sh".parse().unwrap()],
            SetupFile::from_fixture("run.sh").mode(0o755).mtime(0)
        );
        for (value, message) in [
            (
                "{ from = \"a\", bytes = 3 }",
                "either copied (`from`) or generated (`bytes`), not both",
            ),
            ("{ from = \"a\", seed = 3 }", "`seed` goes with `bytes`"),
            (
                "{ bytes = 3, mode = 4096 }",
                "mode 0o10000 is not a permission mode",
            ),
            ("{ mode = 0o644 }", "a setup table needs `from`"),
            ("{ bytes = \"many\" }", "invalid type"),
        ] {
            let e = parse(&format!("{MINIMAL}[setup]\n\"x\" = {value}\n")).unwrap_err();
            assert_eq!(e.line, 7, "{value}: {e}");
            assert!(e.message.contains(message), "{value}: {e}");
        }
    }

    #[test]
    fn a_temp_scope_turns_atomic_output_on_without_outputs_and_a_bad_glob_is_an_error() {
        let s = parse(&format!(
            "{MINIMAL}[expect]\ntemp_scope = [\"**\"]\ntemp_allow = [\"*.log\"]\nviolation = \"atomic-output\"\n"
        ))
        .unwrap();
        assert_eq!(s.expect.temp_scope[0].as_str(), "**");
        assert_eq!(s.expect.temp_allow[0].as_str(), "*.log");
        let e = parse(&format!(
            "{MINIMAL}[expect]\nviolation = \"atomic-output\"\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("declare `outputs` or `temp_scope` in [expect]"),
            "{e}"
        );
        let e = parse(&format!("{MINIMAL}[expect]\ntemp_scope = [\"[\"]\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("expect.temp_scope[0]"), "{e}");
    }

    #[test]
    fn a_server_scenario_reads_and_its_errors_point_at_their_keys() {
        let s = parse(
            "name = \"srv\"\ncommand = [\"srv\", \"--port\", \"{port}\"]\nready = { port = \"{port}\", timeout = \"3s\" }\nstop = { after = \"clients\" }\n[[client]]\ncommand = [\"curl\", \"http://127.0.0.1:{port}/\"]\n[[strike]]\nsignal = \"SIGTERM\"\nat = { after_ready = \"0ms..1s\" }\n",
        )
        .unwrap();
        assert!(s.uses_port());
        assert_eq!(s.ready.as_ref().unwrap().on, ReadyOn::Port(Port::Case));
        assert_eq!(s.clients[0].command().unwrap()[1].parts[1], ArgPart::Port);
        assert_eq!(
            s.strikes[0].at,
            PointSpec::Delay {
                after: Some("0ms..1s".parse().unwrap()),
                after_handler: None,
                after_exec: None,
                after_ready: true,
            }
        );
        for (text, line, column, message) in [
            (
                "ready = { stdout = \"a\", stderr = \"b\" }\n",
                4,
                9,
                "`ready` waits for one thing: keep one of `stdout`, `stderr`, `port`, `file`, `probe`",
            ),
            (
                "stop = { after = \"soon\" }\n",
                4,
                18,
                "`after = \"soon\"`: \"clients\" (once every client has finished) or a duration from ready, e.g. \"2s\"",
            ),
            (
                "stop = { after = \"clients\" }\n",
                1,
                1,
                "`after = \"clients\"` waits for clients, and there is no [[client]]: add one, or stop after a time (\"2s\")",
            ),
            (
                "[[client]]\ncommand = []\n",
                4,
                1,
                "the client's command is empty: e.g. [\"curl\", \"-s\", \"http://127.0.0.1:{port}/\"]",
            ),
            (
                "[[client]]\ncmd = [\"x\"]\n",
                5,
                1,
                "unknown field `cmd`, expected one of `command`, `http`, `tcp`",
            ),
            (
                "[[client]]\ncommand = [\"x\"]\nhttp = { url = \"http://127.0.0.1:{port}/\", requests = 1 }\n",
                4,
                1,
                "a client is one of `command`, `http`, `tcp`: keep one",
            ),
            (
                "[[client]]\nhttp = { url = \"http://example.org/\", requests = 1 }\n",
                5,
                8,
                "`http://example.org/` goes to `example.org`: traffic goes only to loopback, so the host is 127.0.0.1, localhost or [::1]: write e.g. \"http://127.0.0.1:{port}/items\"",
            ),
        ] {
            // Top-level keys and [[client]] tables go before the strike.
            let e = parse(&format!(
                "\nname = \"w\"\ncommand = [\"w\"]\n{text}[[strike]]\nsignal = \"SIGTERM\"\n"
            ))
            .unwrap_err();
            assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (line, column, message),
                "{text}"
            );
        }
        // A strike counted from ready needs a ready condition.
        let e = parse(&format!(
            "{MINIMAL}[[strike]]\nsignal = \"SIGTERM\"\nat = {{ after_ready = \"1ms\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("strike[1].at.after_ready"), "{e}");
        assert!(e.message.starts_with("`after_ready` counts from the moment the target is ready, and the scenario has no `ready`"), "{e}");
        let e = parse(&format!(
            "{MINIMAL}[[strike]]\nsignal = \"SIGTERM\"\nat = {{ after_ready = \"1ms\", after = \"2ms\" }}\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.column), (8, 6), "{e}");
        assert!(
            e.message.starts_with("`after_ready` is the delay itself"),
            "{e}"
        );
        let e = parse(&format!(
            "{MINIMAL}[[strike]]\nsignal = \"SIGTERM\"\nat = {{ syscall = \"accept\", path = \"x\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.message, "`accept` calls name no file: drop `path`", "{e}");
    }

    #[test]
    fn outputs_judged_and_checkers_are_read_and_their_errors_point_at_them() {
        let s = parse(&format!(
            "{MINIMAL}[expect]\noutputs = [\"a.txt\", {{ path = \"t.db\", valid = [\"check-db\", \"{{path}}\"] }}]\nviolation = \"check:input-kept\"\n[[expect.check]]\nname = \"input-kept\"\ncommand = [\"sh\", \"kept.sh\"]\n"
        ))
        .unwrap();
        assert_eq!(
            s.expect.output_paths(),
            ["a.txt".parse().unwrap(), "t.db".parse().unwrap()]
        );
        assert!(
            matches!(&s.expect.outputs[1].judge, Judge::Valid(c) if c[1].parts == [ArgPart::Path])
        );
        assert_eq!(s.expect.check[0].name, "input-kept");
        assert_eq!(
            s.expect.violation,
            [InvariantName::Check("check:input-kept".into())]
        );
        assert_eq!(
            crate::invariants::checked(&s.expect, &[])
                .last()
                .unwrap()
                .as_str(),
            "check:input-kept"
        );
        // Each error at the line and column of the value it is about.
        for (expect, line, column, message) in [
            (
                "outputs = [{ path = \"a\", valid = [\"x\"], normalize = [\"y\"] }]",
                7,
                12,
                "an output is judged by `valid` (a command that accepts a complete file) or compared after `normalize`, not both",
            ),
            (
                "outputs = [{ path = \"a\", valid = \"x\" }]",
                7,
                34,
                "invalid type: string \"x\", expected a sequence",
            ),
            (
                "violation = \"check:nope\"",
                1,
                1,
                "`check:nope` is expected to be violated, but this scenario does not check it (add a checker: [[expect.check]] with name = \"nope\" and its command)",
            ),
            (
                "violation = \"check:no pe\"",
                7,
                13,
                "`no pe` is not a checker name: one word of letters, digits, `-` and `_`, e.g. \"input-kept\"",
            ),
            (
                "[[expect.check]]\nname = \"a b\"\ncommand = [\"x\"]",
                8,
                8,
                "`a b` is not a checker name: one word of letters, digits, `-` and `_`, e.g. \"input-kept\"",
            ),
            (
                "[[expect.check]]\nname = \"a\"\ncommand = []",
                9,
                11,
                "the command is empty: give the program and its arguments, e.g. [\"{bin:atomic-writer}\", \"--output\", \"{work}/out.json\"]",
            ),
            (
                "[[expect.check]]\nname = \"a\"\ncommand = [\"x\"]\n[[expect.check]]\nname = \"a\"\ncommand = [\"y\"]",
                1,
                1,
                "two checkers are named `a`: each is reported as `check:NAME`, so names must differ",
            ),
            (
                "[[expect.check]]\nname = \"a\"\ncommand = [\"x\", \"{path}\"]",
                9,
                11,
                "`{path}`: `{path}` names the output a `valid` or `normalize` command judges, and exists only there; elsewhere write `{work}/FILE`",
            ),
        ] {
            let e = parse(&format!("{MINIMAL}[expect]\n{expect}\n")).unwrap_err();
            assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (line, column, message),
                "{expect}"
            );
        }
    }

    #[test]
    fn a_setup_table_without_from_is_an_error_at_its_line() {
        let e = parse(&format!(
            "{MINIMAL}[setup]\n\"in.bin\" = {{ form = \"x\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(
            e.message.contains(
                "unknown key `form` in a setup file: expected `from` (a fixture file or directory"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_minimal_scenario_gets_the_documented_defaults() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.expect.clean, vec![ExitStatus::Code(0)]);
        assert_eq!(s.expect.killed, vec![ExitStatus::Signal(Signal::SIGKILL)]);
        assert_eq!(s.expect.interrupted, None);
        assert!(s.expect.no_temp_leftovers && s.expect.no_leftover_processes);
        assert_eq!(s.strikes[0].to, Recipient::Process);
        assert_eq!(s.strikes[0].at, PointSpec::default());
    }

    #[test]
    fn a_full_scenario_parses_every_key() {
        let s = parse(
            r#"
name = "full"
command = ["/bin/sh", "-c", "exit 0"]
env = { A = "1" }
timeout = "5s"
cases = 10
[setup]
"out.json" = "prior"
[[strike]]
signal = ["SIGTERM", "INT"]
at = { after = "1ms..20ms" }
to = "group"
[expect]
clean = [0]
interrupted = [14, "SIGTERM"]
killed = ["SIGKILL"]
outputs = ["out.json"]
deadline = "2s"
violation = "atomic-output"
"#,
        )
        .unwrap();
        assert_eq!(s.cases, Some(10));
        assert_eq!(s.strikes[0].signal.0, vec![Signal::SIGTERM, Signal::SIGINT]);
        let PointSpec::Delay {
            after: Some(after), ..
        } = s.strikes[0].at
        else {
            panic!("a delay point: {:?}", s.strikes[0].at)
        };
        assert_eq!(after.end, Duration::from_millis(20));
        assert_eq!(
            s.expect.interrupted,
            Some(vec![
                ExitStatus::Code(14),
                ExitStatus::Signal(Signal::SIGTERM)
            ])
        );
        assert_eq!(s.expect.deadline, Some(Duration::from_secs(2)));
        assert_eq!(s.expect.violation, vec![InvariantName::AtomicOutput]);
        assert_eq!(
            s.setup.get(&"out.json".parse().unwrap()).unwrap(),
            &SetupFile::text("prior")
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_column_and_key() {
        let e = parse(&format!("{MINIMAL}[expect]\ndeadlin = \"2s\"\n")).unwrap_err();
        assert_eq!((e.line, e.column), (7, 1));
        assert_eq!(e.key.as_deref(), Some("expect.deadlin"));
        assert!(
            e.message.contains("unknown field `deadlin`"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("deadline"),
            "expected keys are listed: {}",
            e.message
        );
    }

    #[test]
    fn a_bad_duration_names_the_key_and_what_was_expected() {
        let e = parse(&format!("{MINIMAL}[expect]\ndeadline = \"2 seconds\"\n")).unwrap_err();
        assert_eq!(e.line, 7);
        assert_eq!(e.key.as_deref(), Some("expect.deadline"));
        assert!(e.message.contains("not a duration unit"), "{}", e.message);
    }

    #[test]
    fn a_bad_signal_name_is_reported_at_its_strike() {
        let e = parse(MINIMAL.replace("\"SIGTERM\"", "\"SIGTREM\"").as_str()).unwrap_err();
        assert_eq!(e.line, 5);
        assert_eq!(e.key.as_deref(), Some("strike[0].signal"));
        assert!(
            e.message.contains("`SIGTREM` is not a signal name"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_wrong_type_says_what_was_expected() {
        let e = parse(&MINIMAL.replace("name = \"w\"", "name = 5")).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.key.as_deref(), Some("name"));
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }

    #[test]
    fn syscall_points_parse_with_their_defaults() {
        let s = parse(&MINIMAL.replace(
            "signal = \"SIGTERM\"",
            "signal = \"SIGTERM\"\nat = { syscall = \"write\", path = \"out.json*\" }\n[[strike]]\nsignal = \"SIGINT\"\nat = { syscall = \"rename\", nth = \"last\", when = \"exit\" }\n[[strike]]\nsignal = \"SIGTERM\"\nat = { after_handler = \"SIGINT\", after = \"0ms..5ms\" }",
        ))
        .unwrap();
        let PointSpec::Syscall(write) = &s.strikes[0].at else {
            panic!("{:?}", s.strikes[0].at)
        };
        assert_eq!(write.syscall, SyscallClass::Write);
        assert_eq!(write.path.as_ref().unwrap().as_str(), "out.json*");
        assert_eq!(write.nth, Nth::default());
        assert_eq!(write.when, Whens::one(When::Entry));
        let PointSpec::Syscall(rename) = &s.strikes[1].at else {
            panic!("{:?}", s.strikes[1].at)
        };
        assert_eq!(
            (rename.nth.to_string().as_str(), rename.when.clone()),
            ("last", Whens::one(When::Exit))
        );
        assert_eq!(
            s.strikes[2].at,
            PointSpec::Delay {
                after: Some("0ms..5ms".parse().unwrap()),
                after_handler: Some(Signal::SIGINT),
                after_exec: None,
                after_ready: false,
            }
        );
        assert!(s.needs_tracer());
        assert_eq!(
            s.strike_classes().into_iter().collect::<Vec<_>>(),
            vec![
                SyscallClass::Write,
                SyscallClass::Rename,
                SyscallClass::Sigaction
            ]
        );
        assert!(!parse(MINIMAL).unwrap().needs_tracer());
    }

    #[test]
    fn inconsistent_syscall_points_are_refused_at_their_key() {
        let with = |at: &str| {
            parse(&MINIMAL.replace(
                "signal = \"SIGTERM\"",
                &format!("signal = \"SIGTERM\"\nat = {at}"),
            ))
            .unwrap_err()
        };
        let e = with("{ syscall = \"wrtie\" }");
        assert_eq!(e.key.as_deref(), Some("strike[0].at.syscall"));
        assert!(
            e.message.contains("unknown variant `wrtie`"),
            "{}",
            e.message
        );
        let e = with("{ path = \"out.json\" }");
        assert_eq!(e.key.as_deref(), Some("strike[0].at"));
        assert!(
            e.message.contains("belong to a syscall point"),
            "{}",
            e.message
        );
        let e = with("{ syscall = \"fork\", path = \"x\" }");
        assert!(
            e.message.contains("`fork` calls name no file"),
            "{}",
            e.message
        );
        let e = with("{ syscall = \"write\", after = \"1ms\" }");
        assert!(e.message.contains("not after a delay"), "{}", e.message);
        let e = with("{ syscall = \"write\", nth = 0 }");
        assert_eq!(e.key.as_deref(), Some("strike[0].at.nth"));
        assert!(e.message.contains("from 1"), "{}", e.message);
        let e = with("{ syscall = \"exit\", when = \"exit\" }");
        assert!(e.message.contains("never returns"), "{}", e.message);
        let e = with("{ after_handler = \"SIGKILL\" }");
        assert!(e.message.contains("cannot have a handler"), "{}", e.message);
    }

    #[test]
    fn probe_points_name_a_mark_and_take_nth_only() {
        let with = |at: &str| {
            parse(&MINIMAL.replace(
                "signal = \"SIGTERM\"",
                &format!("signal = \"SIGTERM\"\nat = {at}"),
            ))
        };
        let s = with("{ probe = \"flush-begin\", nth = \"2..\" }").unwrap();
        let PointSpec::Probe(p) = &s.strikes[0].at else {
            panic!("{:?}", s.strikes[0].at)
        };
        assert_eq!(
            (p.name.as_str(), p.nth.to_string().as_str()),
            ("flush-begin", "2..")
        );
        assert!(!s.needs_tracer(), "probe strikes need no tracer");
        let e = with("{ probe = \"ack\", syscall = \"write\" }").unwrap_err();
        assert!(e.message.contains("not a syscall"), "{}", e.message);
        let e = with("{ probe = \"ack\", after = \"1ms\" }").unwrap_err();
        assert!(e.message.contains("not after a delay"), "{}", e.message);
        let e = with("{ probe = \"flush begin\" }").unwrap_err();
        assert!(e.message.contains("not a mark name"), "{}", e.message);
        assert_eq!(e.key.as_deref(), Some("strike[0].at"));
    }

    #[test]
    fn a_strike_names_its_process_as_main_or_a_program_glob() {
        let with = |extra: &str| {
            parse(&MINIMAL.replace(
                "signal = \"SIGTERM\"",
                &format!("signal = \"SIGTERM\"\n{extra}"),
            ))
        };
        let s = with("process = \"main\"").unwrap();
        assert_eq!(s.strikes[0].process, Some(ProcessSelector::Main));
        assert!(
            !s.needs_tracer(),
            "the main process is known without the tracer"
        );
        let s = with("process = \"python*\"\nat = { after = \"0ms..5ms\" }").unwrap();
        assert_eq!(
            s.strikes[0].process,
            Some(ProcessSelector::Program("python*".parse().unwrap()))
        );
        assert!(
            s.needs_tracer(),
            "which program a process runs, only the tracer sees"
        );
        let s = with("process = \"[m]ain\"\nat = { syscall = \"write\" }").unwrap();
        let Some(ProcessSelector::Program(glob)) = &s.strikes[0].process else {
            panic!("{:?}", s.strikes[0].process)
        };
        assert!(glob.matches("main"), "a program literally named main");
        let s = with("at = { after_exec = \"sh\", after = \"1ms\" }").unwrap();
        assert_eq!(
            s.strikes[0].at,
            PointSpec::Delay {
                after: Some("1ms".parse().unwrap()),
                after_handler: None,
                after_exec: Some("sh".parse().unwrap()),
                after_ready: false,
            }
        );
        assert!(s.needs_tracer(), "an exec is seen by the tracer");
    }

    #[test]
    fn a_bad_process_or_after_exec_is_refused_at_its_line_column_and_key() {
        let with = |extra: &str| {
            parse(&MINIMAL.replace(
                "signal = \"SIGTERM\"",
                &format!("signal = \"SIGTERM\"\n{extra}"),
            ))
            .unwrap_err()
        };
        let e = with("process = \"/usr/bin/rsync\"");
        assert_eq!(
            e.to_string(),
            "s.toml:6:11: key `strike[0].process`: `/usr/bin/rsync` is a path: a program is matched by its file name alone, e.g. \"rsync\""
        );
        let e = with("process = 3");
        assert_eq!((e.line, e.column), (6, 11), "{e}");
        assert!(
            e.message
                .contains("expected \"main\" or a program name glob"),
            "{e}"
        );
        let e = with("process = \"py[\"");
        assert_eq!(e.key.as_deref(), Some("strike[0].process"), "{e}");
        assert!(e.message.starts_with("`py[` is not a valid glob"), "{e}");
        let e = with("process = \"sh\"\nat = { probe = \"ack\" }");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (4, Some("strike[0]")),
            "at its [[strike]]: {e}"
        );
        assert!(
            e.message
                .contains("a probe mark does not say which process made it"),
            "{e}"
        );
        let e = with("at = { after_exec = \"sh\", after_handler = \"SIGTERM\" }");
        assert_eq!((e.line, e.key.as_deref()), (6, Some("strike[0].at")), "{e}");
        assert_eq!(
            e.message,
            "`after_handler` and `after_exec` are two clocks for one delay: keep one"
        );
        let e = with("at = { after_exec = \"sh\", syscall = \"write\" }");
        assert!(
            e.message
                .contains("drop `after`/`after_handler`/`after_exec`/`after_ready` or `syscall`"),
            "{e}"
        );
        let e = with("at = { after_exec = \"sh\", probe = \"ack\" }");
        assert!(
            e.message
                .contains("drop `after`/`after_handler`/`after_exec`/`after_ready` or `probe`"),
            "{e}"
        );
        let e = with("at = { request = 3, nth = 2 }");
        assert_eq!(
            e.message,
            "`request` is the count itself: drop `nth`, e.g. { request = \"1..200\" }"
        );
        let e = with("at = { request = 3, after = \"1ms\" }");
        assert!(
            e.message
                .contains("drop `after`/`after_handler`/`after_exec`/`after_ready` or `request`"),
            "{e}"
        );
        let e = with("at = { request = 3, syscall = \"accept\" }");
        assert!(
            e.message
                .contains("drop `syscall`, `path`, `when` and `probe`, or `request`"),
            "{e}"
        );
        let e = with("at = { request = \"x\" }");
        assert_eq!(e.key.as_deref(), Some("strike[0].at.request"), "{e}");
        let e = with("at = { after_exec = \"main\" }");
        assert!(e.message.contains("written \"[m]ain\""), "{e}");
        let e = with("at = { after_exec = \"bin/sh\" }");
        assert_eq!(
            (e.line, e.column, e.key.as_deref()),
            (6, 21, Some("strike[0].at.after_exec")),
            "{e}"
        );
    }

    #[test]
    fn requires_maps_programs_to_their_debian_packages() {
        let s = parse(&format!(
            "{MINIMAL}[requires]\ngzip = \"gzip\"\nsqlite3 = \"sqlite3\"\n\"mkfs.ext4\" = \"e2fsprogs\"\n"
        ))
        .unwrap();
        let requires: Vec<(&str, &str)> = s
            .requires
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            requires,
            vec![
                ("gzip", "gzip"),
                ("mkfs.ext4", "e2fsprogs"),
                ("sqlite3", "sqlite3")
            ]
        );
        assert!(parse(MINIMAL).unwrap().requires.is_empty());
    }

    #[test]
    fn a_bad_requirement_names_its_line_column_and_key() {
        let e = parse(&format!("{MINIMAL}[requires]\ngzip = \"GZip\"\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml:7:8: key `requires.gzip`: `GZip` is not a Debian package name (lower case letters, digits, `+`, `-` and `.`), e.g. \"gzip\""
        );
        let e = parse(&format!("{MINIMAL}[requires]\n\"/bin/gzip\" = \"gzip\"\n")).unwrap_err();
        assert_eq!((e.line, e.column), (7, 1));
        assert!(e.message.contains("not a program name"), "{}", e.message);
        let e = parse(&format!("{MINIMAL}[requires]\ngzip = 1\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (7, Some("requires.gzip")));
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }

    #[test]
    fn a_scenario_without_strikes_is_refused() {
        let e = parse("name = \"x\"\ncommand = [\"true\"]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("strike"));
    }

    #[test]
    fn an_expected_violation_must_be_a_known_invariant() {
        let e = parse(&format!("{MINIMAL}[expect]\nviolation = \"atomicity\"\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("expect.violation"));
        assert!(e.message.contains("atomic-output"), "{}", e.message);
    }

    #[test]
    fn an_expected_violation_of_an_unchecked_invariant_is_refused() {
        let e = parse(&format!(
            "{MINIMAL}[expect]\nviolation = \"drain-deadline\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("does not check it"), "{}", e.message);
    }

    #[test]
    fn the_error_displays_as_file_line_column_key() {
        let e = parse(&format!("{MINIMAL}[expect]\ndeadlin = \"2s\"\n")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("s.toml:7:1: key `expect.deadlin`: unknown field")
        );
    }
}
