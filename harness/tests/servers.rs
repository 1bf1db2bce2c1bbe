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
use killpoint::{ScenarioReport, ScenarioResult, Signal};

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

/// A store server: `POST /items` with an id as the body answers 201 once the id is in
/// store.log (appended and fsync'd). With `--write-behind` it answers 201 at once and
/// writes what it holds only when it stops gracefully: a kill loses what it acknowledged.
const STORE: &str = r#"
import http.server, os, signal, sys, threading
port = int(sys.argv[1])
behind = "--write-behind" in sys.argv
held, lock = [], threading.Lock()
log = open("store.log", "a")
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_POST(self):
        item = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with lock:
            if behind:
                held.append(item)
            else:
                log.write(item + "\n"); log.flush(); os.fsync(log.fileno())
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("READY", port, flush=True)
server.serve_forever()
server.server_close()
with lock:
    for item in held:
        log.write(item + "\n")
    log.flush(); os.fsync(log.fileno())
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
"#;

/// POSTs ids 1 … N in turn, printing `ACK i` after each 201.
const POSTER: &str = r#"
import sys, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    request = urllib.request.Request("http://127.0.0.1:%s/items" % port, data=str(i).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 201
    print("ACK", i, flush=True)
"#;

/// A line server that answers each connection's line with `ok` and closes it, but holds
/// its 4th connection unanswered until SIGTERM comes (blocked, taken with `sigwait`):
/// then it closes its listener, answers it `late` and exits 0.
const HOLDS_FOURTH: &str = r#"
import signal, socket, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(16)
print("READY", flush=True)
n = 0
while True:
    conn, _ = listener.accept()
    n += 1
    conn.makefile("rb").readline()
    if n == 4:
        signal.sigwait({signal.SIGTERM})
        listener.close()  # no 5th connection into the listen queue
        conn.sendall(b"late\n")
        conn.close()
        sys.exit(0)
    conn.sendall(b"ok\n")
    conn.close()
"#;

/// A store that numbers what is posted to it: each `POST /items` gets the next id, the id
/// is appended to store.log and fsync'd, and the answer is 201 with `{"id": N}` as its
/// body. With `--write-behind` the 201 comes first and the ids are written only at a
/// graceful stop.
const NUMBERING: &str = r#"
import http.server, os, signal, sys, threading
port = int(sys.argv[1])
behind = "--write-behind" in sys.argv
held, lock, next_id = [], threading.Lock(), [1]
log = open("store.log", "a")
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            item = next_id[0]; next_id[0] += 1
            if behind:
                held.append(item)
            else:
                log.write("%d\n" % item); log.flush(); os.fsync(log.fileno())
        body = ('{"id": %d}\n' % item).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("READY", port, flush=True)
server.serve_forever()
server.server_close()
with lock:
    for item in held:
        log.write("%d\n" % item)
    log.flush(); os.fsync(log.fileno())
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
"#;

fn scenario(dir: &Path, text: &str) -> Scenario {
    fs::write(dir.join("numbering.py"), NUMBERING).unwrap();
    fs::write(dir.join("holds_fourth.py"), HOLDS_FOURTH).unwrap();
    fs::write(dir.join("server.py"), SERVER).unwrap();
    fs::write(dir.join("client.py"), CLIENT).unwrap();
    fs::write(dir.join("store.py"), STORE).unwrap();
    fs::write(dir.join("poster.py"), POSTER).unwrap();
    common::load_scenario(dir, text)
}

fn run(scenario: &Scenario, jobs: usize) -> ScenarioReport {
    common::run_unshrunk(scenario, 1, Some(jobs))
}

mod common;
use common::report_text as text;

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
            power: false,
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

#[test]
fn a_request_strike_lands_once_the_built_in_client_has_sent_its_nth_request() {
    let dir = tempfile::tempdir().unwrap();
    // One request at a time: the 5th cannot be sent before the 4th has its answer, which
    // the server gives only once SIGTERM has come. In the census the stop brings it.
    let s = scenario(
        dir.path(),
        r#"name = "tcp-request-strike"
command = ["{python}", "{dir}/holds_fourth.py", "{port}"]
ready = { stdout = '^READY$' }
stop = { after = "1s" }
[[client]]
tcp = { port = "{port}", send = "item\n", requests = 8 }
[[strike]]
signal = "SIGTERM"
at = { request = "1.." }
[expect]
clean = [0]
interrupted = [0]
"#,
    );
    let cases = s.prepare().unwrap_or_else(|e| panic!("{e}"));
    // The census sent four (the rest were refused: the server had exited).
    assert_eq!(cases.census().run.requests_sent(), 4);
    let plan = Plan {
        strikes: vec![PlannedStrike {
            signal: Signal::SIGTERM,
            to: Recipient::Process,
            point: Point::Request { nth: 4 },
            process: None,
            power: false,
        }],
    };
    let case = cases.run(&plan).unwrap_or_else(|e| panic!("{e}"));
    let shown = cases.text(&case);
    let sent_at = case.outcome.strikes[0]
        .sent_at
        .expect("the strike was sent");
    let history = case.outcome.clients[0].history.as_ref().unwrap();
    let sent_before: Vec<u32> = history
        .requests
        .iter()
        .filter(|r| r.sent_at.is_some_and(|at| at <= sent_at))
        .map(|r| r.id)
        .collect();
    assert_eq!(sent_before, [1, 2, 3, 4], "{shown}");
    let fourth = &history.requests[3];
    assert!(fourth.is_complete(), "{fourth:?}");
    assert_eq!(fourth.response_bytes, 5, "late\\n");
    assert!(fourth.completed_at.unwrap() >= sent_at, "{shown}");
    assert_eq!(case.outcome.status, ExitStatus::Code(0), "{shown}");
    assert!(case.outcome.stop.is_none(), "{shown}");
    assert!(
        shown.contains("SIGTERM once the clients had sent request #4"),
        "{shown}"
    );
    // The timeline: what the requests did up to the strike, and the one in flight then.
    let timeline: Vec<&str> = shown
        .lines()
        .skip_while(|l| l.trim() != "timeline:")
        .map(str::trim)
        .collect();
    let strike = timeline
        .iter()
        .position(|l| l.contains("SIGTERM (strike 1) to pid "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(
        timeline[strike - 1],
        "… client 1: 4 connections, 4 sent, 3 complete",
        "{shown}"
    );
    assert!(
        timeline[strike].ends_with("; in flight: client 1 #4"),
        "{shown}"
    );

    // A request point needs killpoint's own client.
    let e = Scenario::parse(
        "name = \"x\"\ncommand = [\"true\"]\n[[strike]]\nsignal = \"SIGTERM\"\nat = { request = 3 }\n",
        &dir.path().join("x.toml"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`request` counts the requests killpoint's own client sends"),
        "{e}"
    );
}

#[test]
fn acknowledgements_read_from_response_bodies_survive_a_kill_only_when_written_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = |flags: &str, extra: &str| {
        format!(
            r#"name = "http-numbering"
command = ["{{python}}", "{{dir}}/numbering.py", "{{port}}"{flags}]
ready = {{ stdout = '^READY ' }}
stop = {{ after = "clients" }}
cases = 6
[[client]]
http = {{ url = "http://127.0.0.1:{{port}}/items", method = "POST", requests = 40, body_bytes = 8, keep_alive = false }}
[[strike]]
signal = "SIGKILL"
at = {{ request = "5..35" }}
[expect]
clean = [0]
acked = {{ ack = {{ response_body = '"id": (\d+)', status = "201" }}, survivors = {{ file = "store.log" }}, after_kill = true }}
{extra}
"#
        )
    };
    // Synced before the 201: every id a body acknowledged is in the store.
    let report = run(&scenario(dir.path(), &file("", "")), 2);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    let history = census.clients[0].history.as_ref().unwrap();
    let bodies: Vec<&str> = history.requests.iter().map(|r| r.body.as_str()).collect();
    let expected: Vec<String> = (1..=40).map(|i| format!("{{\"id\": {i}}}\n")).collect();
    assert_eq!(
        bodies, expected,
        "the bodies, kept because acks are read there"
    );

    // Held and written only at a graceful stop: the kill loses every id acknowledged.
    let report = run(
        &scenario(
            dir.path(),
            &file(", \"--write-behind\"", "violation = \"acked-survives\""),
        ),
        2,
    );
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    let failure = report.failure.as_ref().unwrap();
    let acked = failure.outcome.clients[0]
        .history
        .as_ref()
        .unwrap()
        .with_status(201)
        .filter(|r| r.is_complete())
        .count();
    assert!(acked >= 4, "killed once request #5 was sent: {shown}");
    let (_, evidence) = failure
        .violations
        .iter()
        .find(|(n, _)| n.as_str() == "acked-survives")
        .unwrap();
    assert!(
        evidence[0].starts_with(&format!(
            "{acked} of {acked} acknowledged id(s) did not survive: 1, 2, 3, 4"
        )),
        "{evidence:?}"
    );
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

/// The store server under SIGKILL while a client posts: acknowledgements are read from
/// the client's stdout. The kill lands as the server accepts the client's k-th
/// connection: the client, which posts one id at a time and prints its acknowledgement
/// before the next, has then printed k - 1 of them.
fn store(dir: &Path, flags: &str, extra: &str) -> Scenario {
    scenario(
        dir,
        &format!(
            r#"name = "http-store"
command = ["{{python}}", "{{dir}}/store.py", "{{port}}"{flags}]
ready = {{ stdout = '^READY ' }}
stop = {{ after = "clients" }}
cases = 8
[[client]]
command = ["{{python}}", "{{dir}}/poster.py", "{{port}}", "30"]
[[strike]]
signal = "SIGKILL"
at = {{ syscall = "accept", nth = "4..=24", when = "exit" }}
[expect]
clean = [0]
acked = {{ ack = '^ACK (\d+)$', survivors = {{ file = "store.log" }}, after_kill = true }}
{extra}
"#
        ),
    )
}

#[test]
fn what_a_client_saw_acknowledged_survives_a_kill_only_when_the_server_wrote_it_first() {
    let dir = tempfile::tempdir().unwrap();
    // Written and synced before the 201: whatever the client saw acknowledged is there.
    let report = run(&store(dir.path(), "", ""), 2);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    let acks: Vec<String> = (1..=30).map(|i| format!("ACK {i}\n")).collect();
    assert_eq!(census.clients[0].stdout.text, acks.concat());

    // Held in memory and written at a graceful stop: a kill loses every id the client saw
    // acknowledged.
    let report = run(
        &store(
            dir.path(),
            ", \"--write-behind\"",
            "violation = \"acked-survives\"",
        ),
        2,
    );
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::CaughtAsExpected, "{shown}");
    let failure = report.failure.as_ref().unwrap();
    let Point::Syscall { nth, .. } = failure.plan.strikes[0].point else {
        panic!("{shown}")
    };
    // Killed as it accepted connection #nth: the client had seen ids 1 … nth - 1
    // acknowledged, and none is in the store.
    let acked: Vec<String> = failure.outcome.clients[0]
        .stdout
        .text
        .lines()
        .map(|l| l.trim_start_matches("ACK ").to_string())
        .collect();
    let expected: Vec<String> = (1..nth).map(|i| i.to_string()).collect();
    assert_eq!(acked, expected, "{shown}");
    let (_, evidence) = failure
        .violations
        .iter()
        .find(|(n, _)| n.as_str() == "acked-survives")
        .unwrap();
    let n = nth - 1;
    assert!(
        evidence[0].starts_with(&format!(
            "{n} of {n} acknowledged id(s) did not survive: 1, 2"
        )),
        "{evidence:?}"
    );
    assert_eq!(evidence[1], "store.log holds 0 id(s)");
}

#[test]
fn a_server_on_a_fixed_port_runs_in_parallel_cases_each_in_a_network_namespace_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // The port is taken here, on this machine's loopback, for the whole campaign: a
    // server that bound it here could never be ready. Each case's server binds it in a
    // namespace of its own, two cases at a time.
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = held.local_addr().unwrap().port();
    let file = |isolate: bool| {
        format!(
            r#"name = "http-fixed-port"
command = ["{{python}}", "{{dir}}/server.py", "{port}", "--no-ready-line"]
ready = {{ port = {port}, timeout = "3s" }}
stop = {{ after = "clients" }}
isolate_network = {isolate}
cases = 6
[[client]]
command = ["{{python}}", "{{dir}}/client.py", "{port}", "10"]
[[strike]]
signal = "SIGTERM"
at = {{ after_ready = "0ms..100ms" }}
[expect]
clean = [0]
interrupted = [0]
"#
        )
    };
    let report = run(&scenario(dir.path(), &file(true)), 2);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Passed, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    let acks: Vec<String> = (1..=10).map(|i| format!("ACK {i}\n")).collect();
    assert_eq!(census.clients[0].stdout.text, acks.concat());
    // Without a namespace of its own, the server cannot bind the port held here: it dies
    // at once, and the ready probe reached the listener this test holds.
    let report = run(&scenario(dir.path(), &file(false)), 1);
    let shown = text(&report);
    assert_eq!(report.result, ScenarioResult::Violated, "{shown}");
    let census = &report.census.as_ref().unwrap().run;
    assert_eq!(census.status, ExitStatus::Code(1), "{shown}");
    assert!(
        census
            .stderr
            .text
            .contains("OSError: [Errno 98] Address already in use"),
        "{}",
        census.stderr.text
    );
    drop(held);
}

#[test]
fn a_strike_that_kills_a_helper_of_the_server_still_lets_the_stop_come() {
    let dir = tempfile::tempdir().unwrap();
    // The server runs beside a helper of its own (a `sleep`); a strike kills the helper,
    // not the server, which goes on serving its client: the stop is still due after the
    // client, and the server stops gracefully.
    let s = scenario(
        dir.path(),
        r#"name = "http-helper-killed"
command = ["sh", "-c", "sleep 2 & exec {python} {dir}/server.py {port}"]
ready = { stdout = '^READY ' }
stop = { after = "clients" }
timeout = "20s"
cases = 1
[[client]]
command = ["{python}", "{dir}/client.py", "{port}", "5"]
[[strike]]
signal = "SIGKILL"
process = "sleep"
at = { after_ready = "0ms..1ms" }
[expect]
clean = [0]
deadline = "5s"
no_leftover_processes = false
"#,
    );
    let cases = s.prepare().unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan {
        strikes: vec![PlannedStrike {
            signal: Signal::SIGKILL,
            to: Recipient::Process,
            point: Point::Delay {
                after: Duration::ZERO,
                clock: killpoint::plan::Clock::Ready,
            },
            process: Some(killpoint::scenario::ProcessSelector::Program(
                "sleep".parse().unwrap(),
            )),
            power: false,
        }],
    };
    let case = cases.run(&plan).unwrap_or_else(|e| panic!("{e}"));
    let shown = cases.text(&case);
    let struck = case.outcome.strikes[0].struck.as_ref().expect("struck");
    assert_eq!(struck.program, "sleep", "{shown}");
    let stop = case.outcome.stop.as_ref().expect("the stop still came");
    assert!(
        stop.sent_at >= case.outcome.clients[0].ended_at.unwrap(),
        "{shown}"
    );
    assert_eq!(case.outcome.status, ExitStatus::Code(0), "{shown}");
    assert!(case.outcome.killed.is_none(), "{shown}");
}
