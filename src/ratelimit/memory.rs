//! In-process counters: one mutex over a map, held only for arithmetic (never across an await).
//! Uses tokio's clock so tests can pause time.

use super::{Descriptor, Exceeded, LimitKind, Usage};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Slot {
    requests: u64,
    requests_reset: Option<Instant>,
    tokens: i64,
    tokens_reset: Option<Instant>,
    parallel: u64,
}

#[derive(Debug, Default)]
pub struct MemoryCounters {
    slots: Mutex<HashMap<(&'static str, String), Slot>>,
}

fn expire(count: &mut i64, reset: &mut Option<Instant>, now: Instant) {
    if reset.is_some_and(|r| now >= r) {
        *count = 0;
        *reset = None;
    }
}

impl MemoryCounters {
    pub fn acquire(
        &self,
        descs: &[Descriptor],
        reserve: u64,
        window: Duration,
    ) -> Result<Usage, Exceeded> {
        let now = Instant::now();
        let Ok(mut slots) = self.slots.lock() else {
            return Ok(Usage::default());
        };
        // Check every descriptor first, then take all: all or nothing.
        for d in descs {
            let slot = slots.entry((d.scope, d.id.clone())).or_default();
            let mut req = slot.requests as i64;
            expire(&mut req, &mut slot.requests_reset, now);
            slot.requests = req as u64;
            expire(&mut slot.tokens, &mut slot.tokens_reset, now);
            let left = |r: Option<Instant>| {
                r.map(|r| r.saturating_duration_since(now))
                    .unwrap_or(window)
            };
            if d.rpm.is_some_and(|l| slot.requests + 1 > l) {
                return Err(Exceeded {
                    descriptor: d.clone(),
                    kind: LimitKind::Requests,
                    resets_in: left(slot.requests_reset),
                });
            }
            if d.tpm.is_some_and(|l| slot.tokens >= l as i64) {
                return Err(Exceeded {
                    descriptor: d.clone(),
                    kind: LimitKind::Tokens,
                    resets_in: left(slot.tokens_reset),
                });
            }
            if d.max_parallel.is_some_and(|l| slot.parallel + 1 > l) {
                return Err(Exceeded {
                    descriptor: d.clone(),
                    kind: LimitKind::Parallel,
                    resets_in: Duration::ZERO,
                });
            }
        }
        let mut usage = Usage::default();
        for d in descs {
            let slot = slots.entry((d.scope, d.id.clone())).or_default();
            if d.rpm.is_some() {
                slot.requests += 1;
                slot.requests_reset.get_or_insert(now + window);
            }
            if d.tpm.is_some() {
                slot.tokens += reserve as i64;
                slot.tokens_reset.get_or_insert(now + window);
            }
            if d.max_parallel.is_some() {
                slot.parallel += 1;
            }
            usage.counts.push((slot.requests, slot.tokens));
        }
        Ok(usage)
    }

    pub fn release(&self, descs: &[Descriptor], token_delta: i64) {
        let now = Instant::now();
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        for d in descs {
            if let Some(slot) = slots.get_mut(&(d.scope, d.id.clone())) {
                if d.max_parallel.is_some() {
                    slot.parallel = slot.parallel.saturating_sub(1);
                }
                if d.tpm.is_some() && slot.tokens_reset.is_some_and(|r| now < r) {
                    slot.tokens = (slot.tokens + token_delta).max(0);
                }
            }
        }
    }
}
