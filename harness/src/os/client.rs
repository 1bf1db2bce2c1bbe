//! The built-in load clients: `requests` HTTP/1.1 (or raw TCP) requests to a server on
//! loopback, `concurrency` at a time, each one's steps stamped on the case's clock into a
//! [`History`].
//!
//! # Design
//!
//! **hyper, not a parser of our own.** The point of the history is to tell a server's
//! shutdown bugs apart — a response cut short, a connection reset, a request accepted and
//! never answered — so the client must read HTTP/1.1 exactly as a real client does
//! (Content-Length, chunked, close-delimited bodies, keep-alive, `Connection: close`,
//! HEAD, 1xx) and must not invent failures of its own. hyper's client connection
//! (`hyper::client::conn::http1`) is that, well kept and fast, and it leaves the socket
//! to us: we connect the `TcpStream` ourselves and hand hyper a wrapper around it, which is
//! where the stamps are taken. No pooling, no DNS, no retries: every request the spec
//! asks for is made once and recorded as it went (the one exception: a request hyper
//! hands back unwritten because its kept connection had closed goes on a new one, as it
//! never left).
//!
//! **The runtime.** The workers (`concurrency` tasks) take request ids from a shared
//! counter, so ids are in the order requests start; each keeps a connection (keep-alive)
//! until it breaks or the server closes it, then opens a new one. They are dealt to one
//! thread per CPU (at most one per worker), each a tokio current-thread runtime of its own,
//! scoped inside [`run`] ([`start`] runs that on a thread of its own). What a request
//! costs is mostly the kernel's (loopback TCP, and waking the server's threads: in a
//! profile of `benches/client.rs` ~80% of the client thread's samples are in the kernel),
//! so the client's own share is kept small:
//!
//! - a worker polls its connection's hyper driver itself while it waits (`driven`),
//!   rather than spawning it as a task, which would hand off between two tasks at every
//!   step of every request;
//! - one timeout timer per worker, moved on for each request (`Timer`): a timer made per
//!   request is registered and removed each time, and that cost more than the rest of
//!   the client's own work;
//! - no cross-thread scheduler: a multi-thread runtime wakes another thread at each step.
//!
//! **The stamps**, each `Instant::now()` since the case's clock start, written into the
//! shared record as they happen (so a request cut off by [`Stop`] keeps what it reached):
//!
//! - `started_at`: the worker took the request up.
//! - `connect_at`: `connect(2)` completed — the kernel finished the handshake, i.e. the
//!   server's listen queue took the connection, whether or not the server had called
//!   `accept` yet. A kept connection's requests carry the time it was opened
//!   (`reused`).
//! - `sent_at`: the last write of the request's bytes returned (the bytes are in the
//!   kernel's send buffer, not necessarily read by the server). The request body is a
//!   body of our own that notes when hyper has taken its last frame; every write after
//!   that moves the stamp on, so it ends at the write that carried the last byte.
//! - `first_byte_at`: the first `read(2)` after the request was started that returned
//!   data — the first byte of the response as the socket gave it, before hyper parsed
//!   anything. (A connection carries one request at a time: hyper's HTTP/1 client does
//!   not pipeline, so any byte read in a request's turn is its response's.)
//! - `completed_at`: the body's end: its last byte (Content-Length or chunked), or the
//!   server's close for a close-delimited body; for TCP, the server's close.
//! - `failed_at`: when the error came back.
//!
//! **Errors**, from the `io::Error` under hyper's error, else hyper's own kind:
//! ECONNREFUSED is `Refused`; ECONNRESET, EPIPE and ECONNABORTED are `Reset`; an end of
//! file before the head or before the Content-Length (or the last chunk) is
//! `EofMidResponse`; the spec's `timeout` (per request, from `started_at`) is `Timeout`;
//! the harness stopping the client is `Stopped`. A kept connection the server closed
//! while idle is not a failure: the next request opens a new one (hyper tells it apart
//! before anything is sent). A request sent on a kept connection just as the server
//! closes it does fail, as it would for any client that does not retry.
//!
//! **Never hangs**: every request is bounded by its timeout, the whole run by its deadline
//! and by [`Stop`]; dropping the runtime closes every socket.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::client::{BuiltInClient, HttpClientSpec, REQUEST_ID_HEADER, TcpClientSpec, body};
use crate::history::{ClientError, History, HistoryEnd, RequestRecord};

/// Stops a running client: every request in flight ends as [`ClientError::Stopped`], none
/// is started after. Shared between the case and the client's thread.
#[derive(Debug, Default)]
pub struct Stop {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Stops the client; it returns its history at once.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn stopped(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a stop in between still wakes it.
        notified.as_mut().enable();
        if self.is_stopped() {
            return;
        }
        notified.await;
    }
}

/// How many requests the built-in clients of one run have sent, all clients together:
/// what a `request` strike point counts. The case runner says which count it waits for
/// ([`SentCount::wake_at`]); the client that sends that request writes a byte to the
/// runner's wake-up pipe, so the strike goes out within a turn of its loop.
#[derive(Debug)]
pub struct SentCount {
    sent: AtomicU64,
    wake_at: AtomicU64,
    wake: Arc<OwnedFd>,
}

impl SentCount {
    pub fn new(wake: Arc<OwnedFd>) -> SentCount {
        SentCount {
            sent: AtomicU64::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            wake,
        }
    }

    /// How many requests have been sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Wake the runner when the count reaches `n`. The runner reads [`SentCount::sent`]
    /// after this: a request sent in between is seen by one side or the other.
    pub fn wake_at(&self, n: u64) {
        self.wake_at.store(n, Ordering::SeqCst);
    }

    fn bump(&self) {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.wake_at.load(Ordering::SeqCst) {
            let _ = rustix::io::write(&*self.wake, b"r");
        }
    }
}

/// Runs `client` against a target listening on `port` (what `{port}` means) and returns
/// its history, on the calling thread: until every request ended, `stop` is stopped, or
/// `deadline`. Times are since `clock`. Each request sent is counted in `sent`.
pub fn run(
    client: &BuiltInClient,
    port: u16,
    clock: Instant,
    stop: &Stop,
    deadline: Instant,
    sent: Option<Arc<SentCount>>,
) -> History {
    match client {
        BuiltInClient::Http(spec) => http(spec, port, clock, stop, deadline, sent),
        BuiltInClient::Tcp(spec) => tcp(spec, port, clock, stop, deadline, sent),
    }
}

/// [`run`] for an `http` client.
pub fn run_http(
    spec: &HttpClientSpec,
    port: u16,
    clock: Instant,
    stop: &Stop,
    deadline: Instant,
) -> History {
    http(spec, port, clock, stop, deadline, None)
}

fn http(
    spec: &HttpClientSpec,
    port: u16,
    clock: Instant,
    stop: &Stop,
    deadline: Instant,
    sent: Option<Arc<SentCount>>,
) -> History {
    // Checked again: its fields are public, and a spec changed after it was read must
    // not panic here.
    let keep_body = spec.keep_body;
    let checked = HttpClientSpec::try_from(spec.raw()).and_then(|spec| {
        let target = spec.target(port)?;
        Ok((spec, target))
    });
    let (spec, target) = match checked {
        Ok(checked) => checked,
        Err(why) => return History::could_not_run(spec.label(), spec.requests, why),
    };
    let spec = &spec;
    let method = http::Method::from_bytes(spec.method.as_bytes()).expect("checked when read");
    let has_body = spec.body_bytes > 0
        || [http::Method::POST, http::Method::PUT, http::Method::PATCH].contains(&method);
    let mut headers = http::HeaderMap::new();
    let value = |text: &str| http::HeaderValue::from_str(text).expect("checked when read");
    headers.insert(http::header::HOST, value(&target.authority()));
    if has_body {
        headers.insert(
            http::header::CONTENT_LENGTH,
            value(&spec.body_bytes.to_string()),
        );
    }
    if !spec.keep_alive {
        headers.insert(http::header::CONNECTION, value("close"));
    }
    for (name, text) in &spec.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("checked when read");
        headers.insert(name, value(text));
    }
    let capture = spec
        .capture
        .iter()
        .map(|name| {
            let header = http::HeaderName::from_bytes(name.as_bytes()).expect("checked when read");
            (name.clone(), header)
        })
        .collect();
    let plan = Arc::new(HttpPlan {
        addr: target.addr(),
        method,
        uri: target
            .path_and_query
            .parse()
            .expect("a path checked when read"),
        headers,
        body: Bytes::from(body(spec.body_bytes)),
        capture,
        timeout: spec.timeout,
        keep_alive: spec.keep_alive,
        keep_body,
    });
    let shared = Shared::new(clock, spec.requests, sent);
    let workers = (0..spec.concurrency).map(|_| {
        let shared = shared.clone();
        let plan = plan.clone();
        async move { http_worker(&shared, &plan).await }
    });
    drive(spec.label(), &shared, workers, stop, deadline)
}

/// [`run`] for a `tcp` client.
pub fn run_tcp(
    spec: &TcpClientSpec,
    port: u16,
    clock: Instant,
    stop: &Stop,
    deadline: Instant,
) -> History {
    tcp(spec, port, clock, stop, deadline, None)
}

fn tcp(
    spec: &TcpClientSpec,
    port: u16,
    clock: Instant,
    stop: &Stop,
    deadline: Instant,
    sent: Option<Arc<SentCount>>,
) -> History {
    let addr: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, spec.port.resolve(port)).into();
    let shared = Shared::new(clock, spec.requests, sent);
    let spec = Arc::new(spec.clone());
    let workers = (0..spec.concurrency).map(|_| {
        let shared = shared.clone();
        let spec = spec.clone();
        async move { tcp_worker(&shared, &spec, addr).await }
    });
    drive(
        format!("tcp {}", addr.port()),
        &shared,
        workers,
        stop,
        deadline,
    )
}

/// A client running on a thread of its own ([`start`]). Dropped without [`Running::stop`]
/// or [`Running::join`], it is stopped (its thread ends at once, unwaited).
#[derive(Debug)]
pub struct Running {
    stop: Arc<Stop>,
    thread: Option<std::thread::JoinHandle<History>>,
}

/// Starts `client` on a thread of its own; see [`run`].
pub fn start(
    client: BuiltInClient,
    port: u16,
    clock: Instant,
    deadline: Instant,
) -> io::Result<Running> {
    let stop = Arc::new(Stop::new());
    let thread = std::thread::Builder::new()
        .name("killpoint-client".into())
        .spawn({
            let stop = stop.clone();
            move || run(&client, port, clock, &stop, deadline, None)
        })?;
    Ok(Running {
        stop,
        thread: Some(thread),
    })
}

impl Running {
    /// Whether it has ended on its own (every request ended, or its deadline).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops it and returns its history.
    pub fn stop(self) -> History {
        self.stop.stop();
        self.join()
    }

    /// Waits for it to end on its own (bounded by its deadline) and returns its history.
    pub fn join(mut self) -> History {
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The run: workers, the shared records, the end.

/// What every worker shares: the clock, the next id, the records.
struct Shared {
    clock: Instant,
    state: Mutex<State>,
    sent: Option<Arc<SentCount>>,
}

struct State {
    planned: u32,
    records: Vec<RequestRecord>,
    connections: u32,
}

impl Shared {
    fn new(clock: Instant, planned: u32, sent: Option<Arc<SentCount>>) -> Arc<Shared> {
        Arc::new(Shared {
            clock,
            sent,
            state: Mutex::new(State {
                planned,
                records: Vec::with_capacity(planned as usize),
                connections: 0,
            }),
        })
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.clock)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A worker that panicked leaves the records as they were; they stay readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next request to make, started now, on `connection` (0: none yet); `None`
    /// when every one has been.
    fn take(&self, connection: u32) -> Option<u32> {
        let started_at = self.now();
        let mut state = self.state();
        if state.records.len() as u32 >= state.planned {
            return None;
        }
        let id = state.records.len() as u32 + 1;
        state
            .records
            .push(RequestRecord::started(id, connection, started_at));
        Some(id)
    }

    /// A new connection's number, for request `id`.
    fn open(&self, id: u32) -> u32 {
        let mut state = self.state();
        state.connections += 1;
        let number = state.connections;
        state.records[id as usize - 1].connection = number;
        number
    }

    fn update(&self, id: u32, f: impl FnOnce(&mut RequestRecord)) {
        f(&mut self.state().records[id as usize - 1]);
    }

    /// Stamps now with `f`.
    fn stamp(&self, id: u32, f: impl FnOnce(&mut RequestRecord, Duration)) {
        let now = self.now();
        self.update(id, |r| f(r, now));
    }

    /// Stamps request `id` sent now (a later write of its bytes moves the stamp on); the
    /// first time, it is counted.
    fn sent(&self, id: u32) {
        let mut first = false;
        self.stamp(id, |r, now| {
            first = r.sent_at.is_none();
            r.sent_at = Some(now);
        });
        if first && let Some(count) = &self.sent {
            count.bump();
        }
    }

    fn fail(&self, id: u32, error: ClientError) {
        self.stamp(id, |r, now| {
            // The first error stands (a timeout after a reset was recorded is the same
            // request's end).
            if r.ended_at().is_none() {
                r.failed_at = Some(now);
                r.error = Some(error);
            }
        });
    }
}

/// Runs `workers` until they are done, `stop` or `deadline`, and returns the history.
fn drive<F>(
    label: String,
    shared: &Arc<Shared>,
    workers: impl ExactSizeIterator<Item = F>,
    stop: &Stop,
    deadline: Instant,
) -> History
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    // Workers dealt round-robin to one thread per CPU, each a current-thread runtime of
    // its own (its own epoll; no wake-ups across threads, which a multi-thread runtime
    // would add at every step).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(workers.len())
        .max(1);
    let mut shares: Vec<Vec<F>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, worker) in workers.enumerate() {
        shares[i % threads].push(worker);
    }
    let ends: Vec<Result<HistoryEnd, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                std::thread::Builder::new()
                    .name("killpoint-client".into())
                    .spawn_scoped(scope, move || run_share(share, stop, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(e) => Err(format!("no thread: {e}")),
            })
            .collect()
    });
    let error = ends.iter().find_map(|end| end.as_ref().err().cloned());
    let end = if error.is_some() {
        HistoryEnd::Failed
    } else if ends.contains(&Ok(HistoryEnd::Stopped)) {
        HistoryEnd::Stopped
    } else if ends.contains(&Ok(HistoryEnd::Deadline)) {
        HistoryEnd::Deadline
    } else {
        HistoryEnd::Finished
    };
    let ended_at = shared.now();
    let mut state = shared.state();
    for record in &mut state.records {
        if record.ended_at().is_none() {
            record.failed_at = Some(ended_at);
            record.error = Some(ClientError::Stopped);
        }
    }
    History {
        label,
        planned: state.planned,
        requests: std::mem::take(&mut state.records),
        connections: state.connections,
        end,
        ended_at,
        error,
    }
}

/// Runs one thread's share of the workers on a runtime of its own, until they are done,
/// `stop` or `deadline`.
fn run_share<F>(share: Vec<F>, stop: &Stop, deadline: Instant) -> Result<HistoryEnd, String>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    let end = runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for worker in share {
            set.spawn(worker);
        }
        let all = async { while set.join_next().await.is_some() {} };
        tokio::select! {
            biased;
            _ = stop.stopped() => HistoryEnd::Stopped,
            _ = tokio::time::sleep_until(deadline.into()) => HistoryEnd::Deadline,
            _ = all => HistoryEnd::Finished,
        }
    });
    // Dropping the runtime drops every worker and connection: their sockets close here.
    drop(runtime);
    Ok(end)
}

// ---------------------------------------------------------------------------------------
// HTTP.

/// An `http` spec made ready to send.
struct HttpPlan {
    addr: SocketAddr,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
    /// As the spec writes the name, and parsed.
    capture: Vec<(String, http::HeaderName)>,
    timeout: Duration,
    keep_alive: bool,
    keep_body: bool,
}

/// hyper's side of a connection: it reads and writes the socket when polled.
type Driver = hyper::client::conn::http1::Connection<hyper_util::rt::TokioIo<Stamped>, RequestBody>;

/// A worker's connection: hyper's sender and its driver, the stamps' turn. Dropping it
/// closes the socket.
struct Connection {
    number: u32,
    connect_at: Duration,
    sender: hyper::client::conn::http1::SendRequest<RequestBody>,
    /// Polled by the worker itself while it waits on the sender (`driven`): one task per
    /// worker, no hand-off between a request's task and its connection's. `None` once it
    /// returned (the connection closed), dropped so that the sender sees it closed.
    driver: Option<Pin<Box<Driver>>>,
    turn: Arc<Mutex<Turn>>,
}

/// Whose turn a connection's reads and writes are, for the stamps.
#[derive(Default)]
struct Turn {
    /// The request the connection carries (0: none).
    request: u32,
    /// hyper has taken the request body's last frame: the writes from now on carry the
    /// request's last bytes.
    body_taken: bool,
    /// A read of this turn has returned data.
    first_byte: bool,
}

async fn http_worker(shared: &Arc<Shared>, plan: &HttpPlan) {
    let mut kept: Option<Connection> = None;
    let mut timer = Timer::new();
    while let Some(id) = shared.take(kept.as_ref().map_or(0, |c| c.number)) {
        let done = timer
            .bound(plan.timeout, http_request(shared, plan, id, &mut kept))
            .await;
        match done {
            Some(true) if plan.keep_alive => {}
            Some(_) => kept = None,
            None => {
                // Dropping the connection drops hyper's half-done exchange with it.
                kept = None;
                shared.fail(id, ClientError::Timeout);
            }
        }
    }
}

/// A worker's request timeout: one timer, moved on for each request. A timer made per
/// request (`tokio::time::timeout`) is registered and removed each time, which costs more
/// than the rest of the client's own work per request; moving a pending timer later only
/// notes the new deadline.
struct Timer {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        }
    }

    /// `future`'s output, or `None` if `timeout` passes first.
    async fn bound<F: std::future::Future>(
        &mut self,
        timeout: Duration,
        future: F,
    ) -> Option<F::Output> {
        self.sleep
            .as_mut()
            .reset(tokio::time::Instant::now() + timeout);
        tokio::select! {
            biased;
            out = future => Some(out),
            _ = self.sleep.as_mut() => None,
        }
    }
}

/// How one exchange on a connection went.
enum Exchange {
    /// The request ended (recorded); whether the connection may carry another.
    Ended { reusable: bool },
    /// The connection was closed before the request was written: nothing was sent.
    NotSent,
}

/// Makes request `id` on `kept`, or on a new connection; whether the connection may
/// carry another.
async fn http_request(
    shared: &Arc<Shared>,
    plan: &HttpPlan,
    id: u32,
    kept: &mut Option<Connection>,
) -> bool {
    loop {
        let fresh = kept.is_none();
        let connection = match kept {
            Some(connection) => {
                let (number, connect_at) = (connection.number, connection.connect_at);
                shared.update(id, |r| {
                    r.connection = number;
                    r.connect_at = Some(connect_at);
                    r.reused = true;
                });
                connection
            }
            None => match connect(shared, plan.addr, id).await {
                Some(connection) => kept.insert(connection),
                None => return false,
            },
        };
        *lock(&connection.turn) = Turn {
            request: id,
            body_taken: plan.body.is_empty(),
            first_byte: false,
        };
        let Connection {
            sender,
            driver,
            turn,
            ..
        } = connection;
        let exchange = exchange(shared, plan, id, sender, turn);
        match driven(driver, exchange).await {
            Exchange::Ended { reusable } => {
                lock(turn).request = 0;
                return reusable;
            }
            // A kept connection the server closed while it was idle: the request goes
            // on a new one, as if it had never been tried.
            Exchange::NotSent if !fresh => {
                *kept = None;
                shared.update(id, |r| {
                    r.reused = false;
                    r.connect_at = None;
                });
            }
            Exchange::NotSent => {
                shared.fail(
                    id,
                    ClientError::Other("the connection closed before the request was sent".into()),
                );
                return false;
            }
        }
    }
}

/// Polls `future` and, while it waits, the connection's `driver`: hyper reads and writes
/// the socket only when its driver is polled.
async fn driven<F: std::future::Future>(
    driver: &mut Option<Pin<Box<Driver>>>,
    future: F,
) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        // The driver's end (the connection closed, cleanly or not) reaches the sender
        // and the body as their errors once it is dropped.
        if let Some(running) = driver
            && running.as_mut().poll(cx).is_ready()
        {
            *driver = None;
        }
        future.as_mut().poll(cx)
    })
    .await
}

/// Sends request `id` on `sender` and reads its response, recording each step.
async fn exchange(
    shared: &Shared,
    plan: &HttpPlan,
    id: u32,
    sender: &mut hyper::client::conn::http1::SendRequest<RequestBody>,
    turn: &Arc<Mutex<Turn>>,
) -> Exchange {
    // Closed while idle: hyper knows before anything is sent.
    if sender.ready().await.is_err() {
        return Exchange::NotSent;
    }
    let mut request = http::Request::new(RequestBody {
        data: (!plan.body.is_empty()).then(|| plan.body.clone()),
        len: plan.body.len() as u64,
        turn: turn.clone(),
    });
    *request.method_mut() = plan.method.clone();
    *request.uri_mut() = plan.uri.clone();
    *request.headers_mut() = plan.headers.clone();
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, http::HeaderValue::from(id));
    let response = match sender.try_send_request(request).await {
        Ok(response) => response,
        Err(mut e) => {
            if e.take_message().is_some() {
                return Exchange::NotSent;
            }
            shared.fail(id, classify(e.error(), 0, None));
            return Exchange::Ended { reusable: false };
        }
    };
    let (head, mut body) = response.into_parts();
    let expected = body.size_hint().exact();
    let captured: BTreeMap<String, String> = plan
        .capture
        .iter()
        .filter_map(|(name, header)| {
            let value = head.headers.get(header)?;
            Some((
                name.clone(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect();
    shared.stamp(id, |r, now| {
        r.status = Some(head.status.as_u16());
        r.expected_bytes = expected;
        r.captured = captured;
        // Bytes read before this request's turn (none from a server that answers only
        // what it was asked) leave no read to stamp: the head is then the first sign.
        r.first_byte_at.get_or_insert(now);
    });
    let mut got = 0u64;
    let mut kept = Kept::new(plan.keep_body);
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    got += data.len() as u64;
                    let body = kept.add(data);
                    shared.update(id, |r| {
                        r.response_bytes = got;
                        if let Some(body) = body {
                            r.body = body;
                        }
                    });
                }
            }
            Some(Err(e)) => {
                shared.fail(id, classify(&e, got, expected));
                return Exchange::Ended { reusable: false };
            }
            None => {
                shared.stamp(id, |r, now| r.completed_at = Some(now));
                return Exchange::Ended { reusable: true };
            }
        }
    }
}

/// The start of a response, kept when the client keeps bodies: up to
/// [`crate::history::BODY_KEPT`] bytes.
struct Kept {
    keep: bool,
    bytes: Vec<u8>,
}

impl Kept {
    fn new(keep: bool) -> Kept {
        Kept {
            keep,
            bytes: Vec::new(),
        }
    }

    /// Takes in bytes read; the text kept so far if it grew.
    fn add(&mut self, data: &[u8]) -> Option<String> {
        let room = crate::history::BODY_KEPT.saturating_sub(self.bytes.len());
        if !self.keep || room == 0 || data.is_empty() {
            return None;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
        Some(String::from_utf8_lossy(&self.bytes).into_owned())
    }
}

/// Opens a connection for request `id`; `None` (the request failed) if it cannot.
async fn connect(shared: &Arc<Shared>, addr: SocketAddr, id: u32) -> Option<Connection> {
    let number = shared.open(id);
    let stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => {
            shared.fail(id, classify_io(&e, 0, None));
            return None;
        }
    };
    let connect_at = shared.now();
    shared.update(id, |r| r.connect_at = Some(connect_at));
    // The request leaves in one write anyway; no delay for the next one's.
    let _ = stream.set_nodelay(true);
    let turn = Arc::new(Mutex::new(Turn::default()));
    let io = hyper_util::rt::TokioIo::new(Stamped {
        stream,
        turn: turn.clone(),
        shared: shared.clone(),
    });
    let (sender, driver) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => {
            shared.fail(id, classify(&e, 0, None));
            return None;
        }
    };
    Some(Connection {
        number,
        connect_at,
        sender,
        driver: Some(Box::pin(driver)),
        turn,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request body: the spec's bytes as one frame, noting when hyper took it.
struct RequestBody {
    data: Option<Bytes>,
    len: u64,
    turn: Arc<Mutex<Turn>>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.data.take() {
            Some(data) => {
                lock(&self.turn).body_taken = true;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A connection's socket, stamping the reads and writes of the request in its turn.
struct Stamped {
    stream: TcpStream,
    turn: Arc<Mutex<Turn>>,
    shared: Arc<Shared>,
}

impl Stamped {
    /// After a read that returned data: the first of the turn is the response's first
    /// byte.
    fn read_data(&self) {
        let mut turn = lock(&self.turn);
        if turn.request != 0 && !turn.first_byte {
            turn.first_byte = true;
            self.shared
                .stamp(turn.request, |r, now| r.first_byte_at = Some(now));
        }
    }

    /// After a write that took bytes: once the body is taken, the request's last bytes.
    fn wrote(&self) {
        let turn = lock(&self.turn);
        if turn.request != 0 && turn.body_taken {
            self.shared.sent(turn.request);
        }
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.read_data();
        }
        polled
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, bytes);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What a hyper error says about the request: the `io::Error` under it if there is one,
/// else hyper's kind. `got` of `expected` body bytes were read.
fn classify(e: &hyper::Error, got: u64, expected: Option<u64>) -> ClientError {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return classify_io(io, got, expected);
        }
        source = cause.source();
    }
    if e.is_incomplete_message() {
        return ClientError::EofMidResponse { got, expected };
    }
    if e.is_timeout() {
        return ClientError::Timeout;
    }
    ClientError::Other(chain(e))
}

fn classify_io(e: &io::Error, got: u64, expected: Option<u64>) -> ClientError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ClientError::Refused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => ClientError::Reset,
        io::ErrorKind::UnexpectedEof => ClientError::EofMidResponse { got, expected },
        io::ErrorKind::TimedOut => ClientError::Timeout,
        _ => ClientError::Other(chain(e)),
    }
}

/// An error and its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------
// TCP.

async fn tcp_worker(shared: &Arc<Shared>, spec: &TcpClientSpec, addr: SocketAddr) {
    let mut timer = Timer::new();
    while let Some(id) = shared.take(0) {
        let done = timer
            .bound(spec.timeout, tcp_request(shared, spec, addr, id))
            .await;
        if done.is_none() {
            shared.fail(id, ClientError::Timeout);
        }
    }
}

/// Connect, send, (shut the writing side,) read until the server closes.
async fn tcp_request(shared: &Shared, spec: &TcpClientSpec, addr: SocketAddr, id: u32) {
    shared.open(id);
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return shared.fail(id, classify_io(&e, 0, None)),
    };
    shared.stamp(id, |r, now| r.connect_at = Some(now));
    let _ = stream.set_nodelay(true);
    if let Err(e) = stream.write_all(&spec.message(id)).await {
        return shared.fail(id, classify_io(&e, 0, None));
    }
    shared.sent(id);
    if spec.half_close
        && let Err(e) = stream.shutdown().await
    {
        return shared.fail(id, classify_io(&e, 0, None));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let mut kept = Kept::new(spec.keep_body);
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return shared.stamp(id, |r, now| r.completed_at = Some(now)),
            Ok(n) => {
                got += n as u64;
                let body = kept.add(&buf[..n]);
                shared.stamp(id, |r, now| {
                    r.first_byte_at.get_or_insert(now);
                    r.response_bytes = got;
                    if let Some(body) = body {
                        r.body = body;
                    }
                });
            }
            Err(e) => return shared.fail(id, classify_io(&e, got, None)),
        }
    }
}
