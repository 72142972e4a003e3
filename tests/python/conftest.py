"""Fixtures of the tollgate proxy end-to-end tests.

These tests drive a running tollgate proxy with the official `openai` and `anthropic` Python SDKs.
They are started by `crates/tollgate-proxy/tests/python_sdks.rs`, which runs the proxy in-process
in front of mock upstreams (127.0.0.1 only) and passes:

* TOLLGATE_E2E_BASE_URL: the proxy's root URL (`http://127.0.0.1:PORT`, no `/v1`);
* TOLLGATE_E2E_API_KEY: the proxy's master key.

The model groups the runner configures are named in `GROUPS` below.
"""

import os

import anthropic
import openai
import pytest

# The model groups of the runner's config (crates/tollgate-proxy/tests/python_sdks.rs).
GROUPS = {
    # Each echoes "echo: <last user text>"; usage counts words.
    "openai": "gpt-e2e",  # OpenAI dialect upstream
    "anthropic": "claude-e2e",  # Anthropic Messages upstream
    "gemini": "gemini-e2e",  # Gemini (AI Studio) upstream
    "mock": "mock-e2e",  # the proxy's built-in mock provider
    "embed": "embed-e2e",  # OpenAI dialect embeddings
    "tools_openai": "tools-openai",  # scripted tool calls, OpenAI dialect
    "tools_anthropic": "tools-anthropic",  # scripted tool calls, Anthropic dialect
    "rate_limited": "rate-limited",  # upstream answers 429 (Retry-After: 7)
    "too_long": "too-long",  # upstream answers 400 context_length_exceeded
    "rate_limited_anthropic": "rate-limited-anthropic",  # Anthropic 429 rate_limit_error (Retry-After: 7)
    "too_long_anthropic": "too-long-anthropic",  # Anthropic 400 "prompt is too long"
    "slow": "slow",  # upstream waits 10 s before answering
}

ECHO_GROUPS = ["openai", "anthropic", "gemini", "mock"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "anthropic_api: needs the proxy's Anthropic-compatible POST /v1/messages endpoint",
    )


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `cargo test -p tollgate-proxy --test python_sdks`")
    return value


@pytest.fixture(scope="session")
def base_url():
    return _env("TOLLGATE_E2E_BASE_URL").rstrip("/")


@pytest.fixture(scope="session")
def api_key():
    return _env("TOLLGATE_E2E_API_KEY")


@pytest.fixture()
def client(base_url, api_key):
    """An OpenAI client of the proxy, without retries (errors surface at once)."""
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture()
def anthropic_client(base_url, api_key):
    """An Anthropic client of the proxy (it appends /v1/messages itself)."""
    with anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=30) as c:
        yield c
