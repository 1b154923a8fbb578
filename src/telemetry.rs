//! Logging setup: `tracing` with plain or JSON lines, written to stderr in batches.
//!
//! Level: `LITELLM_LOG` (DEBUG/INFO/WARNING/ERROR) or `RUST_LOG`, raised by `--debug` (info)
//! and `--detailed_debug` (debug). Default is info for the access log and warnings elsewhere.
//!
//! Lines are appended to an in-memory buffer and a background thread writes the buffer out at
//! most [`FLUSH_EVERY`] after its first line. A request therefore costs no write syscall and no
//! thread wake-up for its access-log line (a channel to a writer thread woke that thread on
//! every request, which measured as a large share of the per-request CPU). Nothing is dropped:
//! past [`MAX_BUFFERED_BYTES`] the caller writes the backlog itself.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Longest a line waits in memory: under load one write carries many lines, and logs still
/// read as live.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Wake the writer before [`FLUSH_EVERY`] once this much is waiting.
const EARLY_FLUSH_BYTES: usize = 64 * 1024;
/// When the writer thread falls this far behind, callers write the backlog themselves: memory
/// stays bounded and no line is lost.
const MAX_BUFFERED_BYTES: usize = 4 << 20;
/// Buffers that grew past this during a burst are released after their write, so memory goes
/// back down after load.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Installs the subscriber. Keep the returned guard alive until exit: dropping it writes the
/// last lines.
pub fn init(json: bool, debug: bool, detailed_debug: bool) -> LogGuard {
    let level = if detailed_debug {
        "debug".to_string()
    } else if debug {
        "info".to_string()
    } else if let Ok(l) = std::env::var("LITELLM_LOG") {
        match l.to_ascii_lowercase().as_str() {
            "debug" => "debug".into(),
            "info" => "info".into(),
            "error" => "error".into(),
            _ => "warn".into(),
        }
    } else {
        "warn,access=info,litellm_gateway=info".to_string()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (writer, guard) = BatchWriter::start(Box::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        let _ = builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init();
    } else {
        let _ = builder.try_init();
    }
    guard
}

struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Where lines end up (stderr). Locked before `pending` is released by whoever writes, so
    /// batches reach it in order.
    sink: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves at worst a partial line: keep logging.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sink(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `MakeWriter` behind the subscriber: every line goes to the shared buffer.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Writes what is still buffered and stops the writer thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BatchWriter {
    fn start(sink: Box<dyn Write + Send>) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            sink: Mutex::new(sink),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_loop(&for_thread))
            .ok();
        if thread.is_none() {
            // No thread: every line is written by its caller.
            shared.lock().closed = true;
        }
        (
            Self {
                shared: shared.clone(),
            },
            LogGuard { shared, thread },
        )
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(shared: &Shared) {
    let mut spare = Vec::new();
    loop {
        let mut g = shared.lock();
        while g.bytes.is_empty() {
            if g.closed {
                return;
            }
            g = shared.wake.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        let deadline = Instant::now() + FLUSH_EVERY;
        while !g.closed && g.bytes.len() < EARLY_FLUSH_BYTES {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            g = shared
                .wake
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let mut sink = shared.sink();
        std::mem::swap(&mut g.bytes, &mut spare);
        drop(g);
        let _ = sink.write_all(&spare).and_then(|()| sink.flush());
        drop(sink);
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = Vec::new();
        }
    }
}

/// One line's writer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.shared.lock();
        if g.closed || g.bytes.len() + buf.len() > MAX_BUFFERED_BYTES {
            // No writer thread (shutdown) or it is far behind: write the backlog and this line
            // here, under the lock, so lines keep their order.
            let mut sink = self.shared.sink();
            sink.write_all(&g.bytes)?;
            g.bytes.clear();
            sink.write_all(buf)?;
            sink.flush()?;
            return Ok(buf.len());
        }
        let was_empty = g.bytes.is_empty();
        let before = g.bytes.len();
        g.bytes.extend_from_slice(buf);
        let crossed = before < EARLY_FLUSH_BYTES && g.bytes.len() >= EARLY_FLUSH_BYTES;
        drop(g);
        // The writer sleeps while the buffer is empty: wake it for the first line (it then
        // waits FLUSH_EVERY on its own), and early for a large backlog.
        if was_empty || crossed {
            self.shared.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink's bytes and how many writes delivered them.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicUsize>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_batched_and_all_written_by_the_guard() {
        let out = Captured::default();
        let (w, guard) = BatchWriter::start(Box::new(out.clone()));
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for i in 0..1000 {
            w.make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        std::thread::sleep(FLUSH_EVERY * 4);
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone()).unwrap(),
            expected
        );
        let writes = out.1.load(std::sync::atomic::Ordering::Relaxed);
        assert!(writes < 100, "1000 lines in {writes} writes: not batched");
        w.make_writer().write_all(b"last\n").unwrap();
        drop(guard);
        let all = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(all, format!("{expected}last\n"), "the guard wrote the rest");
        // After shutdown a line is written by its caller, not kept.
        w.make_writer().write_all(b"late\n").unwrap();
        assert!(out.0.lock().unwrap().ends_with(b"late\n"));
    }
}
