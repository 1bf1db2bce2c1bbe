//! Building a [`Scenario`] in Rust, key for key as a scenario file writes it.
//!
//! ```toml
//! command = ["/path/to/mytool", "--output", "{work}/out.json"]
//! [[strike]]
//! signal = ["SIGTERM", "SIGINT"]
//! at = { syscall = "write", path = "out.json*" }
//! [expect]
//! outputs = ["out.json"]
//! interrupted = [14]
//! ```
//!
//! is
//!
//! ```
//! use killpoint::{Expect, Scenario, Signal, Strike, SyscallClass};
//!
//! let scenario = Scenario::command("/path/to/mytool")
//!     .arg("--output")
//!     .arg_work("out.json")
//!     .strike(
//!         Strike::syscall(SyscallClass::Write)
//!             .path("out.json*")
//!             .signals([Signal::SIGTERM, Signal::SIGINT]),
//!     )
//!     .expect(Expect::atomic_output("out.json"))
//!     .expect(Expect::exit_codes().interrupted([14]));
//! let file = Scenario::parse(
//!     r#"
//!     name = "mytool"
//!     command = ["/path/to/mytool", "--output", "{work}/out.json"]
//!     [[strike]]
//!     signal = ["SIGTERM", "SIGINT"]
//!     at = { syscall = "write", path = "out.json*" }
//!     [expect]
//!     outputs = ["out.json"]
//!     interrupted = [14]
//!     "#,
//!     "mytool.toml".as_ref(),
//! )
//! .unwrap();
//! assert_eq!(scenario.strikes, file.strikes);
//! assert_eq!(scenario.expect, file.expect);
//! ```
//!
//! Both are the same [`Scenario`], run the same way. A builder method panics on a value
//! that can never be right — a path that leaves the sandbox, a glob or a regular
//! expression that does not parse, `.path()` on a strike that is not a syscall strike — as
//! `Regex::new(…).unwrap()` would in a test. What only the whole scenario can tell (a
//! strike without a signal, a planted bug whose invariant is not checked) is checked when
//! it runs, with the messages a scenario file gets.

use std::ops::{Range, RangeFrom, RangeInclusive};
use std::time::Duration;

use super::{
    AckedSpec, Arg, ArgPart, DelayRange, ExitStatus, Expect, Nth, NthBound, OnceSpec, PathGlob,
    Pattern, PointSpec, ProbePoint, Recipient, ResumeSpec, Scenario, Severity, ShrinkBudget,
    Signal, SignalSet, Strike, SyscallPoint, WorkPath,
};
use crate::expect::{CheckSpec, Judge, OutputSpec};
use crate::invariants::{Invariant, InvariantName};
use crate::server::{ClientSpec, Port, ReadyOn, ReadySpec, StopAfter, StopSpec};
use crate::syscalls::{SyscallClass, When, Whens};

/// Parses a builder argument, or panics saying which method was given what.
fn parsed<T: std::str::FromStr<Err = String>>(method: &str, text: &str) -> T {
    text.parse()
        .unwrap_or_else(|e| panic!("killpoint: {method}({text:?}): {e}"))
}

impl Arg {
    /// An argument taken literally: no placeholders are filled in.
    pub fn text(text: impl Into<String>) -> Arg {
        let text = text.into();
        Arg {
            raw: text.clone(),
            parts: vec![ArgPart::Text(text)],
        }
    }
}

impl Scenario {
    /// A scenario that runs `program` (a path, or a name looked up in `PATH`), with no
    /// arguments, strikes or expectations yet; named after the program's file name.
    ///
    /// In an integration test, `env!("CARGO_BIN_EXE_<name>")` is the path of the
    /// package's binary `<name>`, built by cargo before the test.
    pub fn command(program: impl Into<String>) -> Scenario {
        let program = program.into();
        let name = std::path::Path::new(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        Scenario {
            name,
            description: None,
            command: vec![Arg::text(program)],
            env: Default::default(),
            prepare: Vec::new(),
            requires: Default::default(),
            timeout: super::default_timeout(),
            setup: Default::default(),
            cases: None,
            max_strikes: 1,
            exhaustive: false,
            exhaustive_limit: super::DEFAULT_EXHAUSTIVE_LIMIT,
            shrink: ShrinkBudget::default(),
            ready: None,
            stop: None,
            clients: Vec::new(),
            isolate_network: false,
            strikes: Vec::new(),
            expect: Expect::default(),
            source: None,
            invariants: Vec::new(),
        }
    }

    /// The name reports use.
    pub fn name(mut self, name: impl Into<String>) -> Scenario {
        self.name = name.into();
        self
    }

    /// One argument, taken literally.
    pub fn arg(mut self, arg: impl Into<String>) -> Scenario {
        self.command.push(Arg::text(arg));
        self
    }

    /// Arguments, each taken literally.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Scenario {
        self.command.extend(args.into_iter().map(Arg::text));
        self
    }

    /// An argument naming a file in the case's sandbox: `{work}/PATH` in a scenario file.
    pub fn arg_work(mut self, path: &str) -> Scenario {
        let path: WorkPath = parsed(".arg_work", path);
        self.command.push(Arg {
            raw: format!("{{work}}/{}", path.as_str()),
            parts: vec![ArgPart::Work, ArgPart::Text(format!("/{}", path.as_str()))],
        });
        self
    }

    /// An argument with placeholders, as a scenario file writes it: `{work}`, `{dir}`,
    /// `{python}`, `{bin:NAME}`.
    pub fn arg_template(mut self, template: &str) -> Scenario {
        self.command.push(parsed(".arg_template", template));
        self
    }

    /// An environment variable for the target.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Scenario {
        self.env.insert(key.into(), value.into());
        self
    }

    /// A program that must be on the PATH for the scenario to run, and the Debian
    /// package that provides it: `[requires]` in a scenario file.
    pub fn requires(mut self, program: impl Into<String>, package: impl Into<String>) -> Scenario {
        self.requires.insert(program.into(), package.into());
        self
    }

    /// The longest an uninterrupted run may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Scenario {
        self.timeout = timeout;
        self
    }

    /// `prepare = [...]`: a command run in each sandbox after `[setup]`, before the target;
    /// what it leaves is prior state. Arguments are taken as written in a scenario file
    /// (placeholders and all): `.prepare_command(["sh", "-c", "seq 1000 > {work}/in.txt"])`.
    /// (`Scenario::prepare` is the API's: the census run, ready for cases.)
    pub fn prepare_command<'a>(mut self, command: impl IntoIterator<Item = &'a str>) -> Scenario {
        self.prepare = command.into_iter().map(|a| parsed(".prepare", a)).collect();
        self
    }

    /// `ready = { … }`: when the target can take clients (see [`ReadySpec`]'s
    /// constructors): `.ready(ReadySpec::stdout("^READY ").timeout(secs(10)))`.
    pub fn ready(mut self, ready: ReadySpec) -> Scenario {
        self.ready = Some(ready);
        self
    }

    /// `stop = { signal = "…", after = "…" }`: how a run no strike reached ends:
    /// `.stop(StopSpec::after_clients())`.
    pub fn stop(mut self, stop: StopSpec) -> Scenario {
        self.stop = Some(stop);
        self
    }

    /// One `[[client]]`: a command started once the target is ready, its arguments taken
    /// as a scenario file writes them (`{port}`, `{dir}`, `{python}` …):
    /// `.client(["curl", "-s", "http://127.0.0.1:{port}/"])`.
    pub fn client<'a>(mut self, command: impl IntoIterator<Item = &'a str>) -> Scenario {
        self.clients.push(ClientSpec::Command(
            command.into_iter().map(|a| parsed(".client", a)).collect(),
        ));
        self
    }

    /// One `[[client]]` of killpoint's own: `http = {…}` or `tcp = {…}`, which records
    /// each request's history: `.load_client(BuiltInClient::Http(HttpClientSpec::get(url, 100)?))`.
    pub fn load_client(mut self, client: crate::client::BuiltInClient) -> Scenario {
        self.clients.push(ClientSpec::BuiltIn(client));
        self.expect.history = true;
        self
    }

    /// `isolate_network = true`: each run in a network namespace of its own, so a server
    /// with a fixed port runs in parallel cases.
    pub fn isolate_network(mut self) -> Scenario {
        self.isolate_network = true;
        self
    }

    /// A file created in the sandbox before each run: the prior content of an output.
    pub fn setup(self, path: &str, content: impl Into<String>) -> Scenario {
        self.setup_file(path, super::SetupFile::text(content))
    }

    /// `[setup] "PATH" = { from = "FIXTURE" }`: a fixture file or directory copied into
    /// the sandbox byte for byte before each run; a relative fixture path is taken from
    /// the working directory of a built scenario (the scenario file's directory for a
    /// loaded one).
    pub fn setup_from(self, path: &str, fixture: impl Into<std::path::PathBuf>) -> Scenario {
        self.setup_file(path, super::SetupFile::from_fixture(fixture))
    }

    /// `[setup] "PATH" = { bytes = N, seed = S }`: N bytes of deterministic text.
    pub fn setup_bytes(self, path: &str, bytes: u64, seed: u64) -> Scenario {
        self.setup_file(path, super::SetupFile::generated(bytes, seed))
    }

    /// Any `[setup]` value, with its `mode` and `mtime`:
    /// `.setup_file("run.sh", SetupFile::text("#!/bin/sh\n…").mode(0o755))`.
    pub fn setup_file(mut self, path: &str, file: super::SetupFile) -> Scenario {
        self.setup.insert(parsed(".setup", path), file);
        self
    }

    /// How many cases a run makes (default 64; `KILLPOINT_CASES` overrides it).
    pub fn cases(mut self, cases: u32) -> Scenario {
        self.cases = Some(cases);
        self
    }

    /// How many strikes one case may have (default 1).
    pub fn max_strikes(mut self, strikes: u32) -> Scenario {
        self.max_strikes = strikes;
        self
    }

    /// Try every point of the strike space instead of sampling.
    pub fn exhaustive(mut self) -> Scenario {
        self.exhaustive = true;
        self
    }

    /// How long a failure may be shrunk: runs of the target, and wall time.
    pub fn shrink(mut self, iterations: u32, time: Duration) -> Scenario {
        self.shrink = ShrinkBudget { iterations, time };
        self
    }

    /// Adds a promise of the user's own ([`Invariant::new`]), judged on every case after
    /// the built-in invariants and reported under its own name;
    /// `Expect::violation(InvariantName::Custom(…))` may name it as a planted bug.
    pub fn invariant(mut self, invariant: Invariant) -> Scenario {
        self.invariants.push(invariant);
        self
    }

    /// A `[[strike]]` entry: each case picks one entry, one of its signals and one point.
    pub fn strike(mut self, strike: Strike) -> Scenario {
        self.expect.power |= strike.power;
        self.strikes.push(strike);
        self
    }

    /// A promise that must hold after every case: a key of `[expect]`.
    pub fn expect(mut self, expectation: impl Into<Expectation>) -> Scenario {
        (expectation.into().0)(&mut self.expect);
        self
    }
}

impl Strike {
    fn at(at: PointSpec) -> Strike {
        Strike {
            signal: SignalSet(Vec::new()),
            at,
            to: Recipient::Process,
            process: None,
            power: false,
        }
    }

    /// A strike at a random moment of the uninterrupted run's span: `at = {}`.
    pub fn during_run() -> Strike {
        Strike::at(PointSpec::default())
    }

    /// A strike after a delay drawn from `delays`, counted from the moment the target has
    /// a handler for the strike's signal (from spawn if the uninterrupted run never
    /// installed one): `at = { after = "…" }`.
    pub fn after(delays: impl Into<DelayRange>) -> Strike {
        Strike::at(PointSpec::Delay {
            after: Some(delays.into()),
            after_handler: None,
            after_exec: None,
            after_ready: false,
        })
    }

    /// A strike at a random moment after the target installs its handler for `signal`:
    /// `at = { after_handler = "SIGTERM" }`.
    pub fn after_handler(signal: Signal) -> Strike {
        Strike::at(PointSpec::Delay {
            after: None,
            after_handler: Some(signal),
            after_exec: None,
            after_ready: false,
        })
    }

    /// A strike after a delay drawn from `delays`, counted from the moment the target was
    /// ready (the scenario's `ready`): `at = { after_ready = "…" }`.
    pub fn after_ready(delays: impl Into<DelayRange>) -> Strike {
        Strike::at(PointSpec::Delay {
            after: Some(delays.into()),
            after_handler: None,
            after_exec: None,
            after_ready: true,
        })
    }

    /// A strike at a random moment after the first exec of a program whose name matches
    /// the glob, anywhere in the target's tree: `at = { after_exec = "python*" }`.
    pub fn after_exec(program: &str) -> Strike {
        let strike = Strike::at(PointSpec::Delay {
            after: None,
            after_handler: None,
            after_exec: Some(parsed(".after_exec", program)),
            after_ready: false,
        });
        if let Err(e) =
            crate::strike::PointSpec::try_from(crate::strike::RawPoint::from(strike.at.clone()))
        {
            panic!("killpoint: .after_exec({program:?}): {e}");
        }
        strike
    }

    /// The delay range of a delay strike, counted from its clock (spawn, a handler, an
    /// exec): `after = "…"` beside `after_handler` or `after_exec`.
    pub fn delay(mut self, delays: impl Into<DelayRange>) -> Strike {
        let PointSpec::Delay { after, .. } = &mut self.at else {
            panic!("killpoint: .delay() belongs to a delay strike");
        };
        *after = Some(delays.into());
        self
    }

    /// Which process the strike hits: `"main"` (the target's main process) or a glob
    /// over program names (`"rsync"`, `"python*"`): `process = "…"`. A syscall strike then
    /// counts only that process's calls and strikes the one that made the call; a delay
    /// strike's signal goes to the first such process alive when it is due.
    pub fn process(mut self, process: &str) -> Strike {
        if matches!(self.at, PointSpec::Probe(_)) {
            panic!(
                "killpoint: .process({process:?}) belongs to a syscall or delay strike: a probe mark does not say which process made it"
            );
        }
        self.process = Some(parsed(".process", process));
        self
    }

    /// A strike at the entry of any call of a syscall class: `at = { syscall = "write" }`.
    pub fn syscall(class: SyscallClass) -> Strike {
        Strike::at(PointSpec::Syscall(SyscallPoint {
            syscall: class,
            path: None,
            nth: Nth::default(),
            when: Whens::default(),
        }))
    }

    /// A strike at any probe mark of a name: `at = { probe = "flush-begin" }`.
    pub fn probe(name: impl Into<String>) -> Strike {
        Strike::at(PointSpec::Probe(ProbePoint {
            name: name.into(),
            nth: Nth::default(),
        }))
    }

    /// A strike once killpoint's own clients (`.load_client(…)`) have sent one of the
    /// requests `nth` (counted over all of them, from 1): `at = { request = "1..200" }`.
    pub fn request(nth: impl Into<Nth>) -> Strike {
        Strike::at(PointSpec::Request(nth.into()))
    }

    /// A power loss once the tree has gone by itself: `at = { after_exit = true }`, with
    /// `.power()`.
    pub fn after_exit() -> Strike {
        Strike::at(PointSpec::AfterExit)
    }

    /// Only calls naming a file that matches the glob (sandbox-relative): `path = "…"`.
    pub fn path(mut self, glob: &str) -> Strike {
        let PointSpec::Syscall(point) = &mut self.at else {
            panic!("killpoint: .path({glob:?}) belongs to a syscall strike");
        };
        point.path = Some(parsed::<PathGlob>(".path", glob));
        self
    }

    /// Which of the matching calls or marks, counted from 1: `3`, `2..`, `2..=5`,
    /// [`Nth::last`].
    pub fn nth(mut self, nth: impl Into<Nth>) -> Strike {
        match &mut self.at {
            PointSpec::Syscall(point) => point.nth = nth.into(),
            PointSpec::Probe(point) => point.nth = nth.into(),
            PointSpec::Request(point) => *point = nth.into(),
            PointSpec::Delay { .. } | PointSpec::AfterExit => {
                panic!("killpoint: .nth() belongs to a syscall, probe or request strike")
            }
        }
        self
    }

    /// The side of the call to strike at: its entry (the default), before the call runs,
    /// or its exit, after it returned: `when = "exit"`.
    pub fn when(mut self, when: When) -> Strike {
        self.syscall_point("when").when = Whens::one(when);
        self
    }

    /// Either side of the call, each case choosing: `when = "both"`.
    pub fn either_side(mut self) -> Strike {
        self.syscall_point("either_side").when = Whens::new(vec![When::Entry, When::Exit]);
        self
    }

    fn syscall_point(&mut self, method: &str) -> &mut SyscallPoint {
        match &mut self.at {
            PointSpec::Syscall(point) => point,
            _ => panic!("killpoint: .{method}() belongs to a syscall strike"),
        }
    }

    /// The signals a case picks one of.
    pub fn signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Strike {
        for signal in signals {
            if !self.signal.0.contains(&signal) {
                self.signal.0.push(signal);
            }
        }
        self
    }

    /// One signal to add to those a case picks from.
    pub fn signal(self, signal: Signal) -> Strike {
        self.signals([signal])
    }

    /// A power loss at this point instead of a signal: `signal = "POWER"`. The tree is
    /// killed and the sandbox put in a state a power failure could have left.
    pub fn power(mut self) -> Strike {
        self.signal = SignalSet(vec![Signal::SIGKILL]);
        self.power = true;
        self
    }

    /// Send to the target's whole process group (as Ctrl-C in a terminal does), not only
    /// the target process: `to = "group"`.
    pub fn to_group(mut self) -> Strike {
        self.to = Recipient::Group;
        self
    }
}

impl Nth {
    /// The last matching call or mark of the uninterrupted run: `nth = "last"`.
    pub fn last() -> Nth {
        Nth {
            start: NthBound::Last,
            end: Some(NthBound::Last),
        }
    }
}

/// Counting from 1, like a scenario file's `nth`; 0 counts as 1.
impl From<u64> for Nth {
    fn from(n: u64) -> Nth {
        let at = NthBound::At(n.max(1));
        Nth {
            start: at,
            end: Some(at),
        }
    }
}

impl From<RangeFrom<u64>> for Nth {
    fn from(r: RangeFrom<u64>) -> Nth {
        Nth {
            start: NthBound::At(r.start.max(1)),
            end: None,
        }
    }
}

impl From<RangeInclusive<u64>> for Nth {
    fn from(r: RangeInclusive<u64>) -> Nth {
        Nth {
            start: NthBound::At((*r.start()).max(1)),
            end: Some(NthBound::At(*r.end())),
        }
    }
}

impl From<Range<u64>> for Nth {
    fn from(r: Range<u64>) -> Nth {
        Nth {
            start: NthBound::At(r.start.max(1)),
            end: Some(NthBound::At(r.end.saturating_sub(1))),
        }
    }
}

impl From<Range<Duration>> for DelayRange {
    /// Delays from `start` to `end` (both included: time is continuous).
    fn from(r: Range<Duration>) -> DelayRange {
        assert!(
            r.start <= r.end,
            "killpoint: the delay range {:?}..{:?} ends before it starts",
            r.start,
            r.end
        );
        DelayRange {
            start: r.start,
            end: r.end,
        }
    }
}

impl From<Duration> for DelayRange {
    /// One fixed delay.
    fn from(d: Duration) -> DelayRange {
        DelayRange { start: d, end: d }
    }
}

impl From<i32> for ExitStatus {
    fn from(code: i32) -> ExitStatus {
        ExitStatus::Code(code)
    }
}

impl From<Signal> for ExitStatus {
    /// Death by the signal.
    fn from(signal: Signal) -> ExitStatus {
        ExitStatus::Signal(signal)
    }
}

impl ReadySpec {
    fn on(on: ReadyOn) -> ReadySpec {
        ReadySpec { on, timeout: None }
    }

    /// `ready = { stdout = "REGEX" }`: a line of stdout matches.
    pub fn stdout(regex: &str) -> ReadySpec {
        ReadySpec::on(ReadyOn::Stdout(parsed("ReadySpec::stdout", regex)))
    }

    /// `ready = { stderr = "REGEX" }`: a line of stderr matches.
    pub fn stderr(regex: &str) -> ReadySpec {
        ReadySpec::on(ReadyOn::Stderr(parsed("ReadySpec::stderr", regex)))
    }

    /// `ready = { port = "{port}" }`: a TCP connect to the run's own port succeeds.
    pub fn port() -> ReadySpec {
        ReadySpec::on(ReadyOn::Port(Port::Case))
    }

    /// `ready = { port = N }`: a TCP connect to 127.0.0.1:N succeeds.
    pub fn port_number(port: u16) -> ReadySpec {
        assert!(
            port > 0,
            "killpoint: ReadySpec::port_number(0): a port is 1 to 65535"
        );
        ReadySpec::on(ReadyOn::Port(Port::Fixed(port)))
    }

    /// `ready = { file = "PATH" }`: the file exists in the sandbox.
    pub fn file(path: &str) -> ReadySpec {
        ReadySpec::on(ReadyOn::File(parsed("ReadySpec::file", path)))
    }

    /// `ready = { probe = "NAME" }`: the target made this probe mark.
    pub fn probe(name: &str) -> ReadySpec {
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "killpoint: ReadySpec::probe({name:?}): a mark name is one word"
        );
        ReadySpec::on(ReadyOn::Probe(name.to_string()))
    }

    /// `timeout = "…"`: how long the target may take to be ready (default: the
    /// scenario's `timeout`).
    pub fn timeout(mut self, timeout: Duration) -> ReadySpec {
        self.timeout = Some(timeout);
        self
    }
}

impl StopSpec {
    /// `stop = { after = "clients" }`: SIGTERM once every client has finished.
    pub fn after_clients() -> StopSpec {
        StopSpec {
            signal: Signal::SIGTERM,
            after: StopAfter::Clients,
        }
    }

    /// `stop = { after = "…" }`: SIGTERM this long after ready (after spawn without
    /// `ready`).
    pub fn after(delay: Duration) -> StopSpec {
        StopSpec {
            signal: Signal::SIGTERM,
            after: StopAfter::Delay(delay),
        }
    }

    /// `signal = "…"`: the stop's signal instead of SIGTERM.
    pub fn signal(mut self, signal: Signal) -> StopSpec {
        self.signal = signal;
        self
    }
}

/// A judging command's arguments, `{path}` allowed; panics on a bad one, as
/// [`parsed`] does.
fn judging<'a>(what: &str, command: impl IntoIterator<Item = &'a str>) -> Vec<Arg> {
    command
        .into_iter()
        .map(|a| Arg::judging(a).unwrap_or_else(|e| panic!("killpoint: {what}({a:?}): {e}")))
        .collect()
}

/// One promise to add to a scenario's `[expect]`: made by the functions of [`Expect`]
/// (`Expect::atomic_output("out.json")`), by [`ExitCodes`], or by
/// [`Expectation::custom`] for any key.
pub struct Expectation(Box<dyn FnOnce(&mut Expect)>);

impl Expectation {
    /// Any change to `[expect]`, for keys without a function of their own.
    pub fn custom(change: impl FnOnce(&mut Expect) + 'static) -> Expectation {
        Expectation(Box::new(change))
    }
}

impl Expect {
    /// `outputs = ["PATH"]`: after every case the file is absent, holds its prior content
    /// or is complete (byte-identical to the uninterrupted run's), and a graceful stop
    /// leaves no new file beside it (`atomic-output`).
    pub fn atomic_output(path: &str) -> Expectation {
        let path: WorkPath = parsed("Expect::atomic_output", path);
        Expectation::custom(move |e| e.outputs.push(OutputSpec::golden(path)))
    }

    /// `outputs = [{ path = "PATH", valid = [...] }]`: an output judged, not compared —
    /// complete when `command` exits 0 on it (`{path}` names the file), so an output
    /// that differs run to run is still checked for tearing (`atomic-output`).
    pub fn valid_output<'a>(path: &str, command: impl IntoIterator<Item = &'a str>) -> Expectation {
        let spec = OutputSpec {
            path: parsed("Expect::valid_output", path),
            judge: Judge::Valid(judging("Expect::valid_output", command)),
        };
        Expectation::custom(move |e| e.outputs.push(spec))
    }

    /// `outputs = [{ path = "PATH", normalize = [...] }]`: an output compared with the
    /// golden once both went through `command` (the file on its stdin, the normalized
    /// content on its stdout): an output that embeds a time or a host name.
    pub fn normalized_output<'a>(
        path: &str,
        command: impl IntoIterator<Item = &'a str>,
    ) -> Expectation {
        let spec = OutputSpec {
            path: parsed("Expect::normalized_output", path),
            judge: Judge::Normalize(judging("Expect::normalized_output", command)),
        };
        Expectation::custom(move |e| e.outputs.push(spec))
    }

    /// `[[expect.check]]`: a checker named `name`, run in the sandbox after every case
    /// with the outcome as JSON on stdin; exit 0 the promise held, 1 it was broken
    /// (reported as `check:NAME`), anything else an error of the scenario.
    pub fn check<'a>(name: &str, command: impl IntoIterator<Item = &'a str>) -> Expectation {
        if let Err(why) = crate::expect::valid_checker_name(name) {
            panic!("killpoint: Expect::check({name:?}): {why}");
        }
        let spec = CheckSpec {
            name: name.to_string(),
            command: command
                .into_iter()
                .map(|a| parsed("Expect::check", a))
                .collect(),
        };
        Expectation::custom(move |e| e.check.push(spec))
    }

    /// The documented exit statuses (`exit-code`): `clean`, `interrupted`, `killed`.
    pub fn exit_codes() -> ExitCodes {
        ExitCodes::default()
    }

    /// `deadline = "…"`: from the first strike, the whole process tree is gone within
    /// this time (`drain-deadline`).
    pub fn deadline(deadline: Duration) -> Expectation {
        Expectation::custom(move |e| e.deadline = Some(deadline))
    }

    /// `temp_scope = [...]`: where no new file may remain after a graceful stop, as globs
    /// over sandbox paths, recursive (`"**"`, `"tmp/**"`); turns on `atomic-output` even
    /// without outputs.
    pub fn temp_scope<'a>(globs: impl IntoIterator<Item = &'a str>) -> Expectation {
        let globs: Vec<PathGlob> = globs
            .into_iter()
            .map(|g| parsed(".temp_scope", g))
            .collect();
        Expectation::custom(move |e| e.temp_scope = globs)
    }

    /// `temp_allow = [...]`: new files that may remain (`"*.log"`).
    pub fn temp_allow<'a>(globs: impl IntoIterator<Item = &'a str>) -> Expectation {
        let globs: Vec<PathGlob> = globs
            .into_iter()
            .map(|g| parsed(".temp_allow", g))
            .collect();
        Expectation::custom(move |e| e.temp_allow = globs)
    }

    /// `accept_grace = "…"`: how long after the stop signal a server may still take a
    /// new connection (`stops-accepting`).
    pub fn accept_grace(grace: Duration) -> Expectation {
        Expectation::custom(move |e| e.accept_grace = Some(grace))
    }

    /// `leftover_grace = "…"`: how long the rest of the tree may take to end after the
    /// main process before what still runs is left over (`no-leftover-processes`).
    pub fn leftover_grace(grace: Duration) -> Expectation {
        Expectation::custom(move |e| e.leftover_grace = Some(grace))
    }

    /// `signal_forwarded = true`: every child alive at the first strike is sent a
    /// termination signal before its parent exits (`signal-forwarded`).
    pub fn signal_forwarded() -> Expectation {
        Expectation::custom(|e| e.signal_forwarded = true)
    }

    /// `[expect.acked]`: every acknowledged id survives (`acked-survives`).
    pub fn acked(acked: AckedSpec) -> Expectation {
        Expectation::custom(move |e| e.acked = Some(acked))
    }

    /// `[expect.resume]`: a command that picks up the interrupted work
    /// (`resume-completes`, `no-duplicate-work`).
    pub fn resume(resume: ResumeSpec) -> Expectation {
        Expectation::custom(move |e| e.resume = Some(resume))
    }

    /// `[[expect.once]]`: a teardown side effect, a line matching `marker` in stdout, that
    /// must appear exactly once however many signals arrive (`idempotent-teardown`).
    pub fn once(marker: &str) -> Expectation {
        let marker: Pattern = parsed("Expect::once", marker);
        Expectation::custom(move |e| {
            e.idempotent_teardown = true;
            e.once.push(OnceSpec {
                marker,
                source: Default::default(),
            });
        })
    }

    /// `handler_io = "…"`: how file writes inside a signal handler count
    /// (`handler-no-io`).
    pub fn handler_io(severity: Severity) -> Expectation {
        Expectation::custom(move |e| e.handler_io = severity)
    }

    /// `crash_patterns = ["…"]`: one more crash signature for `no-crash-output`.
    pub fn crash_pattern(pattern: &str) -> Expectation {
        let pattern: Pattern = parsed("Expect::crash_pattern", pattern);
        Expectation::custom(move |e| e.crash_patterns.push(pattern))
    }

    /// `violation = "…"`: a planted bug, which the run must catch as a violation of this
    /// invariant (like `#[should_panic]`).
    pub fn violation(name: InvariantName) -> Expectation {
        Expectation::custom(move |e| e.violation.push(name))
    }
}

/// The documented exit statuses, each an exit code or a signal (death by it); a list
/// left unset keeps the default: `clean` exit 0, `interrupted` unchecked, `killed`
/// death by SIGKILL.
#[derive(Debug, Clone, Default)]
pub struct ExitCodes {
    clean: Option<Vec<ExitStatus>>,
    interrupted: Option<Vec<ExitStatus>>,
    killed: Option<Vec<ExitStatus>>,
}

fn statuses<S: Into<ExitStatus>>(all: impl IntoIterator<Item = S>) -> Option<Vec<ExitStatus>> {
    Some(all.into_iter().map(Into::into).collect())
}

impl ExitCodes {
    /// Of a run no strike reached.
    pub fn clean<S: Into<ExitStatus>>(mut self, all: impl IntoIterator<Item = S>) -> ExitCodes {
        self.clean = statuses(all);
        self
    }

    /// After a catchable signal (SIGTERM, SIGINT, …).
    pub fn interrupted<S: Into<ExitStatus>>(
        mut self,
        all: impl IntoIterator<Item = S>,
    ) -> ExitCodes {
        self.interrupted = statuses(all);
        self
    }

    /// After SIGKILL.
    pub fn killed<S: Into<ExitStatus>>(mut self, all: impl IntoIterator<Item = S>) -> ExitCodes {
        self.killed = statuses(all);
        self
    }
}

impl From<ExitCodes> for Expectation {
    fn from(codes: ExitCodes) -> Expectation {
        Expectation::custom(move |e| {
            if let Some(clean) = codes.clean {
                e.clean = clean;
            }
            if codes.interrupted.is_some() {
                e.interrupted = codes.interrupted;
            }
            if let Some(killed) = codes.killed {
                e.killed = killed;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every builder method against the scenario file that says the same.
    #[test]
    fn a_built_scenario_is_the_one_its_file_loads() {
        let built = Scenario::command("/bin/tool")
            .name("tool")
            .args(["--mode", "a b"])
            .arg_work("out/data.json")
            .arg_template("{dir}/x")
            .env("RUST_LOG", "info")
            .requires("tool", "tool-utils")
            .timeout(Duration::from_secs(5))
            .setup("out/data.json", "old")
            .cases(32)
            .max_strikes(2)
            .shrink(10, Duration::from_secs(3))
            .strike(
                Strike::syscall(SyscallClass::Write)
                    .path("out/*")
                    .nth(2..)
                    .when(When::Exit)
                    .signals([Signal::SIGTERM, Signal::SIGINT]),
            )
            .strike(Strike::probe("ack").nth(3..=5).signal(Signal::SIGKILL))
            .strike(
                Strike::after(Duration::ZERO..Duration::from_millis(300))
                    .signal(Signal::SIGTERM)
                    .to_group(),
            )
            .strike(Strike::after_handler(Signal::SIGTERM).signal(Signal::SIGTERM))
            .strike(Strike::during_run().signal(Signal::SIGHUP))
            .strike(
                Strike::syscall(SyscallClass::Fsync)
                    .nth(Nth::last())
                    .either_side()
                    .signal(Signal::SIGTERM),
            )
            .strike(
                Strike::syscall(SyscallClass::Write)
                    .path("*.out")
                    .nth(2)
                    .process("sh")
                    .to_group()
                    .signal(Signal::SIGTERM),
            )
            .strike(
                Strike::after_exec("python*")
                    .delay(Duration::ZERO..Duration::from_millis(50))
                    .process("python*")
                    .signal(Signal::SIGINT),
            )
            .strike(Strike::during_run().process("main").signal(Signal::SIGTERM))
            .ready(ReadySpec::stdout("^READY ").timeout(Duration::from_secs(4)))
            .stop(StopSpec::after_clients().signal(Signal::SIGINT))
            .client(["curl", "-s", "http://127.0.0.1:{port}/"])
            .isolate_network()
            .strike(
                Strike::after_ready(Duration::ZERO..Duration::from_millis(50))
                    .signal(Signal::SIGTERM),
            )
            .expect(Expect::atomic_output("out/data.json"))
            .expect(Expect::valid_output("t.db", ["check-db", "{path}"]))
            .expect(Expect::normalized_output("log.txt", ["sed", "1d"]))
            .expect(Expect::check("kept", ["sh", "{dir}/kept.sh"]))
            .expect(Expect::exit_codes().clean([0]).interrupted([14]))
            .expect(Expect::exit_codes().killed([Signal::SIGKILL, Signal::SIGTERM]))
            .expect(Expect::deadline(Duration::from_secs(2)))
            .expect(Expect::signal_forwarded())
            .expect(Expect::once("^FLUSHED$"))
            .expect(Expect::handler_io(Severity::Violation))
            .expect(Expect::crash_pattern("^FATAL"))
            .expect(Expect::violation(InvariantName::AtomicOutput));
        let file = Scenario::parse(
            r#"
            name = "tool"
            command = ["/bin/tool", "--mode", "a b", "{work}/out/data.json", "{dir}/x"]
            env = { RUST_LOG = "info" }
            requires = { tool = "tool-utils" }
            timeout = "5s"
            setup = { "out/data.json" = "old" }
            cases = 32
            max_strikes = 2
            shrink = { iterations = 10, time = "3s" }
            ready = { stdout = "^READY ", timeout = "4s" }
            stop = { signal = "SIGINT", after = "clients" }
            isolate_network = true
            [[client]]
            command = ["curl", "-s", "http://127.0.0.1:{port}/"]
            [[strike]]
            signal = ["SIGTERM", "SIGINT"]
            at = { syscall = "write", path = "out/*", nth = "2..", when = "exit" }
            [[strike]]
            signal = "SIGKILL"
            at = { probe = "ack", nth = "3..=5" }
            [[strike]]
            signal = "SIGTERM"
            at = { after = "0ms..300ms" }
            to = "group"
            [[strike]]
            signal = "SIGTERM"
            at = { after_handler = "SIGTERM" }
            [[strike]]
            signal = "SIGHUP"
            [[strike]]
            signal = "SIGTERM"
            at = { syscall = "fsync", nth = "last", when = "both" }
            [[strike]]
            signal = "SIGTERM"
            at = { syscall = "write", path = "*.out", nth = 2 }
            process = "sh"
            to = "group"
            [[strike]]
            signal = "SIGINT"
            at = { after_exec = "python*", after = "0ms..50ms" }
            process = "python*"
            [[strike]]
            signal = "SIGTERM"
            process = "main"
            [[strike]]
            signal = "SIGTERM"
            at = { after_ready = "0ms..50ms" }
            [expect]
            outputs = [
                "out/data.json",
                { path = "t.db", valid = ["check-db", "{path}"] },
                { path = "log.txt", normalize = ["sed", "1d"] },
            ]
            clean = [0]
            interrupted = [14]
            killed = ["SIGKILL", "SIGTERM"]
            deadline = "2s"
            signal_forwarded = true
            once = [{ marker = "^FLUSHED$" }]
            idempotent_teardown = true
            handler_io = "violation"
            crash_patterns = ["^FATAL"]
            violation = "atomic-output"
            [[expect.check]]
            name = "kept"
            command = ["sh", "{dir}/kept.sh"]
            "#,
            "tool.toml".as_ref(),
        )
        .unwrap();
        assert_eq!(built.name, file.name);
        assert_eq!(built.command, file.command);
        assert_eq!(built.env, file.env);
        assert_eq!(built.requires, file.requires);
        assert_eq!(built.timeout, file.timeout);
        assert_eq!(built.setup, file.setup);
        assert_eq!(built.cases, file.cases);
        assert_eq!(built.max_strikes, file.max_strikes);
        assert_eq!(built.shrink, file.shrink);
        assert_eq!(built.strikes, file.strikes);
        assert_eq!(built.ready, file.ready);
        assert_eq!(built.stop, file.stop);
        assert_eq!(built.clients, file.clients);
        assert_eq!(built.isolate_network, file.isolate_network);
        assert_eq!(built.expect, file.expect);
        assert_eq!(built.validate(), Ok(()));
    }

    #[test]
    fn what_only_the_whole_scenario_shows_is_refused_when_it_is_checked() {
        let no_strike = Scenario::command("/bin/true");
        assert_eq!(no_strike.validate().unwrap_err().key, "strike");
        let no_signal = Scenario::command("/bin/true").strike(Strike::syscall(SyscallClass::Write));
        let Invalid { key, message } = no_signal.validate().unwrap_err();
        assert_eq!(key, "strike[0].signal");
        assert!(message.contains("no signal"), "{message}");
        let exit_of_exit = Scenario::command("/bin/true").strike(
            Strike::syscall(SyscallClass::Exit)
                .when(When::Exit)
                .signal(Signal::SIGTERM),
        );
        let Invalid { key, message } = exit_of_exit.validate().unwrap_err();
        assert_eq!(key, "strike[0].at");
        assert!(message.contains("never returns"), "{message}");
        let unchecked = Scenario::command("/bin/true")
            .strike(Strike::during_run().signal(Signal::SIGTERM))
            .expect(Expect::violation(InvariantName::DrainDeadline));
        let Invalid { key, message } = unchecked.validate().unwrap_err();
        assert_eq!(key, "expect.violation");
        assert!(message.contains("does not check it"), "{message}");
    }

    #[test]
    #[should_panic(expected = ".arg_work(\"../out.json\")")]
    fn a_path_out_of_the_sandbox_panics_naming_the_method() {
        let _ = Scenario::command("/bin/true").arg_work("../out.json");
    }

    #[test]
    #[should_panic(expected = ".path(\"out.json\") belongs to a syscall strike")]
    fn a_path_on_a_probe_strike_panics() {
        let _ = Strike::probe("ack").path("out.json");
    }

    #[test]
    #[should_panic(expected = ".process(\"sh\") belongs to a syscall or delay strike")]
    fn a_process_on_a_probe_strike_panics() {
        let _ = Strike::probe("ack").process("sh");
    }

    #[test]
    #[should_panic(expected = ".after_exec(\"main\"): `after_exec` names a program")]
    fn after_exec_main_panics_saying_what_main_means() {
        let _ = Strike::after_exec("main");
    }

    use super::super::Invalid;
    use super::Strike;
}
