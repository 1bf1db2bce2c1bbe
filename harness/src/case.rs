//! One case, from a prepared scenario to its judged outcome.
//!
//! ```text
//!  Prepared::new(scenario)   resolve once: {bin:…}, {python}, {dir} in the target,
//!        │                   survivors and resume commands ({work} is left to each run)
//!        ▼
//!  Prepared::census()        observe(empty plan), traced for the census; + golden outputs,
//!        │                   handler times, syscall and mark counts; vetted by vet_census
//!        ▼
//!  Prepared::case(plan)      observe(plan) → Outcome, judged by the invariants
//!
//!  observe(plan):  sandbox ─▶ os::run (spawn, strike, drain) ─▶ read outputs, strays,
//!                  survivors, markers ─▶ resume command ─▶ Outcome
//! ```
//!
//! `observe` is the only function that runs the target: the census is the target run
//! under the empty plan, and keeps what only a census records beside its outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::census::{Census, Golden, HandlerSeen};
use crate::expect::{Judge, OutputSpec};
use crate::expect::{MarkerSource, Severity, SurvivorSource};
use crate::invariants::{self, Context};
use crate::judged::JudgedCase;
use crate::os::command::{Finished, Helper, HelperError, Stdin, run_helper};
use crate::os::run::{self, Limits, Run, RunError};
use crate::os::sandbox::Sandbox;
use crate::os::serving::{ClientLaunch, Lifecycle, ReadyCheck, ReadyWatch};
use crate::os::tracer::{
    RECORDED_CLASSES, SyscallStrike, TraceError, TraceLog, TraceSetup, WriteLog,
};
use crate::outcome::{
    Capture, CheckRecord, FileState, KillReason, Outcome, OutputRecord, PowerRecord, ResumeRecord,
};
use crate::plan::{CaseId, Clock, Plan, Point};
use crate::power::{self, CrashState};
use crate::scenario::Scenario;
use crate::server::{ClientSpec, Port, ReadyOn};
use crate::strike::PointSpec;
use crate::survivors;
use crate::syscalls::{CONTEXT_CLASSES, ClassSet, SyscallClass};
use crate::targets::{self, Place, Resolved};
use crate::values::{ExitStatus, Signal, WorkPath};

/// A scenario made ready to run: its commands resolved once.
pub(crate) struct Prepared {
    pub scenario: Scenario,
    /// What `[setup]` makes in every sandbox, fixtures read once.
    setup: Vec<crate::setup::SetupEntry>,
    target: Resolved,
    survivors: Option<Resolved>,
    resume: Option<Resolved>,
    prepare: Option<Resolved>,
    /// Each output's `valid` or `normalize` command, by path.
    judges: BTreeMap<WorkPath, Resolved>,
    /// Each checker's command, in `[[expect.check]]` order.
    checks: Vec<Resolved>,
    /// Each `[[client]]`'s command (`None`: a built-in client).
    clients: Vec<Option<Resolved>>,
    /// Whether a command or the ready condition names `{port}`: every run then gets a
    /// free loopback port of its own.
    uses_port: bool,
    /// Whether cases run under the tracer: the scenario wants it, and the census could.
    traced: bool,
}

/// Which run an observation is: the census compares a run with itself, a case with the
/// census.
#[derive(Clone, Copy)]
enum Reference<'a> {
    Census,
    Case(&'a Census),
}

/// What one run of the target left behind.
struct Observed {
    outcome: Outcome,
    sandbox: Sandbox,
    trace: Option<TraceLog>,
    handlers_seen: BTreeMap<Signal, std::time::Duration>,
    /// The outputs and resume outputs as they are compared with a golden (for an output
    /// with `normalize`, normalized; for one with `valid`, as the run left it), before
    /// the resume ran: for the census, the golden.
    compared: BTreeMap<WorkPath, Option<Vec<u8>>>,
    files_after: BTreeSet<String>,
}

impl Prepared {
    /// Checks the scenario and resolves its commands (building `{bin:…}` targets once).
    pub fn new(scenario: &Scenario) -> Result<Prepared, String> {
        scenario.validate().map_err(|e| e.to_string())?;
        run::become_subreaper();
        crate::os::leftovers::remove_once();
        let binaries = targets::binaries(scenario)?;
        let resolve = |command: &[crate::values::Arg]| Resolved::new(command, scenario, &binaries);
        let survivors = match scenario.expect.acked.as_ref().map(|a| &a.survivors.source) {
            Some(SurvivorSource::Command(command)) => Some(resolve(command)),
            _ => None,
        };
        Ok(Prepared {
            setup: scenario.setup_entries()?,
            target: resolve(&scenario.command),
            survivors,
            resume: scenario.expect.resume.as_ref().map(|r| resolve(&r.command)),
            prepare: (!scenario.prepare.is_empty()).then(|| resolve(&scenario.prepare)),
            judges: scenario
                .expect
                .outputs
                .iter()
                .filter_map(|o| Some((o.path.clone(), resolve(o.command()?))))
                .collect(),
            checks: scenario
                .expect
                .check
                .iter()
                .map(|c| resolve(&c.command))
                .collect(),
            clients: scenario
                .clients
                .iter()
                .map(|c| c.command().map(resolve))
                .collect(),
            uses_port: scenario.uses_port(),
            scenario: {
                // Flags of the expectations that follow from the strikes and clients, for
                // a built scenario as for a file.
                let mut scenario = scenario.clone();
                scenario.expect.power = scenario.strikes.iter().any(|s| s.power);
                scenario
            },
            traced: scenario.wants_tracer(),
        })
    }

    /// The uninterrupted reference run. Where the tracer only adds evidence, a machine
    /// without ptrace runs it (and every case after it) untraced, with a note.
    pub fn census(&mut self) -> Result<Census, RunError> {
        let empty = Plan { strikes: vec![] };
        let (seen, untraced) = match self.observe(&empty, Reference::Census) {
            Err(RunError::Trace(why @ TraceError::Unavailable { .. }))
                if self.traced && !self.scenario.needs_tracer() =>
            {
                self.traced = false;
                let note =
                    format!("run untraced, without per-process timelines or handler checks: {why}");
                let seen = self.observe(&empty, Reference::Census)?;
                (seen, Some(note))
            }
            seen => (seen?, None),
        };
        let signals = self.census_signals();
        let (syscalls, events) = match seen.trace {
            Some(log) => (Some(log.census), log.events),
            None => (None, Vec::new()),
        };
        let mark_counts = seen
            .outcome
            .marks
            .iter()
            .fold(BTreeMap::new(), |mut n, mark| {
                *n.entry(mark.name.clone()).or_insert(0) += 1;
                n
            });
        Ok(Census {
            handlers: seen
                .handlers_seen
                .into_iter()
                .filter(|(signal, _)| signals.contains(signal))
                .map(|(signal, at)| (signal, HandlerSeen { at }))
                .collect(),
            golden: seen
                .compared
                .into_iter()
                .map(|(path, bytes)| (path, bytes.map(Golden::new)))
                .collect(),
            files_after: seen.files_after,
            syscalls,
            events,
            mark_counts,
            untraced,
            run: seen.outcome,
        })
    }

    /// Runs one case under `plan` and judges it; its sandbox is returned with it, to keep
    /// or to drop.
    pub fn case(
        &self,
        census: &Census,
        index: u64,
        id: CaseId,
        plan: Plan,
    ) -> Result<(JudgedCase, Sandbox), RunError> {
        let seen = self.observe(&plan, Reference::Case(census))?;
        let verdicts = invariants::judge(
            &Context {
                expect: &self.scenario.expect,
                census,
                plan: &plan,
                outcome: &seen.outcome,
            },
            &self.scenario.invariants,
        );
        let case = JudgedCase::new(index, id, plan, seen.outcome, verdicts);
        Ok((case, seen.sandbox))
    }

    /// Runs the target once under `plan` in a fresh sandbox and reads what it left.
    fn observe(&self, plan: &Plan, reference: Reference) -> Result<Observed, RunError> {
        let scenario = &self.scenario;
        let expect = &scenario.expect;
        let mut sandbox = Sandbox::create(&self.setup)?;
        if self.uses_port {
            sandbox.port = Some(crate::os::net::free_port()?);
        }
        self.run_prepare(&sandbox)?;
        let paths = expect.output_paths();
        let prior: Vec<Option<Vec<u8>>> = paths
            .iter()
            .map(|p| sandbox.read(p))
            .collect::<Result<_, _>>()?;
        // What is there before the run (setup files) is prior state, never a leftover.
        let files_before = sandbox.list(&paths, &expect.temp_scope, &expect.temp_allow);
        let mut launch = self.target.launch(place(&sandbox), &scenario.env);
        launch.isolate_network = scenario.isolate_network;
        let (watch, trace) = match reference {
            Reference::Census => (
                self.census_signals(),
                self.traced.then(|| self.census_trace(sandbox.path())),
            ),
            Reference::Case(_) => (Vec::new(), self.case_trace(plan, sandbox.path())),
        };
        let lifecycle = self.lifecycle(&sandbox);
        let mut ran: Run = run::run(
            &launch,
            &plan.strikes,
            &watch,
            self.limits(),
            trace,
            lifecycle,
        )?;
        if let Some(kill) = ran
            .killed
            .as_ref()
            .filter(|k| k.reason == KillReason::NeverReady)
        {
            return Err(self.never_ready(&sandbox, kill.at, &ran));
        }

        // A power loss: the sandbox goes back to a state the failure could have left,
        // before anything reads it.
        let power = if plan.strikes.iter().any(|s| s.power) {
            let log = ran.trace.as_mut().and_then(|t| t.write_log.take());
            let at = ran.strikes.iter().find(|s| s.power).and_then(|s| s.sent_at);
            Some(lose_power(&sandbox, log, at)?)
        } else {
            None
        };
        let mut left = BTreeMap::new();
        for path in paths.iter().chain(&expect.resume_outputs()) {
            left.insert(path.clone(), sandbox.read(path)?);
        }
        let files_after = sandbox.list(&paths, &expect.temp_scope, &expect.temp_allow);
        // A leftover is new: not there before the run, and not left by the census.
        let stray_files = match reference {
            Reference::Case(census) => files_after
                .iter()
                .filter(|f| !files_before.contains(*f) && !census.files_after.contains(*f))
                .cloned()
                .collect(),
            Reference::Census => Vec::new(),
        };
        // Judging commands run after the listing: what they make is not the target's.
        let mut outputs = Vec::new();
        let mut compared = BTreeMap::new();
        for (spec, prior) in expect.outputs.iter().zip(&prior) {
            let found = left.get(&spec.path).and_then(|a| a.as_deref());
            let against = match reference {
                Reference::Census => Against::Itself,
                Reference::Case(census) => Against::Golden(census.golden_bytes(&spec.path)),
            };
            let judged = self.judge_output(&sandbox, spec, prior.as_deref(), found, against)?;
            outputs.push(OutputRecord {
                path: spec.path.clone(),
                before: FileState::classify(prior.as_deref(), prior.as_deref(), None),
                after: judged.state,
            });
            compared.insert(spec.path.clone(), judged.compared);
        }
        for path in expect.resume_outputs() {
            compared
                .entry(path.clone())
                .or_insert_with(|| left.get(&path).cloned().flatten());
        }
        let (trace, processes, handler_io, trace_log) = match ran.trace {
            Some(mut log) => (
                std::mem::take(&mut log.windows),
                // A census keeps its process tree in its syscall census.
                match reference {
                    Reference::Case(_) => std::mem::take(&mut log.census.processes),
                    Reference::Census => Vec::new(),
                },
                std::mem::take(&mut log.handler_io),
                Some(log),
            ),
            None => (Vec::new(), Vec::new(), Vec::new(), None),
        };
        let mut outcome = Outcome {
            status: ran.status,
            exited_at: ran.exited_at,
            strikes: ran.strikes,
            tree_gone_at: ran.tree_gone_at,
            killed: ran.killed,
            leftovers: ran.leftovers,
            outputs,
            stray_files,
            stdout: ran.stdout,
            stderr: ran.stderr,
            survivors: expect
                .acked
                .as_ref()
                .map(|spec| survivors::read(spec, self.survivors.as_ref(), place(&sandbox))),
            tracking: ran.tracking,
            trace,
            processes,
            handler_io,
            marker_files: self.marker_files(&sandbox)?,
            marks: ran.marks,
            ready_at: ran.ready_at,
            stop: ran.stop,
            clients: ran.clients,
            checks: Vec::new(),
            resume: None,
            power,
        };
        // The checkers read what the run left and the outcome so far; the resume comes
        // last, after everything else has read the sandbox as the run left it.
        outcome.checks = self.run_checks(&sandbox, &outcome)?;
        outcome.resume = self.resume(&sandbox, reference, &compared)?;
        Ok(Observed {
            outcome,
            sandbox,
            trace: trace_log,
            handlers_seen: ran.handlers_seen,
            compared,
            files_after,
        })
    }

    /// What a server's run must do beside running, resolved for the run in `sandbox`:
    /// its ready condition, its clients, its stop.
    fn lifecycle(&self, sandbox: &Sandbox) -> Lifecycle {
        let scenario = &self.scenario;
        let ready = scenario.ready.as_ref().map(|r| {
            let on = match &r.on {
                ReadyOn::Stdout(p) => ReadyCheck::Stdout(p.clone()),
                ReadyOn::Stderr(p) => ReadyCheck::Stderr(p.clone()),
                ReadyOn::Port(port) => ReadyCheck::Port(
                    port.number(sandbox.port)
                        .expect("a scenario that waits for {port} gets a port for every run"),
                ),
                ReadyOn::File(path) => ReadyCheck::File(sandbox.path().join(path.as_str())),
                ReadyOn::Probe(name) => ReadyCheck::Probe(name.clone()),
            };
            let shown = match (&r.on, sandbox.port) {
                (ReadyOn::Port(Port::Case), Some(port)) => {
                    format!("a TCP connect to 127.0.0.1:{port} ({{port}})")
                }
                (on, _) => on.to_string(),
            };
            ReadyWatch {
                on,
                timeout: r.timeout.unwrap_or(scenario.timeout),
                shown,
            }
        });
        let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = scenario
            .env
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let reads_bodies = scenario
            .expect
            .acked
            .as_ref()
            .is_some_and(|a| a.ack.reads_bodies());
        let clients = scenario
            .clients
            .iter()
            .zip(&self.clients)
            .map(|(spec, command)| match (spec, command) {
                (ClientSpec::BuiltIn(client), _) => ClientLaunch::BuiltIn {
                    shown: spec.shown(),
                    // Acknowledgements read from response bodies need them kept.
                    client: if reads_bodies {
                        client.clone().keeping_bodies()
                    } else {
                        client.clone()
                    },
                    // A built-in client whose url names a fixed port needs none here.
                    port: sandbox.port.unwrap_or(0),
                },
                (ClientSpec::Command(written), Some(command)) => ClientLaunch::command(
                    shown(written),
                    command.argv(place(sandbox)),
                    sandbox.path().to_path_buf(),
                    env.clone(),
                ),
                (ClientSpec::Command(_), None) => unreachable!("a command client is resolved"),
            })
            .collect();
        Lifecycle {
            ready,
            clients,
            stop: scenario.stop.as_ref().map(|s| (s.signal, s.after)),
        }
    }

    /// The error of a target that was not ready in time, with no strike to blame: what
    /// it waited for, and the end of the target's output.
    fn never_ready(&self, sandbox: &Sandbox, at: std::time::Duration, ran: &Run) -> RunError {
        let ready = self
            .lifecycle(sandbox)
            .ready
            .expect("only a ready condition times out");
        let finished = Finished {
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            stdout: ran.stdout.text.clone().into_bytes(),
            stderr: ran.stderr.text.clone().into_bytes(),
        };
        RunError::NeverReady(format!(
            "the target was never ready: it waited {} for {}, and killed it at {}{}",
            crate::values::format_duration(ready.timeout),
            ready.shown,
            crate::units::ms(at),
            tails(&finished)
        ))
    }

    /// Runs the `prepare` command in a fresh sandbox; a failure is the scenario's error,
    /// with the command's output.
    fn run_prepare(&self, sandbox: &Sandbox) -> Result<(), RunError> {
        let Some(command) = &self.prepare else {
            return Ok(());
        };
        let what = format!("the prepare command `{}`", shown(&self.scenario.prepare));
        let finished =
            self.run_beside(sandbox, &what, command.argv(place(sandbox)), Stdin::Null)?;
        if finished.status.success() {
            return Ok(());
        }
        Err(RunError::Command(format!(
            "{what} ended with {}{}",
            ended(&finished.status),
            tails(&finished)
        )))
    }

    /// Runs a command of the scenario beside the target (prepare, a judge, a checker)
    /// in the sandbox, with the scenario's env and bounded by its `timeout`. Only its
    /// failure to run at all is an error here; what its status means is the caller's.
    fn run_beside(
        &self,
        sandbox: &Sandbox,
        what: &str,
        argv: Vec<std::ffi::OsString>,
        stdin: Stdin,
    ) -> Result<Finished, RunError> {
        let helper = Helper {
            cwd: Some(sandbox.path().to_path_buf()),
            env: self
                .scenario
                .env
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            timeout: Some(self.scenario.timeout),
            stdin,
            ..Helper::new(&argv[0], &argv[1..])
        };
        run_helper(&helper).map_err(|e| match e {
            HelperError::Interrupted { .. } => RunError::Interrupted,
            e => RunError::Command(format!("{what}: {e}")),
        })
    }

    /// Judges an output's content after a run: absent, prior, or as its judge says —
    /// compared with the golden (`against`), accepted by its `valid` command, or
    /// compared once normalized.
    fn judge_output(
        &self,
        sandbox: &Sandbox,
        spec: &OutputSpec,
        prior: Option<&[u8]>,
        found: Option<&[u8]>,
        against: Against,
    ) -> Result<JudgedOutput, RunError> {
        let Some(found) = found else {
            return Ok(JudgedOutput {
                state: FileState::Absent,
                compared: None,
            });
        };
        let itself = matches!(against, Against::Itself);
        // A case's output left as it was needs no command; the census's is always judged,
        // to make sure its judge accepts what an uninterrupted run makes.
        if Some(found) == prior && !itself {
            return Ok(JudgedOutput {
                state: FileState::Prior,
                compared: Some(found.to_vec()),
            });
        }
        let file = sandbox.path().join(spec.path.as_str());
        let run = |stdin: Stdin| -> Result<Finished, RunError> {
            let command = spec.command().expect("a judged output has a command");
            let what = format!(
                "the {} command `{}` of `{}`",
                judge_key(spec),
                shown(command),
                spec.path
            );
            let argv = self.judges[&spec.path].argv_judging(place(sandbox), &file);
            let finished = self.run_beside(sandbox, &what, argv, stdin)?;
            match finished.status.code() {
                Some(_) => Ok(finished),
                None => Err(RunError::Command(format!(
                    "{what} ended with {}{}",
                    ended(&finished.status),
                    tails(&finished)
                ))),
            }
        };
        let rejected = |finished: &Finished| FileState::Rejected {
            size: found.len() as u64,
            sha256: crate::outcome::sha256_hex(found),
            by: format!(
                "`{}` ended with {}",
                shown(spec.command().expect("a judged output has a command")),
                ended(&finished.status)
            ),
            // A normalize command's stdout is content, not words: only its stderr speaks.
            output: match spec.judge {
                Judge::Normalize(_) => evidence(&Finished {
                    status: finished.status,
                    stdout: Vec::new(),
                    stderr: finished.stderr.clone(),
                }),
                _ => evidence(finished),
            },
        };
        let (state, compared) = match &spec.judge {
            Judge::Golden => {
                let golden = match against {
                    Against::Itself => Some(found),
                    Against::Golden(golden) => golden,
                };
                (
                    FileState::classify(Some(found), prior, golden),
                    found.to_vec(),
                )
            }
            Judge::Valid(_) => {
                let finished = run(Stdin::Null)?;
                let state = if finished.status.success() {
                    FileState::Valid
                } else {
                    rejected(&finished)
                };
                (state, found.to_vec())
            }
            Judge::Normalize(_) => {
                let finished = run(Stdin::File(file.clone()))?;
                if !finished.status.success() {
                    (rejected(&finished), found.to_vec())
                } else {
                    let normalized = finished.stdout;
                    let golden = match against {
                        Against::Itself => Some(normalized.as_slice()),
                        Against::Golden(golden) => golden,
                    };
                    let state = FileState::classify(Some(&normalized), None, golden);
                    (state, normalized)
                }
            }
        };
        let state = match state {
            // Prior wins over complete, as it does for a byte-compared output.
            FileState::Golden | FileState::Valid if Some(found) == prior => FileState::Prior,
            state => state,
        };
        Ok(JudgedOutput {
            state,
            compared: Some(compared),
        })
    }

    /// Runs every checker on the case, its outcome as JSON on stdin: exit 0 held, 1
    /// broken; anything else is the scenario's error.
    fn run_checks(
        &self,
        sandbox: &Sandbox,
        outcome: &Outcome,
    ) -> Result<Vec<CheckRecord>, RunError> {
        if self.checks.is_empty() {
            return Ok(Vec::new());
        }
        let json = serde_json::to_vec(outcome).expect("an outcome serializes");
        let mut records = Vec::new();
        for (spec, command) in self.scenario.expect.check.iter().zip(&self.checks) {
            let what = format!("the checker `{}` (`{}`)", spec.name, shown(&spec.command));
            let finished = self.run_beside(
                sandbox,
                &what,
                command.argv(place(sandbox)),
                Stdin::Bytes(json.clone()),
            )?;
            let held = match finished.status.code() {
                Some(0) => true,
                Some(1) => false,
                _ => {
                    return Err(RunError::Command(format!(
                        "{what} failed: it ended with {} (a checker exits 0 when the promise held, 1 when it was broken){}",
                        ended(&finished.status),
                        tails(&finished)
                    )));
                }
            };
            records.push(CheckRecord {
                name: spec.name.clone(),
                held,
                output: evidence(&finished),
            });
        }
        Ok(records)
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.scenario.timeout,
            deadline: self.scenario.expect.deadline,
            grace: self.scenario.expect.grace(),
        }
    }

    /// The signals whose handlers the census watches for: every strike signal, and those
    /// `after_handler` counts from.
    fn census_signals(&self) -> Vec<Signal> {
        let mut signals = self.scenario.signals();
        signals.extend(self.scenario.strikes.iter().filter_map(|s| match s.at {
            PointSpec::Delay { after_handler, .. } => after_handler,
            PointSpec::Syscall(_)
            | PointSpec::Probe(_)
            | PointSpec::Request(_)
            | PointSpec::AfterExit => None,
        }));
        signals
    }

    /// The census traps every class a strike may name, the context classes and
    /// `rt_sigaction`, and keeps every event in order.
    fn census_trace(&self, root: &Path) -> TraceSetup {
        let mut classes = self.scenario.strike_classes();
        classes.extend(CONTEXT_CLASSES);
        classes.insert(SyscallClass::Sigaction);
        TraceSetup {
            classes,
            strikes: Vec::new(),
            root: root.to_path_buf(),
            keep_events: true,
            handler_io: self.scenario.expect.handler_io != Severity::Off,
            record: false,
        }
    }

    /// What the tracer must do for a case under `plan`: trap the plan's syscall classes
    /// and the context classes, and fire the syscall strikes. `None`: run untraced.
    fn case_trace(&self, plan: &Plan, root: &Path) -> Option<TraceSetup> {
        if !self.traced {
            return None;
        }
        let mut classes: ClassSet = CONTEXT_CLASSES.into_iter().collect();
        // Every handler the main process installs is seen, so that a strike that finds
        // none can tell "not yet" from "given up".
        classes.insert(SyscallClass::Sigaction);
        let mut strikes = Vec::new();
        for (index, strike) in plan.strikes.iter().enumerate() {
            match &strike.point {
                Point::Syscall {
                    syscall,
                    path,
                    nth,
                    when,
                } => {
                    classes.insert(*syscall);
                    strikes.push(SyscallStrike {
                        index,
                        signal: strike.signal,
                        to: strike.to,
                        class: *syscall,
                        path: path.clone(),
                        nth: *nth,
                        when: *when,
                        process: strike.process.clone(),
                    });
                }
                Point::Delay {
                    clock: Clock::Handler(_),
                    ..
                } => {
                    classes.insert(SyscallClass::Sigaction);
                }
                Point::Delay { .. }
                | Point::Probe { .. }
                | Point::Request { .. }
                | Point::AfterExit => {}
            }
        }
        // A power strike needs the write log: every mutating call of the tree.
        let record = plan.strikes.iter().any(|s| s.power);
        if record {
            classes.extend(RECORDED_CLASSES);
        }
        Some(TraceSetup {
            classes,
            strikes,
            root: root.to_path_buf(),
            keep_events: false,
            handler_io: self.scenario.expect.handler_io != Severity::Off,
            record,
        })
    }

    /// The files the scenario's `once` markers are counted in, as text (`None`: absent).
    fn marker_files(
        &self,
        sandbox: &Sandbox,
    ) -> Result<BTreeMap<WorkPath, Option<String>>, RunError> {
        let mut files = BTreeMap::new();
        for spec in &self.scenario.expect.once {
            if let MarkerSource::File(path) = &spec.source {
                let text = sandbox
                    .read(path)?
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                files.insert(path.clone(), text);
            }
        }
        Ok(files)
    }

    /// Runs the `[expect.resume]` command in the sandbox, bounded by the scenario's
    /// `timeout`, and compares the resume outputs with the golden. `None` without one.
    fn resume(
        &self,
        sandbox: &Sandbox,
        reference: Reference,
        compared: &BTreeMap<WorkPath, Option<Vec<u8>>>,
    ) -> Result<Option<ResumeRecord>, RunError> {
        let Some(command) = &self.resume else {
            return Ok(None);
        };
        let paths = self.scenario.expect.resume_outputs();
        // Each output as the case left it and as the resume leaves it, judged while the
        // sandbox holds it: a judge reads the file on disk.
        let judged = |path: &WorkPath| -> Result<FileState, RunError> {
            let against = Against::Golden(golden(reference, compared, path));
            let found = sandbox.read(path)?;
            Ok(match (self.scenario.expect.output(path), against) {
                (Some(spec), against) => {
                    self.judge_output(sandbox, spec, None, found.as_deref(), against)?
                        .state
                }
                (None, Against::Golden(golden)) => {
                    FileState::classify(found.as_deref(), None, golden)
                }
                (None, Against::Itself) => unreachable!("the resume is compared with a golden"),
            })
        };
        let before: Vec<FileState> = paths.iter().map(judged).collect::<Result<_, _>>()?;
        let limits = Limits {
            timeout: self.scenario.timeout,
            deadline: None,
            grace: self.scenario.expect.grace(),
        };
        let launch = command.launch(place(sandbox), &self.scenario.env);
        let ran = run::run(&launch, &[], &[], limits, None, Default::default())?;
        let mut outputs = Vec::new();
        for (path, before) in paths.iter().zip(before) {
            outputs.push(OutputRecord {
                path: path.clone(),
                before,
                after: judged(path)?,
            });
        }
        Ok(Some(ResumeRecord {
            status: ran.status,
            duration: ran.exited_at,
            killed: ran.killed,
            stdout: ran.stdout,
            stderr: ran.stderr,
            marks: ran.marks,
            outputs,
        }))
    }

    /// Whether the census can serve as the reference for the cases; if not, why: it ran
    /// past the timeout, made none of an output, acknowledged nothing, or left nothing
    /// to read. A promise it broke is not such a reason: [`Prepared::census_case`]
    /// judges it.
    pub fn vet_census(&self, census: &Census) -> Result<(), String> {
        let scenario = &self.scenario;
        let expect = &scenario.expect;
        let run = &census.run;
        let timeout = crate::values::format_duration(scenario.timeout);
        if run.exited_at >= scenario.timeout {
            return Err(format!(
                "the uninterrupted run did not finish within the timeout ({timeout}): raise `timeout` or fix the command"
            ));
        }
        for (path, golden) in &census.golden {
            if golden.is_none() {
                let mut message = format!(
                    "the uninterrupted run did not write the output `{path}`: check `command` and `[expect] outputs`"
                );
                // A failing run explains itself better than the missing file does.
                if let Err(why) = not_clean("it", run.status, &expect.clean, &run.stderr) {
                    message = format!("{message}; {why}");
                }
                return Err(message);
            }
        }
        for output in &run.outputs {
            if let FileState::Rejected {
                by, output: said, ..
            } = &output.after
            {
                return Err(format!(
                    "the uninterrupted run's `{}` is not accepted by its own judge: {by}; a `valid` or `normalize` command must accept what a run no strike reached makes{}",
                    output.path,
                    it_said(said)
                ));
            }
        }
        if let Some(check) = run.checks.iter().find(|c| !c.held) {
            return Err(format!(
                "the checker `{}` fails on the uninterrupted run (exit 1); a checker must pass where no strike landed{}",
                check.name,
                it_said(&check.output)
            ));
        }
        if let (Some(spec), Some(read)) = (&expect.acked, &run.survivors) {
            let acked = spec.ack.reported(run);
            if acked.is_empty() {
                return Err(format!(
                    "the uninterrupted run made no acknowledgement: `[expect.acked] ack` reads {}, and there were none",
                    spec.ack
                ));
            }
            read.ids.as_ref().map_err(|why| {
                format!("what survived the uninterrupted run cannot be read: {why}")
            })?;
        }
        for spec in &expect.once {
            let count = spec
                .text(&run.stdout.text, &run.stderr.text, &run.marker_files)
                .map_or(0, |text| spec.hits(text).len());
            if count == 0 {
                return Err(format!(
                    "the uninterrupted run never shows `{}` in {}: check `[[expect.once]]`",
                    spec.marker.as_str(),
                    spec.source
                ));
            }
        }
        Ok(())
    }

    /// The census judged as the case of the empty plan: a promise the program breaks with
    /// no strike at all (a status `[expect] clean` does not allow, a process left
    /// running, a crash on stderr, an acknowledged id lost) is a violation found by the
    /// census, with its evidence.
    pub fn census_case(&self, census: &Census) -> JudgedCase {
        let plan = Plan { strikes: vec![] };
        let verdicts = invariants::judge(
            &Context {
                expect: &self.scenario.expect,
                census,
                plan: &plan,
                outcome: &census.run,
            },
            &self.scenario.invariants,
        );
        JudgedCase::new(0, CaseId::Census, plan, census.run.clone(), verdicts)
    }
}

/// What the placeholders of a run in `sandbox` stand for.
fn place(sandbox: &Sandbox) -> Place<'_> {
    Place {
        work: sandbox.path(),
        port: sandbox.port,
    }
}

/// What an output is compared with: the run's own content (the census), or the golden.
#[derive(Clone, Copy)]
enum Against<'a> {
    Itself,
    Golden(Option<&'a [u8]>),
}

/// An output's state after a run, and its content as compared (normalized, for an output
/// with `normalize`).
struct JudgedOutput {
    state: FileState,
    compared: Option<Vec<u8>>,
}

/// A command as the scenario file writes it, each argument quoted as a shell would need
/// it, so that a `sh -c` script reads as one.
fn shown(command: &[crate::values::Arg]) -> String {
    command
        .iter()
        .map(|a| shell_quoted(&a.raw))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quoted(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%{}".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

fn judge_key(spec: &OutputSpec) -> &'static str {
    match spec.judge {
        Judge::Valid(_) => "valid",
        _ => "normalize",
    }
}

/// How a helper ended, in words: `exit 3`, `signal 9`.
fn ended(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "an unknown status".into(),
    }
}

/// What a judge or checker printed, indented under an error message.
fn it_said(said: &str) -> String {
    if said.is_empty() {
        return String::new();
    }
    format!("\n  it said:\n    {}", said.replace('\n', "\n    "))
}

/// The last lines of a helper's stdout and stderr, for an error message.
fn tails(finished: &Finished) -> String {
    let mut message = String::new();
    for (name, bytes) in [("stdout", &finished.stdout), ("stderr", &finished.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        if !lines.is_empty() {
            let tail = &lines[lines.len().saturating_sub(5)..];
            message.push_str(&format!(
                "\n  its {name} ended with:\n    {}",
                tail.join("\n    ")
            ));
        }
    }
    message
}

/// What a judge or checker printed, stdout then stderr: its last lines, each trimmed,
/// empty ones left out. The evidence.
fn evidence(finished: &Finished) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The content an output is compared with: the census's final content, or for the census
/// itself, what it left.
fn golden<'b>(
    reference: Reference<'b>,
    left: &'b BTreeMap<WorkPath, Option<Vec<u8>>>,
    path: &WorkPath,
) -> Option<&'b [u8]> {
    match reference {
        Reference::Case(census) => census.golden_bytes(path),
        Reference::Census => left.get(path).and_then(|b| b.as_deref()),
    }
}

/// Refuses a run (`what`) that ended with a status `[expect] clean` does not allow,
/// quoting the end of its stderr.
fn not_clean(
    what: &str,
    status: ExitStatus,
    clean: &[ExitStatus],
    stderr: &Capture,
) -> Result<(), String> {
    if clean.contains(&status) {
        return Ok(());
    }
    let text = stderr.text.trim_end();
    let tail = if text.is_empty() {
        String::new()
    } else {
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(5)..];
        format!("\n  its stderr ended with:\n    {}", tail.join("\n    "))
    };
    Err(format!(
        "{what} ended with {status}, which `[expect] clean` does not allow{tail}"
    ))
}

/// Puts the sandbox in the crash state a power loss leaves after the operations of `log`
/// (every pending one lost), and says what was lost.
fn lose_power(
    sandbox: &Sandbox,
    log: Option<WriteLog>,
    at: Option<Duration>,
) -> Result<PowerRecord, RunError> {
    let log = log.ok_or_else(|| {
        RunError::Command(
            "a power strike needs the tracer's write log, and the run kept none".into(),
        )
    })?;
    let state = CrashState::LoseAll;
    let tree = power::crash_state(&log.initial, &log.ops, state)
        .expect("losing every pending operation is a state of every log");
    sandbox.put(&tree)?;
    let mutation = |op: &power::Op| !matches!(op, power::Op::Sync { .. } | power::Op::SyncAll);
    let recorded = log.ops.iter().filter(|op| mutation(op)).count();
    let pending = power::pending(&log.ops)
        .iter()
        .zip(&log.ops)
        .filter(|(p, op)| **p && mutation(op))
        .count();
    Ok(PowerRecord {
        at,
        state,
        recorded,
        durable: recorded - pending,
        lost: power::describe_pending(&log.ops, &log.names),
        warnings: log.warnings,
    })
}
