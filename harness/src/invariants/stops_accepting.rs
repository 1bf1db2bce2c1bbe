//! `stops-accepting`: once asked to stop, the server takes no new connection later than
//! `accept_grace` after the signal: its listener closes, so a new connection is refused
//! (or, for a server that documents it, answered with 503).
//!
//! Read from the built-in clients' histories: a connection the client opened (a fresh
//! one, not a kept one) that the kernel completed after the stop and the grace means the
//! listener was still open. A connect the kernel completes goes into the listen queue
//! whether or not the server ever calls accept, so this also catches a server that stops
//! calling accept but leaves its socket listening, whose late clients hang and are reset.

use std::time::Duration;

use super::in_flight_completes::stop_moment;
use super::{Context, Verdict};
use crate::units::ms;

/// The default `accept_grace`: how long after the stop signal a connection may still be
/// taken (the signal reaches a handler, which closes the listener).
pub const DEFAULT_ACCEPT_GRACE: Duration = Duration::from_millis(100);

/// At most this many connections are quoted in the evidence.
const QUOTED: usize = 5;

pub fn check(ctx: &Context) -> Verdict {
    let Some((signal, stop_at)) = stop_moment(ctx.outcome) else {
        return Verdict::Held;
    };
    if !signal.is_catchable() {
        return Verdict::Held;
    }
    let grace = ctx.expect.accept_grace.unwrap_or(DEFAULT_ACCEPT_GRACE);
    let bound = stop_at + grace;
    let mut late = Vec::new();
    for client in &ctx.outcome.clients {
        let Some(history) = &client.history else {
            continue;
        };
        for request in &history.requests {
            let fresh = !request.reused;
            let connected_late = request.connect_at.is_some_and(|at| at > bound);
            if fresh && connected_late && request.status != Some(503) {
                late.push(request.render(&history.label));
            }
        }
    }
    if late.is_empty() {
        return Verdict::Held;
    }
    let mut evidence = vec![format!(
        "{} new connection(s) were taken after {signal} reached it at {} and the accept grace of {} (the listener was still open):",
        late.len(),
        ms(stop_at),
        crate::values::format_duration(grace)
    )];
    let more = late.len().saturating_sub(QUOTED);
    evidence.extend(late.into_iter().take(QUOTED));
    if more > 0 {
        evidence.push(format!("… and {more} more"));
    }
    Verdict::violated(evidence)
}
