//! The delivery loop every logging sink shares: a bounded queue filled by the request path,
//! drained by one task per sink into batches (every flush interval, or as soon as a batch is
//! full), posted with bounded retries, and flushed on demand (shutdown, tests).
//!
//! The request path only calls [`SinkHandle::offer`]: a `try_send` into the queue (never
//! waits) and, when the queue holds a full batch, one wake-up of the task. A full queue drops
//! the event, counts it and warns at most every [`WARN_EVERY`].

use super::capture::CallbackEvent;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Events a sink's queue holds before new ones are dropped. Each event holds a call's messages
/// and response, so this bounds the memory a stalled destination can take (LiteLLM's queues
/// hold up to 50,000-100,000 events; ours drop earlier, on purpose).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Dropped-event warnings are logged at most this often (with the running count).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// One HTTP request a sink wants sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A destination: how events become its items, and a batch of items one request.
pub trait Sink: Send + Sync + 'static {
    type Item: Send + 'static;
    /// Its name in logs (`langfuse`, `generic_api`): never a URL or a credential.
    fn label(&self) -> &'static str;
    /// The item for one event, or `None` when this sink logs nothing for it.
    fn item(&self, ev: &CallbackEvent) -> Option<Self::Item>;
    /// The request that delivers `batch`.
    fn request(&self, batch: &[Self::Item]) -> Option<Outgoing>;
}

/// How a sink's task batches and retries.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub flush_every: Duration,
    pub batch_size: usize,
    pub timeout: Duration,
    /// Waits before each retry of a transient failure (transport error, 408, 429, 5xx).
    pub retry_delays: Vec<Duration>,
    /// Events the queue holds before new ones are dropped ([`QUEUE_CAPACITY`]).
    pub queue_capacity: usize,
}

/// What the request path and the shutdown hold of a sink.
pub struct SinkHandle {
    pub label: &'static str,
    pub success: bool,
    pub failure: bool,
    tx: mpsc::Sender<Arc<CallbackEvent>>,
    flush_tx: mpsc::Sender<oneshot::Sender<()>>,
    shared: Arc<Shared>,
    batch_size: usize,
}

struct Shared {
    wake: Notify,
    dropped: AtomicU64,
    /// Seconds since start-up of the last dropped-event warning (+1; 0: none yet).
    last_warn: AtomicU64,
    started: std::time::Instant,
}

impl SinkHandle {
    /// Starts the sink's task.
    pub fn start<S: Sink>(
        sink: S,
        http: reqwest::Client,
        delivery: Delivery,
        success: bool,
        failure: bool,
    ) -> Self {
        let (tx, rx) = mpsc::channel(delivery.queue_capacity.max(1));
        let (flush_tx, flush_rx) = mpsc::channel(4);
        let shared = Arc::new(Shared {
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
            started: std::time::Instant::now(),
        });
        let label = sink.label();
        let batch_size = delivery.batch_size.max(1);
        tokio::spawn(run(sink, http, delivery, rx, flush_rx, shared.clone()));
        Self {
            label,
            success,
            failure,
            tx,
            flush_tx,
            shared,
            batch_size,
        }
    }

    /// Queues an event without waiting; drops it (counted, warned) when the queue is full.
    pub fn offer(&self, ev: &Arc<CallbackEvent>) {
        match self.tx.try_send(ev.clone()) {
            Ok(()) => {
                let queued = self.tx.max_capacity() - self.tx.capacity();
                if queued == self.batch_size {
                    self.shared.wake.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.dropped_one(),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn dropped_one(&self) {
        let total = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.shared.started.elapsed().as_secs() + 1;
        let last = self.shared.last_warn.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_secs())
            && self
                .shared
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                callback = self.label,
                dropped_total = total,
                "logging callback queue is full; events are being dropped"
            );
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Sends everything queued so far; returns when done (or the task is gone).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.flush_tx.send(tx).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run<S: Sink>(
    sink: S,
    http: reqwest::Client,
    delivery: Delivery,
    mut rx: mpsc::Receiver<Arc<CallbackEvent>>,
    mut flush_rx: mpsc::Receiver<oneshot::Sender<()>>,
    shared: Arc<Shared>,
) {
    let batch = delivery.batch_size.max(1);
    loop {
        let (done, closing) = tokio::select! {
            _ = tokio::time::sleep(delivery.flush_every) => (None, false),
            _ = shared.wake.notified() => (None, false),
            f = flush_rx.recv() => match f {
                Some(done) => (Some(done), false),
                None => (None, true),
            },
        };
        loop {
            let mut items = Vec::new();
            while items.len() < batch {
                match rx.try_recv() {
                    Ok(ev) => items.extend(sink.item(&ev)),
                    Err(_) => break,
                }
            }
            if items.is_empty() {
                if rx.is_empty() {
                    break;
                }
                continue;
            }
            deliver(&sink, &http, &delivery, items).await;
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
        if closing {
            return;
        }
    }
}

enum Outcome {
    Delivered,
    Retry,
    TooLarge,
    Rejected(u16),
}

/// Sends a batch; a 413 splits it in halves (down to single items) as LiteLLM's exporters do.
async fn deliver<S: Sink>(sink: &S, http: &reqwest::Client, d: &Delivery, items: Vec<S::Item>) {
    let mut pending = vec![items];
    while let Some(mut batch) = pending.pop() {
        let Some(req) = sink.request(&batch) else {
            continue;
        };
        match send_with_retries(sink.label(), http, d, &req).await {
            Outcome::TooLarge if batch.len() > 1 => {
                let second = batch.split_off(batch.len() / 2);
                tracing::warn!(
                    callback = sink.label(),
                    "destination rejected a batch as too large; sending it in halves"
                );
                pending.push(second);
                pending.push(batch);
            }
            Outcome::TooLarge => tracing::error!(
                callback = sink.label(),
                "destination rejected a single event as too large; dropping it"
            ),
            Outcome::Rejected(status) => tracing::error!(
                callback = sink.label(),
                status,
                events = batch.len(),
                "destination rejected a batch of logging events; dropping it"
            ),
            Outcome::Retry => tracing::error!(
                callback = sink.label(),
                events = batch.len(),
                retries = d.retry_delays.len(),
                "could not deliver logging events after retries; dropping them"
            ),
            Outcome::Delivered => {}
        }
    }
}

async fn send_with_retries(
    label: &'static str,
    http: &reqwest::Client,
    d: &Delivery,
    req: &Outgoing,
) -> Outcome {
    let mut delays = d.retry_delays.iter();
    loop {
        let outcome = send_once(label, http, d.timeout, req).await;
        if !matches!(outcome, Outcome::Retry) {
            return outcome;
        }
        match delays.next() {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => return Outcome::Retry,
        }
    }
}

async fn send_once(
    label: &'static str,
    http: &reqwest::Client,
    timeout: Duration,
    req: &Outgoing,
) -> Outcome {
    let mut rb = http.post(&req.url).timeout(timeout).body(req.body.clone());
    for (k, v) in &req.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match status {
                200..=299 => Outcome::Delivered,
                413 => Outcome::TooLarge,
                408 | 429 | 500..=599 => {
                    tracing::warn!(
                        callback = label,
                        status,
                        "logging destination failed; will retry"
                    );
                    Outcome::Retry
                }
                _ => Outcome::Rejected(status),
            }
        }
        Err(e) => {
            // Without the URL: an endpoint may carry a token in its query.
            tracing::warn!(
                callback = label,
                error = %e.without_url(),
                "logging destination unreachable; will retry"
            );
            Outcome::Retry
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::payload::tests::{chat_capture, event};

    struct Counting;

    impl Sink for Counting {
        type Item = ();
        fn label(&self) -> &'static str {
            "counting"
        }
        fn item(&self, _: &CallbackEvent) -> Option<()> {
            Some(())
        }
        fn request(&self, _: &[()]) -> Option<Outgoing> {
            None
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let delivery = Delivery {
            flush_every: Duration::from_secs(3600),
            batch_size: 100,
            timeout: Duration::from_secs(1),
            retry_delays: Vec::new(),
            queue_capacity: 2,
        };
        let h = SinkHandle::start(Counting, reqwest::Client::new(), delivery, true, true);
        let ev = Arc::new(event("success", chat_capture(), None));
        for _ in 0..5 {
            h.offer(&ev);
        }
        assert_eq!(h.dropped(), 3);
        // A flush empties the queue; new events fit again.
        h.flush().await;
        h.offer(&ev);
        assert_eq!(h.dropped(), 3);
    }
}
