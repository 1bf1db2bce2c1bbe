//! http-service: an HTTP service's graceful stop, written the way Rust services are: tokio,
//! axum's router, hyper's connections, a write-behind store behind a channel.
//!
//! Listens on 127.0.0.1:`--port` and, once the listener is bound, prints one line to
//! stdout: `READY 127.0.0.1:PORT`. Endpoints:
//! - `POST /items` (a body of at most 64 KiB): 201 with `X-Id: N` once item N is on disk.
//! - `GET /items/N`: the item's body, or 404.
//! - `GET /slow?ms=N`: 200 with a 1000-byte body in ten chunks, the first at once and the
//!   last after N ms (default 1000): a response in flight during a stop.
//! - `GET /download?bytes=N`: a streamed body of N bytes (default 1 MiB) in 64 KiB chunks.
//! - `GET /health`: `ok`.
//!
//! The store (`--store`, an append-only log: a line `ID LEN HEX` per item) is written by a
//! worker thread fed over a channel. A handler hands it the item and a reply channel; the
//! worker takes everything queued, writes it in one go, fsyncs, and only then answers each
//! waiting handler (group commit). Records no handler waits for are committed at the latest
//! every `--sync-interval` (default 1s, like Redis's `appendfsync everysec`). On start the
//! log is replayed: its items, the next id; a torn last line is cut off.
//!
//! SIGTERM or SIGINT stops the service: the accept loop ends and the listener is closed (new
//! connections are refused), every connection is told to finish the request in flight and
//! close (an idle keep-alive connection closes at once), and the service waits for them up
//! to `--drain-deadline`; then the worker commits what is left and the log is closed. It
//! says on stderr `http-service: SIGTERM: stopping: draining N connection(s)` once the
//! listener is closed.
//!
//! Exit codes: 0 stopped with every connection drained; 3 stopped at the drain deadline,
//! the connections still open cut (the store still closed); 1 an error (the port taken, the
//! store unwritable); 2 a usage error.
//!
//! Planted bugs (`--bug NAME`), each the correct code with one thing wrong:
//! - `exit-now`: exits 0 as soon as the signal arrives, like a service whose signal task
//!   does `ctrl_c().await; std::process::exit(0)`: responses in flight are cut off.
//! - `keep-accepting`: drains before it closes the listener ("so that a client connecting
//!   during the drain is still served"): new connections are accepted and served until the
//!   drain ends, which is what a load balancer takes for a healthy instance.
//! - `idle-keepalive`: drains by waiting for every connection to end by itself, however
//!   long: connections are never told to close, so an idle keep-alive connection keeps the
//!   service up for ever, past any deadline (hand-written hyper loops that count
//!   connections do this; hyper only closes an idle connection on `graceful_shutdown`).
//! - `ack-before-write`: answers 201 as soon as the item is queued to the worker (to cut
//!   latency, "the worker writes it soon") and so, with nothing waiting for the worker,
//!   exits without closing the store: items acknowledged since the last periodic commit
//!   are lost.
//!
//! Usage: http-service --port N [--store PATH] [--drain-deadline DURATION]
//!        [--sync-interval DURATION] [--bug exit-now|keep-accepting|idle-keepalive|ack-before-write]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{oneshot, watch};

const BUGS: [&str; 4] = [
    "exit-now",
    "keep-accepting",
    "idle-keepalive",
    "ack-before-write",
];

/// Exit code of a stop that reached the drain deadline with connections still open.
const DEADLINE_PASSED: u8 = 3;
const MAX_BODY: usize = 64 * 1024;
const SLOW_CHUNKS: u64 = 10;
const SLOW_CHUNK: usize = 100;
const DOWNLOAD_CHUNK: u64 = 64 * 1024;

type Items = Arc<Mutex<HashMap<u64, Bytes>>>;

/// What a handler hands the store's worker.
enum Op {
    /// Append item `id`; `done`, if given, hears once it is on disk.
    Put {
        id: u64,
        body: Bytes,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// Commit what is pending, then end.
    Close,
}

/// What every handler shares.
struct App {
    queue: mpsc::Sender<Op>,
    next_id: AtomicU64,
    /// The committed items, for `GET /items/N`.
    items: Items,
    bug: Option<&'static str>,
}

fn main() -> ExitCode {
    killpoint_scenarios::main("http-service", &[], |flags| {
        let port = flags
            .text("--port")
            .ok_or("--port N is required")?
            .parse::<u16>()
            .map_err(|_| "--port N: not a port number")?;
        let store = flags.text("--store").unwrap_or("items.log").to_owned();
        let deadline = flags.duration("--drain-deadline", Duration::from_secs(5))?;
        let sync_interval = flags.duration("--sync-interval", Duration::from_secs(1))?;
        let bug = flags.bug(&BUGS)?;
        flags.check_known(&[
            "--port",
            "--store",
            "--drain-deadline",
            "--sync-interval",
            "--bug",
        ])?;
        run(port, Path::new(&store), deadline, sync_interval, bug).or_else(|e| {
            eprintln!("http-service: {e}");
            Ok(ExitCode::from(1))
        })
    })
}

fn run(
    port: u16,
    store: &Path,
    deadline: Duration,
    sync_interval: Duration,
    bug: Option<&'static str>,
) -> Result<ExitCode, String> {
    let (file, items, next_id) =
        open_store(store).map_err(|e| format!("{}: {e}", store.display()))?;
    let items = Arc::new(Mutex::new(items));
    let (queue, ops) = mpsc::channel();
    let worker = {
        let items = Arc::clone(&items);
        std::thread::spawn(move || write_behind(file, ops, &items, sync_interval))
    };
    let app = Arc::new(App {
        queue: queue.clone(),
        next_id: AtomicU64::new(next_id),
        items,
        bug,
    });
    let router = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/items", post(put_item))
        .route("/items/{id}", get(get_item))
        .route("/slow", get(slow))
        .route("/download", get(download))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let (drained, open) = runtime.block_on(async {
        // Handlers first: a stop that comes once READY is out must not kill the service.
        let terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("127.0.0.1:{port}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "READY {address}")
            .and_then(|()| stdout.flush())
            .map_err(|e| e.to_string())?;
        drop(stdout);
        serve(listener, router, [terminate, interrupt], deadline, bug).await
    })?;

    if bug == Some("ack-before-write") {
        // The bug's other half: nothing waits for the worker, so nothing closes the store;
        // the service exits once the HTTP side has drained (`process::exit`, as services do
        // so as not to wait on the runtime's drop), with the records not committed yet.
        std::process::exit(0);
    }
    // Commit what is left; handlers still running past the deadline get a 503 from now on.
    let _ = queue.send(Op::Close);
    let stored = worker
        .join()
        .expect("the store's worker")
        .map_err(|e| format!("{}: {e}", store.display()))?;
    // Cuts the connections still open past the deadline.
    runtime.shutdown_background();
    if drained {
        eprintln!("http-service: stopped: drained; store closed with {stored} items");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "http-service: drain deadline {deadline:?} passed with {open} connection(s) open; \
             cut them; store closed with {stored} items"
        );
        Ok(ExitCode::from(DEADLINE_PASSED))
    }
}

/// Accepts until a stop signal, then drains. Returns whether every connection ended within
/// the deadline, and how many were still open.
async fn serve(
    listener: TcpListener,
    router: Router,
    [mut terminate, mut interrupt]: [Signal; 2],
    deadline: Duration,
    bug: Option<&'static str>,
) -> Result<(bool, usize), String> {
    // Every connection holds a receiver: `send` tells them all to close once their request
    // in flight is answered, and `closed` resolves when the last one has ended.
    let (stop, _) = watch::channel(());
    let name = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            accepted = listener.accept() => accept(accepted, &router, &stop),
        }
    };
    let stopping = || {
        eprintln!(
            "http-service: {name}: stopping: draining {} connection(s), deadline {deadline:?}",
            stop.receiver_count()
        );
    };
    let drained = match bug {
        Some("exit-now") => {
            // The bug: what `ctrl_c().await; std::process::exit(0)` does.
            std::process::exit(0);
        }
        Some("keep-accepting") => {
            // The bug: the listener stays open while draining, and the loop goes on.
            let _ = stop.send(());
            stopping();
            let drained = tokio::select! {
                drained = tokio::time::timeout(deadline, stop.closed()) => drained.is_ok(),
                _ = async { loop { accept(listener.accept().await, &router, &stop) } } => {
                    unreachable!("accepting never ends")
                }
            };
            drop(listener);
            drained
        }
        Some("idle-keepalive") => {
            drop(listener);
            stopping();
            // The bug: no connection is told to close, and the wait has no deadline.
            stop.closed().await;
            true
        }
        _ => {
            // Closing the listener makes the kernel refuse new connections at once, so
            // clients and load balancers go elsewhere instead of waiting on a backlog.
            drop(listener);
            // Every connection: answer the request in flight, then close.
            let _ = stop.send(());
            stopping();
            tokio::time::timeout(deadline, stop.closed()).await.is_ok()
        }
    };
    Ok((drained, stop.receiver_count()))
}

fn accept(
    accepted: std::io::Result<(TcpStream, std::net::SocketAddr)>,
    router: &Router,
    stop: &watch::Sender<()>,
) {
    match accepted {
        Ok((stream, _)) => spawn_connection(stream, router.clone(), stop.subscribe()),
        // A connection reset before it was accepted, or out of descriptors: go on.
        Err(e) => eprintln!("http-service: accept: {e}"),
    }
}

fn spawn_connection(stream: TcpStream, router: Router, mut stop: watch::Receiver<()>) {
    tokio::spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
        let mut conn = std::pin::pin!(conn);
        // A client that went away mid-request is its own business, not the service's.
        let _ = tokio::select! {
            // A stop: answer the request in flight with `connection: close`, or close now
            // if idle. Checked first, so a request read after the stop was sent is answered
            // that way too. A receiver subscribed after the stop was sent never sees it.
            biased;
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
            served = conn.as_mut() => served,
        };
        // Dropping the receiver tells the drain this connection has ended.
        drop(stop);
    });
}

async fn put_item(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let id = app.next_id.fetch_add(1, Ordering::SeqCst);
    let closed = || (StatusCode::SERVICE_UNAVAILABLE, "store closed\n").into_response();
    if app.bug == Some("ack-before-write") {
        // The bug: acknowledged once queued, not once written.
        let queued = app.queue.send(Op::Put {
            id,
            body,
            done: None,
        });
        return if queued.is_ok() {
            created(id)
        } else {
            closed()
        };
    }
    let (done, committed) = oneshot::channel();
    let put = Op::Put {
        id,
        body,
        done: Some(done),
    };
    if app.queue.send(put).is_err() {
        return closed();
    }
    match committed.await {
        Ok(Ok(())) => created(id),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}\n")).into_response(),
        Err(_) => closed(),
    }
}

fn created(id: u64) -> Response {
    (
        StatusCode::CREATED,
        [("x-id", id.to_string())],
        format!("{id}\n"),
    )
        .into_response()
}

async fn get_item(State(app): State<Arc<App>>, UrlPath(id): UrlPath<u64>) -> Response {
    match app.items.lock().unwrap().get(&id) {
        Some(body) => body.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "no such item\n").into_response(),
    }
}

async fn slow(Query(query): Query<HashMap<String, String>>) -> Response {
    let ms = match number(&query, "ms", 1000) {
        Ok(ms) => ms,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let step = Duration::from_millis(ms) / (SLOW_CHUNKS as u32 - 1);
    let chunks = futures_util::stream::unfold(0, move |k| async move {
        if k == SLOW_CHUNKS {
            return None;
        }
        if k > 0 {
            tokio::time::sleep(step).await;
        }
        let mut chunk = format!("slow {}/{SLOW_CHUNKS} ", k + 1).into_bytes();
        chunk.resize(SLOW_CHUNK - 1, b'.');
        chunk.push(b'\n');
        Some((Ok::<_, Infallible>(chunk), k + 1))
    });
    sized(SLOW_CHUNKS * SLOW_CHUNK as u64, Body::from_stream(chunks))
}

async fn download(Query(query): Query<HashMap<String, String>>) -> Response {
    let bytes = match number(&query, "bytes", 1 << 20) {
        Ok(bytes) => bytes,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let chunks = futures_util::stream::unfold(0, move |sent| async move {
        let len = DOWNLOAD_CHUNK.min(bytes - sent);
        let chunk: Vec<u8> = (sent..sent + len).map(|i| b'a' + (i % 26) as u8).collect();
        (len > 0).then_some((Ok::<_, Infallible>(chunk), sent + len))
    });
    sized(bytes, Body::from_stream(chunks))
}

/// A streamed body with its length declared, so a truncated one is told from a whole one.
fn sized(len: u64, body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, len.into());
    response
}

/// A number from the query string, or the message of a 400.
fn number(query: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, String> {
    match query.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{key}: `{v}` is not a number\n")),
    }
}

/// Opens the log for appending and replays it: its items, the next id. A torn last line (a
/// crash mid-write) is cut off, so the next record does not run into it.
fn open_store(path: &Path) -> std::io::Result<(File, HashMap<u64, Bytes>, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut items = HashMap::new();
    let mut whole = 0;
    for line in text.split_inclusive('\n') {
        match parse_record(line) {
            Some((id, body)) => items.insert(id, Bytes::from(body)),
            None => break,
        };
        whole += line.len();
    }
    if whole < text.len() {
        file.set_len(whole as u64)?;
        file.sync_all()?;
    }
    file.seek(std::io::SeekFrom::End(0))?;
    let next_id = items.keys().max().map_or(1, |id| id + 1);
    Ok((file, items, next_id))
}

/// `ID LEN HEX\n`, whole.
fn parse_record(line: &str) -> Option<(u64, Vec<u8>)> {
    let mut fields = line.strip_suffix('\n')?.split(' ');
    let id = fields.next()?.parse().ok()?;
    let len: usize = fields.next()?.parse().ok()?;
    let hex = fields.next()?.as_bytes();
    if hex.len() != 2 * len || fields.next().is_some() {
        return None;
    }
    let body = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((id, body))
}

/// The store's worker: commits what the handlers queue, and answers those who wait.
/// Returns how many items the store holds when it is closed.
fn write_behind(
    mut file: File,
    ops: mpsc::Receiver<Op>,
    items: &Items,
    sync_interval: Duration,
) -> std::io::Result<usize> {
    let mut pending: Vec<(u64, Bytes)> = Vec::new();
    let mut waiting = Vec::new();
    let mut last_commit = Instant::now();
    loop {
        let first = match ops.recv_timeout(sync_interval.saturating_sub(last_commit.elapsed())) {
            Ok(op) => Some(op),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Op::Close),
        };
        // Everything queued by now goes into one commit: one write, one fsync.
        let mut closing = false;
        for op in first
            .into_iter()
            .chain(std::iter::from_fn(|| ops.try_recv().ok()))
        {
            match op {
                Op::Put { id, body, done } => {
                    pending.push((id, body));
                    waiting.extend(done);
                }
                Op::Close => {
                    closing = true;
                    break;
                }
            }
        }
        if waiting.is_empty() && !closing && last_commit.elapsed() < sync_interval {
            continue;
        }
        let committed = commit(&mut file, &pending);
        if let Err(e) = &committed {
            eprintln!("http-service: store commit failed: {e}");
        }
        if committed.is_ok() {
            items.lock().unwrap().extend(pending.drain(..));
        }
        pending.clear();
        for done in waiting.drain(..) {
            let _ = done.send(committed.as_ref().map_err(|e| e.to_string()).copied());
        }
        last_commit = Instant::now();
        if closing {
            file.sync_all()?;
            return Ok(items.lock().unwrap().len());
        }
    }
}

fn commit(file: &mut File, records: &[(u64, Bytes)]) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::new();
    for (id, body) in records {
        out.extend_from_slice(format!("{id} {} ", body.len()).as_bytes());
        for byte in body.iter() {
            out.extend_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        }
        out.push(b'\n');
    }
    file.write_all(&out)?;
    file.sync_data()
}
