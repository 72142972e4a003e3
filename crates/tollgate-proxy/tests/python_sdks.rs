//! End-to-end tests with the official `openai` and `anthropic` Python SDKs: the real proxy runs
//! in-process on 127.0.0.1 in front of testkit mock upstreams of several dialects (and the
//! built-in mock provider), and `tests/python/` (pytest) drives it through the SDKs.
//!
//! The Python environment is `.venv-e2e/` at the workspace root, made by
//! `scripts/setup-python-e2e.sh` (pinned versions in `tests/python/requirements.txt`). Without
//! it this test is skipped with a message, unless `TOLLGATE_REQUIRE_PYTHON_SDKS=1` (CI), which
//! makes it fail. The Anthropic SDK tests (pytest marker `anthropic_api`) need the proxy's
//! `POST /v1/messages` route: without it they are deselected with a note (a failure when
//! `TOLLGATE_REQUIRE_PYTHON_SDKS=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tollgate_testkit::anthropic::AnthropicResponder;
use tollgate_testkit::gemini::GeminiResponder;
use tollgate_testkit::{MockResponse, MockServer, RecordedRequest};

const MASTER_KEY: &str = "sk-tollgate-e2e-master-5b21c9";
/// How long pytest may run before it is killed and the test fails.
const PYTEST_DEADLINE: Duration = Duration::from_secs(300);
const REQUIRE_VAR: &str = "TOLLGATE_REQUIRE_PYTHON_SDKS";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The venv's Python, when it exists and imports the SDKs and pytest.
fn venv_python(root: &Path) -> Result<PathBuf, String> {
    let python = root.join(".venv-e2e/bin/python");
    if !python.exists() {
        return Err(format!("{} does not exist", python.display()));
    }
    let out = Command::new(&python)
        .args(["-c", "import openai, anthropic, pytest"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import openai, anthropic and pytest: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(python)
}

/// The text of an OpenAI message `content` (a string or text parts).
fn openai_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

fn has_weather_tool_openai(body: &Value) -> bool {
    body["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "get_weather"))
}

/// OpenAI dialect: calls `get_weather` when offered it; answers a tool result with
/// `Tool <id> said: <result>`; anything else is a 400 (so a mistranslated request fails).
fn openai_tools_responder(r: &RecordedRequest) -> Option<MockResponse> {
    let body = r.json().ok()?;
    let stream = body["stream"] == true;
    let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or(Value::Null);
    if last["role"] == "tool" {
        let reply =
            format!("Tool {} said: {}", last["tool_call_id"].as_str()?, openai_text(&last["content"]));
        // The assistant turn with the call must precede it.
        let calls_before = body["messages"].as_array()?.iter().any(|m| {
            m["role"] == "assistant"
                && m["tool_calls"][0]["id"] == last["tool_call_id"]
                && m["tool_calls"][0]["function"]["name"] == "get_weather"
        });
        if !calls_before {
            return Some(MockResponse::openai_error(
                400,
                "invalid_request_error",
                None,
                "tool result without call",
            ));
        }
        return Some(if stream {
            MockResponse::openai_stream_text([reply.as_str()], Some((10, 5)))
        } else {
            MockResponse::openai_chat(&reply)
        });
    }
    if has_weather_tool_openai(&body) {
        let call = [("call_weather_1", "get_weather", r#"{"city": "Paris"}"#)];
        return Some(if stream {
            MockResponse::openai_stream_tool_calls(call, Some((10, 10)))
        } else {
            MockResponse::openai_tool_calls(call)
        });
    }
    Some(MockResponse::openai_error(400, "invalid_request_error", None, "expected tools or a tool result"))
}

/// Anthropic dialect: the same script in Messages terms (`tool_use` / `tool_result` blocks).
fn anthropic_tools_responder(r: &RecordedRequest) -> Option<MockResponse> {
    let bad = |m: &str| Some(MockResponse::anthropic_error(400, "invalid_request_error", m));
    let body = r.json().ok()?;
    let stream = body["stream"] == true;
    let messages = body["messages"].as_array()?;
    let last = messages.last()?;
    let result = last["content"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"))
        .cloned();
    if let Some(result) = result {
        if last["role"] != "user" {
            return bad("tool_result must be in a user turn");
        }
        let id = result["tool_use_id"].as_str()?;
        let called = messages.iter().any(|m| {
            m["role"] == "assistant"
                && m["content"].as_array().is_some_and(|b| {
                    b.iter().any(|b| b["type"] == "tool_use" && b["id"] == id && b["name"] == "get_weather")
                })
        });
        if !called {
            return bad("tool_result without a matching tool_use");
        }
        let text = match &result["content"] {
            Value::String(s) => s.clone(),
            Value::Array(b) => b.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join(""),
            _ => return bad("tool_result content missing"),
        };
        let reply = format!("Tool {id} said: {text}");
        return Some(if stream {
            MockResponse::anthropic_stream_text(
                [reply.as_str()],
                tollgate_testkit::anthropic::AnthropicUsage::new(10, 5),
            )
        } else {
            MockResponse::anthropic_message(&reply)
        });
    }
    let offered = body["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "get_weather"));
    if offered {
        return Some(if stream {
            MockResponse::anthropic_stream_tool_use(
                [("toolu_weather_1", "get_weather", r#"{"city": "Paris"}"#)],
                tollgate_testkit::anthropic::AnthropicUsage::new(10, 20),
            )
        } else {
            MockResponse::anthropic_tool_use([("toolu_weather_1", "get_weather", json!({"city": "Paris"}))])
        });
    }
    bad("expected tools or a tool result")
}

struct Upstreams {
    openai: MockServer,
    anthropic: MockServer,
    gemini: MockServer,
    tools_openai: MockServer,
    tools_anthropic: MockServer,
    rate_limited: MockServer,
    too_long: MockServer,
    rate_limited_anthropic: MockServer,
    too_long_anthropic: MockServer,
    slow: MockServer,
}

impl Upstreams {
    async fn start() -> Self {
        let anthropic = MockServer::start().await;
        anthropic.set_responder(AnthropicResponder);
        let gemini = MockServer::start().await;
        gemini.set_responder(GeminiResponder::default());
        let tools_openai = MockServer::start().await;
        tools_openai.set_responder(openai_tools_responder);
        let tools_anthropic = MockServer::start().await;
        tools_anthropic.set_responder(anthropic_tools_responder);
        let rate_limited = MockServer::start().await;
        rate_limited.always(
            MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "Rate limit reached")
                .retry_after(7),
        );
        let too_long = MockServer::start().await;
        too_long.always(MockResponse::openai_error(
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.",
        ));
        let rate_limited_anthropic = MockServer::start().await;
        rate_limited_anthropic.always(
            MockResponse::anthropic_error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your rate limit",
            )
            .retry_after(7),
        );
        let too_long_anthropic = MockServer::start().await;
        too_long_anthropic.always(MockResponse::anthropic_error(
            400,
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
        ));
        let slow = MockServer::start().await;
        slow.always(MockResponse::openai_chat("too late").delay_before_headers(Duration::from_secs(10)));
        Upstreams {
            openai: MockServer::start_openai().await,
            anthropic,
            gemini,
            tools_openai,
            tools_anthropic,
            rate_limited,
            too_long,
            rate_limited_anthropic,
            too_long_anthropic,
            slow,
        }
    }

    fn all(&self) -> [(&'static str, &MockServer); 10] {
        [
            ("openai", &self.openai),
            ("anthropic", &self.anthropic),
            ("gemini", &self.gemini),
            ("tools-openai", &self.tools_openai),
            ("tools-anthropic", &self.tools_anthropic),
            ("rate-limited", &self.rate_limited),
            ("too-long", &self.too_long),
            ("rate-limited-anthropic", &self.rate_limited_anthropic),
            ("too-long-anthropic", &self.too_long_anthropic),
            ("slow", &self.slow),
        ]
    }

    /// The proxy config: one group per upstream (names as in tests/python/conftest.py).
    fn config_yaml(&self) -> String {
        let openai = |group: &str, model: &str, up: &MockServer| {
            format!(
                "  - model_name: {group}\n    litellm_params:\n      model: openai/{model}\n      \
                 api_base: {}\n      api_key: sk-upstream-openai\n",
                up.openai_base()
            )
        };
        let anthropic = |group: &str, up: &MockServer| {
            format!(
                "  - model_name: {group}\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5-20250929\n      \
                 api_base: {}\n      api_key: sk-ant-upstream\n",
                up.url()
            )
        };
        let mut yaml = String::from("model_list:\n");
        yaml += &openai("gpt-e2e", "gpt-4o-mini", &self.openai);
        yaml += &anthropic("claude-e2e", &self.anthropic);
        yaml += &format!(
            "  - model_name: gemini-e2e\n    litellm_params:\n      model: gemini/gemini-2.5-flash\n      \
             api_base: {}\n      api_key: gemini-upstream-key\n",
            self.gemini.url()
        );
        yaml += "  - model_name: mock-e2e\n    litellm_params:\n      model: mock/echo\n      \
                 mock_response: \"echo: hello there friend\"\n";
        yaml += &openai("embed-e2e", "text-embedding-3-small", &self.openai);
        yaml += &openai("tools-openai", "gpt-4o-mini", &self.tools_openai);
        yaml += &anthropic("tools-anthropic", &self.tools_anthropic);
        yaml += &openai("rate-limited", "gpt-4o-mini", &self.rate_limited);
        yaml += &openai("too-long", "gpt-4o-mini", &self.too_long);
        yaml += &anthropic("rate-limited-anthropic", &self.rate_limited_anthropic);
        yaml += &anthropic("too-long-anthropic", &self.too_long_anthropic);
        yaml += &openai("slow", "gpt-4o-mini", &self.slow);
        yaml += "router_settings:\n  num_retries: 0\n";
        yaml += &format!("general_settings:\n  master_key: {MASTER_KEY}\n");
        yaml
    }
}

/// Whether the proxy routes `POST /v1/messages` (an unrouted path gets the fallback's
/// `not_found` code; a routed one answers anything else, e.g. a 400 for the empty body).
async fn has_messages_route(proxy: &Proxy) -> bool {
    let resp = reqwest::Client::new()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", MASTER_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    !(status == 404 && body["error"]["code"] == "not_found")
}

struct PytestRun {
    status: Option<std::process::ExitStatus>,
    output: String,
    elapsed: Duration,
}

/// Runs pytest on tests/python with the proxy's URL and key; kills it after [`PYTEST_DEADLINE`].
fn run_pytest(python: &Path, root: &Path, base_url: &str, marker: Option<&str>) -> PytestRun {
    let dir = std::env::temp_dir().join(format!("tollgate-pytest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("pytest.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(python);
    cmd.current_dir(root)
        .args(["-m", "pytest", "tests/python", "-q", "-rs", "-p", "no:cacheprovider", "--color=no"])
        .env("TOLLGATE_E2E_BASE_URL", base_url)
        .env("TOLLGATE_E2E_API_KEY", MASTER_KEY)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Only 127.0.0.1: no proxy from the environment, no credentials or base URLs either.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "PYTEST_ADDOPTS",
    ] {
        cmd.env_remove(var);
    }
    if let Some(m) = marker {
        cmd.args(["-m", m]);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > PYTEST_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    PytestRun { status, output, elapsed: started.elapsed() }
}

/// Every header value and the body of a recorded request, as text.
fn request_text(r: &RecordedRequest) -> String {
    let mut s = String::from_utf8_lossy(&r.body).into_owned();
    for (name, value) in &r.headers {
        s.push('\n');
        s.push_str(name.as_str());
        s.push_str(": ");
        s.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    s.push('\n');
    s.push_str(r.query.as_deref().unwrap_or(""));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdks_against_the_proxy() {
    let root = workspace_root();
    let python = match venv_python(&root) {
        Ok(p) => p,
        Err(why) => {
            let how = format!(
                "create it with `scripts/setup-python-e2e.sh` (a venv at {}/.venv-e2e with \
                 tests/python/requirements.txt), then rerun `cargo test -p tollgate-proxy --test python_sdks`",
                root.display()
            );
            if required() {
                panic!("{REQUIRE_VAR}=1 but the Python SDK test environment is not usable: {why}; {how}");
            }
            eprintln!("SKIPPED official_python_sdks_against_the_proxy: {why}; {how}");
            return;
        }
    };

    let ups = Upstreams::start().await;
    let proxy = start(&ups.config_yaml()).await;

    let messages_route = has_messages_route(&proxy).await;
    let marker = if messages_route {
        None
    } else if required() {
        panic!(
            "{REQUIRE_VAR}=1 but the proxy has no POST /v1/messages route: the Anthropic SDK tests \
             (pytest marker `anthropic_api`) cannot run"
        );
    } else {
        eprintln!(
            "NOTE: the proxy has no POST /v1/messages route yet: the Anthropic SDK tests \
             (pytest marker `anthropic_api`) are deselected"
        );
        Some("not anthropic_api")
    };

    let base = proxy.base.clone();
    let (py, rt) = (python.clone(), root.clone());
    let run = tokio::task::spawn_blocking(move || run_pytest(&py, &rt, &base, marker)).await.unwrap();

    // Stop the upstreams first (the slow one may still hold a call), then the proxy.
    let recorded: Vec<(&str, Vec<RecordedRequest>)> =
        ups.all().iter().map(|(name, up)| (*name, up.requests())).collect();
    let counts: Vec<String> = recorded.iter().map(|(n, r)| format!("{n}={}", r.len())).collect();
    drop(ups);
    proxy.stop().await.unwrap();

    let header = format!(
        "pytest ({}) in {:.1}s; upstream requests: {}",
        python.display(),
        run.elapsed.as_secs_f64(),
        counts.join(" ")
    );
    match run.status {
        None => panic!("{header}\npytest did not finish within {PYTEST_DEADLINE:?}; output:\n{}", run.output),
        Some(s) if !s.success() => panic!("{header}\npytest failed ({s}); output:\n{}", run.output),
        Some(_) => eprintln!("{header}\n{}", run.output),
    }
    // A run that collected nothing passes no test: make sure the suite really ran.
    let summary = run.output.lines().rev().find(|l| l.contains(" passed")).unwrap_or_default();
    assert!(summary.contains("passed") && !summary.contains("failed"), "unexpected summary: {summary}");

    // Every upstream that a test uses was called, and none ever saw the client's key.
    for (name, reqs) in &recorded {
        assert!(!reqs.is_empty(), "the {name} upstream received no request");
        for r in reqs {
            assert!(
                !request_text(r).contains(MASTER_KEY),
                "the master key reached the {name} upstream: {} {}",
                r.method,
                r.path
            );
        }
    }
    // The upstreams got their own credentials.
    let first = |name: &str| recorded.iter().find(|(n, _)| *n == name).map(|(_, r)| r[0].clone()).unwrap();
    assert_eq!(first("openai").header("authorization"), Some("Bearer sk-upstream-openai"));
    assert_eq!(first("anthropic").header("x-api-key"), Some("sk-ant-upstream"));
    assert_eq!(first("gemini").header("x-goog-api-key"), Some("gemini-upstream-key"));
}
