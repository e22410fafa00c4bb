//! `GET /v1/capture` and `GET /v1/capture/last`: a packet capture streamed as a pcap file.
//!
//! The request's filter and bounds are checked (400 naming the parameter), the rule named must
//! be in the active set (400), and one capture runs at a time (409 while one runs). The
//! capture is armed on every worker (`capture::Tap`) and the answer's head is sent only once
//! every worker copies for it, so a client that has the head knows the capture runs. The body
//! is the pcap file, in chunks as the rings are drained (every [`DRAIN_EVERY`]). It ends at
//! the count, at the seconds, or when the client goes away (noticed at the next write); the
//! outcome, with the copies missed because a worker's ring was full, is kept for `GET
//! /v1/capture/last` before the body's last chunk leaves. Everything here runs on the API
//! thread; the workers only copy.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::plane::ApiState;
use crate::capture::ring::DEFAULT_SLOTS;
use crate::capture::stream::{self, Clock};
use crate::capture::{Request, Session};
use crate::dpdk::cycles;
use crate::worker::Workers;

/// How often the rings are drained: with [`DEFAULT_SLOTS`] slots a worker can copy about
/// 500 000 packets a second before copies are missed.
pub const DRAIN_EVERY: Duration = Duration::from_millis(2);
/// How long the workers have to take a capture up or let it go (they do within a loop).
const ADOPT_WAIT: Duration = Duration::from_secs(1);
/// The answer's media type.
pub const PCAP_TYPE: &str = "application/vnd.tcpdump.pcap";
/// The answer's header carrying the capture's id (the one `/v1/capture/last` reports).
pub const ID_HEADER: &str = "x-capture-id";

/// The captures of one control plane: one at a time, and the outcome of the last.
#[derive(Default)]
pub struct Captures {
    running: AtomicBool,
    last_id: AtomicU64,
    last: Mutex<Option<Outcome>>,
}

/// How a capture went (`GET /v1/capture/last`).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub id: u64,
    pub rule: Option<String>,
    pub verdict: Option<&'static str>,
    pub source: Option<String>,
    pub count: Option<u64>,
    pub seconds: Option<f64>,
    /// Packets written to the pcap stream.
    pub captured: u64,
    /// Packets the filter kept that found their worker's ring full: not in the file.
    pub missed: u64,
    /// Why it ended: "count", "seconds" or "client gone".
    pub ended: &'static str,
    pub duration_s: f64,
}

fn error(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Response {
    let body = match field {
        Some(f) => json!({ "error": message.into(), "field": f }),
        None => json!({ "error": message.into() }),
    };
    (status, Json(body)).into_response()
}

/// `GET /v1/capture?rule=NAME&verdict=DROP&source=CIDR&count=N&seconds=S`.
pub async fn start(State(api): State<Arc<ApiState>>, Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let request = match Request::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(&e.field), e.to_string()),
    };
    if let Some(name) = &request.filter.rule {
        let known = api.store.lock().await.active.rules.rules().iter().any(|r| r.name == *name);
        if !known {
            return error(
                StatusCode::BAD_REQUEST,
                Some("rule"),
                format!("rule: no rule named {name:?} in the active set"),
            );
        }
    }
    let captures = &api.captures;
    if captures.running.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return error(
            StatusCode::CONFLICT,
            None,
            format!("capture {} is running; one capture at a time", captures.last_id.load(Ordering::Acquire)),
        );
    }
    let id = captures.last_id.fetch_add(1, Ordering::AcqRel) + 1;
    let taps = api.workers.lcores().len();
    let sessions: Vec<Arc<Session>> =
        (0..taps).map(|_| Arc::new(Session::new(id, request.filter.clone(), DEFAULT_SLOTS, request.count))).collect();
    let clock = Clock::now(cycles::tsc(), cycles::tsc_hz());
    for (k, s) in sessions.iter().enumerate() {
        if let Some(m) = api.workers.mailbox(k) {
            m.capture().arm(s.clone());
        }
    }
    let started = Instant::now();
    if !adopted(&api.workers, |a| a == id).await {
        disarm(&api.workers);
        let _ = adopted(&api.workers, |a| a != id).await;
        captures.running.store(false, Ordering::Release);
        return error(StatusCode::SERVICE_UNAVAILABLE, None, "the workers did not take the capture up within 1 s");
    }
    let run = Run {
        api: api.clone(),
        id,
        deadline: request.seconds.map(|s| started + Duration::from_secs_f64(s)),
        request,
        sessions,
        clock,
        started,
        written: 0,
        header_sent: false,
        finished: false,
    };
    let body = futures_util::stream::unfold(run, |mut run| async move {
        run.next_chunk().await.map(|chunk| (Ok::<Bytes, Infallible>(Bytes::from(chunk)), run))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PCAP_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(ID_HEADER, HeaderValue::from(id));
    response
}

/// `GET /v1/capture/last`: how the last capture that ended went (404 before the first).
pub async fn last(State(api): State<Arc<ApiState>>) -> Response {
    let last = api.captures.last.lock().map(|l| l.clone()).unwrap_or_else(|e| e.into_inner().clone());
    match last {
        Some(o) => Json(o).into_response(),
        None => error(StatusCode::NOT_FOUND, None, "no capture has ended yet"),
    }
}

/// Waits until what every worker has taken up satisfies `done` (at most [`ADOPT_WAIT`]).
async fn adopted(workers: &Workers, done: impl Fn(u64) -> bool) -> bool {
    let deadline = Instant::now() + ADOPT_WAIT;
    loop {
        let all = (0..workers.lcores().len()).all(|k| workers.mailbox(k).is_none_or(|m| done(m.capture().adopted())));
        if all {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn disarm(workers: &Workers) {
    for k in 0..workers.lcores().len() {
        if let Some(m) = workers.mailbox(k) {
            m.capture().disarm();
        }
    }
}

/// A capture streaming.
struct Run {
    api: Arc<ApiState>,
    id: u64,
    request: Request,
    /// One per worker; held here until every worker has let go of its own.
    sessions: Vec<Arc<Session>>,
    clock: Clock,
    started: Instant,
    deadline: Option<Instant>,
    written: u64,
    header_sent: bool,
    finished: bool,
}

impl Run {
    /// The next piece of the file: the header first, then records as they come; `None` at
    /// the end (the outcome kept by then).
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if !self.header_sent {
            self.header_sent = true;
            return Some(stream::header());
        }
        if self.finished {
            return None;
        }
        loop {
            let mut out = Vec::new();
            self.drain_into(&mut out);
            let full = self.request.count.is_some_and(|c| self.written >= c);
            let late = self.deadline.is_some_and(|d| Instant::now() >= d);
            if full || late {
                self.finish().await;
                // What the workers copied before they let go.
                self.drain_into(&mut out);
                self.keep_outcome(if full { "count" } else { "seconds" });
                return (!out.is_empty()).then_some(out);
            }
            if !out.is_empty() {
                return Some(out);
            }
            tokio::time::sleep(DRAIN_EVERY).await;
        }
    }

    /// Writes what the rings hold, up to the count.
    fn drain_into(&mut self, out: &mut Vec<u8>) {
        let limit = self.request.count.unwrap_or(u64::MAX);
        for s in &self.sessions {
            if self.written >= limit {
                return;
            }
            let (written, clock) = (&mut self.written, &self.clock);
            s.ring.drain(|record| {
                if *written >= limit {
                    return false;
                }
                stream::write_record(out, clock, record);
                *written += 1;
                *written < limit
            });
        }
    }

    /// Disarms the workers and waits until they let go of their sessions.
    async fn finish(&mut self) {
        self.finished = true;
        disarm(&self.api.workers);
        let id = self.id;
        if !adopted(&self.api.workers, |a| a != id).await {
            eprintln!("control: capture {id}: a worker did not let go of it within 1 s");
        }
    }

    /// Keeps the outcome for `/v1/capture/last` and lets the next capture start.
    fn keep_outcome(&self, ended: &'static str) {
        let f = &self.request.filter;
        let outcome = Outcome {
            id: self.id,
            rule: f.rule.clone(),
            verdict: f.verdict.map(|a| a.as_str()),
            source: f.source.map(|s| s.to_string()),
            count: self.request.count,
            seconds: self.request.seconds,
            captured: self.written,
            missed: self.sessions.iter().map(|s| s.ring.missed()).sum(),
            ended,
            duration_s: self.started.elapsed().as_secs_f64(),
        };
        let captures = &self.api.captures;
        *captures.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        captures.running.store(false, Ordering::Release);
    }
}

impl Drop for Run {
    /// The client went away before the end: the capture stops here. The sessions are freed
    /// once the workers let go of them (on the API thread, never on a worker).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        disarm(&self.api.workers);
        self.keep_outcome("client gone");
        let (workers, sessions, id) = (self.api.workers.clone(), std::mem::take(&mut self.sessions), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = adopted(&workers, |a| a != id).await;
                drop(sessions);
            });
        }
    }
}
