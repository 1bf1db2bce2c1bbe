//! A server case's timeline, for its report: the moments that shape it (ready, the clients
//! starting and ending, each strike, the stop, the main process's exit, the tree gone) in
//! order on the case's clock, and between two moments what the built-in clients' requests
//! did: how many connections the server's kernel took, how many requests were sent, how
//! many ended, and how. At the first stop it lists the requests in flight, the ones a
//! graceful server must still answer.
//!
//! ```text
//! timeline:
//!   2.7 ms  ready; client 1 starts
//!   … client 1: 397 connections, 397 sent, 396 complete 201
//!   54.6 ms  SIGTERM (strike 1) to pid 4242 (http-service); in flight: client 1 #398
//!   … client 1: 1 complete 201, 1099 refused
//!   58.3 ms  main process exit 0
//! ```
//!
//! A pure function of the outcome: the phases are bounded by the moments, so a history of
//! thousands of requests is a handful of lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::history::RequestRecord;
use crate::outcome::Outcome;
use crate::units::ms;

/// At most this many ranges of ids are listed as in flight; the rest are counted.
const IN_FLIGHT_SHOWN: usize = 8;

/// The timeline's lines, or none for a case that is not a server's (no `ready`, no
/// client).
pub fn server_timeline(outcome: &Outcome) -> Vec<String> {
    if outcome.ready_at.is_none() && outcome.clients.is_empty() {
        return Vec::new();
    }
    let first_stop = outcome.first_stop().map(|(_, at)| at);
    let mut moments: Vec<(Duration, String)> = Vec::new();
    if let Some(at) = outcome.ready_at {
        moments.push((at, "ready".into()));
    }
    for (i, client) in outcome.clients.iter().enumerate() {
        moments.push((client.started_at, format!("client {} starts", i + 1)));
        if let Some(at) = client.ended_at {
            let how = match (&client.history, client.status, client.cut_off) {
                (_, _, true) => "is cut off".to_string(),
                (Some(_), _, false) => "ends".to_string(),
                (None, Some(status), false) => format!("ends: {status}"),
                (None, None, false) => "ends".to_string(),
            };
            moments.push((at, format!("client {} {how}", i + 1)));
        }
    }
    for (i, strike) in outcome.strikes.iter().enumerate() {
        let Some(at) = strike.sent_at else { continue };
        let mut said = format!("{} (strike {})", strike.signal, i + 1);
        if let Some(struck) = &strike.struck {
            let _ = write!(said, " to pid {} ({})", struck.pid, struck.program);
        }
        moments.push((at, said));
    }
    if let Some(stop) = &outcome.stop {
        moments.push((stop.sent_at, format!("stop: {}", stop.signal)));
    }
    let exit = match &outcome.killed {
        Some(kill) => format!(
            "main process {} (from killpoint: {})",
            outcome.status,
            kill.reason.describe()
        ),
        None => format!("main process {}", outcome.status),
    };
    moments.push((outcome.exited_at, exit));
    if let Some(at) = outcome.tree_gone_at
        && at > outcome.exited_at
    {
        moments.push((at, "the rest of the tree gone".into()));
    }
    // In time order; a stable sort keeps ready before the clients it starts.
    moments.sort_by_key(|(at, _)| *at);

    let mut lines = Vec::new();
    let mut from = None;
    let mut index = 0;
    while index < moments.len() {
        let at = moments[index].0;
        // Moments that read the same are one line.
        let mut said = Vec::new();
        while index < moments.len() && ms(moments[index].0) == ms(at) {
            said.push(moments[index].1.clone());
            index += 1;
        }
        if let Some(phase) = phase(outcome, from, at) {
            lines.push(phase);
        }
        let mut line = format!("{}  {}", ms(at), said.join("; "));
        if first_stop == Some(at) {
            let _ = write!(line, "; in flight: {}", in_flight(outcome, at));
        }
        lines.push(line);
        from = Some(at);
    }
    if let Some(phase) = phase(outcome, from, Duration::MAX) {
        lines.push(phase);
    }
    lines
}

/// What the built-in clients' requests did after `from` (exclusive; `None`: from the
/// start) up to `to` (inclusive), or `None` if nothing.
fn phase(outcome: &Outcome, from: Option<Duration>, to: Duration) -> Option<String> {
    let within = |t: Option<Duration>| t.is_some_and(|t| from.is_none_or(|f| t > f) && t <= to);
    let mut said = Vec::new();
    for (i, client) in outcome.clients.iter().enumerate() {
        let Some(history) = &client.history else {
            continue;
        };
        let (mut connections, mut sent) = (0, 0);
        let mut ended: BTreeMap<String, u32> = BTreeMap::new();
        for r in &history.requests {
            if !r.reused && within(r.connect_at) {
                connections += 1;
            }
            if within(r.sent_at) {
                sent += 1;
            }
            if within(r.ended_at()) {
                *ended.entry(end_kind(r)).or_insert(0) += 1;
            }
        }
        let mut counts = Vec::new();
        if connections > 0 {
            counts.push(plural(connections, "connection"));
        }
        if sent > 0 {
            counts.push(format!("{sent} sent"));
        }
        counts.extend(ended.into_iter().map(|(kind, n)| format!("{n} {kind}")));
        if !counts.is_empty() {
            said.push(format!("client {}: {}", i + 1, counts.join(", ")));
        }
    }
    (!said.is_empty()).then(|| format!("… {}", said.join("; ")))
}

/// How a request ended, as [`crate::history::History::tally`] counts it.
fn end_kind(r: &RequestRecord) -> String {
    match (&r.error, r.status) {
        (Some(e), _) => e.kind().to_string(),
        (None, Some(status)) => format!("complete {status}"),
        (None, None) => "complete".to_string(),
    }
}

/// The built-in clients' requests sent by `at` and not ended then: `client 1 #398,
/// client 2 #1-#3`, or `none`.
fn in_flight(outcome: &Outcome, at: Duration) -> String {
    let mut ranges: Vec<String> = Vec::new();
    let mut total = 0;
    for (i, client) in outcome.clients.iter().enumerate() {
        let Some(history) = &client.history else {
            continue;
        };
        let ids: Vec<u32> = history
            .requests
            .iter()
            .filter(|r| r.sent_at.is_some_and(|s| s <= at) && r.ended_at().is_none_or(|e| e > at))
            .map(|r| r.id)
            .collect();
        total += ids.len();
        let mut spans: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            match spans.last_mut() {
                Some((_, last)) if *last + 1 == id => *last = id,
                _ => spans.push((id, id)),
            }
        }
        let spans: Vec<String> = spans
            .into_iter()
            .map(|(a, b)| {
                if a == b {
                    format!("#{a}")
                } else {
                    format!("#{a}-#{b}")
                }
            })
            .collect();
        if !spans.is_empty() {
            ranges.push(format!("client {} {}", i + 1, spans.join(" ")));
        }
    }
    if ranges.is_empty() {
        return "none".into();
    }
    let shown = ranges.len().min(IN_FLIGHT_SHOWN);
    let mut text = ranges[..shown].join(", ");
    if shown < ranges.len() {
        let _ = write!(text, ", … ({total} requests in all)");
    }
    text
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ClientError, History, HistoryEnd};
    use crate::invariants::testing::clean_outcome;
    use crate::outcome::{ClientRecord, StopRecord};
    use crate::values::Signal;

    fn at(ms: u64) -> Option<Duration> {
        Some(Duration::from_millis(ms))
    }

    fn request(
        id: u32,
        connect: u64,
        sent: u64,
        end: u64,
        error: Option<ClientError>,
    ) -> RequestRecord {
        RequestRecord {
            connect_at: at(connect),
            sent_at: at(sent),
            completed_at: error.is_none().then(|| Duration::from_millis(end)),
            failed_at: error.is_some().then(|| Duration::from_millis(end)),
            status: error.is_none().then_some(201),
            error,
            ..RequestRecord::started(id, id, Duration::from_millis(connect))
        }
    }

    fn server_outcome() -> Outcome {
        let history = History {
            label: "POST /items".into(),
            planned: 5,
            requests: vec![
                request(1, 11, 12, 20, None),
                request(2, 21, 22, 30, None),
                // In flight at the stop (40 ms), answered after it.
                request(3, 31, 32, 45, None),
                request(4, 33, 34, 46, Some(ClientError::Reset)),
                // After the listener closed.
                request(5, 0, 0, 47, Some(ClientError::Refused)),
            ],
            connections: 5,
            end: HistoryEnd::Finished,
            ended_at: Duration::from_millis(48),
            error: None,
        };
        let mut history = history;
        history.requests[4].connect_at = None;
        history.requests[4].sent_at = None;
        Outcome {
            ready_at: at(10),
            stop: Some(StopRecord {
                signal: Signal::SIGTERM,
                sent_at: Duration::from_millis(40),
            }),
            clients: vec![ClientRecord {
                command: "http POST /items".into(),
                started_at: Duration::from_millis(10),
                ended_at: at(48),
                status: None,
                cut_off: false,
                error: None,
                stdout: Default::default(),
                stderr: Default::default(),
                history: Some(history),
            }],
            exited_at: Duration::from_millis(50),
            tree_gone_at: at(50),
            outputs: Vec::new(),
            ..clean_outcome()
        }
    }

    #[test]
    fn a_server_case_reads_as_its_moments_and_what_the_requests_did_between_them() {
        assert_eq!(
            server_timeline(&server_outcome()),
            [
                "10.0 ms  ready; client 1 starts",
                "… client 1: 4 connections, 4 sent, 2 complete 201",
                "40.0 ms  stop: SIGTERM; in flight: client 1 #3-#4",
                "… client 1: 1 complete 201, 1 refused, 1 reset",
                "48.0 ms  client 1 ends",
                "50.0 ms  main process exit 0",
            ]
        );
    }

    #[test]
    fn a_case_that_is_not_a_server_has_no_timeline() {
        assert!(server_timeline(&clean_outcome()).is_empty());
    }
}
