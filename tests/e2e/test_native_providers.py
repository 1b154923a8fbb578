"""The OpenAI SDK (and the Anthropic SDK) against native providers behind the gateway: Gemini,
Bedrock (SigV4, binary event streams), Cohere and Ollama, streaming and not."""

import pytest

NATIVE = [("gemini", "Hello from Gemini"), ("bedrock", "Hello from Bedrock"),
          ("cohere", "Hello from Cohere"), ("ollama", "Hello from Ollama")]


@pytest.mark.parametrize("model,text", NATIVE)
def test_chat(client, model, text):
    r = client.chat.completions.create(model=model, messages=[{"role": "system", "content": "be brief"},
                                                               {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == text
    assert r.choices[0].finish_reason == "stop"
    assert r.model == model
    assert r.usage.prompt_tokens == 6 and r.usage.completion_tokens == 3


@pytest.mark.parametrize("model,text", NATIVE)
def test_stream(client, model, text):
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage.total_tokens == 9


@pytest.mark.parametrize("model,text", NATIVE)
def test_anthropic_sdk_on_native_provider(anthropic_client, model, text):
    with anthropic_client.messages.stream(model=model, max_tokens=32, messages=[{"role": "user", "content": "hi"}]) as s:
        streamed = "".join(s.text_stream)
    assert streamed == text
