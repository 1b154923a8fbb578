//! Redis counters: one Lua script checks and takes every descriptor atomically.
//!
//! Keys per descriptor: `litellm:rl:{scope}:{id}:req|tok|par`. Request and token keys expire
//! when their window ends (set on first use, so the window starts with the first request);
//! the concurrency key carries a long safety TTL so a crashed replica cannot leak slots forever.

use super::{Descriptor, Exceeded, LimitKind, Usage};
use crate::redis::{RedisHandle, RedisUnavailable};
use std::sync::LazyLock;
use std::time::Duration;

/// Concurrency counters expire this long after their last change, bounding leaks from
/// replicas that died mid-request.
const PARALLEL_SAFETY_TTL_MS: u64 = 10 * 60 * 1000;

static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
local par_ttl = tonumber(ARGV[4])
for i = 0, n - 1 do
  local rpm = tonumber(ARGV[5 + i * 3])
  local tpm = tonumber(ARGV[6 + i * 3])
  local par = tonumber(ARGV[7 + i * 3])
  if rpm > 0 then
    local c = tonumber(redis.call('GET', KEYS[1 + i * 3]) or '0')
    if c + 1 > rpm then return {0, i, 1, redis.call('PTTL', KEYS[1 + i * 3])} end
  end
  if tpm > 0 then
    local c = tonumber(redis.call('GET', KEYS[2 + i * 3]) or '0')
    if c >= tpm then return {0, i, 2, redis.call('PTTL', KEYS[2 + i * 3])} end
  end
  if par > 0 then
    local c = tonumber(redis.call('GET', KEYS[3 + i * 3]) or '0')
    if c + 1 > par then return {0, i, 3, 0} end
  end
end
local out = {1}
for i = 0, n - 1 do
  local rpm = tonumber(ARGV[5 + i * 3])
  local tpm = tonumber(ARGV[6 + i * 3])
  local par = tonumber(ARGV[7 + i * 3])
  local req, tok = 0, 0
  if rpm > 0 then
    req = redis.call('INCR', KEYS[1 + i * 3])
    if redis.call('PTTL', KEYS[1 + i * 3]) < 0 then redis.call('PEXPIRE', KEYS[1 + i * 3], window) end
  end
  if tpm > 0 then
    tok = redis.call('INCRBY', KEYS[2 + i * 3], reserve)
    if redis.call('PTTL', KEYS[2 + i * 3]) < 0 then redis.call('PEXPIRE', KEYS[2 + i * 3], window) end
  end
  if par > 0 then
    redis.call('INCR', KEYS[3 + i * 3])
    redis.call('PEXPIRE', KEYS[3 + i * 3], par_ttl)
  end
  table.insert(out, req)
  table.insert(out, tok)
end
return out
"#,
    )
});

static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local delta = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local tpm = tonumber(ARGV[3 + i * 2])
  local par = tonumber(ARGV[4 + i * 2])
  if tpm > 0 and delta ~= 0 and redis.call('EXISTS', KEYS[1 + i * 2]) == 1 then
    local v = redis.call('INCRBY', KEYS[1 + i * 2], delta)
    if v < 0 then redis.call('SET', KEYS[1 + i * 2], 0, 'KEEPTTL') end
  end
  if par > 0 then
    local v = redis.call('DECR', KEYS[2 + i * 2])
    if v < 0 then redis.call('SET', KEYS[2 + i * 2], 0, 'KEEPTTL') end
  end
end
return 1
"#,
    )
});

fn key(d: &Descriptor, suffix: &str) -> String {
    format!("litellm:rl:{}:{}:{suffix}", d.scope, d.id)
}

pub async fn acquire(
    r: &RedisHandle,
    descs: &[Descriptor],
    reserve: u64,
    window: Duration,
) -> Result<Result<Usage, Exceeded>, RedisUnavailable> {
    let mut inv = ACQUIRE.prepare_invoke();
    for d in descs {
        inv.key(key(d, "req")).key(key(d, "tok")).key(key(d, "par"));
    }
    inv.arg(window.as_millis() as u64)
        .arg(descs.len())
        .arg(reserve)
        .arg(PARALLEL_SAFETY_TTL_MS);
    for d in descs {
        inv.arg(d.rpm.unwrap_or(0))
            .arg(d.tpm.unwrap_or(0))
            .arg(d.max_parallel.unwrap_or(0));
    }
    let out: Vec<i64> = r
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    if out.first() == Some(&1) {
        let counts = out[1..]
            .chunks(2)
            .map(|c| (c[0].max(0) as u64, c.get(1).copied().unwrap_or(0)))
            .collect();
        return Ok(Ok(Usage { counts }));
    }
    let idx = out.get(1).copied().unwrap_or(0).max(0) as usize;
    let kind = match out.get(2) {
        Some(1) => LimitKind::Requests,
        Some(2) => LimitKind::Tokens,
        _ => LimitKind::Parallel,
    };
    let ttl_ms = out.get(3).copied().unwrap_or(0).max(0) as u64;
    Ok(Err(Exceeded {
        descriptor: descs.get(idx).cloned().unwrap_or_else(|| descs[0].clone()),
        kind,
        resets_in: Duration::from_millis(ttl_ms),
    }))
}

pub async fn release(
    r: &RedisHandle,
    descs: &[Descriptor],
    token_delta: i64,
    _window: Duration,
) -> Result<(), RedisUnavailable> {
    let mut inv = RELEASE.prepare_invoke();
    for d in descs {
        inv.key(key(d, "tok")).key(key(d, "par"));
    }
    inv.arg(token_delta).arg(descs.len());
    for d in descs {
        inv.arg(d.tpm.unwrap_or(0)).arg(d.max_parallel.unwrap_or(0));
    }
    let _: i64 = r
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    Ok(())
}
