"""The official SDKs on the provider pass-through routes: the Anthropic SDK pointed at
`{gateway}/anthropic` and the OpenAI SDK at `{gateway}/openai/v1`, with a virtual key; the
gateway forwards to the (mock) provider with its own credentials and logs the spend."""

import time

import anthropic
import openai
import pytest

from conftest import Gateway, write_config
from test_virtual_keys import HI, admin


@pytest.fixture(scope="module")
def pt_gateway(mock_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("passthrough")
    cfg = tmp / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1], {"general_settings": {"proxy_batch_write_at": 1}})
    root = f"http://127.0.0.1:{mock_upstream.server_address[1]}"
    env = {
        "ANTHROPIC_API_BASE": root,
        "ANTHROPIC_API_KEY": "sk-ant-proxy-credential",
        "OPENAI_API_BASE": root,
        "OPENAI_API_KEY": "sk-openai-proxy-credential",
    }
    gw = Gateway(str(cfg), env=env, workdir=str(tmp))
    yield gw
    gw.stop()


def spend_rows(gw, key, want):
    deadline = time.time() + 10
    rows = []
    while time.time() < deadline:
        rows = admin(gw, f"/spend/logs?api_key={key}")
        if len(rows) >= want:
            return rows
        time.sleep(0.2)
    return rows


def test_anthropic_sdk_through_the_pass_through_route(pt_gateway, mock_upstream):
    key = admin(pt_gateway, "/key/generate", {})["key"]
    client = anthropic.Anthropic(base_url=pt_gateway.base_url + "/anthropic", api_key=key, max_retries=0, timeout=20)
    m = client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=HI)
    assert m.content[0].text == "Hello from Claude"
    assert m.usage.input_tokens == 9
    sent = mock_upstream.requests[-1]
    assert sent["path"] == "/v1/messages"
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["x-api-key"] == "sk-ant-proxy-credential"
    assert key not in str(sent["headers"]), "the virtual key is not forwarded"
    assert headers["anthropic-version"]

    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=HI) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Hello from Claude"
    assert final.usage.output_tokens == 4

    rows = spend_rows(pt_gateway, key, 2)
    assert len(rows) == 2
    for row in rows:
        assert row["call_type"] == "pass_through_endpoint"
        assert row["model"] == "claude-haiku-4-5"
        assert row["spend"] > 0


def test_openai_sdk_through_the_pass_through_route(pt_gateway, mock_upstream):
    key = admin(pt_gateway, "/key/generate", {})["key"]
    client = openai.OpenAI(base_url=pt_gateway.base_url + "/openai/v1", api_key=key, max_retries=0, timeout=20)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert r.choices[0].message.content == "Hello from mock"
    sent = mock_upstream.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == "Bearer sk-openai-proxy-credential"
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from mock"


def test_pass_through_refuses_bad_keys_and_relays_upstream_errors(pt_gateway):
    bad = anthropic.Anthropic(base_url=pt_gateway.base_url + "/anthropic", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    key = admin(pt_gateway, "/key/generate", {})["key"]
    client = anthropic.Anthropic(base_url=pt_gateway.base_url + "/anthropic", api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as e:
        client.messages.create(model="err-429", max_tokens=8, messages=HI)
    assert e.value.body["error"]["type"] == "rate_limit_error"
