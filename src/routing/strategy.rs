//! Routing strategies (`router_settings.routing_strategy`) and the live per-deployment numbers
//! they read: requests in flight, requests and tokens this minute, latency.
//!
//! Stats are atomics on each deployment, updated by the call path without locks. They are per
//! replica: `least-busy` and `latency-based-routing` are local decisions by nature; usage-based
//! routing sees this replica's traffic (the cross-replica rpm/tpm guarantee is the rate
//! limiter's job).

use super::Deployment;
use rand::Rng;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// How a deployment is chosen among the eligible ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Random, weighted by `weight`, else `rpm`, else `tpm`.
    SimpleShuffle,
    /// Fewest requests in flight.
    LeastBusy,
    /// Lowest tokens used this minute, skipping deployments at their `rpm` / `tpm`.
    UsageBased,
    /// Lowest average latency (time to first token for streams), randomised among those
    /// within `lowest_latency_buffer` of the best.
    LatencyBased { buffer: f64 },
    /// Cheapest input + output price per token.
    CostBased,
}

impl Strategy {
    /// Reads `routing_strategy` and `routing_strategy_args`.
    pub fn from_settings(name: Option<&str>, extra: &Map<String, Value>) -> Result<Self, String> {
        Ok(match name.unwrap_or("simple-shuffle") {
            "simple-shuffle" => Self::SimpleShuffle,
            "least-busy" => Self::LeastBusy,
            "usage-based-routing" | "usage-based-routing-v2" => Self::UsageBased,
            "latency-based-routing" => Self::LatencyBased {
                buffer: extra
                    .get("routing_strategy_args")
                    .and_then(|a| a.get("lowest_latency_buffer"))
                    .and_then(Value::as_f64)
                    .filter(|b| b.is_finite() && *b >= 0.0)
                    .unwrap_or(0.0),
            },
            "cost-based-routing" => Self::CostBased,
            other => {
                return Err(format!(
                    "router_settings.routing_strategy: unknown strategy `{other}`; expected simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, latency-based-routing or cost-based-routing"
                ))
            }
        })
    }
}

/// Live numbers of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentStats {
    in_flight: AtomicU64,
    /// Unix minute the two counters below belong to.
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
    /// Moving averages in microseconds (0 = no sample yet).
    latency_us: AtomicU64,
    ttft_us: AtomicU64,
}

/// The current Unix minute, read from the system clock without a calendar conversion (it
/// is taken on every pick).
pub(crate) fn unix_minute() -> u64 {
    unix_secs() / 60
}

/// Seconds since the Unix epoch (0 for a clock set before it).
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Counts a request in flight until dropped.
pub struct InFlight(Arc<DeploymentStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl DeploymentStats {
    fn roll(&self) {
        let now = unix_minute();
        let seen = self.minute.load(Relaxed);
        if seen != now
            && self
                .minute
                .compare_exchange(seen, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.requests.store(0, Relaxed);
            self.tokens.store(0, Relaxed);
        }
    }

    /// A call starts: counted in flight and in this minute's requests.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.roll();
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    pub fn add_tokens(&self, n: u64) {
        self.roll();
        self.tokens.fetch_add(n, Relaxed);
    }

    /// Records a successful call's latency (`ttft` for streams: time to the first event).
    pub fn record_latency(&self, d: Duration, stream: bool) {
        let sample = d.as_micros().min(u64::MAX as u128) as u64;
        let slot = if stream {
            &self.ttft_us
        } else {
            &self.latency_us
        };
        let old = slot.load(Relaxed);
        // Exponential moving average, weight 1/4 for the new sample.
        let new = if old == 0 {
            sample.max(1)
        } else {
            (old * 3 + sample) / 4
        };
        slot.store(new.max(1), Relaxed);
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    fn this_minute(&self, now_minute: u64) -> (u64, u64) {
        if self.minute.load(Relaxed) != now_minute {
            return (0, 0);
        }
        (self.requests.load(Relaxed), self.tokens.load(Relaxed))
    }

    /// Whether `d` is under its own `rpm` / `tpm` this minute (as this replica counts).
    pub fn under_limits(&self, d: &Deployment, now_minute: u64) -> bool {
        if d.rpm.is_none() && d.tpm.is_none() {
            return true;
        }
        let (req, tok) = self.this_minute(now_minute);
        d.rpm.is_none_or(|r| req < r) && d.tpm.is_none_or(|t| tok < t)
    }

    fn latency(&self, stream: bool) -> u64 {
        let t = self.ttft_us.load(Relaxed);
        if stream && t != 0 {
            t
        } else {
            self.latency_us.load(Relaxed)
        }
    }
}

/// Picks from `tier` (non-empty, same `order`) by `strategy`.
pub fn choose<'a>(
    strategy: Strategy,
    tier: &[&'a Arc<Deployment>],
    stream: bool,
) -> Option<&'a Arc<Deployment>> {
    let mut rng = rand::thread_rng();
    let random_min = |key: &dyn Fn(&Deployment) -> f64, tier: &[&'a Arc<Deployment>]| {
        let best = tier.iter().map(|d| key(d)).fold(f64::INFINITY, f64::min);
        let ties: Vec<&&'a Arc<Deployment>> = tier.iter().filter(|d| key(d) <= best).collect();
        ties.get(rand::thread_rng().gen_range(0..ties.len().max(1)))
            .map(|d| **d)
    };
    match strategy {
        Strategy::SimpleShuffle => shuffle(tier, &mut rng),
        Strategy::LeastBusy => random_min(&|d| d.stats.in_flight() as f64, tier),
        Strategy::CostBased => random_min(&|d| d.unit_cost(), tier),
        Strategy::UsageBased => {
            let now = unix_minute();
            let open: Vec<&'a Arc<Deployment>> = tier
                .iter()
                .copied()
                .filter(|d| d.stats.under_limits(d, now))
                .collect();
            if open.is_empty() {
                return None;
            }
            random_min(&|d| d.stats.this_minute(now).1 as f64, &open)
        }
        Strategy::LatencyBased { buffer } => {
            // Deployments without a sample yet go first, so every one gets measured.
            let lat = |d: &Deployment| d.stats.latency(stream) as f64;
            let best = tier.iter().map(|d| lat(d)).fold(f64::INFINITY, f64::min);
            let near: Vec<&'a Arc<Deployment>> = tier
                .iter()
                .copied()
                .filter(|d| lat(d) <= best * (1.0 + buffer))
                .collect();
            near.get(rng.gen_range(0..near.len().max(1))).copied()
        }
    }
}

/// `simple-shuffle`: weighted by `weight` if any deployment sets one, else by `rpm`, else
/// `tpm`, else uniform.
fn shuffle<'a>(tier: &[&'a Arc<Deployment>], rng: &mut impl Rng) -> Option<&'a Arc<Deployment>> {
    if tier.len() == 1 {
        return tier.first().copied();
    }
    let weight_of: Option<fn(&Deployment) -> Option<f64>> =
        if tier.iter().any(|d| d.weight.is_some()) {
            Some(|d| d.weight)
        } else if tier.iter().any(|d| d.rpm.is_some()) {
            Some(|d| d.rpm.map(|x| x as f64))
        } else if tier.iter().any(|d| d.tpm.is_some()) {
            Some(|d| d.tpm.map(|x| x as f64))
        } else {
            None
        };
    if let Some(w) = weight_of {
        let weights: Vec<f64> = tier.iter().map(|d| w(d).unwrap_or(0.0).max(0.0)).collect();
        let total: f64 = weights.iter().sum();
        if total > 0.0 {
            let mut x = rng.gen_range(0.0..total);
            for (d, w) in tier.iter().zip(&weights) {
                if x < *w {
                    return Some(d);
                }
                x -= w;
            }
        }
    }
    tier.get(rng.gen_range(0..tier.len())).copied()
}
