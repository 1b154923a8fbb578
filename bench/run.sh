#!/usr/bin/env bash
# Gateway vs bare pass-through vs direct mock, in one run, on this machine.
#
#   bash bench/run.sh            # about seven minutes
#
# The proxy under test (gateway or pass-through) is pinned to core 1; the load generator and
# the mock upstream share core 0. For each target it measures throughput at saturation and the
# CPU time the proxy spent per request, latency at concurrency 1, streaming time to first
# token, and the proxy's memory. Only loopback addresses are used; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
KEY=sk-bench-master-key-0001
source bench/common.sh
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${PG_USER:-litellm-test}
PG_DATA=""
# PostgreSQL refuses to run as root: run it as an unprivileged user.
run_pg() {
  if [ "$(id -u)" = 0 ]; then su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"; else "$@"; fi
}
extra_cleanup() {
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    run_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
}

command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q --workspace

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
# The anonymous part of RSS: heap and stacks, without the binary's own (file-backed) code pages,
# which a first call touches once and which stay mapped.
anon_kb() { awk '/^RssAnon/{print $2}' "/proc/$1/status"; }
file_kb() { awk '/^RssFile/{print $2}' "/proc/$1/status"; }
# How long memory is left to settle before it is read, idle and after load: pooled upstream
# connections close 55 s after their last use (TLS and other pooled upstreams: on the pool's
# own 55 s sweep, so up to 110 s), the embedded database's connections after 30 s.
SETTLE=120
TCK=$(getconf CLK_TCK)

MOCK=$(free_port); PASS=$(free_port); GW=$(free_port)
taskset -c 0 target/release/mock-upstream --port "$MOCK" --chunks 20 & PIDS+=($!)
wait_port "$MOCK"
taskset -c 1 target/release/passthrough --port "$PASS" --upstream "127.0.0.1:$MOCK" & PIDS+=($!); PASS_PID=$!
# config.yaml for a gateway; $1 = extra general_settings lines.
gateway_config() {
cat <<YAML
model_list:
$(bench_model_yaml "$MOCK")
  - model_name: bench-claude
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_base: http://127.0.0.1:$MOCK
      api_key: sk-upstream
  - model_name: big-tool
    litellm_params:
      model: openai/big-tool
      api_base: http://127.0.0.1:$MOCK/v1
      api_key: sk-upstream
  - model_name: big-tool-claude
    litellm_params:
      model: anthropic/big-tool
      api_base: http://127.0.0.1:$MOCK
      api_key: sk-upstream
general_settings:
  master_key: $KEY
  disable_spend_logs: ${BENCH_DISABLE_SPEND_LOGS:-false}
$1
YAML
}
gateway_config "" > "$WORK/config.yaml"
(cd "$WORK" && exec taskset -c 1 "$OLDPWD/target/release/litellm" --config config.yaml --host 127.0.0.1 --port "$GW" 2>"$WORK/gw.log") & PIDS+=($!); GW_PID=$!
wait_port "$PASS"; wait_port "$GW"
sleep 1
GW_IDLE_RSS=$(rss_kb "$GW_PID")
GW_IDLE_ANON=$(anon_kb "$GW_PID")
# Idle again after a few calls of each kind the run makes later (plain and streamed, a virtual
# key, Anthropic translation, escapes and non-ASCII text, the 1 MB tool-call streams), then
# idle as long as the reading after load is: pooled connections close after their idle
# timeouts and the workers' allocator caches are emptied after a quiet 5-10 s, in both
# readings. The code pages and lazily built tables a first call touches stay, so this is
# the baseline that "back to baseline after load" compares to.
warm() { # key body
  curl -sf -o /dev/null "http://127.0.0.1:$GW/v1/chat/completions" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' -d "$2"
}
WARM_KEY=$(curl -s -X POST "http://127.0.0.1:$GW/key/generate" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d '{"max_budget": 1000, "rpm_limit": 1000, "tpm_limit": 10000000}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
for _ in 1 2 3 4 5; do
  for s in false true; do
    msg='"messages":[{"role":"user","content":"hi"}]'
    warm "$KEY" "{\"model\":\"bench-model\",\"stream\":$s,$msg}"
    warm "$KEY" "{\"model\":\"bench-claude\",\"stream\":$s,$msg}"
    warm "$WARM_KEY" "{\"model\":\"bench-model\",\"stream\":$s,$msg}"
    warm "$KEY" "{\"model\":\"bench-model\",\"stream\":$s,\"messages\":[{\"role\":\"user\",\"content\":\"the café's \\\"report\\\"\\nsays\"}]}"
  done
done
for m in big-tool big-tool-claude; do
  warm "$KEY" "{\"model\":\"$m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"
done
sleep "$SETTLE"
GW_WARM_RSS=$(rss_kb "$GW_PID")
GW_WARM_ANON=$(anon_kb "$GW_PID")
GW_WARM_FILE=$(file_kb "$GW_PID")

post_lua "$KEY" > "$WORK/post.lua"

# One wrk run; prints "rps p50_us p99_us requests". LUA selects the request script.
LUA="$WORK/post.lua"
load() { # url conns secs
  taskset -c 0 wrk -t1 -c"$2" -d"$3"s --latency -s "$LUA" "$1" > "$WORK/wrk.out"
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def us(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % label, t, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 1, "ms": 1e3, "s": 1e6}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
n = int(re.search(r"(\d+) requests in", t).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errs:
    sys.exit("non-2xx responses: " + errs.group(1))
print(f"{rps:.0f} {us('50%'):.1f} {us('99%'):.1f} {n}")
PY
}

declare -A RPS CPU P50 P99 TTFT50 TTFT99
measure() { # name url pid
  local name=$1 url=$2 pid=${3:-}
  load "$url" 8 2 >/dev/null # warm-up
  local t0=0 t1=0
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  read -r rps _ _ n < <(load "$url" "$CONNS" "$DUR")
  [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
  RPS[$name]=$rps
  if [ -n "$pid" ]; then CPU[$name]=$(python3 -c "print(f'{($t1-$t0)/$TCK/$n*1e6:.1f}')"); else CPU[$name]="-"; fi
  read -r _ p50 p99 _ < <(load "$url" 1 "$DUR")
  P50[$name]=$p50; P99[$name]=$p99
  read -r t50 t99 _ _ < <(taskset -c 0 target/release/ttft --url "$url" --key "$KEY" --n 500 --model "${MODEL:-bench-model}")
  TTFT50[$name]=$t50; TTFT99[$name]=$t99
}

measure direct "http://127.0.0.1:$MOCK/v1/chat/completions"
measure passthrough "http://127.0.0.1:$PASS/v1/chat/completions" "$PASS_PID"
measure gateway "http://127.0.0.1:$GW/v1/chat/completions" "$GW_PID"
GW_PEAK_RSS=$(hwm_kb "$GW_PID")
sleep 5
GW_AFTER_RSS=$(rss_kb "$GW_PID")

# The same gateway with a virtual key that has a budget and rate limits: key lookup (cached),
# limiter, budget reservation and spend logging all on.
VKEY=$(curl -s -X POST "http://127.0.0.1:$GW/key/generate" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d '{"max_budget": 1000000, "rpm_limit": 1000000000, "tpm_limit": 1000000000000, "max_parallel_requests": 100000}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
sed "s/Bearer $KEY/Bearer $VKEY/" "$WORK/post.lua" > "$WORK/post-vkey.lua"
LUA="$WORK/post-vkey.lua"
KEY_SAVE=$KEY; KEY=$VKEY
measure vkey "http://127.0.0.1:$GW/v1/chat/completions" "$GW_PID"
KEY=$KEY_SAVE; LUA="$WORK/post.lua"

# An Anthropic deployment behind the OpenAI API: request, response and every stream event are
# translated (compare with the gateway row, which forwards OpenAI bodies).
sed 's/bench-model/bench-claude/' "$WORK/post.lua" > "$WORK/post-claude.lua"
LUA="$WORK/post-claude.lua"; MODEL=bench-claude
measure anthropic "http://127.0.0.1:$GW/v1/chat/completions" "$GW_PID"
LUA="$WORK/post.lua"; MODEL=bench-model

# Another gateway process, one at a time on core 1 (the first one idles): the same config
# with `disable_spend_logs: true` (spend still counted per key; no log row written), then, when
# the PostgreSQL 15 server binaries are installed, with its store in PostgreSQL (the production
# setup: spend-log rows are written by the database server, which runs on core 0 with the load).
declare -A URL PID
URL[passthrough]="http://127.0.0.1:$PASS/v1/chat/completions"; PID[passthrough]=$PASS_PID
URL[gateway]="http://127.0.0.1:$GW/v1/chat/completions"; PID[gateway]=$GW_PID
second_gateway() { # name config-dir; the process stays up (idle) for the rounds below
  local port pid
  port=$(free_port)
  (cd "$2" && exec taskset -c 1 "$OLDPWD/target/release/litellm" --config config.yaml --host 127.0.0.1 --port "$port" 2>"$2/gw.log") & PIDS+=($!); pid=$!
  wait_port "$port" || { cat "$2/gw.log"; exit 1; }
  sleep 1
  URL[$1]="http://127.0.0.1:$port/v1/chat/completions"; PID[$1]=$pid
  measure "$1" "${URL[$1]}" "$pid"
}
mkdir -p "$WORK/nolog"
gateway_config "" | sed 's/disable_spend_logs: .*/disable_spend_logs: true/' > "$WORK/nolog/config.yaml"
second_gateway nolog "$WORK/nolog"
ROWS="direct passthrough gateway vkey anthropic nolog"
if [ -x "$PG_BIN/postgres" ]; then
  if [ "$(id -u)" = 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  PG_DATA="$WORK/pgdata"; PG_PORT=$(free_port)
  mkdir -p "$PG_DATA" "$WORK/pg"
  chmod 755 "$WORK"
  [ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DATA"
  run_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  # fsync off: a throwaway database on a shared disk; the gateway's CPU is what is measured.
  run_pg taskset -c 0 "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c fsync=off" start >/dev/null
  gateway_config "  database_url: postgres://postgres@127.0.0.1:$PG_PORT/postgres" > "$WORK/pg/config.yaml"
  second_gateway postgres "$WORK/pg"
  ROWS="$ROWS postgres"
fi

# CPU per request again, interleaved. On a shared machine, speed can drift by 20 % from one minute
# to the next, so one window per target can decide a ratio by itself: five rounds of a few
# seconds per target, one target after another; the ratios reported are medians over rounds.
CPU_TARGETS="passthrough gateway nolog"
[ -n "${PID[postgres]:-}" ] && CPU_TARGETS="$CPU_TARGETS postgres"
# CPU µs per request of one short window at saturation against target $1.
cpu_round() {
  local t0 t1 n
  t0=$(cpu_ticks "${PID[$1]}")
  read -r _ _ _ n < <(load "${URL[$1]}" "$CONNS" "${BENCH_ROUND:-4}")
  t1=$(cpu_ticks "${PID[$1]}")
  python3 -c "print(f'{($t1-$t0)/$TCK/$n*1e6:.1f}')"
}
declare -A ROUND_CPU
for _ in 1 2 3 4 5; do
  for t in $CPU_TARGETS; do
    ROUND_CPU[$t]+="$(cpu_round "$t") "
  done
done

# The same with a long conversation (`long_lua`, about 50 kB): what the gateway does per byte
# (parse, check, write the upstream body) against a hop that only copies bytes. Three rounds.
long_lua "$KEY" > "$WORK/long.lua"
LUA="$WORK/long.lua"
declare -A LONG_CPU
for _ in 1 2 3; do
  for t in passthrough gateway; do
    LONG_CPU[$t]+="$(cpu_round "$t") "
  done
done
LUA="$WORK/post.lua"

# Latency at concurrency 1 and time to first token, interleaved the same way (pass-through,
# then gateway, five times): the single windows above sit minutes apart, and on a shared machine
# the two proxies' c=1 figures moved by hundreds of µs between runs.
declare -A ROUND_P50 ROUND_P99 ROUND_T50
for _ in 1 2 3 4 5; do
  for t in passthrough gateway; do
    read -r _ p50 p99 _ < <(load "${URL[$t]}" 1 "${BENCH_ROUND:-4}")
    read -r t50 _ _ _ < <(taskset -c 0 target/release/ttft --url "${URL[$t]}" --key "$KEY" --n 300 --model bench-model)
    ROUND_P50[$t]+="$p50 "; ROUND_P99[$t]+="$p99 "; ROUND_T50[$t]+="$t50 "
  done
done

# A 1 MB tool-call argument streamed: as one OpenAI event arriving in 1 KB reads, and as 1,024
# Anthropic events. Linear decoding keeps both near the time to move 1 MB.
big() { # label url model
  python3 - "$2" "$3" "$KEY" "$1" <<'PY'
import json, sys, time, urllib.request
url, model, key, label = sys.argv[1:]
body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}, separators=(",", ":")).encode()
times = []
for _ in range(5):
    req = urllib.request.Request(url, body, {"content-type": "application/json", "authorization": "Bearer " + key})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        n = len(r.read())
    times.append((time.perf_counter() - t) * 1000)
print(f"{label}: {min(times):.1f} ms best of 5, {n} bytes to the client")
PY
}
BIG_OUT=$(big "1 MB tool call, OpenAI event via pass-through" "http://127.0.0.1:$PASS/v1/chat/completions" big-tool
  big "1 MB tool call, OpenAI event via gateway" "http://127.0.0.1:$GW/v1/chat/completions" big-tool
  big "1 MB tool call, 1,024 Anthropic events via gateway (translated)" "http://127.0.0.1:$GW/v1/chat/completions" big-tool-claude)

# Idle connections close after their timeouts: memory is read again once they have.
sleep "$SETTLE"
GW_LATE_RSS=$(rss_kb "$GW_PID")
GW_LATE_ANON=$(anon_kb "$GW_PID")
GW_LATE_FILE=$(file_kb "$GW_PID")

echo
echo "| target | RPS (c=$CONNS, 1 core) | CPU µs/request | p50 µs (c=1) | p99 µs (c=1) | TTFT p50 ms | TTFT p99 ms |"
echo "|---|---|---|---|---|---|---|"
for t in $ROWS; do
  echo "| $t | ${RPS[$t]} | ${CPU[$t]} | ${P50[$t]} | ${P99[$t]} | ${TTFT50[$t]} | ${TTFT99[$t]} |"
done
python3 - <<PY
p50d, p99d = ${P50[direct]}, ${P99[direct]}
pt = dict(cpu=${CPU[passthrough]}, p50=${P50[passthrough]}, p99=${P99[passthrough]}, t50=${TTFT50[passthrough]})
gw = dict(cpu=${CPU[gateway]}, p50=${P50[gateway]}, p99=${P99[gateway]}, t50=${TTFT50[gateway]})
print()
print(f"added p50 vs direct: pass-through {pt['p50']-p50d:.1f} µs, gateway {gw['p50']-p50d:.1f} µs")
print(f"added p99 vs direct: pass-through {pt['p99']-p99d:.1f} µs, gateway {gw['p99']-p99d:.1f} µs")
print(f"CPU per request: gateway / pass-through = {gw['cpu']/pt['cpu']:.2f}x (target <= 2x)")
print(f"p50 at c=1: gateway - pass-through = {gw['p50']-pt['p50']:.1f} µs (target <= 50 µs)")
print(f"p99 at c=1: gateway / pass-through = {gw['p99']/pt['p99']:.2f}x (target <= 1.5x)")
print(f"TTFT p50: gateway - pass-through = {(gw['t50']-pt['t50'])*1000:.1f} µs (target <= 50 µs)")
vk = dict(cpu=${CPU[vkey]}, p50=${P50[vkey]}, p99=${P99[vkey]})
print(f"virtual key + budget + limits + spend vs master key: p50 {vk['p50']-gw['p50']:+.1f} µs (target <= 100 µs), CPU {vk['cpu']-gw['cpu']:+.1f} µs/request")
an = dict(cpu=${CPU[anthropic]}, p50=${P50[anthropic]}, p99=${P99[anthropic]}, t50=${TTFT50[anthropic]})
print(f"Anthropic-backed chat vs OpenAI-backed: p50 {an['p50']-gw['p50']:+.1f} µs, CPU {an['cpu']-gw['cpu']:+.1f} µs/request, TTFT p50 {(an['t50']-gw['t50'])*1000:+.1f} µs")
no = dict(cpu=${CPU[nolog]}, p50=${P50[nolog]})
print(f"spend logs off (disable_spend_logs): CPU per request / pass-through = {no['cpu']/pt['cpu']:.2f}x, p50 at c=1 - pass-through = {no['p50']-pt['p50']:.1f} µs")
pg = "${CPU[postgres]:-}"
if pg:
    print(f"PostgreSQL store: CPU per request / pass-through = {float(pg)/pt['cpu']:.2f}x (the gateway process; the database's own CPU is not in it)")
import statistics
rounds = {}
for part in """$(for t in $CPU_TARGETS; do echo "$t:${ROUND_CPU[$t]}"; done)""".strip().splitlines():
    name, vals = part.split(":", 1)
    rounds[name] = [float(x) for x in vals.split()]
print("CPU µs/request, interleaved rounds: " + "; ".join(f"{t} {' '.join(f'{v:.1f}' for v in vs)}" for t, vs in rounds.items()))
for t in rounds:
    if t != "passthrough":
        ratios = [g / p for g, p in zip(rounds[t], rounds["passthrough"])]
        print(f"  {t} / pass-through, median of rounds: {statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
long_pt, long_gw = [float(x) for x in "${LONG_CPU[passthrough]}".split()], [float(x) for x in "${LONG_CPU[gateway]}".split()]
long_r = [g / p for g, p in zip(long_gw, long_pt)]
print(f"long conversation (about 50 kB per request): CPU µs/request pass-through {' '.join(f'{v:.1f}' for v in long_pt)}; gateway {' '.join(f'{v:.1f}' for v in long_gw)}; gateway / pass-through, median of rounds: {statistics.median(long_r):.2f}x")
def series(text):
    return [float(x) for x in text.split()]
lp50 = {t: series(v) for t, v in (("passthrough", "${ROUND_P50[passthrough]}"), ("gateway", "${ROUND_P50[gateway]}"))}
lp99 = {t: series(v) for t, v in (("passthrough", "${ROUND_P99[passthrough]}"), ("gateway", "${ROUND_P99[gateway]}"))}
lt50 = {t: series(v) for t, v in (("passthrough", "${ROUND_T50[passthrough]}"), ("gateway", "${ROUND_T50[gateway]}"))}
d50 = [g - p for g, p in zip(lp50["gateway"], lp50["passthrough"])]
r99 = [g / p for g, p in zip(lp99["gateway"], lp99["passthrough"])]
dt50 = [(g - p) * 1000 for g, p in zip(lt50["gateway"], lt50["passthrough"])]
print("c=1 latency and TTFT, interleaved rounds (gateway vs pass-through), medians of rounds:")
print(f"  p50 added: {statistics.median(d50):.1f} µs (target <= 50 µs; rounds: {', '.join(f'{v:.0f}' for v in d50)})")
print(f"  p99 ratio: {statistics.median(r99):.2f}x (target <= 1.5x; rounds: {', '.join(f'{v:.2f}' for v in r99)})")
print(f"  TTFT p50 added: {statistics.median(dt50):.1f} µs (target <= 50 µs; rounds: {', '.join(f'{v:.0f}' for v in dt50)})")
print(f"gateway RSS: idle ${GW_IDLE_RSS} kB (target <= 20480 kB), idle after warm-up calls ${GW_WARM_RSS} kB, peak ${GW_PEAK_RSS} kB, 5 s after load ${GW_AFTER_RSS} kB, ${SETTLE} s after load ${GW_LATE_RSS} kB ({${GW_LATE_RSS} - ${GW_WARM_RSS}:+d} kB against idle after warm-up calls; target: back to baseline)")
print(f"  anonymous part: idle ${GW_IDLE_ANON} kB, after warm-up calls ${GW_WARM_ANON} kB, ${SETTLE} s after load ${GW_LATE_ANON} kB ({${GW_LATE_ANON} - ${GW_WARM_ANON}:+d} kB)")
print(f"  file-backed part (the binary's code and data pages, libraries): after warm-up calls ${GW_WARM_FILE} kB, ${SETTLE} s after load ${GW_LATE_FILE} kB ({${GW_LATE_FILE} - ${GW_WARM_FILE}:+d} kB)")
PY

echo
echo "$BIG_OUT"
echo
echo "per-operation costs (in-process):"
if command -v redis-server >/dev/null; then
  RP=$(free_port)
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & PIDS+=($!)
  wait_port "$RP"
  taskset -c 1 target/release/microbench --redis "redis://127.0.0.1:$RP"
else
  taskset -c 1 target/release/microbench
fi
