"""The official OpenAI SDK against the gateway: chat, streaming, embeddings, models, images,
moderations and speech, and each error surfacing as the SDK's matching exception class."""

import json

import openai
import pytest

from conftest import MASTER_KEY


def test_chat_completion(client):
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from mock"
    assert r.model == "gpt-4o-mini"
    assert r.usage.total_tokens == 8


def test_streaming(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from mock"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_streaming_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 8


def test_embeddings(client):
    r = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(r.data) == 2
    assert r.data[0].embedding == [0.5, 0.25]
    assert r.model == "text-embedding-3-small"


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small", "offline"} <= ids


def test_offline_mock_model(client):
    r = client.chat.completions.create(model="offline", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "canned reply"
    stream = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "canned reply"


def test_call_id_header(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers.get("x-litellm-call-id")
    assert raw.headers.get("x-litellm-model-id")


@pytest.mark.parametrize(
    "model,exc,status",
    [
        ("err-400", openai.BadRequestError, 400),
        ("err-401", openai.AuthenticationError, 401),
        ("err-403", openai.PermissionDeniedError, 403),
        ("err-404", openai.NotFoundError, 404),
        ("err-422", openai.UnprocessableEntityError, 422),
        ("err-429", openai.RateLimitError, 429),
        ("err-500", openai.InternalServerError, 500),
        ("err-503", openai.InternalServerError, 503),
    ],
)
def test_upstream_errors_map_to_sdk_exceptions(client, model, exc, status):
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status
    body = info.value.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["code"] == str(status)


def test_upstream_errors_while_streaming(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="err-429", messages=[{"role": "user", "content": "hi"}], stream=True
        )


def test_timeout_is_408(client):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 408


def test_unknown_model_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert "no-such-model" in info.value.response.json()["error"]["message"]


def test_wrong_gateway_key_is_authentication_error(gateway):
    bad = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="sk-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_bad_parameter_type_names_the_field(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_body={"temperature": "hot"}
        )
    assert info.value.response.json()["error"]["param"] == "temperature"


def test_one_of_two_deployments_down_gives_clean_answers(client):
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(
            model="half-down", messages=[{"role": "user", "content": "hi"}], extra_body={"num_retries": 2}
        )
        assert raw.parse().choices[0].message.content == "Hello from mock"
        assert int(raw.headers["x-litellm-attempted-retries"]) <= 1


def test_responses_api_offline(client):
    r = client.responses.create(model="offline", input="hi")
    assert r.output_text == "canned reply"
    assert r.usage.input_tokens == 36 and r.usage.output_tokens == 87
    events = list(client.responses.create(model="offline", input="hi", stream=True))
    assert [e.type for e in events][-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "canned reply"
    assert events[-1].response.output_text == "canned reply"
    # The id names the deployment that answered, so the routes on a stored response find it
    # (a mock deployment answers them offline).
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == "canned reply"
    assert client.responses.retrieve(events[-1].response.id).id == events[-1].response.id
    assert list(client.responses.input_items.list(r.id)) == []
    client.responses.delete(r.id)


def test_response_cache(mock_upstream, tmp_path):
    """With `litellm_settings.cache: true`, a repeated request is answered from the cache
    (same answer, `x-litellm-cache-key` set, no upstream call), plain and streamed."""
    from conftest import Gateway, write_config

    cfg = tmp_path / "config.yaml"
    write_config(str(cfg), mock_upstream.server_address[1], {"litellm_settings": {"cache": True}})
    gw = Gateway(str(cfg), workdir=str(tmp_path))
    try:
        client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)
        msgs = [{"role": "user", "content": "cache me, please"}]
        before = len(mock_upstream.requests)
        first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs)
        second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs)
        assert first.headers.get("x-litellm-cache-key") is None
        assert second.headers.get("x-litellm-cache-key")
        a, b = first.parse(), second.parse()
        assert (b.id, b.choices[0].message.content) == (a.id, a.choices[0].message.content)
        assert len(mock_upstream.requests) == before + 1

        def streamed():
            s = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in s if c.choices)

        text = streamed()
        assert text and streamed() == text
        assert len(mock_upstream.requests) == before + 2
    finally:
        gw.stop()


def test_images_offline(client):
    raw = client.images.with_raw_response.generate(model="offline-image", prompt="a cat", size="1024x1024")
    r = raw.parse()
    assert r.data[0].url == "https://images.example/cat.png"
    assert r.created > 0
    # azure/dall-e-3, standard quality, 1024x1024: the price map's per-pixel rate.
    assert abs(float(raw.headers["x-litellm-response-cost"]) - 4.19617e-08 * 1024 * 1024) < 1e-9


def test_moderations_offline(client):
    r = client.moderations.create(model="offline-moderation", input=["hello", "world"])
    assert len(r.results) == 2
    assert r.results[0].flagged is False
    assert r.results[0].categories.violence is False
    assert r.id.startswith("modr-")


def test_speech_offline(client):
    with client.audio.speech.with_streaming_response.create(
        model="offline-speech", input="hello world", voice="alloy"
    ) as r:
        assert r.headers["content-type"] == "audio/mpeg"
        audio = r.read()
    assert audio[:2] == b"\xff\xfb"
    # tts-1: ten characters (spaces are not counted) at $0.000015 each.
    assert abs(float(r.headers["x-litellm-response-cost"]) - 10 * 1.5e-05) < 1e-12


def test_images_of_a_chat_provider_are_refused(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="claude", prompt="a cat")
    assert "does not support image generation" in info.value.response.json()["error"]["message"]
