"""Customers (end users) with the official OpenAI SDK: the SDK's ``user=`` parameter names the
end user; the customer's budget, block and model allow-list set through ``/customer/*`` apply
to those calls, and the end user's spend lands on its row."""

import json
import time
import urllib.request

import openai
import pytest

from conftest import MASTER_KEY, Gateway, write_config

HI = [{"role": "user", "content": "hi"}]


def admin(gw, path, body=None):
    req = urllib.request.Request(
        gw.base_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture()
def gateway(mock_upstream, tmp_path):
    cfg = tmp_path / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1], {"general_settings": {"proxy_batch_write_at": 1}})
    gw = Gateway(str(cfg), workdir=str(tmp_path))
    yield gw
    gw.stop()


def test_customer_budget_block_and_models_with_the_sdk(gateway):
    gw = gateway
    key = admin(gw, "/key/generate", {})["key"]
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=20)
    # The offline model is priced as gpt-4o: one call costs $0.000225, so two fit in 0.0004.
    admin(gw, "/customer/new", {"user_id": "acme", "max_budget": 0.0004, "models": ["offline"]})

    client.chat.completions.create(model="offline", messages=HI, user="acme")
    client.chat.completions.create(model="offline", messages=HI, user="acme")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="offline", messages=HI, user="acme")
    err = info.value.response.json()["error"]
    assert err["type"] == "budget_exceeded"
    assert err["message"].startswith("ExceededBudget: End User=acme over budget.")

    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, user="acme")
    assert info.value.response.json()["error"]["type"] == "customer_model_access_denied"

    # Another end user is unaffected until blocked.
    client.chat.completions.create(model="offline", messages=HI, user="globex")
    admin(gw, "/customer/block", {"user_ids": ["globex"]})
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="offline", messages=HI, user="globex")
    assert info.value.response.json()["error"]["message"] == "User blocked from making LLM API Calls. User=globex"
    admin(gw, "/customer/unblock", {"user_ids": ["globex"]})
    client.chat.completions.create(model="offline", messages=HI, user="globex")

    # Spend reaches the customers' rows (globex was created by its first call).
    deadline = time.time() + 5
    while True:
        acme = admin(gw, "/customer/info?end_user_id=acme")
        globex = admin(gw, "/customer/info?end_user_id=globex")
        if acme["spend"] == pytest.approx(0.00045) and globex["spend"] == pytest.approx(0.00045):
            break
        assert time.time() < deadline, (acme, globex)
        time.sleep(0.2)
    assert acme["litellm_budget_table"]["max_budget"] == 0.0004
    assert globex["blocked"] is False
