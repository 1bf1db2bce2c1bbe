//! What the built-in HTTP client can drive: its request rate against a fast server on
//! loopback, next to a plain client's against the same server in the same run.
//!
//! `cargo bench -p killpoint --bench client` prints each figure's median over the rounds
//! and the ratio (goal: the built-in client ≥ 0.9× the plain one, so that a case's load
//! is the server's limit, not killpoint's). Environment: `KILLPOINT_BENCH_RUNS` (rounds,
//! default 7), `KILLPOINT_BENCH_REQUESTS` (per round, default 20000),
//! `KILLPOINT_BENCH_CONCURRENCY` (default 8), `KILLPOINT_BENCH_CPU` (pins the server and
//! both clients to that one CPU: then the rate is one over what a request costs in all,
//! client, server and kernel; unpinned, as a case runs, by default).
//!
//! - The server: a thread per connection, blocking std I/O, keep-alive, answering each
//!   request head (`\r\n\r\n`) with the same 13-byte response. No parsing beyond that, so
//!   it costs as little as a server can.
//! - built-in: `killpoint::load::run_http`, `GET /` `requests` times over `concurrency`
//!   kept connections, every stamp recorded, then its history checked (all 200).
//! - plain: `concurrency` threads, each a keep-alive `TcpStream` writing the same request
//!   bytes the built-in client sends and reading the fixed-length response, no stamps,
//!   no parsing.
//! - `ab` and `wrk`, the same requests and concurrency, if installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use killpoint::client::{HttpClientSpec, RawHttpClientSpec};
use killpoint::load::{self, Stop};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n";

/// Starts the server; returns its port. Its threads live as long as the bench.
mod common;
use common::{env_or, median};

fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

/// Answers every request head on `stream` until the client closes it.
fn answer(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].windows(4).position(|w| w == b"\r\n\r\n") {
            start += end + 4;
            out.extend_from_slice(RESPONSE);
        }
        pending.drain(..start);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// The built-in client: requests per second.
fn built_in(port: u16, requests: u32, concurrency: u32) -> f64 {
    let spec = HttpClientSpec::try_from(RawHttpClientSpec {
        url: "http://127.0.0.1:{port}/".into(),
        requests,
        concurrency,
        ..RawHttpClientSpec::default()
    })
    .unwrap();
    let clock = Instant::now();
    let history = load::run_http(
        &spec,
        port,
        clock,
        &Stop::new(),
        clock + Duration::from_secs(600),
    );
    let took = history.ended_at;
    assert_eq!(
        history.with_status(200).count(),
        requests as usize,
        "{}",
        history.summary()
    );
    f64::from(requests) / took.as_secs_f64()
}

/// The plain client: requests per second.
fn plain(port: u16, requests: u32, concurrency: u32) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|worker| {
            // The requests shared out as the built-in client's workers would take them.
            let mine = requests / concurrency + u32::from(worker < requests % concurrency);
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                // What the built-in client sends (hyper writes header names in lower case).
                let request = format!(
                    "GET / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nx-killpoint-request: 10000\r\n\r\n"
                );
                let mut response = vec![0u8; RESPONSE.len()];
                for _ in 0..mine {
                    stream.write_all(request.as_bytes()).unwrap();
                    stream.read_exact(&mut response).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    f64::from(requests) / start.elapsed().as_secs_f64()
}

/// An installed load tool's figure (`ab` or `wrk`), or why there is none.
fn tool(name: &str, port: u16, requests: u32, concurrency: u32) -> Result<f64, String> {
    let installed = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err("not installed".into());
    }
    let url = format!("http://127.0.0.1:{port}/");
    let (args, key): (Vec<String>, &str) = match name {
        "ab" => (
            vec![
                "-q".into(),
                "-k".into(),
                "-n".into(),
                requests.to_string(),
                "-c".into(),
                concurrency.to_string(),
                url,
            ],
            "Requests per second:",
        ),
        _ => (
            vec!["-t1".into(), format!("-c{concurrency}"), "-d2s".into(), url],
            "Requests/sec:",
        ),
    };
    let output = Command::new(name)
        .args(&args)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no figure in its output: {text}"))
}

fn main() {
    let runs: usize = env_or("KILLPOINT_BENCH_RUNS", 7);
    let requests: u32 = env_or("KILLPOINT_BENCH_REQUESTS", 20_000);
    let concurrency: u32 = env_or("KILLPOINT_BENCH_CONCURRENCY", 8);
    let pinned: Option<usize> = std::env::var("KILLPOINT_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(cpu) = pinned {
        // Every thread started from here on inherits it.
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
            eprintln!("cannot pin to CPU {cpu} ({e})");
        }
    }
    let port = serve();
    // Warm up both (the server's threads, the page cache of the binary).
    built_in(port, 1000, concurrency);
    plain(port, 1000, concurrency);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(built_in(port, requests, concurrency));
        theirs.push(plain(port, requests, concurrency));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let placement = match pinned {
        Some(cpu) => format!("all on CPU {cpu}"),
        None => "unpinned".to_string(),
    };
    println!(
        "{requests} GETs over {concurrency} kept connections, median of {runs} rounds, interleaved, {placement}:"
    );
    println!("  built-in client (hyper, every stamp): {ours:>9.0} requests/s");
    println!("  plain blocking client:                 {theirs:>9.0} requests/s");
    let ratio = ours / theirs;
    println!(
        "  ratio: {ratio:.2}× (goal ≥ 0.90×: {})",
        if ratio >= 0.9 { "met" } else { "not met" }
    );
    for name in ["ab", "wrk"] {
        match tool(name, port, requests, concurrency) {
            Ok(rate) => println!("  {name}: {rate:>9.0} requests/s"),
            Err(why) => println!("  {name}: {why}"),
        }
    }
}
