# What the bench scripts share; sourced by them (after `cd` to the repository root), not run.
#
# Gives: WORK (a temporary directory, removed at exit), PIDS (processes to stop at exit; a
# script that starts something else defines `extra_cleanup`), free_port, wait_port,
# bench_model_yaml (the model entry every script puts in front of the mock upstream) and
# post_lua (the wrk script of the one-line chat call) and long_lua (the same for a long
# conversation).

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT (5 s unless told).
wait_port() {
  local tries=$(( ${2:-5} * 20 ))
  for _ in $(seq 1 "$tries"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

# bench_model_yaml MOCK_PORT: the `bench-model` entry of a model_list (OpenAI format, the mock
# upstream at MOCK_PORT).
bench_model_yaml() {
cat <<YAML
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$1/v1
      api_key: sk-upstream
YAML
}

# post_lua KEY: the wrk script posting a one-line chat call to `bench-model` with KEY.
post_lua() {
cat <<LUA
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
LUA
}

# long_lua KEY: the wrk script posting a long conversation to `bench-model` with KEY (40
# messages, about 50 kB, written the way the OpenAI SDK writes JSON: non-ASCII as is, line
# breaks and quotes escaped).
long_lua() {
python3 - "$1" <<'PY'
import json, sys
msgs = [{"role": "system", "content": "You are a helpful assistant.\nAnswer briefly and cite \"sources\".\n" * 12}]
for i in range(40):
    line = f"Point {i}: the café's report says \"growth\" was steady; see section {i}.\n"
    msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": line * 16})
body = json.dumps({"model": "bench-model", "messages": msgs, "temperature": 0.2}, ensure_ascii=False, separators=(",", ":"))
lua = ("wrk.method = \"POST\"\nwrk.body = " + json.dumps(body, ensure_ascii=False) + "\n"
       "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
       "wrk.headers[\"Authorization\"] = \"Bearer " + sys.argv[1] + "\"\n")
sys.stdout.write(lua)
print(f"long conversation body: {len(body.encode())} bytes", file=sys.stderr)
PY
}
