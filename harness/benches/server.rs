//! Whether killpoint is the bottleneck of a server case: the built-in HTTP client's request
//! rate against the zoo's tokio/axum service run by the case runner, next to its rate
//! against the same service run bare, in the same run, rounds interleaved.
//!
//! `cargo bench -p killpoint --bench server` prints each figure's median over the rounds
//! and the ratios (goal: ≥ 0.9× the bare rate, so that what a case measures is the
//! server's behaviour, not killpoint's). Environment: `KILLPOINT_BENCH_RUNS` (rounds,
//! default 7), `KILLPOINT_BENCH_REQUESTS` (per round, default 20000),
//! `KILLPOINT_BENCH_CONCURRENCY` (default 8). Unpinned, as cases run.
//!
//! The service: `http-service --port P --store …` (scenarios/src/bin/http-service.rs),
//! `GET /health` over kept connections (`ok\n`), the cheapest request it serves, so the
//! harness's share of a request is as large as it can be. The client: killpoint's own
//! (`killpoint::load`), the same spec in every figure. A rate is the requests over the
//! time from the first request's start to the last one's end, as the history stamps them.
//!
//! - bare: the service spawned with `std::process::Command`, ready when it prints its
//!   `READY` line; the client run on this thread; then SIGTERM, and waited for.
//! - case: a case of a scenario (`ready`, `stop` after the client, the client as a
//!   `[[client]]`), run by `Cases::run` with no strike: the census's run. Untraced
//!   (`handler_io = "off"`, no deadline).
//! - traced case: the same with a deadline, as server scenarios run: under the tracer,
//!   trapping the context classes (fsync, rename, unlink, truncate, fork, rt_sigaction).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use killpoint::client::{BuiltInClient, HttpClientSpec, RawHttpClientSpec};
use killpoint::history::History;
use killpoint::load::{self, Stop};
use killpoint::plan::Plan;
use killpoint::scenario::{ReadySpec, StopSpec};
use killpoint::{Cases, Expect, Scenario, Signal, Strike};

mod common;
use common::{env_or, median};

fn spec(requests: u32, concurrency: u32) -> HttpClientSpec {
    HttpClientSpec::try_from(RawHttpClientSpec {
        url: "http://127.0.0.1:{port}/health".into(),
        requests,
        concurrency,
        ..RawHttpClientSpec::default()
    })
    .expect("a valid client")
}

/// Requests per second of a history, every request answered 200.
fn rate(history: &History, requests: u32) -> f64 {
    assert_eq!(
        history.with_status(200).count(),
        requests as usize,
        "{}",
        history.summary()
    );
    let first = history.requests.iter().map(|r| r.started_at).min().unwrap();
    let last = history
        .requests
        .iter()
        .filter_map(|r| r.ended_at())
        .max()
        .unwrap();
    f64::from(requests) / (last - first).as_secs_f64()
}

/// The service's scenario, prepared (its census run once).
fn prepared(requests: u32, concurrency: u32, traced: bool) -> Cases {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let command = [
        "{bin:http-service}",
        "--port",
        "{port}",
        "--store",
        "{work}/items.log",
    ];
    let mut scenario = Scenario::command(command[0]);
    scenario.command = command
        .iter()
        .map(|arg| arg.parse().expect("a template argument"))
        .collect();
    scenario = scenario
        .ready(ReadySpec::stdout("^READY "))
        .stop(StopSpec::after_clients())
        .load_client(BuiltInClient::Http(spec(requests, concurrency)))
        // Never due: the case is the census's run.
        .strike(Strike::after(Duration::from_secs(3600)).signal(Signal::SIGTERM));
    scenario = if traced {
        scenario.expect(Expect::deadline(Duration::from_secs(5)))
    } else {
        scenario.expect(Expect::handler_io(killpoint::Severity::Off))
    };
    // `{bin:…}` is found from the scenarios crate, as for a file beside it.
    scenario.source = Some(root.join("scenarios").join("bench.toml"));
    scenario.timeout = Duration::from_secs(120);
    scenario.prepare().expect("the service runs")
}

/// One case with no strike: the client's rate.
fn case(cases: &Cases, requests: u32) -> f64 {
    let case = cases.run(&Plan { strikes: vec![] }).expect("the case runs");
    assert_eq!(
        case.outcome.status.to_string(),
        "exit 0",
        "{}",
        cases.text(&case)
    );
    let history = case.outcome.clients[0].history.as_ref().expect("a history");
    rate(history, requests)
}

/// The service run bare, the same client against it: its rate.
fn bare(program: &Path, requests: u32, concurrency: u32) -> f64 {
    let work = tempfile::tempdir().expect("a temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(program)
        .args(["--port", &port.to_string(), "--store"])
        .arg(work.path().join("items.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("its READY line");
    assert!(line.starts_with("READY "), "{line:?}");
    let clock = Instant::now();
    let history = load::run_http(
        &spec(requests, concurrency),
        port,
        clock,
        &Stop::new(),
        clock + Duration::from_secs(600),
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("it exits");
    assert!(status.success(), "{status}");
    rate(&history, requests)
}

fn main() {
    let runs: usize = env_or("KILLPOINT_BENCH_RUNS", 7);
    let requests: u32 = env_or("KILLPOINT_BENCH_REQUESTS", 20_000);
    let concurrency: u32 = env_or("KILLPOINT_BENCH_CONCURRENCY", 8);
    let untraced = prepared(requests, concurrency, false);
    let traced = prepared(requests, concurrency, true);
    // The bare run execs the binary the traced census saw.
    let program: PathBuf = traced
        .census()
        .syscalls
        .as_ref()
        .and_then(|s| s.processes.first())
        .and_then(|p| p.command.split(' ').next().map(PathBuf::from))
        .expect("the census saw the service");
    // Warm up (the binary in the page cache, the kernel's socket caches).
    bare(&program, 1000, concurrency);
    let (mut bare_rates, mut case_rates, mut traced_rates) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        bare_rates.push(bare(&program, requests, concurrency));
        case_rates.push(case(&untraced, requests));
        traced_rates.push(case(&traced, requests));
    }
    let (b, c, t) = (median(bare_rates), median(case_rates), median(traced_rates));
    println!(
        "server under killpoint vs bare: {requests} GET /health over {concurrency} connections, median of {runs} rounds"
    );
    println!("  bare:        {b:>9.0} requests/s");
    println!(
        "  case:        {c:>9.0} requests/s  {:.2}× bare (goal ≥ 0.9)",
        c / b
    );
    println!(
        "  traced case: {t:>9.0} requests/s  {:.2}× bare (goal ≥ 0.9)",
        t / b
    );
}
