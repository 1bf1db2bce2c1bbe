//! End-to-end tests of the built-in load clients against real servers on loopback: a
//! Python server (stdlib only) written into a temp dir, in one of several modes, each a
//! way a server's shutdown can treat a request. The histories are asserted exactly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use killpoint::client::{BuiltInClient, HttpClientSpec, RawHttpClientSpec, TcpClientSpec};
use killpoint::history::{ClientError, History, HistoryEnd, RequestRecord};
use killpoint::load::{self, SentCount, Stop};

/// The server. `server.py MODE`; it prints `ready PORT` once listening and, in the modes
/// that hold a request, `request ID` once it has read one.
///
/// - `ok [BARRIER]`: HTTP/1.1, keep-alive. `POST /items` checks the body is the client's
///   (`killpoint::client::body`) and answers 201 with `X-Id: item-ID` and `item ID\n`
///   (ID: the request's `X-Killpoint-Request`, 6 digits); a wrong body gets 400.
///   `GET /chunked` answers three chunks. With BARRIER, the first BARRIER requests wait
///   for each other before any is answered (a request that waits 10 s alone gets 500).
///   `GET /stats` (on a connection of its own) answers `connections max_in_flight
///   bodies_ok`, the last not counting itself.
/// - `http10`: HTTP/1.0: every response closes its connection.
/// - `reset`: reads the request, sends a head with Content-Length 100 and 10 bytes, waits
///   until they are acknowledged, then closes with SO_LINGER 0 (a reset).
/// - `eof`: the same, closed normally.
/// - `eof-head`: reads the request, closes without a byte.
/// - `reset-head`: reads the request, resets the connection without a byte.
/// - `garbage`: answers a line that is not HTTP.
/// - `silent`: reads the request, never answers; waits for the client to go.
/// - `tcp-ack`: raw TCP: reads a line, answers `ack LINE`, closes.
const SERVER: &str = r#"
import fcntl, http.server, socket, struct, sys, termios, threading, time

ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
mode = sys.argv[1]
lock = threading.Lock()
stats = {"connections": 0, "in_flight": 0, "max_in_flight": 0, "bodies_ok": 0}
barrier = threading.Barrier(int(sys.argv[2]), timeout=10) if len(sys.argv) > 2 else None
arrivals = [0]

def say(line):
    # One write per line, under a lock: threads' lines never interleave.
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

def expected_body(n):
    return (ALPHABET * (n // 64 + 1))[:n]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0" if mode == "http10" else "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                line = "%d %d %d" % (stats["connections"], stats["max_in_flight"], stats["bodies_ok"])
            self.close_connection = True
            return self.answer(200, line.encode(), [("Connection", "close")])
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in [b"one ", b"two ", b"three\n"]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.answer(200, b"hello\n")

    def do_POST(self):
        with lock:
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            arrivals[0] += 1
            early = arrivals[0] <= (barrier.parties if barrier else 0)
        try:
            n = int(self.headers["Content-Length"])
            body = self.rfile.read(n)
            ident = int(self.headers["X-Killpoint-Request"])
            if early:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    return self.answer(500, b"alone\n")
            if body != expected_body(n):
                return self.answer(400, b"bad body\n")
            with lock:
                stats["bodies_ok"] += 1
            self.answer(201, b"item %06d\n" % ident, [("X-Id", "item-%d" % ident)])
        finally:
            with lock:
                stats["in_flight"] -= 1

def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data

def unacked(conn):
    return struct.unpack("i", fcntl.ioctl(conn, termios.TIOCOUTQ, b"\0\0\0\0"))[0]

def raw(conn):
    with conn:
        if mode == "tcp-ack":
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"ack " + data)
            return
        request = read_request(conn)
        if request is None:
            return
        ident = [l for l in request.split(b"\r\n") if l.lower().startswith(b"x-killpoint-request:")]
        say("request " + (ident[0].split(b":")[1].strip().decode() if ident else "?"))
        if mode == "silent":
            while conn.recv(65536):
                pass
            return
        if mode == "eof-head":
            return
        if mode == "reset-head":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if mode == "garbage":
            conn.sendall(b"SSH-2.0-not-http\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        # The 10 bytes are in the client's receive queue before the connection ends.
        while unacked(conn):
            time.sleep(0.001)
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

if mode in ("ok", "http10"):
    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128
        daemon_threads = True
    server = Server(("127.0.0.1", 0), Handler)
    print("ready", server.server_address[1], flush=True)
    server.serve_forever()
else:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print("ready", listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=raw, args=(conn,), daemon=True).start()
"#;

/// A running server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    lines: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let lines = BufReader::new(child.stdout.take().unwrap());
        let mut server = Server {
            child,
            port: 0,
            lines,
            _dir: dir,
        };
        let ready = server.line();
        server.port = ready
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the server said {ready:?}"));
        server
    }

    /// The next line it prints (blocking: the server prints it or dies).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the server ended");
        line.trim_end().to_string()
    }

    /// `GET /stats`: (connections, max requests in flight, bodies it found right).
    fn stats(&self) -> (u32, u32, u32) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let n: Vec<u32> = body
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        // The stats request's own connection is not the client's.
        (n[0] - 1, n[1], n[2])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(raw: RawHttpClientSpec) -> HttpClientSpec {
    HttpClientSpec::try_from(raw).unwrap()
}

fn spec(url: &str, requests: u32) -> RawHttpClientSpec {
    RawHttpClientSpec {
        url: url.into(),
        requests,
        ..RawHttpClientSpec::default()
    }
}

/// Runs the client to its end, within a minute.
fn run(spec: &HttpClientSpec, port: u16) -> History {
    let clock = Instant::now();
    load::run_http(
        spec,
        port,
        clock,
        &Stop::new(),
        clock + Duration::from_secs(60),
    )
}

/// The stamps of a request are in order: started, connected (before it started, on a kept
/// connection), sent, first byte, ended.
fn assert_ordered(r: &RequestRecord) {
    let (first, second) = if r.reused {
        (r.connect_at, Some(r.started_at))
    } else {
        (Some(r.started_at), r.connect_at)
    };
    let steps = [first, second, r.sent_at, r.first_byte_at, r.ended_at()];
    let present: Vec<Duration> = steps.iter().flatten().copied().collect();
    assert!(
        present.windows(2).all(|w| w[0] <= w[1]),
        "stamps out of order: {r:?}"
    );
}

/// A port on which nothing listens: bound, then closed.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn posts_over_eight_kept_connections_all_complete_with_their_bytes_and_ids() {
    // The first 8 requests are answered only once all 8 are in: the client must have 8 in
    // flight; the server counts that it never had more.
    let server = Server::start(&["ok", "8"]);
    let spec = http(RawHttpClientSpec {
        method: "POST".into(),
        concurrency: 8,
        body_bytes: 4096,
        ..spec("http://127.0.0.1:{port}/items", 200)
    });
    let history = run(&spec, server.port);
    assert_eq!(history.end, HistoryEnd::Finished);
    assert_eq!((history.planned, history.requests.len()), (200, 200));
    assert_eq!(history.connections, 8, "{}", history.summary());
    for (i, r) in history.requests.iter().enumerate() {
        let id = i as u32 + 1;
        assert_eq!(r.id, id);
        assert_eq!(r.error, None, "{}", r.render(&history.label));
        assert_eq!(r.status, Some(201));
        assert_eq!((r.response_bytes, r.expected_bytes), (12, Some(12)));
        assert_eq!(r.captured["X-Id"], format!("item-{id}"));
        assert!((1..=8).contains(&r.connection));
        assert!(r.connect_at.is_some() && r.sent_at.is_some() && r.first_byte_at.is_some());
        assert!(r.is_complete());
        assert_ordered(r);
    }
    // Each connection was opened by its first request and kept for the others.
    let firsts: Vec<&RequestRecord> = history.requests.iter().filter(|r| !r.reused).collect();
    assert_eq!(firsts.len(), 8);
    assert_eq!(history.with_status(201).count(), 200);
    assert_eq!(
        history.tally().into_iter().collect::<Vec<_>>(),
        [("complete 201".to_string(), 200)]
    );
    assert_eq!(
        history.summary().split(", finished").next().unwrap(),
        "POST /items: 200 of 200 requests on 8 connections"
    );
    assert_eq!(server.stats(), (8, 8, 200));
}

#[test]
fn without_keep_alive_every_request_has_a_connection_of_its_own() {
    let server = Server::start(&["ok"]);
    let spec = http(RawHttpClientSpec {
        concurrency: 2,
        keep_alive: false,
        ..spec("http://localhost:{port}/", 20)
    });
    let history = run(&spec, server.port);
    assert_eq!(history.connections, 20);
    let mut connections: Vec<u32> = history.requests.iter().map(|r| r.connection).collect();
    connections.sort();
    assert_eq!(connections, (1..=20).collect::<Vec<_>>());
    for r in &history.requests {
        assert!(r.is_complete() && !r.reused, "{r:?}");
        assert_eq!((r.status, r.response_bytes), (Some(200), 6));
        assert_ordered(r);
    }
    assert_eq!(server.stats().0, 20);
}

#[test]
fn a_server_that_closes_after_each_response_is_followed_to_new_connections_without_errors() {
    // HTTP/1.0: the connection a worker keeps is closed by the server after each answer.
    let server = Server::start(&["http10"]);
    let spec = http(spec("http://127.0.0.1:{port}/", 10));
    let history = run(&spec, server.port);
    assert_eq!(
        history.tally().into_iter().collect::<Vec<_>>(),
        [("complete 200".to_string(), 10)]
    );
    assert_eq!(history.connections, 10);
    assert!(history.requests.iter().all(|r| !r.reused));
}

#[test]
fn a_chunked_body_completes_with_no_length_expected() {
    let server = Server::start(&["ok"]);
    let history = run(
        &http(spec("http://127.0.0.1:{port}/chunked", 3)),
        server.port,
    );
    for r in &history.requests {
        assert!(r.is_complete(), "{r:?}");
        assert_eq!((r.response_bytes, r.expected_bytes), (14, None));
    }
    assert_eq!(history.connections, 1);
}

#[test]
fn a_port_nothing_listens_on_refuses_every_request() {
    let port = closed_port();
    let spec = http(RawHttpClientSpec {
        concurrency: 2,
        ..spec("http://127.0.0.1:{port}/", 5)
    });
    let history = run(&spec, port);
    assert_eq!(history.end, HistoryEnd::Finished);
    assert_eq!(history.requests.len(), 5);
    assert_eq!(history.connections, 5);
    for r in &history.requests {
        assert_eq!(r.error, Some(ClientError::Refused));
        assert_eq!((r.connect_at, r.sent_at, r.status), (None, None, None));
        assert!(r.failed_at.is_some());
        assert!(
            r.render("GET /")
                .starts_with(&format!("#{} GET /: refused at ", r.id)),
            "{}",
            r.render("GET /")
        );
    }
}

#[test]
fn a_reset_mid_body_is_a_reset_after_the_bytes_read() {
    let server = Server::start(&["reset"]);
    let history = run(&http(spec("http://127.0.0.1:{port}/", 1)), server.port);
    let r = &history.requests[0];
    assert_eq!(r.error, Some(ClientError::Reset), "{r:?}");
    assert_eq!(r.status, Some(200));
    assert_eq!((r.response_bytes, r.expected_bytes), (10, Some(100)));
    assert!(r.first_byte_at.is_some() && r.completed_at.is_none());
    assert_ordered(r);
    assert!(
        r.render("GET /")
            .contains(", 200 reset after 10 of 100 bytes at ")
    );
}

#[test]
fn a_close_mid_body_is_an_eof_with_what_was_read() {
    let server = Server::start(&["eof"]);
    let history = run(&http(spec("http://127.0.0.1:{port}/", 1)), server.port);
    let r = &history.requests[0];
    assert_eq!(
        r.error,
        Some(ClientError::EofMidResponse {
            got: 10,
            expected: Some(100)
        }),
        "{r:?}"
    );
    assert_eq!(r.status, Some(200));
    assert_eq!(r.response_bytes, 10);
    assert_ordered(r);
}

#[test]
fn a_close_before_the_head_is_an_eof_before_it() {
    let server = Server::start(&["eof-head"]);
    let history = run(&http(spec("http://127.0.0.1:{port}/", 2)), server.port);
    for r in &history.requests {
        assert_eq!(
            r.error,
            Some(ClientError::EofMidResponse {
                got: 0,
                expected: None
            }),
            "{r:?}"
        );
        assert_eq!((r.status, r.first_byte_at), (None, None));
        assert!(r.sent_at.is_some());
        assert!(r.render("GET /").ends_with(&format!(
            "closed before the response head at {:.1} ms",
            r.failed_at.unwrap().as_secs_f64() * 1000.0
        )));
    }
    // The broken connection is not kept: the second request opened its own.
    assert_eq!(history.connections, 2);
}

#[test]
fn a_reset_before_the_head_is_a_reset_of_an_unknown_length() {
    let server = Server::start(&["reset-head"]);
    let history = run(&http(spec("http://127.0.0.1:{port}/", 1)), server.port);
    let r = &history.requests[0];
    assert_eq!(r.error, Some(ClientError::Reset), "{r:?}");
    assert_eq!(
        (r.status, r.first_byte_at, r.response_bytes),
        (None, None, 0)
    );
    assert!(r.sent_at.is_some());
    assert!(
        r.render("GET /").contains(", reset after 0 of ? bytes at "),
        "{}",
        r.render("GET /")
    );
}

#[test]
fn an_answer_that_is_not_http_is_another_error_saying_so() {
    let server = Server::start(&["garbage"]);
    let history = run(&http(spec("http://127.0.0.1:{port}/", 1)), server.port);
    let r = &history.requests[0];
    assert_eq!(
        r.error,
        Some(ClientError::Other("invalid HTTP version parsed".into())),
        "{r:?}"
    );
    assert!(r.first_byte_at.is_some() && r.status.is_none());
}

#[test]
fn a_server_that_never_answers_times_out_at_the_timeout() {
    let server = Server::start(&["silent"]);
    let spec = http(RawHttpClientSpec {
        timeout: Duration::from_millis(200),
        ..spec("http://127.0.0.1:{port}/", 1)
    });
    let history = run(&spec, server.port);
    let r = &history.requests[0];
    assert_eq!(r.error, Some(ClientError::Timeout), "{r:?}");
    assert!(r.sent_at.is_some() && r.first_byte_at.is_none());
    let took = r.failed_at.unwrap() - r.started_at;
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn stopping_the_client_ends_what_is_in_flight_as_stopped_at_once() {
    let mut server = Server::start(&["silent"]);
    let spec = http(RawHttpClientSpec {
        concurrency: 3,
        ..spec("http://127.0.0.1:{port}/", 10)
    });
    let clock = Instant::now();
    let running = load::start(
        BuiltInClient::Http(spec),
        server.port,
        clock,
        clock + Duration::from_secs(60),
    )
    .unwrap();
    // The server has read all three requests: they are in flight.
    let mut seen: Vec<String> = (0..3).map(|_| server.line()).collect();
    seen.sort();
    assert_eq!(seen, ["request 1", "request 2", "request 3"]);
    assert!(!running.is_finished());
    let stopping = Instant::now();
    let history = running.stop();
    assert!(stopping.elapsed() < Duration::from_secs(1));
    assert_eq!(history.end, HistoryEnd::Stopped);
    assert_eq!(
        history.requests.len(),
        3,
        "no request is started after the stop"
    );
    for r in &history.requests {
        assert_eq!(r.error, Some(ClientError::Stopped));
        assert!(r.sent_at.is_some());
        assert_eq!(r.failed_at, Some(history.ended_at));
    }
}

#[test]
fn the_deadline_bounds_the_whole_run() {
    let mut server = Server::start(&["silent"]);
    let spec = http(spec("http://127.0.0.1:{port}/", 5));
    let clock = Instant::now();
    let history = load::run_http(
        &spec,
        server.port,
        clock,
        &Stop::new(),
        clock + Duration::from_millis(300),
    );
    assert_eq!(server.line(), "request 1");
    assert_eq!(history.end, HistoryEnd::Deadline);
    assert!(history.ended_at >= Duration::from_millis(300));
    assert!(history.ended_at < Duration::from_secs(2));
    assert_eq!(history.requests.len(), 1);
    assert_eq!(history.requests[0].error, Some(ClientError::Stopped));
}

#[test]
fn a_tcp_client_sends_each_message_and_reads_until_the_server_closes() {
    let server = Server::start(&["tcp-ack"]);
    let spec: TcpClientSpec = toml::from_str::<toml::Value>(
        r#"port = "{port}"
send = "PUT {id}\n"
requests = 12
concurrency = 3"#,
    )
    .unwrap()
    .try_into()
    .unwrap();
    let clock = Instant::now();
    // Counted as sent (what `request` strikes count): the runner's pipe gets a byte at
    // the 5th, and only then.
    let (wake_rx, wake_tx) = rustix::pipe::pipe().unwrap();
    rustix::io::ioctl_fionbio(&wake_rx, true).unwrap();
    let sent = Arc::new(SentCount::new(Arc::new(wake_tx)));
    sent.wake_at(5);
    let history = load::run(
        &BuiltInClient::Tcp(spec),
        server.port,
        clock,
        &Stop::new(),
        clock + Duration::from_secs(60),
        Some(Arc::clone(&sent)),
    );
    assert_eq!(sent.sent(), 12);
    let mut buf = [0u8; 8];
    assert_eq!(rustix::io::read(&wake_rx, &mut buf), Ok(1));
    assert_eq!(history.label, format!("tcp {}", server.port));
    assert_eq!(history.connections, 12);
    for r in &history.requests {
        let expected = format!("ack PUT {}\n", r.id).len() as u64;
        assert!(r.is_complete(), "{r:?}");
        assert_eq!((r.status, r.response_bytes), (None, expected));
        assert_eq!(r.connection, r.id);
        assert_ordered(r);
    }
    // Refused the same way on a closed port.
    let refused = load::run(
        &BuiltInClient::Tcp(TcpClientSpec {
            requests: 2,
            concurrency: 1,
            ..one_line_tcp()
        }),
        closed_port(),
        clock,
        &Stop::new(),
        clock + Duration::from_secs(60),
        None,
    );
    assert!(
        refused
            .requests
            .iter()
            .all(|r| r.error == Some(ClientError::Refused))
    );
}

fn one_line_tcp() -> TcpClientSpec {
    toml::from_str::<toml::Value>(
        r#"port = "{port}"
send = "x\n"
requests = 1"#,
    )
    .unwrap()
    .try_into()
    .unwrap()
}
