#!/usr/bin/env bash
# Instructions per request under load, gateway vs bare pass-through (callgrind).
#
#   bash bench/instructions.sh            # about two minutes; needs valgrind
#
# A CPU-time ratio from `bench/run.sh` moves by ±10% between runs on a shared machine. The
# instructions a process runs per request barely move, so this is the figure to compare two
# builds by. Each target runs under callgrind (one output file per thread) in front of the mock
# upstream. It gets a short warm-up, then `wrk -c64` for BENCH_SECS seconds of one-line chat
# calls (master key, spend logs on, embedded SQLite store). The instructions counted in that
# window are divided by the requests `wrk` completed. Instructions are not time: copies, cache
# misses and kernel work do not show. Loopback only; every run is bounded.
#
# BENCH_GATEWAY=path/to/litellm profiles another gateway binary (for example a copy of an older
# build) against the same pass-through. BENCH_KEEP=dir keeps the callgrind files there.
# BENCH_STREAM=1 counts per streaming call instead: BENCH_STREAMS sequential streams of 20
# chunks each (`ttft`, 300 unless told), the cost of re-streaming chunk by chunk.
# BENCH_LONG=1 posts the long conversation (`long_lua`, about 50 kB) instead of the one-line
# call: the cost of reading, checking and forwarding a large request.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECS:-20}
KEY=sk-bench-master-key-0001
source bench/common.sh
OUT=${BENCH_KEEP:-$WORK/out}

command -v valgrind >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq valgrind >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q --workspace
GATEWAY=${BENCH_GATEWAY:-$PWD/target/release/litellm}

MOCK=$(free_port)
target/release/mock-upstream --port "$MOCK" --chunks 20 & PIDS+=($!)
wait_port "$MOCK"
cat > "$WORK/config.yaml" <<YAML
model_list:
$(bench_model_yaml "$MOCK")
general_settings:
  master_key: $KEY
YAML
if [ -n "${BENCH_LONG:-}" ]; then
  long_lua "$KEY" > "$WORK/post.lua"
else
  post_lua "$KEY" > "$WORK/post.lua"
fi

declare -A PER_CALL
for name in passthrough gateway; do
  PORT=$(free_port)
  mkdir -p "$OUT/$name"
  VG=(valgrind --tool=callgrind --separate-threads=yes
    "--callgrind-out-file=$OUT/$name/callgrind.out.%p")
  if [ "$name" = passthrough ]; then
    "${VG[@]}" target/release/passthrough --port "$PORT" --upstream "127.0.0.1:$MOCK" \
      2>"$OUT/$name/valgrind.log" & VP=$!
  else
    (cd "$WORK" && exec "${VG[@]}" "$GATEWAY" --config config.yaml --host 127.0.0.1 \
      --port "$PORT" 2>"$OUT/$name/valgrind.log") & VP=$!
  fi
  PIDS+=($VP)
  # Under valgrind a process takes many seconds to start listening.
  wait_port "$PORT" 60
  url="http://127.0.0.1:$PORT/v1/chat/completions"
  wrk -t1 -c8 -d5s -s "$WORK/post.lua" "$url" >/dev/null
  sleep 2
  callgrind_control -z "$VP" >/dev/null 2>&1
  if [ -n "${BENCH_STREAM:-}" ]; then
    streams=${BENCH_STREAMS:-300}
    target/release/ttft --url "$url" --key "$KEY" --n "$streams" >/dev/null
    # `ttft` makes 20 warm-up calls of its own before the ones it times.
    echo "$((streams + 20)) requests in" > "$WORK/wrk.out"
  else
    wrk -t1 -c64 -d"${SECS}s" -s "$WORK/post.lua" "$url" > "$WORK/wrk.out"
  fi
  # Let the spend writer finish the window's batches before the counts are taken.
  sleep 3
  callgrind_control -d "$VP" >/dev/null 2>&1
  sleep 1
  kill "$VP"; wait "$VP" 2>/dev/null || true
  if grep -q 'Non-2xx' "$WORK/wrk.out"; then
    echo "$name: $(grep 'Non-2xx' "$WORK/wrk.out")" >&2
    exit 1
  fi
  n=$(grep -o '[0-9]* requests in' "$WORK/wrk.out" | awk '{print $1}')
  # The dump's per-thread files (`.1-NN`) hold the window; each starts with its total.
  total=$(cat "$OUT/$name"/callgrind.out.*.1-* | awk '/^summary:/ {s += $2} END {print s}')
  PER_CALL[$name]=$((total / n))
  echo "$name: $n ${BENCH_STREAM:+streaming }requests, ${PER_CALL[$name]} instructions per request"
done
python3 -c "print('gateway / pass-through: %.2fx' % (${PER_CALL[gateway]} / ${PER_CALL[passthrough]}))"
