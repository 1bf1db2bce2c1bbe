//! Servers, end to end: a real HTTP server (Python's `ThreadingHTTPServer`) on a loopback
//! port picked for each case, ready when it says so (or when its port accepts), loaded by
//! a client started then, and stopped with SIGTERM once the client is done — the census
//! is a graceful stop — with strikes counted from ready or landing at the n-th accepted
//! connection.

use std::fs;
use std::path::Path;
use std::time::Duration;

use killpoint::plan::{Plan, PlannedStrike, Point};
use killpoint::scenario::{ExitStatus, Recipient, Scenario};
use killpoint::syscalls::{SyscallClass, What, When};
use killpoint::{Campaign, CampaignOptions, ScenarioReport, ScenarioResult, Signal};

/// A stdlib HTTP server on 127.0.0.1:PORT that prints `READY PORT` once it listens and
/// stops gracefully on SIGTERM (shutdown from another thread, in-flight requests
/// finished), then exits 0. With `--no-ready-line` it says nothing.
const SERVER: &str = r#"
import http.server, signal, sys, threading
port = int(sys.argv[1])
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = ("ok %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
if "--no-ready-line" not in sys.argv:
    print("READY", port, flush=True)
server.serve_forever()
server.server_close()
# CPython resets handlers as it finalizes: a late SIGTERM must not kill it then.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
"#;

/// GETs /item/1 … /item/N in turn, printing `ACK i` after each complete response.
const CLIENT: &str = r#"
import sys, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    with urllib.request.urlopen("http://127.0.0.1:%s/item/%d" % (port, i), timeout=5) as r:
        assert r.read() == ("ok /item/%d\n" % i).encode()
    print("ACK", i, flush=True)
"#;

fn scenario(dir: &Path, text: &str) -> Scenario {
    fs::write(dir.join("server.py"), SERVER).unwrap();
    fs::write(dir.join("client.py"), CLIENT).unwrap();
    let file = dir.join("s.toml");
    fs::write(&file, text).unwrap();
    Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn run(scenario: &Scenario, jobs: usize) -> ScenarioReport {
    let mut options = CampaignOptions::new(1);
    options.jobs = jobs;
    options.shrink_iterations = Some(0);
    options.regressions = false;
    Campaign::new(options).run_scenario(scenario)
}

fn text(report: &ScenarioReport) -> String {
    killpoint::report::scenario_text(report)
}

#[test]
fn a_server_is_ready_on_its_line_loaded_by_its_client_and_stopped_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        r#"name = "http-stop-after-clients"
command = ["{python}", "{dir}/server.py", "{port}"]
ready = { stdout = '^READY \d+$', timeout = "10s" }
stop = { signal = "SIGTERM", after = "clients" }
cases = 6
[[client]]
command = ["{python}", "{dir}/client.py", "{port}", "20"]
[[strike]]
signal = "SIGTERM"
at = { after_ready = "0ms..100ms" }
[expect]
clean = [0]
interrupted = [0]
deadline = "5s"
"#,
    );
    // Two cases at once, each on its own port.
    let report = run(&s, 2);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    let ready = census.ready_at.expect("the census was ready");
    // The client ran once ready, to its end: 20 complete responses.
    assert_eq!(census.clients.len(), 1);
    let client = &census.clients[0];
    assert!(client.started_at >= ready, "{client:?}");
    assert_eq!(client.status, Some(ExitStatus::Code(0)), "{client:?}");
    assert!(!client.cut_off);
    let acks: Vec<String> = (1..=20).map(|i| format!("ACK {i}\n")).collect();
    assert_eq!(client.stdout.text, acks.concat());
    // Then the stop, after the client had ended; the server stopped gracefully.
    let stop = census.stop.as_ref().expect("the census was stopped");
    assert_eq!(stop.signal, Signal::SIGTERM);
    assert!(
        stop.sent_at >= client.ended_at.unwrap(),
        "{stop:?} {client:?}"
    );
    assert_eq!(census.status, ExitStatus::Code(0));
    assert!(census.exited_at >= stop.sent_at);
    // The server was given a port of its own, on its command line.
    let port: u16 = census
        .stdout
        .text
        .strip_prefix("READY ")
        .and_then(|p| p.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{:?}", census.stdout.text));
    assert!(port >= 1024, "{port}");
}

#[test]
fn a_server_is_ready_when_its_port_accepts_and_stopped_a_while_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        r#"name = "http-stop-after-a-while"
command = ["{python}", "{dir}/server.py", "{port}", "--no-ready-line"]
ready = { port = "{port}" }
stop = { after = "300ms" }
cases = 2
[[strike]]
signal = "SIGTERM"
at = { after_ready = "0ms..50ms" }
[expect]
interrupted = [0]
"#,
    );
    let report = run(&s, 1);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    let ready = census.ready_at.expect("its port accepted");
    let stop = census.stop.as_ref().expect("the census was stopped");
    assert!(
        stop.sent_at >= ready + Duration::from_millis(300),
        "{ready:?} {stop:?}"
    );
    assert!(census.clients.is_empty());
    assert_eq!(census.status, ExitStatus::Code(0), "{shown}");
}

#[test]
fn a_server_never_ready_is_an_error_that_says_what_was_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        r#"name = "http-never-ready"
command = ["{python}", "{dir}/server.py", "{port}", "--no-ready-line"]
ready = { stdout = '^READY', timeout = "400ms" }
stop = { after = "1s" }
[[strike]]
signal = "SIGTERM"
at = { after_ready = "0ms..10ms" }
"#,
    );
    let report = run(&s, 1);
    let ScenarioResult::Error { message } = &report.result else {
        panic!("{}", text(&report))
    };
    assert!(
        message.starts_with(
            "the target was never ready: it waited 400ms for a line of stdout matching `^READY`, and killed it at "
        ),
        "{message}"
    );
    // Nothing is left running: the server was killed with its tree.
    assert!(
        !killpoint_processes_of(dir.path()),
        "a server of this test still runs"
    );
}

#[test]
fn an_accept_strike_lands_at_the_nth_accepted_connection() {
    let dir = tempfile::tempdir().unwrap();
    // The ready probe's connect is the server's first accepted connection, the client's
    // requests the next ones: accept #4 is the client's third request.
    let s = scenario(
        dir.path(),
        r#"name = "http-accept"
command = ["{python}", "{dir}/server.py", "{port}", "--no-ready-line"]
ready = { port = "{port}" }
stop = { after = "clients" }
[[client]]
command = ["{python}", "{dir}/client.py", "{port}", "5"]
[[strike]]
signal = "SIGKILL"
at = { syscall = "accept", nth = 4, when = "exit" }
[expect]
clean = [0]
"#,
    );
    let report = run(&s, 1);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let cases = s.prepare().unwrap_or_else(|e| panic!("{e}"));
    let accepts = cases
        .census()
        .syscalls
        .as_ref()
        .unwrap()
        .calls
        .iter()
        .filter(|c| c.class == SyscallClass::Accept)
        .map(|c| c.count)
        .sum::<u64>();
    // The ready probe's connection and the five requests' (the server polls its socket
    // before it accepts, so no accept waits when the stop comes).
    assert_eq!(accepts, 6, "{shown}");
    let plan = Plan {
        strikes: vec![PlannedStrike {
            signal: Signal::SIGKILL,
            to: Recipient::Process,
            point: Point::Syscall {
                syscall: SyscallClass::Accept,
                path: None,
                nth: 4,
                when: When::Exit,
            },
            process: None,
        }],
    };
    let case = cases.run(&plan).unwrap_or_else(|e| panic!("{e}"));
    let hit = case.outcome.strikes[0]
        .hit
        .as_ref()
        .expect("struck at a call");
    let What::Syscall(call) = &hit.what else {
        panic!("{hit:?}")
    };
    assert_eq!(call.class, SyscallClass::Accept);
    // Killed as it accepted the client's third request: two were acknowledged, and the
    // client then failed.
    assert_eq!(case.outcome.status, ExitStatus::Signal(Signal::SIGKILL));
    let client = &case.outcome.clients[0];
    assert_eq!(
        client.stdout.text,
        "ACK 1\nACK 2\n",
        "{}",
        cases.text(&case)
    );
    assert_ne!(client.status, Some(ExitStatus::Code(0)));
    assert!(case.outcome.stop.is_none(), "a struck case gets no stop");
}

/// Whether a process whose command line names this test's directory still runs.
fn killpoint_processes_of(dir: &Path) -> bool {
    let needle = dir.display().to_string();
    fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&needle))
            .unwrap_or(false)
    })
}
