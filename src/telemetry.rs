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
//!
//! The access log ([`access`]) is formatted here directly into that buffer, in the layout the
//! `tracing` formatter gives other lines (plain or JSON): going through `tracing`'s event
//! machinery cost about 5% of a request's instructions.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
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
/// With no line for this long, both buffers are released whatever their size.
const RELEASE_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Installs the subscriber. Keep the returned guard alive until exit: dropping it writes the
/// last lines.
pub fn init(json: bool, debug: bool, detailed_debug: bool) -> LogGuard {
    let env = std::env::var("LITELLM_LOG").ok();
    let env_set = env.is_some();
    let name = *LEVEL_NAME.get_or_init(|| level_name(debug, detailed_debug, env));
    let level = match name {
        "DEBUG" => "debug",
        "INFO" => "info",
        "ERROR" => "error",
        // WARNING asked for by `LITELLM_LOG`; by default the access log stays on.
        _ if env_set => "warn",
        _ => "warn,access=info,litellm_gateway=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (writer, guard) = BatchWriter::start(Box::new(std::io::stderr()));
    let _ = ACCESS.set(AccessLog {
        writer: writer.clone(),
        json,
    });
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

/// Where access lines go, once logging is set up (never in tests that skip [`init`]).
static ACCESS: OnceLock<AccessLog> = OnceLock::new();

/// The log level as LiteLLM names it, set by [`init`].
static LEVEL_NAME: OnceLock<&'static str> = OnceLock::new();

/// LiteLLM's name for the level the flags and `LITELLM_LOG` select: `--detailed_debug` DEBUG,
/// `--debug` INFO, else `LITELLM_LOG`'s, else WARNING (this gateway's own access log is on at
/// every level).
fn level_name(debug: bool, detailed_debug: bool, env: Option<String>) -> &'static str {
    if detailed_debug {
        return "DEBUG";
    }
    if debug {
        return "INFO";
    }
    match env.map(|l| l.to_ascii_lowercase()).as_deref() {
        Some("debug") => "DEBUG",
        Some("info") => "INFO",
        Some("error") => "ERROR",
        _ => "WARNING",
    }
}

/// The log level as LiteLLM reports it (`/health/readiness/details`); WARNING before [`init`].
pub fn log_level_name() -> &'static str {
    LEVEL_NAME.get().copied().unwrap_or("WARNING")
}

struct AccessLog {
    writer: BatchWriter,
    json: bool,
}

/// One request, as the access log records it. Never headers or bodies: they hold keys and
/// prompts.
pub struct AccessLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub call_id: &'a str,
    /// The error type, for a failed request.
    pub error: Option<&'a str>,
}

/// Writes one access line when the `access` target is enabled at info (the default).
pub fn access(line: &AccessLine<'_>) {
    let Some(log) = ACCESS.get() else { return };
    if !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return;
    }
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        format_access(buf, line, std::time::SystemTime::now(), log.json);
        let _ = log.writer.make_writer().write_all(buf);
        if buf.capacity() > 4096 {
            *buf = Vec::new();
        }
    });
}

/// The line as `tracing_subscriber`'s formatters lay out an event with these fields.
fn format_access(buf: &mut Vec<u8>, l: &AccessLine<'_>, now: std::time::SystemTime, json: bool) {
    let mut ts = [0u8; 27];
    rfc3339_micros(now, &mut ts);
    let ts = std::str::from_utf8(&ts).unwrap_or("");
    if json {
        let s = |buf: &mut Vec<u8>, v: &str| {
            let _ = serde_json::to_writer(&mut *buf, v);
        };
        buf.extend_from_slice(b"{\"timestamp\":\"");
        buf.extend_from_slice(ts.as_bytes());
        buf.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
        s(buf, l.method);
        buf.extend_from_slice(b",\"path\":");
        s(buf, l.path);
        buf.extend_from_slice(b",\"status\":");
        push_status_and_duration(buf, l, b",\"duration_ms\":");
        buf.extend_from_slice(b",\"call_id\":");
        s(buf, l.call_id);
        if let Some(e) = l.error {
            buf.extend_from_slice(b",\"error\":");
            s(buf, e);
        }
        buf.extend_from_slice(b",\"target\":\"access\"}\n");
    } else {
        // Pieces appended by hand: `write!` with `{:.3}` went through the formatting machinery
        // on every request.
        buf.extend_from_slice(ts.as_bytes());
        buf.extend_from_slice(b"  INFO access: request method=");
        buf.extend_from_slice(l.method.as_bytes());
        buf.extend_from_slice(b" path=");
        buf.extend_from_slice(l.path.as_bytes());
        buf.extend_from_slice(b" status=");
        push_status_and_duration(buf, l, b" duration_ms=");
        buf.extend_from_slice(b" call_id=");
        buf.extend_from_slice(l.call_id.as_bytes());
        if let Some(e) = l.error {
            let _ = write!(buf, " error={e:?}");
        }
        buf.push(b'\n');
    }
}

/// The status, `between`, then the duration in milliseconds with three decimals.
fn push_status_and_duration(buf: &mut Vec<u8>, l: &AccessLine<'_>, between: &[u8]) {
    let mut digits = [0u8; 24];
    buf.extend_from_slice(decimal_text(u64::from(l.status), &mut digits));
    buf.extend_from_slice(between);
    match millis_text(l.duration_ms, &mut digits) {
        Some(text) => buf.extend_from_slice(text),
        None => {
            let _ = write!(buf, "{:.3}", l.duration_ms);
        }
    }
}

/// `n` in decimal, written at the end of `buf` (which must have room); the digits are the
/// returned slice.
fn decimal_text(mut n: u64, buf: &mut [u8]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The last `dst.len()` decimal digits of `n` into `dst`, zero-padded: fixed-width fields of
/// timestamps and fractions.
pub fn fill_digits(dst: &mut [u8], mut n: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Milliseconds with three decimals (`12.346`), as `{:.3}` prints them, written at the end of
/// `buf` without the formatting machinery (whose `{:.3}` on an `f64` takes the slow exact-decimal
/// path); `None` for a value outside `0..1e12` or not finite, for the caller to format.
pub fn millis_text(ms: f64, buf: &mut [u8; 24]) -> Option<&[u8]> {
    if !(ms.is_finite() && (0.0..1e12).contains(&ms)) {
        return None;
    }
    let micros = (ms * 1000.0).round() as u64;
    let point = buf.len() - 4;
    fill_digits(&mut buf[point + 1..], micros % 1000);
    buf[point] = b'.';
    let whole = decimal_text(micros / 1000, &mut buf[..point]).len();
    Some(&buf[point - whole..])
}

/// `2026-11-29T03:15:56.123456Z` into `out`, without a calendar library call per line.
fn rfc3339_micros(t: std::time::SystemTime, out: &mut [u8; 27]) {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut put = |at: usize, v: u64, width: usize| fill_digits(&mut out[at..at + width], v);
    put(0, year.clamp(0, 9999) as u64, 4);
    put(5, month as u64, 2);
    put(8, day as u64, 2);
    put(11, rem / 3600, 2);
    put(14, rem % 3600 / 60, 2);
    put(17, rem % 60, 2);
    put(20, u64::from(d.subsec_micros()), 6);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        out[at] = c;
    }
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
            let (woken, waited) = shared
                .wake
                .wait_timeout(g, RELEASE_AFTER_IDLE)
                .unwrap_or_else(|p| p.into_inner());
            g = woken;
            if waited.timed_out() && g.bytes.is_empty() {
                // Quiet for a while: give back what the last burst's batches grew to, and the
                // blocks this thread's allocator cache kept from freeing them.
                if g.bytes.capacity() + spare.capacity() > 0 {
                    g.bytes = Vec::new();
                    spare = Vec::new();
                    crate::runtime::trim_this_thread();
                }
            }
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

    #[test]
    fn level_names_follow_flags_then_litellm_log() {
        assert_eq!(level_name(false, true, Some("error".into())), "DEBUG");
        assert_eq!(level_name(true, false, None), "INFO");
        assert_eq!(level_name(false, false, Some("Debug".into())), "DEBUG");
        assert_eq!(level_name(false, false, Some("ERROR".into())), "ERROR");
        assert_eq!(level_name(false, false, Some("verbose".into())), "WARNING");
        assert_eq!(level_name(false, false, None), "WARNING");
    }
    use super::*;

    #[test]
    fn access_lines_match_the_tracing_layouts() {
        let t = std::time::UNIX_EPOCH + Duration::from_micros(1_795_921_756_123_456);
        let line = AccessLine {
            method: "POST",
            path: "/v1/chat/\"x\"",
            status: 429,
            duration_ms: 1.23456,
            call_id: "abc",
            error: Some("rate_limit_error"),
        };
        let mut buf = Vec::new();
        format_access(&mut buf, &line, t, false);
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "2026-11-29T03:09:16.123456Z  INFO access: request method=POST path=/v1/chat/\"x\" \
             status=429 duration_ms=1.235 call_id=abc error=\"rate_limit_error\"\n"
        );
        buf.clear();
        format_access(&mut buf, &line, t, true);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"timestamp": "2026-11-29T03:09:16.123456Z", "level": "INFO",
                "message": "request", "method": "POST", "path": "/v1/chat/\"x\"", "status": 429,
                "duration_ms": 1.235, "call_id": "abc", "error": "rate_limit_error",
                "target": "access"})
        );
        // Calendar edges: a leap day and the turn of a century.
        let mut ts = [0u8; 27];
        rfc3339_micros(
            std::time::UNIX_EPOCH + Duration::from_secs(951_782_400),
            &mut ts,
        );
        assert_eq!(&ts, b"2000-02-29T00:00:00.000000Z");
        rfc3339_micros(
            std::time::UNIX_EPOCH + Duration::from_secs(4_107_542_399),
            &mut ts,
        );
        assert_eq!(&ts, b"2100-02-28T23:59:59.000000Z");
    }

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
