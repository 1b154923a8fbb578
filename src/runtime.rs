//! The tokio runtime the `litellm` binary runs on, and giving memory back once traffic stops.
//!
//! A thread-caching allocator keeps each thread's recently freed blocks for that thread's next
//! allocations. After a burst, the blocks a worker thread has cached keep partly used pages
//! resident (measured: about 1.6 MB over the idle figure after ten seconds at 64 connections),
//! for as long as that worker sleeps. The binary owns the allocator and passes a `trim`
//! function that empties the calling thread's cache. A watcher task reads the runtime's
//! busy time every [`QUIET`] period; after a period with traffic and then one without, it asks
//! every worker to call `trim` once, the next time that worker goes to sleep. The allocator's
//! background purging then returns the freed pages to the system.
//!
//! Some of a burst is freed later than that: the upstream pools close the burst's idle
//! connections, and free their buffers, only once those have been idle for the pools' timeout.
//! The buffers then land in the cache of whichever worker closed them (measured: about 0.3 MB
//! of 8 and 10 kB blocks after 64 connections). So the workers keep trimming at every quiet
//! period until the quiet has lasted [`SETTLED`], by which time those connections are gone.
//!
//! Nothing here is on the request path: a worker going to sleep pays one relaxed load and a
//! thread-local read. Without a `trim` function (tests, other embedders) no hook is installed
//! and [`watch_idle`] starts nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long the workers must stay (almost) idle before their caches are emptied.
pub const QUIET: Duration = Duration::from_secs(5);

/// How long after the traffic stops the workers keep trimming. The upstream pools close a
/// connection once idle for 55 s (`state::POOL_IDLE_TIMEOUT`): the plain-HTTP pool sweeps every
/// 5 s, but the other one (hyper's) sweeps once per timeout, so a burst's connections may stay
/// up to twice the timeout.
pub const SETTLED: Duration = Duration::from_secs(115);

/// Busy time per [`QUIET`] period above which the gateway counts as having served traffic. The
/// watcher itself and the periodic tasks (pool sweepers, the spend writer's ticks) stay far
/// below it; at roughly 40 µs of worker time per one-line call, about a hundred calls in one
/// period reach it (an estimate from the benchmark's CPU per request, not a measured count).
pub const BUSY: Duration = Duration::from_millis(5);

/// The process's trim state, set once by [`builder`] when given a `trim` function.
static INSTALLED: OnceLock<Arc<Idle>> = OnceLock::new();

thread_local! {
    /// The last trim generation this thread acted on.
    static TRIMMED_AT: Cell<u64> = const { Cell::new(0) };
}

/// A multi-threaded runtime builder with every driver enabled. With `trim`, workers going to
/// sleep empty their allocator cache when [`watch_idle`] has asked them to.
pub fn builder(trim: Option<fn()>) -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if let Some(trim) = trim {
        let idle = INSTALLED.get_or_init(|| Arc::new(Idle::new(trim)));
        idle.clone().hook(&mut b);
    }
    b
}

/// Empties the calling thread's allocator cache, if [`builder`] was given a `trim` function.
/// The thread that loaded the config and built the state calls it once it starts serving: its
/// cache holds what start-up freed, and that thread allocates little afterwards.
pub fn trim_this_thread() {
    if let Some(idle) = INSTALLED.get() {
        (idle.trim)();
    }
}

/// Starts the watcher if [`builder`] installed a `trim` function. Call inside the runtime.
pub fn watch_idle() {
    if let Some(idle) = INSTALLED.get() {
        idle.clone().watch(QUIET, BUSY, SETTLED);
    }
}

struct Idle {
    /// Bumped each time the workers should trim; each worker trims once per value.
    generation: AtomicU64,
    trim: fn(),
}

impl Idle {
    fn new(trim: fn()) -> Self {
        Self {
            generation: AtomicU64::new(0),
            trim,
        }
    }

    fn hook(self: Arc<Self>, b: &mut tokio::runtime::Builder) {
        b.on_thread_park(move || self.on_park());
    }

    #[inline]
    fn on_park(&self) {
        let wanted = self.generation.load(Relaxed);
        if TRIMMED_AT.with(|at| at.replace(wanted)) != wanted {
            (self.trim)();
        }
    }

    /// Every `quiet`: a period in which the workers were busy for more than `busy` marks the
    /// gateway as used; each period after that below `busy` asks the workers to trim, until
    /// the quiet has lasted `settled`.
    fn watch(self: Arc<Self>, quiet: Duration, busy: Duration, settled: Duration) {
        tokio::spawn(async move {
            let metrics = tokio::runtime::Handle::current().metrics();
            let total_busy = || -> Duration {
                (0..metrics.num_workers())
                    .map(|w| metrics.worker_total_busy_duration(w))
                    .sum()
            };
            let mut tick = tokio::time::interval(quiet);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last = total_busy();
            // Until when the workers trim, once the gateway has been used and is quiet again.
            let mut used = false;
            let mut trim_until: Option<tokio::time::Instant> = None;
            loop {
                let now_at = tick.tick().await;
                let now = total_busy();
                let spent = now.saturating_sub(last);
                last = now;
                let trim = if spent > busy {
                    used = true;
                    trim_until = None;
                    false
                } else if std::mem::take(&mut used) {
                    trim_until = Some(now_at + settled);
                    true
                } else if trim_until.is_some_and(|t| now_at <= t) {
                    true
                } else {
                    trim_until = None;
                    false
                };
                if trim {
                    self.generation.fetch_add(1, Relaxed);
                    wake_workers(metrics.num_workers());
                }
            }
        });
    }
}

/// Gives the workers no-op tasks, so a sleeping one wakes, finds nothing else and goes back to
/// sleep (trimming on the way). A worker that stays asleep trims at its next sleep instead.
fn wake_workers(workers: usize) {
    for _ in 0..workers {
        tokio::spawn(async {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    static TRIMMED_BY: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

    fn record_trim() {
        if let Ok(mut v) = TRIMMED_BY.lock() {
            v.push(std::thread::current().id());
        }
    }

    fn trims() -> Vec<ThreadId> {
        TRIMMED_BY.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Keeps the workers busy for about `d` in all.
    async fn work(d: Duration) -> Result<(), tokio::task::JoinError> {
        let spin = move || {
            let end = std::time::Instant::now() + d / 2;
            while std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(async move { spin() }),
            tokio::spawn(async move { spin() })
        );
        a.and(b)
    }

    /// Waits (up to 10 s) until `n` trims in all have been recorded.
    async fn until_trims(n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while trims().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Nothing is trimmed before the workers have been busy; after each busy spell every
    /// worker trims once per quiet period, however often it sleeps and wakes meanwhile, until
    /// the quiet has lasted `settled`, and then no more; light activity below the threshold
    /// triggers nothing.
    #[test]
    fn every_worker_trims_after_each_busy_spell_until_it_settles(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let idle = Arc::new(Idle::new(record_trim));
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all().worker_threads(2);
        idle.clone().hook(&mut b);
        let rt = b.build()?;
        let quiet = Duration::from_millis(100);
        let busy = Duration::from_millis(20);
        let settled = Duration::from_millis(500);
        // Workers keep waking for other tasks, for about `d`.
        async fn light(d: Duration) -> Result<(), tokio::task::JoinError> {
            let end = tokio::time::Instant::now() + d;
            while tokio::time::Instant::now() < end {
                tokio::spawn(async {}).await?;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok(())
        }
        rt.block_on(async {
            idle.clone().watch(quiet, busy, settled);
            light(quiet * 4).await?;
            assert!(trims().is_empty(), "trimmed without a busy spell");
            let mut before = 0;
            for round in 0..2 {
                work(busy * 4).await?;
                until_trims(before + 2).await;
                // Quiet from here: trims keep coming, one per worker per period.
                light(settled + 3 * quiet).await?;
                let got = trims().split_off(before);
                let by: HashSet<ThreadId> = got.iter().copied().collect();
                assert_eq!(by.len(), 2, "round {round}: both workers trim: {by:?}");
                // About settled / quiet + 1 periods each (6 here); one per worker per period.
                let periods = (settled.as_millis() / quiet.as_millis()) as usize + 1;
                assert!(
                    got.len() >= 2 * (periods - 3) && got.len() <= 2 * (periods + 1),
                    "round {round}: {} trims, expected about {}",
                    got.len(),
                    2 * periods
                );
                // And then no more, however long the quiet lasts.
                before += got.len();
                light(settled).await?;
                assert_eq!(trims().len(), before, "round {round}: trims after settling");
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })
    }
}
