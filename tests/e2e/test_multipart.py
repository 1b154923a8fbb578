"""The official OpenAI SDK's multipart calls against the gateway binary:
`client.audio.transcriptions.create(...)` and `client.images.edit(...)`, to a mock upstream
that reads the forms it receives, and to offline `mock_response` deployments."""

import io
import json
import struct
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
import yaml

from conftest import MASTER_KEY, Gateway

PNG = b"\x89PNG\r\n\x1a\n" + b"first-image"
JPEG = b"\xff\xd8\xff" + b"second-image"


def wav(seconds, rate=8000):
    """A silent 16-bit mono PCM WAV."""
    data = b"\0\0" * int(rate * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def parse_form(content_type, body):
    """A multipart body as a list of (name, filename, content type, bytes)."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = []
    for part in msg.iter_parts():
        parts.append((part.get_param("name", header="content-disposition"), part.get_filename(),
                      part.get_content_type() if part.get_filename() else None, part.get_payload(decode=True)))
    return parts


class FormMock(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        parts = parse_form(self.headers["content-type"], body)
        self.server.forms.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "parts": parts})
        fields = {name: data.decode() for name, filename, _, data in parts if filename is None}
        if self.path.endswith("/audio/transcriptions"):
            answer = {"task": "transcribe", "language": "english", "duration": 4.0, "text": "hello from the upstream",
                      "segments": [{"id": 0, "start": 0.0, "end": 4.0, "text": "hello from the upstream"}]}
            if fields.get("response_format") != "verbose_json":
                answer = {"text": "hello from the upstream"}
        else:
            n = int(fields.get("n", "1"))
            answer = {"created": 1, "data": [{"b64_json": "aGF0"} for _ in range(n)],
                      "usage": {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
                                "output_tokens": 1056, "total_tokens": 1106}}
        out = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture(scope="module")
def form_mock():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FormMock)
    server.forms = []
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def client(form_mock, tmp_path_factory):
    base = f"http://127.0.0.1:{form_mock.server_address[1]}/v1"
    cfg = {
        "model_list": [
            {"model_name": "whisper", "litellm_params": {"model": "openai/whisper-1", "api_base": base, "api_key": "sk-up"}},
            {"model_name": "gpt-image", "litellm_params": {"model": "openai/gpt-image-1", "api_base": base, "api_key": "sk-up"}},
            {"model_name": "offline-whisper",
             "litellm_params": {"model": "openai/whisper-1", "mock_response": "offline transcript"}},
            {"model_name": "offline-edit",
             "litellm_params": {"model": "openai/gpt-image-1", "mock_response": "https://images.example/edited.png"}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_key": "k"}},
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0},
    }
    path = tmp_path_factory.mktemp("multipart") / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = Gateway(str(path), workdir=str(path.parent))
    yield openai.OpenAI(base_url=gw.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)
    gw.stop()


def test_transcription_reaches_the_upstream_as_a_form(client, form_mock):
    audio = wav(1.5)
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper", file=("speech.wav", audio, "audio/wav"), language="en",
        timestamp_granularities=["word", "segment"], response_format="verbose_json",
    )
    r = raw.parse()
    assert r.text == "hello from the upstream"
    assert r.duration == 4.0
    assert raw.headers.get("x-litellm-call-id")
    assert raw.headers["x-litellm-model-group"] == "whisper"
    # whisper-1: the answer's 4 seconds at $0.0001 a second.
    assert abs(float(raw.headers["x-litellm-response-cost"]) - 4 * 0.0001) < 1e-12
    sent = form_mock.forms[-1]
    assert sent["path"] == "/v1/audio/transcriptions"
    assert sent["headers"]["authorization"] == "Bearer sk-up"
    fields = [(name, data) for name, filename, _, data in sent["parts"] if filename is None]
    assert ("model", b"whisper-1") in fields
    assert ("language", b"en") in fields
    assert [d for n, d in fields if n == "timestamp_granularities[]"] == [b"word", b"segment"]
    files = [(name, filename, data) for name, filename, _, data in sent["parts"] if filename is not None]
    assert files == [("file", "speech.wav", audio)]


def test_transcription_without_a_format_is_plain(client, form_mock):
    # The SDK's default (`json`) answer; the gateway asked whisper for `verbose_json`, as
    # LiteLLM does, and answers with what came back.
    r = client.audio.transcriptions.create(model="whisper", file=io.BytesIO(wav(0.5)))
    assert r.text == "hello from the upstream"
    fields = {name: data for name, filename, _, data in form_mock.forms[-1]["parts"] if filename is None}
    assert fields["response_format"] == b"verbose_json"


def test_transcription_offline(client):
    raw = client.audio.transcriptions.with_raw_response.create(
        model="offline-whisper", file=("clip.wav", wav(2.0), "audio/wav")
    )
    assert raw.parse().text == "offline transcript"
    # Priced by the file's two seconds, as a real whisper-1 call would be.
    assert abs(float(raw.headers["x-litellm-response-cost"]) - 2 * 0.0001) < 1e-12


def test_image_edit_reaches_the_upstream_as_a_form(client, form_mock):
    raw = client.images.with_raw_response.edit(
        model="gpt-image", image=[("a.png", PNG, "image/png"), ("b.jpg", JPEG, "image/jpeg")],
        mask=("mask.png", PNG, "image/png"), prompt="add a hat", n=2, size="1024x1024",
    )
    r = raw.parse()
    assert [d.b64_json for d in r.data] == ["aGF0", "aGF0"]
    # gpt-image-1: 50 text tokens in, 1056 image tokens out.
    assert abs(float(raw.headers["x-litellm-response-cost"]) - (50 * 5e-06 + 1056 * 4e-05)) < 1e-12
    sent = form_mock.forms[-1]
    assert sent["path"] == "/v1/images/edits"
    fields = {name: data for name, filename, _, data in sent["parts"] if filename is None}
    assert fields["model"] == b"gpt-image-1"
    assert fields["prompt"] == b"add a hat"
    assert fields["n"] == b"2"
    files = [(name, ctype, data) for name, filename, ctype, data in sent["parts"] if filename is not None]
    assert files == [("image[]", "image/png", PNG), ("image[]", "image/jpeg", JPEG), ("mask", "image/png", PNG)]


def test_image_edit_offline(client):
    r = client.images.edit(model="offline-edit", image=("a.png", PNG, "image/png"), prompt="x")
    assert r.data[0].url == "https://images.example/edited.png"


def test_multipart_errors_are_sdk_exceptions(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="no-such-model", file=("a.wav", wav(0.1)))
    assert "no-such-model" in info.value.response.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="claude", file=("a.wav", wav(0.1)))
    assert "does not support audio transcription" in info.value.response.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        client.images.edit(model="claude", image=("a.png", PNG), prompt="x")
