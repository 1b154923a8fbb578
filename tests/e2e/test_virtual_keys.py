"""Virtual keys with the official OpenAI SDK: a key minted with curl-style management calls
works as the SDK's api_key, with model restrictions, blocking, expiry, budgets, and spend that
survives a restart of the gateway."""

import json
import time
import urllib.request

import openai
import pytest

from conftest import MASTER_KEY, Gateway, write_config


def admin(gw, path, body=None):
    req = urllib.request.Request(
        gw.base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def sdk(gw, key):
    return openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=20)


HI = [{"role": "user", "content": "hi"}]


@pytest.fixture()
def fresh_gateway(mock_upstream, tmp_path):
    cfg = tmp_path / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1], {"general_settings": {"proxy_batch_write_at": 1}})
    gw = Gateway(str(cfg), workdir=str(tmp_path))
    yield gw, cfg, tmp_path
    gw.stop()


def test_model_restriction_block_and_delete(fresh_gateway):
    gw, _, _ = fresh_gateway
    key = admin(gw, "/key/generate", {"models": ["gpt-4o-mini"]})["key"]
    client = sdk(gw, key)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="offline", messages=HI)
    admin(gw, "/key/block", {"key": key})
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    admin(gw, "/key/unblock", {"key": key})
    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    admin(gw, "/key/delete", {"keys": [key]})
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)


def test_expiry(fresh_gateway):
    gw, _, _ = fresh_gateway
    key = admin(gw, "/key/generate", {"duration": "1s"})["key"]
    sdk(gw, key).chat.completions.create(model="offline", messages=HI)
    time.sleep(1.3)
    with pytest.raises(openai.AuthenticationError) as info:
        sdk(gw, key).chat.completions.create(model="offline", messages=HI)
    assert info.value.response.json()["error"]["type"] == "expired_key"


def test_budget_exhaustion(fresh_gateway):
    gw, _, _ = fresh_gateway
    # The offline model is priced as gpt-4o: 10 prompt + 20 completion tokens = $0.000225.
    key = admin(gw, "/key/generate", {"max_budget": 0.0004})["key"]
    client = sdk(gw, key)
    client.chat.completions.create(model="offline", messages=HI, max_tokens=5)
    client.chat.completions.create(model="offline", messages=HI, max_tokens=5)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="offline", messages=HI, max_tokens=5)
    assert info.value.response.json()["error"]["type"] == "budget_exceeded"


def test_spend_visible_and_kept_across_restart(fresh_gateway):
    gw, cfg, workdir = fresh_gateway
    key = admin(gw, "/key/generate", {"key_alias": "e2e"})["key"]
    raw = sdk(gw, key).chat.completions.with_raw_response.create(model="offline", messages=HI)
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(0.000225)
    time.sleep(1.5)
    info = admin(gw, f"/key/info?key={key}")["info"]
    assert info["spend"] == pytest.approx(0.000225)
    gw.stop()
    gw2 = Gateway(str(cfg), workdir=str(workdir))
    try:
        info = admin(gw2, f"/key/info?key={key}")["info"]
        assert info["spend"] == pytest.approx(0.000225)
        assert info["key_alias"] == "e2e"
        sdk(gw2, key).chat.completions.create(model="offline", messages=HI)
    finally:
        gw2.stop()
