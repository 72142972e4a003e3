"""The official Anthropic Python SDK against the proxy's Anthropic-compatible `/v1/messages`.

Marked `anthropic_api`: the runner deselects these while the proxy has no `/v1/messages` route.
"""

import anthropic
import pytest

from conftest import GROUPS

pytestmark = pytest.mark.anthropic_api

PROMPT = "hello there friend"
REPLY = "echo: hello there friend"


def user(text=PROMPT):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_messages_create(anthropic_client, dialect):
    msg = anthropic_client.messages.create(model=GROUPS[dialect], max_tokens=256, messages=user())
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.id
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == REPLY
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (3, 4)


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_messages_stream(anthropic_client, dialect):
    with anthropic_client.messages.stream(model=GROUPS[dialect], max_tokens=256, messages=user()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.content[0].text == REPLY
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


def test_messages_wrong_key(base_url):
    with anthropic.Anthropic(base_url=base_url, api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as err:
            bad.messages.create(model=GROUPS["anthropic"], max_tokens=16, messages=user())
    assert err.value.status_code == 401
