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
//! Nothing here is on the request path: a worker going to sleep pays one relaxed load and a
//! thread-local read. Without a `trim` function (tests, other embedders) no hook is installed
//! and [`watch_idle`] starts nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long the workers must stay (almost) idle before their caches are emptied.
pub const QUIET: Duration = Duration::from_secs(5);

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
        idle.clone().watch(QUIET, BUSY);
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
    /// gateway as used; the first period after that below `busy` asks the workers to trim.
    fn watch(self: Arc<Self>, quiet: Duration, busy: Duration) {
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
            let mut used = false;
            loop {
                tick.tick().await;
                let now = total_busy();
                let spent = now.saturating_sub(last);
                last = now;
                if spent > busy {
                    used = true;
                } else if used {
                    used = false;
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

    /// Nothing is trimmed before the workers have been busy; after each busy spell followed
    /// by a quiet one every worker trims exactly once, however often it sleeps and wakes
    /// meanwhile; light activity below the threshold triggers nothing.
    #[test]
    fn every_worker_trims_once_after_each_busy_spell() -> Result<(), Box<dyn std::error::Error>> {
        let idle = Arc::new(Idle::new(record_trim));
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all().worker_threads(2);
        idle.clone().hook(&mut b);
        let rt = b.build()?;
        let quiet = Duration::from_millis(100);
        let busy = Duration::from_millis(20);
        rt.block_on(async {
            idle.clone().watch(quiet, busy);
            for _ in 0..8 {
                tokio::spawn(async {}).await?;
                tokio::time::sleep(quiet / 2).await;
            }
            assert!(trims().is_empty(), "trimmed without a busy spell");
            for round in 1..=2 {
                work(busy * 4).await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while trims().len() < 2 * round && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(quiet / 4).await;
                }
                // Workers keep waking for other tasks; none trims twice in one quiet spell.
                for _ in 0..12 {
                    tokio::spawn(async {}).await?;
                    tokio::time::sleep(quiet / 4).await;
                }
                let got = trims();
                assert_eq!(got.len(), 2 * round, "round {round}: {got:?}");
                let by: HashSet<ThreadId> = got.into_iter().collect();
                assert_eq!(by.len(), 2, "both workers trim: {by:?}");
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        })
    }
}
