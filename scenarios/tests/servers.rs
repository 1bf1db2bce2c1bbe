//! End-to-end tests of the zoo's HTTP services, `http-service` (Rust) and
//! `python/http_service.py`, correct and with each planted bug, driven by real clients on
//! loopback (raw `TcpStream`s, so a reset, an end of file and a refusal are told apart).
//!
//! Every step waits for a real event, each bounded so that a hang fails with a message:
//! - the `READY 127.0.0.1:PORT` line on the server's stdout;
//! - the first chunk of a `/slow` response: the server has accepted that request and is
//!   answering it;
//! - a held upload's `100 Continue`: the server has read a `POST /items` head with
//!   `Expect: 100-continue` and waits for a body that only the test sends, so that request
//!   stays in flight, and the drain cannot end, until the test lets it;
//! - the `stopping:` line on stderr, printed once the listener is closed (or, with
//!   keep-accepting, where it should have been);
//! - the process's exit, through a pidfd (for pre-fork workers too, which are not the
//!   test's children).
//!
//! A test that shows a hang (idle-keepalive, shutdown-deadlock) waits the drain deadline
//! plus a margin for an exit that must not come, then kills the server.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server's start (Python's included) and any event that should come at once.
const BOUND: Duration = Duration::from_secs(20);
/// How long past its drain deadline a server that hangs is given to prove it does.
const MARGIN: Duration = Duration::from_secs(3);
const UPLOAD: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rust,
    Python,
}

// ---------------------------------------------------------------------------------------
// The server under test.

struct Server {
    kind: Kind,
    child: Child,
    pidfd: OwnedFd,
    exited: Option<ExitStatus>,
    port: u16,
    store: PathBuf,
    _dir: tempfile::TempDir,
    stderr: mpsc::Receiver<String>,
    /// The stderr lines read so far, for failure messages.
    log: Vec<String>,
    /// Pre-fork workers (`worker I pid P` lines), as pidfds: they are not our children.
    workers: Vec<(u32, OwnedFd)>,
}

impl Server {
    /// Starts the server on a free port and waits for its READY line.
    fn start(kind: Kind, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = dir.path().join("items.log");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = match kind {
            Kind::Rust => Command::new(env!("CARGO_BIN_EXE_http-service")),
            Kind::Python => {
                let mut command = Command::new("python3");
                command.arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/python/http_service.py"
                ));
                command
            }
        };
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--store")
            .arg(&store)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn the server");
        let pidfd = pidfd_open(child.id()).expect("pidfd of the server");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = lines(child.stderr.take().expect("stderr"));
        let mut server = Server {
            kind,
            child,
            pidfd,
            exited: None,
            port,
            store,
            _dir: dir,
            stderr,
            log: Vec::new(),
            workers: Vec::new(),
        };
        match stdout.recv_timeout(BOUND) {
            Ok(line) => assert_eq!(line, format!("READY 127.0.0.1:{port}"), "{kind:?}"),
            Err(_) => panic!(
                "{kind:?} {args:?}: no READY line on stdout within {BOUND:?}; stderr: {:?}",
                server.drain_log()
            ),
        }
        server
    }

    /// Waits for a stderr line containing `needle`.
    fn stderr_line(&mut self, needle: &str) -> String {
        let give_up = Instant::now() + BOUND;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{:?}: no stderr line with `{needle}` within {BOUND:?}; stderr: {:?}",
                    self.kind, self.log
                ),
            }
        }
    }

    fn drain_log(&mut self) -> &[String] {
        self.log.extend(self.stderr.try_iter());
        &self.log
    }

    /// The pre-fork workers the server announced (`worker I pid P`), `n` of them.
    fn watch_workers(&mut self, n: usize) {
        for index in 1..=n {
            let line = self.stderr_line(&format!("worker {index} pid "));
            let pid: u32 = line.rsplit(' ').next().unwrap().parse().expect("a pid");
            let pidfd = pidfd_open(pid).expect("pidfd of a worker");
            self.workers.push((pid, pidfd));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: pidfd_send_signal on a pidfd we own; it cannot hit a reused pid.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        assert_eq!(sent, 0, "signal the server");
    }

    /// Its exit status, if it exits within `timeout`.
    fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() && readable(&self.pidfd, timeout) {
            self.exited = Some(self.child.wait().expect("reap the server"));
        }
        self.exited
    }

    /// Asserts that it exits within `timeout` with `code`.
    fn expect_exit(&mut self, timeout: Duration, code: i32) {
        let exited = self.exit_within(timeout);
        let kind = self.kind;
        match exited {
            Some(status) => assert_eq!(
                status.code(),
                Some(code),
                "{kind:?}: exit status; stderr: {:?}",
                self.drain_log()
            ),
            None => panic!(
                "{kind:?}: still running {timeout:?} after the stop; stderr: {:?}",
                self.drain_log()
            ),
        }
    }

    /// The items in the store: id → body, every line checked whole.
    fn stored(&self) -> BTreeMap<u64, Vec<u8>> {
        let text = match std::fs::read_to_string(&self.store) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => panic!("{}: {e}", self.store.display()),
        };
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let [id, len, hex] = fields[..] else {
                    panic!("store line `{line}` is not `ID LEN HEX`")
                };
                let body: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect();
                assert_eq!(body.len().to_string(), len, "store line of item {id}");
                (id.parse().expect("an id"), body)
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for (_, pidfd) in &self.workers {
            // SAFETY: as in `signal`; a worker already gone makes it fail, harmlessly.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }
}

fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes no pointers; on success the descriptor is ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether the pidfd says its process has exited within `timeout`.
fn readable(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let give_up = Instant::now() + timeout;
    loop {
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = give_up
            .saturating_duration_since(Instant::now())
            .as_millis();
        // SAFETY: one pollfd, valid for the call.
        let ready = unsafe { libc::poll(&mut poll, 1, left.min(i32::MAX as u128) as i32) };
        match ready {
            1 => return true,
            0 => return false,
            _ if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted => {}
            _ => panic!("poll: {}", std::io::Error::last_os_error()),
        }
    }
}

fn alive(pidfd: &OwnedFd) -> bool {
    !readable(pidfd, Duration::ZERO)
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client.

/// How a connection ended before the response did.
#[derive(Debug, PartialEq)]
enum Cut {
    /// An end of file after `0` bytes of what was being read.
    Eof(usize),
    /// A reset after that many bytes.
    Reset(usize),
}

#[derive(Debug)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .expect("a content-length")
            .parse()
            .expect("a number")
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(BOUND)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// One read into the buffer: how many bytes came (0 at an end of file).
    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads until `self.buf` holds `len` bytes, or the connection ends.
    fn fill_to(&mut self, len: usize) -> Result<(), Cut> {
        while self.buf.len() < len {
            match self.fill() {
                Ok(0) => return Err(Cut::Eof(self.buf.len())),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(Cut::Reset(self.buf.len()));
                }
                Err(e) => panic!("reading a response: {e} (after {} bytes)", self.buf.len()),
            }
        }
        Ok(())
    }

    /// The next response head (a `100 Continue` is one).
    fn head(&mut self) -> Result<Head, Cut> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill_to(self.buf.len() + 1)?;
        };
        let text = String::from_utf8(self.buf.drain(..end + 4).collect()).expect("a head");
        let mut lines = text.trim_end().split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .map(|l| l.split_once(": ").expect("a header"))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Ok(Head {
            status: status.parse().expect("a status"),
            headers,
        })
    }

    /// Exactly `len` body bytes, or how the connection ended before (counting body bytes).
    fn body(&mut self, len: usize) -> Result<Vec<u8>, Cut> {
        self.fill_to(len)?;
        Ok(self.buf.drain(..len).collect())
    }

    /// Whether the peer has closed the connection: an end of file within BOUND.
    fn closed_by_peer(&mut self) -> bool {
        matches!(self.fill(), Ok(0))
    }

    /// Whether the connection is still open and silent: nothing to read right now.
    fn open_and_silent(&mut self) -> bool {
        self.stream.set_nonblocking(true).unwrap();
        let silent = matches!(self.fill(), Err(e) if e.kind() == ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).unwrap();
        silent
    }
}

fn get(path: &str, keep_alive: bool) -> Vec<u8> {
    let connection = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection}\r\n").into_bytes()
}

fn upload_body(seed: u64) -> Vec<u8> {
    (0..UPLOAD)
        .map(|i| b'A' + ((i as u64 + seed) % 26) as u8)
        .collect()
}

/// Posts an item on a connection of its own; returns its id from the 201.
fn post_item(port: u16, body: &[u8]) -> u64 {
    let mut conn = Conn::open(port);
    let head = format!(
        "POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(head.as_bytes());
    conn.send(body);
    let head = conn.head().expect("a response to POST /items");
    assert_eq!(head.status, 201, "POST /items: {head:?}");
    let id: u64 = head.header("x-id").expect("X-Id").parse().expect("an id");
    let text = conn.body(head.content_length()).expect("the 201's body");
    assert_eq!(text, format!("{id}\n").into_bytes());
    id
}

/// A POST /items whose head has been read (the `100 Continue` came back) and whose body the
/// test has not sent yet: a request in flight until `finish`.
struct HeldUpload {
    conn: Conn,
    body: Vec<u8>,
}

impl HeldUpload {
    fn start(port: u16) -> HeldUpload {
        let mut conn = Conn::open(port);
        let head = format!(
            "POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {UPLOAD}\r\n\
             Expect: 100-continue\r\n\r\n"
        );
        conn.send(head.as_bytes());
        let head = conn.head().expect("a 100 Continue");
        assert_eq!(head.status, 100, "{head:?}");
        HeldUpload {
            conn,
            body: upload_body(99),
        }
    }

    /// Sends the body; the response must be a 201 (with `connection: close`: the server is
    /// stopping). Returns the id.
    fn finish(mut self) -> (u64, Vec<u8>) {
        self.conn.send(&self.body);
        let head = self.conn.head().expect("a response to the held upload");
        assert_eq!(head.status, 201, "{head:?}");
        assert_eq!(
            head.header("connection").map(str::to_ascii_lowercase),
            Some("close".into()),
            "a response during the drain closes its connection: {head:?}"
        );
        let id = head.header("x-id").unwrap().parse().unwrap();
        let _ = self
            .conn
            .body(head.content_length())
            .expect("the 201's body");
        (id, self.body)
    }
}

/// A `/slow` response whose head and first chunk have come: a request being answered.
fn start_slow(port: u16, ms: u64) -> Conn {
    let mut conn = Conn::open(port);
    conn.send(&get(&format!("/slow?ms={ms}"), false));
    let head = conn.head().expect("the /slow head");
    assert_eq!(
        (head.status, head.content_length()),
        (200, 1000),
        "{head:?}"
    );
    conn.fill_to(100).expect("the first chunk");
    conn
}

/// An idle keep-alive connection: one request answered, the connection kept.
fn idle_keepalive(port: u16) -> Conn {
    let mut conn = Conn::open(port);
    conn.send(&get("/health", true));
    let head = conn.head().expect("the /health head");
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(conn.body(head.content_length()).unwrap(), b"ok\n");
    conn
}

fn refused(port: u16) -> bool {
    matches!(TcpStream::connect(("127.0.0.1", port)), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

fn post_items(server: &Server, n: u64) -> BTreeMap<u64, Vec<u8>> {
    (0..n)
        .map(|seed| {
            let body = upload_body(seed);
            (post_item(server.port, &body), body)
        })
        .collect()
}

fn assert_all_stored(server: &Server, acked: &BTreeMap<u64, Vec<u8>>) {
    let stored = server.stored();
    for (id, body) in acked {
        match stored.get(id) {
            Some(kept) => assert!(kept == body, "acknowledged item {id}: stored, but altered"),
            None => panic!(
                "acknowledged item {id} is not in the store: {:?}",
                stored.keys()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Correct servers.

/// The stop, in full: the slow response in flight and the held upload complete, the idle
/// keep-alive connection is closed at once, a new connection is refused, the service exits
/// 0, and every acknowledged item is in the store.
fn correct_stop_drains(kind: Kind) {
    let mut server = Server::start(kind, &["--drain-deadline", "30s"]);
    let mut acked = post_items(&server, 5);
    let mut slow = start_slow(server.port, 500);
    let held = HeldUpload::start(server.port);
    let mut idle = idle_keepalive(server.port);

    server.signal(libc::SIGTERM);
    let line = server.stderr_line("stopping: draining");
    assert!(line.contains("SIGTERM"), "{line}");
    assert!(
        refused(server.port),
        "a new connection after the stop is refused"
    );
    assert!(
        idle.closed_by_peer(),
        "the idle keep-alive connection is closed"
    );
    assert_eq!(
        slow.body(1000).map(|b| b.len()),
        Ok(1000),
        "the slow response"
    );
    let (id, body) = held.finish();
    acked.insert(id, body);

    server.expect_exit(BOUND, 0);
    assert_all_stored(&server, &acked);
    assert_eq!(server.stored().len(), 6);
}

#[test]
fn rust_correct_stop_drains_in_flight_refuses_new_and_keeps_acked() {
    correct_stop_drains(Kind::Rust);
}

#[test]
fn python_correct_stop_drains_in_flight_refuses_new_and_keeps_acked() {
    correct_stop_drains(Kind::Python);
}

/// A request that never completes is cut at the drain deadline: exit 3, not before the
/// deadline and not long after it; what was acknowledged is stored.
fn correct_deadline_cuts(kind: Kind) {
    let mut server = Server::start(kind, &["--drain-deadline", "1s"]);
    let acked = post_items(&server, 3);
    let mut held = HeldUpload::start(server.port);
    let stopped = Instant::now();
    server.signal(libc::SIGTERM);
    server.expect_exit(Duration::from_secs(1) + BOUND, 3);
    let took = stopped.elapsed();
    assert!(took >= Duration::from_secs(1), "exited after {took:?}");
    server.stderr_line("drain deadline 1");
    assert_eq!(held.conn.head().map(|h| h.status), Err(Cut::Eof(0)));
    assert_all_stored(&server, &acked);
}

#[test]
fn rust_correct_drain_deadline_cuts_what_is_left_and_exits_3() {
    correct_deadline_cuts(Kind::Rust);
}

#[test]
fn python_correct_drain_deadline_cuts_what_is_left_and_exits_3() {
    correct_deadline_cuts(Kind::Python);
}

#[test]
fn python_prefork_correct_waits_for_its_workers() {
    let mut server = Server::start(Kind::Python, &["--workers", "2", "--drain-deadline", "30s"]);
    server.watch_workers(2);
    let mut acked = post_items(&server, 4);
    let held = HeldUpload::start(server.port);
    server.signal(libc::SIGTERM);
    server.stderr_line("stopping: forwarded to 2 worker(s)");
    // The worker holding the upload (the only open connection) is draining.
    server.stderr_line("stopping: draining 1 connection(s)");
    assert_eq!(
        server.exit_within(Duration::ZERO),
        None,
        "the parent waits while a worker drains"
    );
    let (id, body) = held.finish();
    acked.insert(id, body);
    server.expect_exit(BOUND, 0);
    for (pid, pidfd) in &server.workers {
        assert!(!alive(pidfd), "worker pid {pid} ended before its parent");
    }
    assert_all_stored(&server, &acked);
}

// ---------------------------------------------------------------------------------------
// Planted bugs: each shows its symptom.

/// exit-now: exits 0 at once; the slow response is truncated and the held upload gets no
/// response at all (an end of file).
fn exit_now_cuts_in_flight(kind: Kind) {
    let mut server = Server::start(kind, &["--bug", "exit-now"]);
    // Its second chunk is due after 6.7 s: what came before the exit is the first only.
    let mut slow = start_slow(server.port, 60_000);
    let mut held = HeldUpload::start(server.port);
    server.signal(libc::SIGTERM);
    server.expect_exit(BOUND, 0);
    assert_eq!(
        slow.body(1000),
        Err(Cut::Eof(100)),
        "the slow response, cut"
    );
    assert_eq!(held.conn.head().map(|h| h.status), Err(Cut::Eof(0)));
}

#[test]
fn rust_exit_now_truncates_in_flight_responses() {
    exit_now_cuts_in_flight(Kind::Rust);
}

#[test]
fn python_exit_now_truncates_in_flight_responses() {
    exit_now_cuts_in_flight(Kind::Python);
}

#[test]
fn rust_keep_accepting_serves_a_connection_made_after_the_stop() {
    let mut server = Server::start(Kind::Rust, &["--bug", "keep-accepting"]);
    let held = HeldUpload::start(server.port);
    server.signal(libc::SIGTERM);
    server.stderr_line("stopping: draining");
    let mut late = Conn::open(server.port);
    late.send(&get("/health", false));
    let head = late.head().expect("a response on the late connection");
    assert_eq!(head.status, 200, "served during the drain: {head:?}");
    held.finish();
    server.expect_exit(BOUND, 0);
}

#[test]
fn python_keep_accepting_takes_a_connection_after_the_stop_then_resets_it() {
    let mut server = Server::start(Kind::Python, &["--bug", "keep-accepting"]);
    let held = HeldUpload::start(server.port);
    server.signal(libc::SIGTERM);
    server.stderr_line("stopping: draining");
    // The kernel completes the connection into the backlog of a socket still listening...
    let mut late = Conn::open(server.port);
    late.send(&get("/health", false));
    held.finish();
    server.expect_exit(BOUND, 0);
    // ...that nobody accepts any more: closing it at last resets the connection.
    assert_eq!(late.head().map(|h| h.status), Err(Cut::Reset(0)));
}

#[test]
fn rust_idle_keepalive_never_finishes_draining() {
    let mut server = Server::start(
        Kind::Rust,
        &["--bug", "idle-keepalive", "--drain-deadline", "1s"],
    );
    let mut idle = idle_keepalive(server.port);
    server.signal(libc::SIGTERM);
    server.stderr_line("stopping: draining 1 connection(s)");
    assert_eq!(
        server.exit_within(Duration::from_secs(1) + MARGIN),
        None,
        "still draining past its deadline"
    );
    assert!(
        idle.open_and_silent(),
        "the idle connection was never closed"
    );
}

#[test]
fn python_shutdown_deadlock_never_stops() {
    let mut server = Server::start(
        Kind::Python,
        &["--bug", "shutdown-deadlock", "--drain-deadline", "1s"],
    );
    let acked = post_items(&server, 2);
    server.signal(libc::SIGTERM);
    assert_eq!(
        server.exit_within(Duration::from_secs(1) + MARGIN),
        None,
        "deadlocked in its signal handler"
    );
    assert!(
        !server.drain_log().iter().any(|l| l.contains("stopping")),
        "{:?}",
        server.log
    );
    assert_all_stored(&server, &acked);
}

/// ack-before-write: every POST got its 201, and none of those items is in the store after
/// a stop that exits 0 (the periodic commit is a minute away).
fn ack_before_write_loses_acked(kind: Kind) {
    let mut server = Server::start(
        kind,
        &["--bug", "ack-before-write", "--sync-interval", "60s"],
    );
    let acked = post_items(&server, 10);
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    server.signal(libc::SIGTERM);
    server.expect_exit(BOUND, 0);
    let stored: Vec<u64> = server.stored().into_keys().collect();
    assert_eq!(stored, [0u64; 0], "10 items acknowledged, none stored");
}

#[test]
fn rust_ack_before_write_loses_acknowledged_items() {
    ack_before_write_loses_acked(Kind::Rust);
}

#[test]
fn python_ack_before_write_loses_acknowledged_items() {
    ack_before_write_loses_acked(Kind::Python);
}

#[test]
fn python_no_wait_workers_leaves_a_worker_running() {
    let mut server = Server::start(
        Kind::Python,
        &[
            "--workers",
            "2",
            "--bug",
            "no-wait-workers",
            "--drain-deadline",
            "30s",
        ],
    );
    server.watch_workers(2);
    let held = HeldUpload::start(server.port);
    server.signal(libc::SIGTERM);
    server.stderr_line("stopping: forwarded to 2 worker(s)");
    server.expect_exit(BOUND, 0);
    // The worker holding the upload (the only open connection) is draining, orphaned.
    server.stderr_line("stopping: draining 1 connection(s)");
    // The worker holding the upload cannot end its drain before the test sends the body.
    let running: Vec<u32> = server
        .workers
        .iter()
        .filter(|(_, pidfd)| alive(pidfd))
        .map(|(pid, _)| *pid)
        .collect();
    assert!(
        !running.is_empty(),
        "a worker left running after its parent exited"
    );
    // The orphan still answers, and then ends on its own.
    held.finish();
    for (pid, pidfd) in &server.workers {
        assert!(readable(pidfd, BOUND), "worker pid {pid} ends once drained");
    }
}
