#!/usr/bin/env bash
# Virtual key vs master key at a steady 1,000 requests per second (open loop).
#
#   bash bench/paced.sh            # about a minute
#
# One gateway (pinned to core 1, embedded SQLite store, spend logs on) in front of the mock
# upstream; the paced load generator and the mock share core 0. Alternates the master key and
# a virtual key that has a budget, rate limits and a parallel limit (key lookup from cache,
# limiter, budget reservation, spend written in batches), ROUNDS times each, and prints each
# run and the difference of the median p50s. Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_RATE:-1000}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
KEY=sk-bench-master-key-0001
source bench/common.sh

cargo build --release -q --workspace

MOCK=$(free_port); GW=$(free_port)
taskset -c 0 target/release/mock-upstream --port "$MOCK" --chunks 20 & PIDS+=($!)
cat > "$WORK/config.yaml" <<YAML
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK/v1
      api_key: sk-upstream
      # Priced, so the virtual key's budget reservation and spend do real arithmetic.
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: $KEY
YAML
(cd "$WORK" && exec taskset -c 1 "$OLDPWD/target/release/litellm" --config config.yaml --host 127.0.0.1 --port "$GW" 2>"$WORK/gw.log") & PIDS+=($!)
wait_port "$MOCK"; wait_port "$GW"
VKEY=$(curl -s -X POST "http://127.0.0.1:$GW/key/generate" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d '{"max_budget": 1000000, "rpm_limit": 1000000000, "tpm_limit": 1000000000000, "max_parallel_requests": 100000}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

URL="http://127.0.0.1:$GW/v1/chat/completions"
echo "rate=$RATE/s secs=$SECS rounds=$ROUNDS"
echo "run sent ok errors p50_us p90_us p99_us max_us achieved_rps send_late_p99_us"
: > "$WORK/master"; : > "$WORK/vkey"
for r in $(seq 1 "$ROUNDS"); do
  for who in master vkey; do
    k=$KEY; [ "$who" = vkey ] && k=$VKEY
    out=$(taskset -c 0 target/release/paced --url "$URL" --key "$k" --rate "$RATE" --secs "$SECS")
    echo "$who-$r $out"
    echo "$out" | awk '{print $4}' >> "$WORK/$who"
  done
done
python3 - "$WORK/master" "$WORK/vkey" <<'PY'
import statistics, sys
m = statistics.median(float(x) for x in open(sys.argv[1]))
v = statistics.median(float(x) for x in open(sys.argv[2]))
print(f"median p50: master key {m:.0f} us, virtual key {v:.0f} us, difference {v - m:+.0f} us (target <= +100 us)")
PY
curl -s "http://127.0.0.1:$GW/key/info?key=$VKEY" -H "Authorization: Bearer $KEY" \
  | python3 -c 'import json,sys; print("virtual key spend recorded: %.6f" % json.load(sys.stdin)["info"]["spend"])'
