"""The official Anthropic SDK on `/v1/messages` (native to Anthropic deployments, translated for
OpenAI ones), and the OpenAI SDK on Anthropic deployments: text, tools, streaming, errors."""

import anthropic
import openai
import pytest

TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
TOOLS_ANTHROPIC = [{"name": "weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.mark.parametrize("model", ["claude", "gpt-4o-mini"])
def test_messages_create(anthropic_client, model):
    m = anthropic_client.messages.create(model=model, max_tokens=64, system="be brief",
                                         messages=[{"role": "user", "content": "hi"}])
    assert m.type == "message" and m.role == "assistant"
    assert m.model == model
    assert m.content[0].type == "text"
    assert m.content[0].text in ("Hello from Claude", "Hello from mock")
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude", "gpt-4o-mini"])
def test_messages_stream(anthropic_client, model):
    with anthropic_client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text in ("Hello from Claude", "Hello from mock")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_messages_tool_use_native(anthropic_client):
    m = anthropic_client.messages.create(model="claude-tool", max_tokens=64, tools=TOOLS_ANTHROPIC,
                                         messages=[{"role": "user", "content": "weather in Paris?"}])
    assert m.stop_reason == "tool_use"
    tool = [b for b in m.content if b.type == "tool_use"][0]
    assert tool.name == "weather" and tool.input == {"city": "Paris"}
    with anthropic_client.messages.stream(model="claude-tool", max_tokens=64, tools=TOOLS_ANTHROPIC,
                                          messages=[{"role": "user", "content": "weather in Paris?"}]) as s:
        final = s.get_final_message()
    assert [b for b in final.content if b.type == "tool_use"][0].input == {"city": "Paris"}


def test_count_tokens(anthropic_client):
    r = anthropic_client.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
    assert r.input_tokens > 0


@pytest.mark.parametrize("model,exc", [("claude-err-429", anthropic.RateLimitError),
                                       ("claude-err-401", anthropic.AuthenticationError),
                                       ("claude-err-400", anthropic.BadRequestError),
                                       ("nope", anthropic.BadRequestError)])
def test_messages_errors(anthropic_client, model, exc):
    with pytest.raises(exc):
        anthropic_client.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "hi"}])


def test_bad_key_is_rejected(gateway):
    c = anthropic.Anthropic(base_url=gateway.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        c.messages.create(model="claude", max_tokens=8, messages=[{"role": "user", "content": "hi"}])


def test_openai_sdk_on_anthropic_deployment(client):
    r = client.chat.completions.create(model="claude", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from Claude"
    assert r.model == "claude"
    assert r.usage.prompt_tokens == 9 and r.usage.completion_tokens == 4
    r = client.chat.completions.create(model="claude-tool", tools=TOOLS_OPENAI, messages=[{"role": "user", "content": "weather?"}])
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].function.name == "weather"
    chunks = list(client.chat.completions.create(model="claude-tool", tools=TOOLS_OPENAI, stream=True,
                                                 messages=[{"role": "user", "content": "weather?"}]))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert args == '{"city": "Paris"}'
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Claude"


def test_openai_sdk_anthropic_errors(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="claude-err-429", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="claude-err-401", messages=[{"role": "user", "content": "hi"}])
