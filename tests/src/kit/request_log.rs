//! The log of every request the kit's listeners received, with arrival and answer order,
//! and the global latency fault.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Shared;
use crate::faults::lock;

/// One request of the log: `METHOD /path`, and its arrival and answer as positions on one
/// event counter shared by every listener (so which requests had been answered when another
/// arrived is exact, whatever the machine's load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpan {
    pub request: String,
    pub arrived: u64,
    /// `None` while the request is being answered.
    pub answered: Option<u64>,
}

/// The number of sequential round trips among `spans`: the longest chain of requests each
/// sent after the previous one was answered. Requests sent together (each arrived before
/// the others were answered) count once. With a latency fault holding every answer, two
/// requests a client sends concurrently always overlap, so the count is that of the client.
pub fn sequential_round_trips(spans: &[RequestSpan]) -> usize {
    let mut depth = vec![0usize; spans.len()];
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| spans[i].arrived);
    for &i in &order {
        let before = order
            .iter()
            .filter(|&&j| spans[j].answered.is_some_and(|a| a < spans[i].arrived))
            .map(|&j| depth[j])
            .max()
            .unwrap_or(0);
        depth[i] = before + 1;
    }
    depth.into_iter().max().unwrap_or(0)
}

/// Logs the request path and applies the global latency fault.
pub(super) async fn every_request(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let index = {
        let mut records = lock(&shared.records);
        let line = format!("{} {}", request.method(), request.uri().path());
        records.requests.push(line.clone());
        records.events += 1;
        let arrived = records.events;
        records.spans.push(RequestSpan {
            request: line,
            arrived,
            answered: None,
        });
        records.spans.len() - 1
    };
    if let Some(delay) = shared.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    let response =
        crate::hostile::around(&shared.faults, request, |request| next.run(request)).await;
    let mut records = lock(&shared.records);
    records.events += 1;
    let answered = records.events;
    if let Some(span) = records.spans.get_mut(index) {
        span.answered = Some(answered);
    }
    response
}
