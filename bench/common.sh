# What the bench scripts share; sourced by them (after `cd` to the repository root), not run.
#
# Gives: WORK (a temporary directory, removed at exit), PIDS (processes to stop at exit; a
# script that starts something else defines `extra_cleanup`), free_port, wait_port,
# bench_model_yaml (the model entry every script puts in front of the mock upstream) and
# post_lua (the wrk script of the one-line chat call).

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
