"""The official OpenAI Python SDK against the tollgate proxy."""

import json
import time

import openai
import pytest

from conftest import ECHO_GROUPS, GROUPS

PROMPT = "hello there friend"
REPLY = "echo: hello there friend"
# Every upstream (and the built-in mock) counts words: 3 in, 4 out.
PROMPT_TOKENS, COMPLETION_TOKENS = 3, 4


def user(text=PROMPT):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("dialect", ECHO_GROUPS)
def test_chat(client, dialect):
    model = GROUPS[dialect]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=user())
    assert raw.headers.get("x-tollgate-model-group") == model
    assert raw.headers.get("x-tollgate-call-id")
    resp = raw.parse()
    assert isinstance(resp, openai.types.chat.ChatCompletion)
    assert resp.object == "chat.completion"
    assert resp.id
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
        PROMPT_TOKENS + COMPLETION_TOKENS,
    )


@pytest.mark.parametrize("dialect", ECHO_GROUPS)
def test_stream_with_usage(client, dialect):
    stream = client.chat.completions.create(
        model=GROUPS[dialect],
        messages=user(),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == REPLY
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"]
    # The last chunk carries the usage and no choices; no other chunk has usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert all(c.usage is None for c in chunks[:-1])
    # One id for the whole stream.
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_stream_without_usage_has_no_usage_chunk(client, dialect):
    chunks = list(client.chat.completions.create(model=GROUPS[dialect], messages=user(), stream=True))
    assert "".join(ch.delta.content or "" for c in chunks for ch in c.choices) == REPLY
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_stream_helper_final_completion(client):
    """The SDK's higher-level streaming helper assembles the same answer."""
    with client.chat.completions.stream(model=GROUPS["openai"], messages=user()) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "content.done" in events
    assert final.choices[0].message.content == REPLY
    assert final.choices[0].finish_reason == "stop"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _tool_round_trip(client, model, stream):
    messages = user("What is the weather in Paris?")
    if stream:
        chunks = list(
            client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], stream=True)
        )
        calls = {}
        finish = None
        for c in chunks:
            for ch in c.choices:
                finish = ch.finish_reason or finish
                for tc in ch.delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function and tc.function.name:
                        slot["name"] += tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
        assert list(calls) == [0], calls
        call_id, name, arguments = calls[0]["id"], calls[0]["name"], calls[0]["arguments"]
    else:
        resp = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
        choice = resp.choices[0]
        finish = choice.finish_reason
        assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
        tc = choice.message.tool_calls[0]
        assert tc.type == "function"
        call_id, name, arguments = tc.id, tc.function.name, tc.function.arguments
    assert finish == "tool_calls"
    assert call_id
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "Paris"}

    # Send the tool's result back; the upstream answers with what it received.
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    resp = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == f"Tool {call_id} said: sunny, 21 C"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("dialect", ["tools_openai", "tools_anthropic"])
def test_tool_call_and_result(client, dialect, stream):
    _tool_round_trip(client, GROUPS[dialect], stream)


def test_embeddings(client):
    # The SDK asks for base64 by default and decodes it.
    resp = client.embeddings.create(model=GROUPS["embed"], input=["one two", "three"])
    assert resp.object == "list"
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in resp.data)
    assert resp.data[0].embedding != resp.data[1].embedding
    assert resp.usage.prompt_tokens == 3
    # Explicit floats with dimensions give the same vectors, shortened.
    floats = client.embeddings.create(
        model=GROUPS["embed"], input="one two", encoding_format="float", dimensions=4
    )
    assert len(floats.data) == 1 and len(floats.data[0].embedding) == 4
    assert all(isinstance(x, float) for x in floats.data[0].embedding)


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert sorted(ids) == sorted(GROUPS.values())
    m = client.models.retrieve(GROUPS["openai"])
    assert m.id == GROUPS["openai"]
    assert m.object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_wrong_key_is_authentication_error(base_url):
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as err:
            bad.chat.completions.create(model=GROUPS["openai"], messages=user())
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=user())
    assert err.value.status_code == 404
    assert err.value.code == "model_not_found"
    assert "no-such-model" in err.value.message


@pytest.mark.parametrize("group", ["rate_limited", "rate_limited_anthropic"])
def test_upstream_429_is_rate_limit_error(client, group):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=GROUPS[group], messages=user())
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "7"


@pytest.mark.parametrize("group", ["too_long", "too_long_anthropic"])
def test_context_window_is_bad_request(client, group):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=GROUPS[group], messages=user())
    assert err.value.status_code == 400
    assert err.value.code == "context_length_exceeded"


def test_client_timeout(client):
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(model=GROUPS["slow"], messages=user())
    assert time.monotonic() - started < 5
