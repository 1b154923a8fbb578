//! One load at a time per key for the auth caches: when a cached entry expires under load,
//! every request that finds it stale at that moment would otherwise read the store for it
//! (at 64 connections, 64 reads of one key through a pool of a few connections). Concurrent
//! callers for the same key share the first caller's load and its result, error included;
//! the next caller after it has finished starts a new one.
//!
//! Should the caller running the load go away (its client disconnected), one of the waiting
//! callers runs the load instead, so nobody waits on a load that no one runs.

use dashmap::DashMap;
use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Loads in flight, by key.
pub struct SingleFlight<K, V> {
    inflight: DashMap<K, Arc<OnceCell<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inflight: DashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    /// `load()`'s result, or that of the load already running for `key`.
    pub async fn run<Q, F, Fut>(&self, key: &Q, load: F) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = self.inflight.entry(key.to_owned()).or_default().clone();
        let leave = Leave {
            inflight: &self.inflight,
            key,
            cell,
        };
        leave.cell.get_or_init(load).await.clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inflight.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }
}

/// Takes the load off the map as its caller leaves: once it has a result (the next caller
/// starts afresh), or when it was given up with no other caller waiting on it. Checked under
/// the map's lock, which a new caller also holds while it takes the cell.
struct Leave<'a, K: Eq + Hash + Borrow<Q>, Q: Hash + Eq + ?Sized, V> {
    inflight: &'a DashMap<K, Arc<OnceCell<V>>>,
    key: &'a Q,
    cell: Arc<OnceCell<V>>,
}

impl<K: Eq + Hash + Borrow<Q>, Q: Hash + Eq + ?Sized, V> Drop for Leave<'_, K, Q, V> {
    fn drop(&mut self) {
        self.inflight.remove_if(self.key, |_, c| {
            Arc::ptr_eq(c, &self.cell) && (c.initialized() || Arc::strong_count(c) == 2)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    async fn counted(runs: &AtomicUsize, wait: Duration, v: u32) -> u32 {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(wait).await;
        v
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load_and_later_ones_load_again() {
        let sf = SingleFlight::<String, u32>::default();
        let runs = &AtomicUsize::new(0);
        let key = "k".to_string();
        let calls =
            (0..16u32).map(|i| sf.run(&key, move || counted(runs, Duration::from_millis(50), i)));
        let got = futures::future::join_all(calls).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(got.iter().all(|v| *v == got[0]), "{got:?}");
        assert!(sf.is_empty());
        // Finished: the next caller runs its own load.
        assert_eq!(sf.run(&key, || counted(runs, Duration::ZERO, 99)).await, 99);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Other keys do not wait for each other.
        let other = "other".to_string();
        let (a, b) = tokio::join!(
            sf.run(&key, || counted(runs, Duration::from_millis(20), 1)),
            sf.run(&other, || counted(runs, Duration::from_millis(20), 2)),
        );
        assert_eq!((a, b), (1, 2));
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    /// A task running `sf.run` for "k" with a load that takes `wait` and gives `v`.
    fn spawn_run(
        sf: &Arc<SingleFlight<String, u32>>,
        runs: &Arc<AtomicUsize>,
        wait: Duration,
        v: u32,
    ) -> tokio::task::JoinHandle<u32> {
        let (sf, runs) = (sf.clone(), runs.clone());
        tokio::spawn(async move { sf.run("k", || counted(&runs, wait, v)).await })
    }

    async fn until_runs(runs: &AtomicUsize, n: usize) {
        while runs.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_loading_caller_goes_away() {
        let sf = Arc::new(SingleFlight::<String, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = spawn_run(&sf, &runs, Duration::from_secs(60), 1);
        until_runs(&runs, 1).await;
        let waiter = spawn_run(&sf, &runs, Duration::from_millis(10), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was left waiting")
            .expect("waiter task");
        assert_eq!(got, 2);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(sf.is_empty());
        // Given up with nobody waiting: nothing is left behind.
        let alone = spawn_run(&sf, &runs, Duration::from_secs(60), 3);
        until_runs(&runs, 3).await;
        assert_eq!(sf.len(), 1);
        alone.abort();
        let _ = alone.await;
        assert!(sf.is_empty());
    }
}
