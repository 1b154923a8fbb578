"""End-to-end fixtures: a scriptable OpenAI-compatible mock upstream and the real gateway
binary started on free loopback ports.

The mock's behaviour is chosen by the upstream model name the gateway sends:
``err-<status>`` answers that status with an OpenAI error body, ``slow`` sleeps past the
deployment timeout, anything else answers normally (streaming when asked).
"""

import json
import os
import struct
import zlib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

MASTER_KEY = "sk-e2e-master-key-000001"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MockHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, obj, extra_headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        req = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "body": req, "headers": dict(self.headers)})
        model = req.get("model", "")
        if self.path.endswith("/v1/messages"):
            return self._anthropic(req, model)
        if ":generateContent" in self.path or ":streamGenerateContent" in self.path:
            return self._gemini(":stream" in self.path)
        if self.path.startswith("/model/"):
            return self._bedrock(self.path.endswith("/converse-stream"))
        if self.path == "/v2/chat":
            return self._cohere(req)
        if self.path == "/api/chat":
            return self._ollama(req)
        if model.startswith("err-"):
            status = int(model[4:])
            return self._json(
                status,
                {"error": {"message": f"mock failure {status}", "type": "mock", "param": None, "code": None}},
                {"retry-after": "0"} if status == 429 else None,
            )
        if model == "slow":
            time.sleep(3)
        if self.path.endswith("/embeddings"):
            inputs = req.get("input")
            n = len(inputs) if isinstance(inputs, list) else 1
            return self._json(
                200,
                {
                    "object": "list",
                    "model": model,
                    "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.25]} for i in range(n)],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )
        if not req.get("stream"):
            return self._json(
                200,
                {
                    "id": "chatcmpl-mock",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Hello from mock"}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                },
            )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(obj):
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model}
        send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for word in ["Hello", " from", " mock"]:
            send({**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (req.get("stream_options") or {}).get("include_usage"):
            send({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
        send(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


    def _anthropic(self, req, model):
        """Anthropic's Messages API: errors in Anthropic's envelope, text or tool use, SSE events."""
        if model.startswith("err-"):
            status = int(model[4:])
            kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}
            return self._json(status, {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": f"mock failure {status}"}})
        tool = model == "tool"
        usage = {"input_tokens": 9, "output_tokens": 4}
        if not req.get("stream"):
            content = [{"type": "text", "text": "Hello from Claude"}]
            if tool:
                content.append({"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}})
            return self._json(200, {"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                                    "content": content, "stop_reason": "tool_use" if tool else "end_turn",
                                    "stop_sequence": None, "usage": usage})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(name, obj):
            data = f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        send("message_start", {"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
             "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}})
        send("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        for word in ["Hello", " from", " Claude"]:
            send("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}})
        send("content_block_stop", {"type": "content_block_stop", "index": 0})
        if tool:
            send("content_block_start", {"type": "content_block_start", "index": 1,
                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}})
            for part in ['{"city": ', '"Paris"}']:
                send("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": part}})
            send("content_block_stop", {"type": "content_block_stop", "index": 1})
        send("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
             "usage": {"output_tokens": 4}})
        send("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


    def _chunked(self, content_type):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def write(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        return write

    def _end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _gemini(self, stream):
        usage = {"promptTokenCount": 6, "candidatesTokenCount": 3, "totalTokenCount": 9}
        if not stream:
            return self._json(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from Gemini"}]},
                                                    "finishReason": "STOP"}], "usageMetadata": usage})
        write = self._chunked("text/event-stream")
        for text, last in [("Hello", False), (" from", False), (" Gemini", True)]:
            ev = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]}
            if last:
                ev["candidates"][0]["finishReason"] = "STOP"
                ev["usageMetadata"] = usage
            write(b"data: " + json.dumps(ev).encode() + b"\r\n\r\n")
        self._end_chunked()

    def _bedrock(self, stream):
        """Converse, and ConverseStream as AWS event-stream frames (CRC32-checked)."""
        if not self.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential=AKIDE2E/"):
            return self._json(403, {"message": "The security token included in the request is invalid."})
        usage = {"inputTokens": 6, "outputTokens": 3, "totalTokens": 9}
        if not stream:
            return self._json(200, {"output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}},
                                    "stopReason": "end_turn", "usage": usage})

        def frame(event_type, payload):
            headers = b""
            for k, v in [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]:
                headers += bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
            body = json.dumps(payload).encode()
            total = 12 + len(headers) + len(body) + 4
            prelude = struct.pack(">II", total, len(headers))
            prelude += struct.pack(">I", zlib.crc32(prelude))
            msg = prelude + headers + body
            return msg + struct.pack(">I", zlib.crc32(msg))

        write = self._chunked("application/vnd.amazon.eventstream")
        write(frame("messageStart", {"role": "assistant"}))
        for text in ["Hello", " from", " Bedrock"]:
            write(frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}))
        write(frame("contentBlockStop", {"contentBlockIndex": 0}))
        write(frame("messageStop", {"stopReason": "end_turn"}))
        write(frame("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
        self._end_chunked()

    def _cohere(self, req):
        if not req.get("stream"):
            return self._json(200, {"id": "co", "finish_reason": "COMPLETE",
                                    "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello from Cohere"}]},
                                    "usage": {"tokens": {"input_tokens": 6, "output_tokens": 3}}})
        write = self._chunked("text/event-stream")
        events = [{"type": "message-start", "id": "co", "delta": {"message": {"role": "assistant"}}}]
        events += [{"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}} for t in ["Hello", " from", " Cohere"]]
        events.append({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 6, "output_tokens": 3}}}})
        for e in events:
            write(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode())
        self._end_chunked()

    def _ollama(self, req):
        def piece(text, done):
            o = {"model": "llama3", "message": {"role": "assistant", "content": text}, "done": done}
            if done:
                o.update({"done_reason": "stop", "prompt_eval_count": 6, "eval_count": 3})
            return o
        if not req.get("stream"):
            return self._json(200, piece("Hello from Ollama", True))
        write = self._chunked("application/x-ndjson")
        for text, done in [("Hello", False), (" from", False), (" Ollama", False), ("", True)]:
            write(json.dumps(piece(text, done)).encode() + b"\n")
        self._end_chunked()


@pytest.fixture(scope="session")
def mock_upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MockHandler)
    server.requests = []
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()


UPSTREAM_MODELS = ["gpt-4o-mini", "text-embedding-3-small", "err-400", "err-401", "err-403", "err-404",
                   "err-422", "err-429", "err-500", "err-503", "slow"]


def write_config(path, mock_port, extra=None):
    model_list = []
    for m in UPSTREAM_MODELS:
        entry = {
            "model_name": m,
            "litellm_params": {
                "model": f"openai/{m}",
                "api_base": f"http://127.0.0.1:{mock_port}/v1",
                "api_key": "sk-upstream",
                "timeout": 1.5,
            },
        }
        if m.startswith("text-embedding"):
            entry["model_info"] = {"mode": "embedding"}
        model_list.append(entry)
    model_list.append({"model_name": "offline", "litellm_params": {"model": "openai/gpt-4o", "mock_response": "canned reply"}})
    # Image, moderation and speech models answered by mock_response (no upstream).
    model_list += [
        {"model_name": "offline-image",
         "litellm_params": {"model": "azure/dall-e-3", "api_base": "http://127.0.0.1:9",
                            "mock_response": "https://images.example/cat.png"}},
        {"model_name": "offline-moderation",
         "litellm_params": {"model": "openai/omni-moderation-latest", "mock_response": "ok"}},
        {"model_name": "offline-speech", "litellm_params": {"model": "openai/tts-1", "mock_response": "ok"}},
    ]
    # Anthropic deployments on the same mock (it answers Anthropic's API under /v1/messages).
    for name, upstream in [("claude", "claude-haiku-4-5"), ("claude-tool", "tool"), ("claude-err-429", "err-429"),
                           ("claude-err-401", "err-401"), ("claude-err-400", "err-400")]:
        model_list.append({
            "model_name": name,
            "litellm_params": {"model": f"anthropic/{upstream}", "api_base": f"http://127.0.0.1:{mock_port}", "api_key": "sk-ant"},
        })
    # Native providers on the same mock: Gemini, Bedrock (SigV4), Cohere, Ollama.
    root = f"http://127.0.0.1:{mock_port}"
    model_list += [
        {"model_name": "gemini", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_key": "g", "api_base": root}},
        {"model_name": "bedrock", "litellm_params": {"model": "bedrock/amazon.nova-lite-v1:0", "aws_access_key_id": "AKIDE2E",
                                                       "aws_secret_access_key": "s", "aws_region_name": "us-east-1",
                                                       "aws_bedrock_runtime_endpoint": root}},
        {"model_name": "cohere", "litellm_params": {"model": "cohere/command-r", "api_key": "c", "api_base": root}},
        {"model_name": "ollama", "litellm_params": {"model": "ollama_chat/llama3", "api_base": root}},
    ]
    # One group with a dead deployment and a healthy one: retries must hide the dead one.
    for upstream in ["err-500", "gpt-4o-mini"]:
        model_list.append({
            "model_name": "half-down",
            "litellm_params": {"model": f"openai/{upstream}", "api_base": f"http://127.0.0.1:{mock_port}/v1", "api_key": "sk-upstream"},
        })
    # Errors are asserted as they come from the upstream; retries are exercised per request.
    cfg = {
        "model_list": model_list,
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0},
    }
    for k, v in (extra or {}).items():
        cfg.setdefault(k, {}).update(v)
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)


class Gateway:
    def __init__(self, config_path, env=None, workdir=None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        binary = os.environ.get("LITELLM_BIN", os.path.join(ROOT, "target", "debug", "litellm"))
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary, "--config", config_path, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
        deadline = time.time() + float(os.environ.get("LITELLM_START_TIMEOUT", "30"))
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health/liveliness", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not become ready:\n{self.logs()}")

    def logs(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def gateway(mock_upstream, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("gw") / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1])
    gw = Gateway(str(cfg), workdir=str(cfg.parent))
    yield gw
    gw.stop()


@pytest.fixture()
def client(gateway):
    from openai import OpenAI

    return OpenAI(base_url=gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)


@pytest.fixture()
def anthropic_client(gateway):
    from anthropic import Anthropic

    return Anthropic(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)
