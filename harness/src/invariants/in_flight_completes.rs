//! `in-flight-completes`: every request the server had taken when it was asked to stop
//! gets a complete response — not a reset, not a cut body, not silence.
//!
//! Read from the built-in clients' histories. The stop is the first catchable signal
//! that reached the target: a strike, or the scenario's `stop`; after SIGKILL nothing is
//! promised. A request counts as in flight when it was fully sent before the stop, had not
//! ended by then, and the server had taken it: its connection had already carried an
//! answered request (keep-alive), or the server sent some of its response. One that ended
//! before the stop, answered or not, says nothing about the shutdown. A request sent on a fresh
//! connection that got no byte back is not counted: the client cannot tell whether the
//! server had accepted the connection or it still sat in the listen queue, which a
//! server may drop as it closes its listener.

use super::{Context, Verdict};
use crate::history::RequestRecord;
use crate::outcome::Outcome;
use crate::units::ms;
use crate::values::Signal;

/// At most this many requests are quoted in the evidence.
const QUOTED: usize = 5;

pub fn check(ctx: &Context) -> Verdict {
    let Some((signal, stop_at)) = stop_moment(ctx.outcome) else {
        return Verdict::Held;
    };
    if !signal.is_catchable() {
        return Verdict::Held;
    }
    let mut cut = Vec::new();
    let mut in_flight = 0;
    for client in &ctx.outcome.clients {
        let Some(history) = &client.history else {
            continue;
        };
        for request in &history.requests {
            if !in_flight_at(request, stop_at) {
                continue;
            }
            in_flight += 1;
            if !request.is_complete() {
                cut.push(request.render(&history.label));
            }
        }
    }
    if cut.is_empty() {
        return Verdict::Held;
    }
    let mut evidence = vec![format!(
        "{} of the {in_flight} request(s) the server had taken and not yet answered when {signal} reached it at {} got no complete response:",
        cut.len(),
        ms(stop_at)
    )];
    let more = cut.len().saturating_sub(QUOTED);
    evidence.extend(cut.into_iter().take(QUOTED));
    if more > 0 {
        evidence.push(format!("… and {more} more"));
    }
    Verdict::violated(evidence)
}

/// The first signal that asked the target to stop, and when.
pub(crate) fn stop_moment(outcome: &Outcome) -> Option<(Signal, std::time::Duration)> {
    outcome.first_stop()
}

/// Whether `request` was in flight in the server at `stop_at`: fully sent by then, not
/// ended by then, and taken by the server (on a connection it had answered on, or it got
/// some of its response).
fn in_flight_at(request: &RequestRecord, stop_at: std::time::Duration) -> bool {
    let sent = request.sent_at.is_some_and(|at| at <= stop_at);
    let open = request.ended_at().is_none_or(|at| at > stop_at);
    sent && open && (request.reused || request.first_byte_at.is_some())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{ClientError, History, HistoryEnd};
    use crate::invariants::testing::*;
    use crate::outcome::{Capture, ClientRecord, StopRecord};

    fn request(
        id: u32,
        sent: u64,
        first: Option<u64>,
        end: Result<u64, ClientError>,
    ) -> RequestRecord {
        let at = |t: u64| Duration::from_millis(t);
        let mut r = RequestRecord::started(id, id, at(sent - 1));
        r.connect_at = Some(at(sent - 1));
        r.sent_at = Some(at(sent));
        r.first_byte_at = first.map(at);
        match end {
            Ok(t) => {
                r.completed_at = Some(at(t));
                r.status = Some(200);
                r.response_bytes = 1000;
                r.expected_bytes = Some(1000);
            }
            Err(e) => {
                r.failed_at = Some(at(sent + 150));
                r.status = first.map(|_| 200);
                r.error = Some(e);
            }
        }
        r
    }

    fn with_history(requests: Vec<RequestRecord>, stop_at: u64) -> crate::outcome::Outcome {
        let mut o = clean_outcome();
        o.stop = Some(StopRecord {
            signal: Signal::SIGTERM,
            sent_at: Duration::from_millis(stop_at),
        });
        o.clients = vec![ClientRecord {
            command: "http GET /slow".into(),
            started_at: Duration::ZERO,
            ended_at: Some(Duration::from_millis(900)),
            status: None,
            cut_off: false,
            error: None,
            stdout: Capture::default(),
            stderr: Capture::default(),
            history: Some(History {
                label: "GET /slow".into(),
                planned: requests.len() as u32,
                requests,
                connections: 3,
                end: HistoryEnd::Finished,
                ended_at: Duration::from_millis(900),
                error: None,
            }),
        }];
        o
    }

    fn judge(o: &crate::outcome::Outcome) -> Verdict {
        let (e, c, p) = (crate::expect::Expect::default(), census(b""), no_plan());
        check(&Context {
            expect: &e,
            census: &c,
            plan: &p,
            outcome: o,
        })
    }

    #[test]
    fn a_request_in_flight_at_the_stop_that_was_cut_is_quoted() {
        let o = with_history(
            vec![
                // Answered in full after the stop: held.
                request(1, 100, Some(150), Ok(400)),
                // Cut after its first bytes: broken.
                request(
                    2,
                    110,
                    Some(160),
                    Err(ClientError::EofMidResponse {
                        got: 100,
                        expected: Some(1000),
                    }),
                ),
                // Sent after the stop: not in flight.
                request(3, 300, None, Err(ClientError::Refused)),
                // Sent before, on a fresh connection, no byte back: not counted.
                request(4, 120, None, Err(ClientError::Reset)),
                // Answered before the stop: not in flight.
                request(5, 20, Some(30), Ok(40)),
            ],
            200,
        );
        let Verdict::Violated { evidence } = judge(&o) else {
            panic!("{:?}", judge(&o))
        };
        assert_eq!(
            evidence[0],
            "1 of the 2 request(s) the server had taken and not yet answered when SIGTERM reached it at 200.0 ms got no complete response:"
        );
        assert!(evidence[1].starts_with("#2 GET /slow: "), "{evidence:?}");
        assert_eq!(evidence.len(), 2);
    }

    #[test]
    fn every_request_in_flight_completed_holds_and_no_stop_promises_nothing() {
        let o = with_history(vec![request(1, 100, Some(150), Ok(400))], 200);
        assert_eq!(judge(&o), Verdict::Held);
        let mut o = with_history(
            vec![request(2, 110, Some(160), Err(ClientError::Reset))],
            200,
        );
        o.stop = None;
        assert_eq!(judge(&o), Verdict::Held, "nothing asked it to stop");
        // Reset before the stop came: not the shutdown's doing.
        let o = with_history(vec![request(3, 10, Some(20), Err(ClientError::Reset))], 200);
        assert_eq!(
            judge(&o),
            Verdict::Held,
            "it ended at 160 ms, before the stop"
        );
    }
}
