//! A built-in client's history: one record per request it started, each stamped on the
//! case's clock, as plain data; the queries invariants ask of it and the lines a report
//! shows. `os::load` records it; nothing here touches the OS.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::ms;

/// What a built-in client did in one case. Times are on the case's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// What its requests are called in a report: `POST /items`, `tcp 8080`.
    pub label: String,
    /// How many requests the spec asked for; `requests` has fewer when the client was
    /// stopped first.
    pub planned: u32,
    /// The requests started, by id (`requests[i].id == i + 1`).
    pub requests: Vec<RequestRecord>,
    /// How many connections it opened (attempts included).
    pub connections: u32,
    /// How it ended, and when.
    pub end: HistoryEnd,
    #[serde(with = "crate::units::millis")]
    pub ended_at: Duration,
    /// Why it could not run, when it [`HistoryEnd::Failed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a client's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEnd {
    /// Every planned request ended, one way or another.
    Finished,
    /// The harness stopped it (the case ended); requests in flight are
    /// [`ClientError::Stopped`].
    Stopped,
    /// Its deadline came first; requests in flight are [`ClientError::Stopped`].
    Deadline,
    /// It could not run at all (no runtime, a url that was changed to a refused one):
    /// [`History::error`] says why.
    Failed,
}

/// One request: when each of its steps happened, what came back, or how it failed.
///
/// Exactly one of `completed_at` and `failed_at` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// 1-based, in the order requests were started.
    pub id: u32,
    /// Which connection it used, 1-based in the order they were opened.
    pub connection: u32,
    /// Whether that connection had carried an earlier request (keep-alive): then
    /// `connect_at` is when it was opened for that one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
    /// When its worker took it up: connecting, or sending on a kept connection.
    #[serde(with = "crate::units::millis")]
    pub started_at: Duration,
    /// When its connection was established (the kernel completed the handshake: the
    /// server's listen queue took it, whether or not it had called accept). `None`: it
    /// never was.
    #[serde(with = "crate::units::opt_millis")]
    pub connect_at: Option<Duration>,
    /// When its last byte was written to the socket.
    #[serde(with = "crate::units::opt_millis")]
    pub sent_at: Option<Duration>,
    /// When the first byte of the response was read from the socket.
    #[serde(with = "crate::units::opt_millis")]
    pub first_byte_at: Option<Duration>,
    /// When the response was complete: its whole body read (HTTP), or the server closed
    /// the connection (TCP).
    #[serde(with = "crate::units::opt_millis")]
    pub completed_at: Option<Duration>,
    /// When it failed.
    #[serde(with = "crate::units::opt_millis")]
    pub failed_at: Option<Duration>,
    /// The response's status (HTTP, once its head was read).
    pub status: Option<u16>,
    /// Body bytes read (HTTP), or every byte read (TCP).
    pub response_bytes: u64,
    /// The body's length, as its head said (Content-Length).
    pub expected_bytes: Option<u64>,
    /// The response headers named in the spec's `capture`, as written there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captured: BTreeMap<String, String>,
    /// The first [`BODY_KEPT`] bytes of the response body (HTTP) or of everything read
    /// (TCP), as text, when the client keeps them (acknowledgements read from bodies).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    pub error: Option<ClientError>,
}

/// How much of each response a client that keeps bodies keeps.
pub const BODY_KEPT: usize = 4096;

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientError {
    /// Nothing listened: the connection was refused (ECONNREFUSED).
    Refused,
    /// The server reset the connection (ECONNRESET; EPIPE, ECONNABORTED while sending).
    Reset,
    /// The server closed the connection before the response was complete: before its
    /// head (`status` is `None`; `got` 0) or its body (`got` of `expected` bytes; `None`:
    /// chunked).
    EofMidResponse { got: u64, expected: Option<u64> },
    /// The spec's `timeout` passed first.
    Timeout,
    /// The harness stopped the client while the request was in flight.
    Stopped,
    /// Anything else, as the client said it.
    Other(String),
}

impl ClientError {
    /// A short name, for counting: `refused`, `reset`, `eof`, `timeout`, `stopped`,
    /// `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Refused => "refused",
            ClientError::Reset => "reset",
            ClientError::EofMidResponse { .. } => "eof",
            ClientError::Timeout => "timeout",
            ClientError::Stopped => "stopped",
            ClientError::Other(_) => "other",
        }
    }
}

impl RequestRecord {
    /// A request just started on `connection`.
    pub fn started(id: u32, connection: u32, started_at: Duration) -> RequestRecord {
        RequestRecord {
            id,
            connection,
            reused: false,
            started_at,
            connect_at: None,
            sent_at: None,
            first_byte_at: None,
            completed_at: None,
            failed_at: None,
            status: None,
            response_bytes: 0,
            expected_bytes: None,
            captured: BTreeMap::new(),
            body: String::new(),
            error: None,
        }
    }

    /// Whether it completed: the whole response read, no error.
    pub fn is_complete(&self) -> bool {
        self.completed_at.is_some() && self.error.is_none()
    }

    /// When it ended, completed or failed.
    pub fn ended_at(&self) -> Option<Duration> {
        self.completed_at.or(self.failed_at)
    }

    /// Whether its connection was established by `t` (the server's kernel had taken it).
    pub fn connected_by(&self, t: Duration) -> bool {
        self.connect_at.is_some_and(|c| c <= t)
    }

    /// Whether it was in flight at `t`: started, not yet ended.
    pub fn in_flight_at(&self, t: Duration) -> bool {
        self.started_at <= t && self.ended_at().is_none_or(|end| end > t)
    }

    /// One line for a report, its requests called `label`:
    /// `#17 POST /items: connected 12.3 ms, sent 12.4 ms, first byte 15.0 ms, 201 complete (4 bytes) at 15.1 ms`.
    pub fn render(&self, label: &str) -> String {
        let mut line = format!("#{} {label}: ", self.id);
        let mut steps = Vec::new();
        match self.connect_at {
            Some(at) if self.reused => steps.push(format!(
                "reused connection {} (connected {})",
                self.connection,
                ms(at)
            )),
            Some(at) => steps.push(format!("connected {}", ms(at))),
            None => {}
        }
        if let Some(at) = self.sent_at {
            steps.push(format!("sent {}", ms(at)));
        }
        if let Some(at) = self.first_byte_at {
            steps.push(format!("first byte {}", ms(at)));
        }
        let of = |expected: Option<u64>| match expected {
            Some(n) => n.to_string(),
            None => "?".into(),
        };
        let status = self.status.map(|s| format!("{s} ")).unwrap_or_default();
        let end = match (&self.error, self.completed_at, self.failed_at) {
            (None, Some(at), _) => {
                let bytes = if self.response_bytes == 1 {
                    "1 byte".to_string()
                } else {
                    format!("{} bytes", self.response_bytes)
                };
                format!("{status}complete ({bytes}) at {}", ms(at))
            }
            (Some(error), _, at) => {
                let at = at.map(|at| format!(" at {}", ms(at))).unwrap_or_default();
                match error {
                    ClientError::Refused => format!("refused{at}"),
                    ClientError::Reset => format!(
                        "{status}reset after {} of {} bytes{at}",
                        self.response_bytes,
                        of(self.expected_bytes)
                    ),
                    ClientError::EofMidResponse { got, expected } if self.status.is_some() => {
                        format!("{status}closed after {got} of {} bytes{at}", of(*expected))
                    }
                    ClientError::EofMidResponse { .. } => {
                        format!("closed before the response head{at}")
                    }
                    ClientError::Timeout => format!(
                        "{status}timed out after {} of {} bytes{at}",
                        self.response_bytes,
                        of(self.expected_bytes)
                    ),
                    ClientError::Stopped => format!(
                        "{status}stopped in flight after {} of {} bytes{at}",
                        self.response_bytes,
                        of(self.expected_bytes)
                    ),
                    ClientError::Other(message) => format!("{status}failed{at}: {message}"),
                }
            }
            (None, None, _) => "unfinished".to_string(),
        };
        steps.push(end);
        line.push_str(&steps.join(", "));
        for (name, value) in &self.captured {
            let _ = write!(line, " [{name}: {value}]");
        }
        line
    }
}

impl History {
    /// The history of a client that could not run: no request, `why`.
    pub fn could_not_run(label: String, planned: u32, why: String) -> History {
        History {
            label,
            planned,
            requests: Vec::new(),
            connections: 0,
            end: HistoryEnd::Failed,
            ended_at: Duration::ZERO,
            error: Some(why),
        }
    }

    /// The record of request `id`.
    pub fn get(&self, id: u32) -> Option<&RequestRecord> {
        self.requests.get(id.checked_sub(1)? as usize)
    }

    /// The requests whose connection was established by `t`: those a server that was
    /// listening then had taken from its queue or held in it.
    pub fn connected_by(&self, t: Duration) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(move |r| r.connected_by(t))
    }

    /// The requests whose last byte was sent by `t`.
    pub fn sent_by(&self, t: Duration) -> impl Iterator<Item = &RequestRecord> {
        self.requests
            .iter()
            .filter(move |r| r.sent_at.is_some_and(|s| s <= t))
    }

    /// The requests that completed: the whole response read.
    pub fn completed(&self) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(|r| r.is_complete())
    }

    /// The requests that completed with `status`.
    pub fn with_status(&self, status: u16) -> impl Iterator<Item = &RequestRecord> {
        self.completed().filter(move |r| r.status == Some(status))
    }

    /// The requests that failed, with how.
    pub fn failed(&self) -> impl Iterator<Item = (&RequestRecord, &ClientError)> {
        self.requests
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| (r, e)))
    }

    /// The requests in flight at `t`: started, not yet ended.
    pub fn in_flight_at(&self, t: Duration) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(move |r| r.in_flight_at(t))
    }

    /// The values captured of header `name` (as `capture` writes it), by request id.
    pub fn captured(&self, name: &str) -> impl Iterator<Item = (u32, &str)> {
        self.requests
            .iter()
            .filter_map(move |r| r.captured.get(name).map(|v| (r.id, v.as_str())))
    }

    /// How many requests ended each way: `complete 200`, `complete`, `refused`, … (the
    /// status is part of a completed request's key; TCP ones have none).
    pub fn tally(&self) -> BTreeMap<String, u32> {
        let mut tally = BTreeMap::new();
        for r in &self.requests {
            let key = match (&r.error, r.status) {
                (Some(e), _) => e.kind().to_string(),
                (None, Some(s)) => format!("complete {s}"),
                (None, None) => "complete".to_string(),
            };
            *tally.entry(key).or_insert(0) += 1;
        }
        tally
    }

    /// One line for a report: `POST /items: 200 of 200 requests on 8 connections, finished at 81.0 ms: 195 complete 201, 5 reset`.
    pub fn summary(&self) -> String {
        let end = match self.end {
            HistoryEnd::Finished => "finished",
            HistoryEnd::Stopped => "stopped",
            HistoryEnd::Deadline => "past its deadline",
            HistoryEnd::Failed => "failed",
        };
        let tally: Vec<String> = self
            .tally()
            .into_iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let connections = if self.connections == 1 {
            "1 connection".to_string()
        } else {
            format!("{} connections", self.connections)
        };
        let mut line = format!(
            "{}: {} of {} requests on {connections}, {end} at {}",
            self.label,
            self.requests.len(),
            self.planned,
            ms(self.ended_at)
        );
        if !tally.is_empty() {
            line.push_str(": ");
            line.push_str(&tally.join(", "));
        }
        if let Some(why) = &self.error {
            let _ = write!(line, ": {why}");
        }
        line
    }

    /// Every request's line, in id order.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.requests.iter().map(|r| r.render(&self.label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(ms / 1000.0))
    }

    fn complete() -> RequestRecord {
        RequestRecord {
            connect_at: at(12.3),
            sent_at: at(12.4),
            first_byte_at: at(15.0),
            completed_at: at(15.1),
            status: Some(201),
            response_bytes: 4,
            expected_bytes: Some(4),
            ..RequestRecord::started(17, 3, Duration::from_millis(12))
        }
    }

    fn reset() -> RequestRecord {
        RequestRecord {
            connect_at: at(20.1),
            sent_at: at(20.2),
            failed_at: at(30.2),
            error: Some(ClientError::Reset),
            ..RequestRecord::started(18, 4, Duration::from_millis(20))
        }
    }

    fn history() -> History {
        let mut first = complete();
        first.id = 1;
        first.captured.insert("X-Id".into(), "a1".into());
        let mut second = reset();
        second.id = 2;
        let third = RequestRecord {
            failed_at: at(40.0),
            error: Some(ClientError::Refused),
            ..RequestRecord::started(3, 5, Duration::from_millis(40))
        };
        History {
            label: "POST /items".into(),
            planned: 4,
            requests: vec![first, second, third],
            connections: 5,
            end: HistoryEnd::Stopped,
            ended_at: Duration::from_millis(41),
            error: None,
        }
    }

    #[test]
    fn a_record_renders_its_steps_and_its_end() {
        assert_eq!(
            complete().render("POST /items"),
            "#17 POST /items: connected 12.3 ms, sent 12.4 ms, first byte 15.0 ms, 201 complete (4 bytes) at 15.1 ms"
        );
        assert_eq!(
            reset().render("POST /items"),
            "#18 POST /items: connected 20.1 ms, sent 20.2 ms, reset after 0 of ? bytes at 30.2 ms"
        );
        let eof = RequestRecord {
            error: Some(ClientError::EofMidResponse {
                got: 10,
                expected: Some(100),
            }),
            status: Some(200),
            response_bytes: 10,
            expected_bytes: Some(100),
            first_byte_at: at(25.0),
            reused: true,
            ..reset()
        };
        assert_eq!(
            eof.render("GET /"),
            "#18 GET /: reused connection 4 (connected 20.1 ms), sent 20.2 ms, first byte 25.0 ms, 200 closed after 10 of 100 bytes at 30.2 ms"
        );
        let before_head = RequestRecord {
            error: Some(ClientError::EofMidResponse {
                got: 0,
                expected: None,
            }),
            ..reset()
        };
        assert_eq!(
            before_head.render("GET /"),
            "#18 GET /: connected 20.1 ms, sent 20.2 ms, closed before the response head at 30.2 ms"
        );
        let timeout = RequestRecord {
            error: Some(ClientError::Timeout),
            ..reset()
        };
        assert_eq!(
            timeout.render("GET /"),
            "#18 GET /: connected 20.1 ms, sent 20.2 ms, timed out after 0 of ? bytes at 30.2 ms"
        );
        let mut captured = complete();
        captured.captured.insert("X-Id".into(), "17".into());
        assert!(captured.render("GET /").ends_with("at 15.1 ms [X-Id: 17]"));
        assert_eq!(
            history().get(3).unwrap().render("GET /"),
            "#3 GET /: refused at 40.0 ms"
        );
    }

    #[test]
    fn a_history_answers_by_time_and_by_end() {
        let h = history();
        let ids = |it: &mut dyn Iterator<Item = &RequestRecord>| -> Vec<u32> {
            it.map(|r| r.id).collect()
        };
        assert_eq!(ids(&mut h.connected_by(Duration::from_millis(13))), [1]);
        assert_eq!(ids(&mut h.connected_by(Duration::from_millis(50))), [1, 2]);
        assert_eq!(ids(&mut h.sent_by(Duration::from_millis(21))), [1, 2]);
        assert_eq!(ids(&mut h.completed()), [1]);
        assert_eq!(ids(&mut h.with_status(201)), [1]);
        assert_eq!(ids(&mut h.with_status(200)), Vec::<u32>::new());
        assert_eq!(ids(&mut h.in_flight_at(Duration::from_millis(25))), [2]);
        assert_eq!(
            h.failed()
                .map(|(r, e)| (r.id, e.kind()))
                .collect::<Vec<_>>(),
            [(2, "reset"), (3, "refused")]
        );
        assert_eq!(h.captured("X-Id").collect::<Vec<_>>(), [(1, "a1")]);
        assert_eq!(h.get(0), None);
        assert_eq!(h.get(2).unwrap().id, 2);
        assert_eq!(
            h.summary(),
            "POST /items: 3 of 4 requests on 5 connections, stopped at 41.0 ms: 1 complete 201, 1 refused, 1 reset"
        );
        assert_eq!(h.lines().count(), 3);
    }

    #[test]
    fn a_history_travels_as_json_in_milliseconds() {
        let h = history();
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["requests"][0]["connect_at"], 12.3);
        assert_eq!(json["requests"][0]["captured"]["X-Id"], "a1");
        assert_eq!(json["requests"][1]["error"], "reset");
        assert_eq!(
            json["requests"][1]["first_byte_at"],
            serde_json::Value::Null
        );
        assert_eq!(json["end"], "stopped");
        let eof = ClientError::EofMidResponse {
            got: 1,
            expected: None,
        };
        assert_eq!(
            serde_json::to_value(&eof).unwrap(),
            serde_json::json!({"eof_mid_response": {"got": 1, "expected": null}})
        );
        let back: History = serde_json::from_value(json).unwrap();
        assert_eq!(back.requests[1], h.requests[1]);
        assert_eq!(back.tally(), h.tally());
    }
}
