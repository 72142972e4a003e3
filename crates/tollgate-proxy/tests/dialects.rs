//! Every provider dialect through the proxy's OpenAI endpoint, over real HTTP on 127.0.0.1: one
//! model group per dialect (openai, azure, a vendor (groq), anthropic, gemini, vertex_ai,
//! bedrock, cohere, ollama), each backed by a testkit mock upstream speaking that dialect and
//! configured with LiteLLM's `litellm_params` names. Chat and stream must come back with the
//! upstream's text and usage, the upstream must be called at its dialect's path with the
//! deployment's own credentials, and the client's master key must never reach it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_testkit::anthropic::AnthropicResponder;
use tollgate_testkit::bedrock::BedrockResponder;
use tollgate_testkit::cohere::CohereResponder;
use tollgate_testkit::gemini::GeminiResponder;
use tollgate_testkit::ollama::OllamaResponder;
use tollgate_testkit::{MockServer, RecordedRequest};

const MASTER_KEY: &str = "sk-tollgate-master-d1a1ec7";
const GROUP: &str = "dialect-under-test";
const PROMPT: &str = "hello there friend";
/// Every testkit responder echoes the last user text and counts words: 3 in, 4 out.
const REPLY: &str = "echo: hello there friend";
const USAGE: (u64, u64) = (3, 4);

/// One dialect's deployment and what its upstream must receive.
struct Dialect {
    /// `litellm_params` lines after `model_name`, given the mock's root URL.
    params: fn(&MockServer) -> String,
    /// The upstream path of a plain chat call and of a streamed one.
    chat_path: &'static str,
    stream_path: &'static str,
    /// Checks the credentials (and other deployment settings) an upstream request carries.
    check: fn(&RecordedRequest),
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn config_yaml(params: &str) -> String {
    format!(
        "model_list:\n  - model_name: {GROUP}\n    litellm_params:\n{params}\
         router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
    )
}

/// Every header value, the query and the body of a recorded request, as text.
fn request_text(r: &RecordedRequest) -> String {
    let mut s = String::from_utf8_lossy(&r.body).into_owned();
    for (name, value) in &r.headers {
        s.push_str(&format!("\n{name}: {}", String::from_utf8_lossy(value.as_bytes())));
    }
    s.push('\n');
    s.push_str(r.query.as_deref().unwrap_or(""));
    s
}

fn usage_of(v: &Value) -> (u64, u64) {
    (v["prompt_tokens"].as_u64().unwrap(), v["completion_tokens"].as_u64().unwrap())
}

async fn run_dialect(name: &str, up: MockServer, d: Dialect) {
    let yaml = config_yaml(&(d.params)(&up));
    let proxy = start_config(config(&yaml)).await;
    let client = http();

    // Plain chat.
    let resp = client
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(MASTER_KEY)
        .json(&chat_body(GROUP, PROMPT))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{name}: {body}");
    assert_eq!(body["object"], "chat.completion", "{name}: {body}");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant", "{name}");
    assert_eq!(body["choices"][0]["message"]["content"], REPLY, "{name}: {body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{name}: {body}");
    assert_eq!(usage_of(&body["usage"]), USAGE, "{name}: {body}");
    assert_eq!(body["usage"]["total_tokens"], USAGE.0 + USAGE.1, "{name}: {body}");

    // Streamed chat with the usage chunk.
    let mut req = chat_body(GROUP, PROMPT);
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let resp = client
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(MASTER_KEY)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{name}");
    assert_eq!(resp.headers()["content-type"], "text/event-stream", "{name}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{name}: {text}");
    let events = sse_json(&text);
    assert!(events.iter().all(|e| e.get("error").is_none()), "{name}: {text}");
    assert!(events.iter().all(|e| e["object"] == "chat.completion.chunk"), "{name}: {text}");
    assert_eq!(stream_text(&events), REPLY, "{name}: {text}");
    let finishes: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"].as_array())
        .flatten()
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec!["stop"], "{name}: {text}");
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{name}: the usage chunk has no choices: {text}");
    assert_eq!(usage_of(&last["usage"]), USAGE, "{name}: {text}");

    // The upstream saw one plain and one streamed call, with the deployment's credentials.
    let reqs = up.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, vec![d.chat_path, d.stream_path], "{name}");
    for r in &reqs {
        (d.check)(r);
        assert!(
            !request_text(r).contains(MASTER_KEY),
            "{name}: the master key reached the upstream: {}",
            request_text(r)
        );
    }
    proxy.stop().await.unwrap();
}

async fn with_responder(responder: impl tollgate_testkit::Responder) -> MockServer {
    let up = MockServer::start().await;
    up.set_responder(responder);
    up
}

#[tokio::test]
async fn openai() {
    let up = MockServer::start_openai().await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: sk-openai-upstream\n      \
                 organization: org-tollgate\n",
                up.openai_base()
            )
        },
        chat_path: "/v1/chat/completions",
        stream_path: "/v1/chat/completions",
        check: |r| {
            assert_eq!(r.header("authorization"), Some("Bearer sk-openai-upstream"));
            assert_eq!(r.header("openai-organization"), Some("org-tollgate"));
            assert_eq!(r.json().unwrap()["model"], "gpt-4o-mini");
        },
    };
    run_dialect("openai", up, d).await;
}

#[tokio::test]
async fn azure() {
    let up = MockServer::start_openai().await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: azure/gpt4o-eu\n      api_base: {}\n      api_version: 2024-10-21\n      \
                 api_key: azure-upstream-key\n",
                up.url()
            )
        },
        chat_path: "/openai/deployments/gpt4o-eu/chat/completions",
        stream_path: "/openai/deployments/gpt4o-eu/chat/completions",
        check: |r| {
            assert_eq!(r.header("api-key"), Some("azure-upstream-key"));
            assert_eq!(r.header("authorization"), None);
            assert_eq!(r.query_param("api-version"), Some("2024-10-21"));
        },
    };
    run_dialect("azure", up, d).await;
}

#[tokio::test]
async fn groq_vendor() {
    let up = MockServer::start_openai().await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: groq/llama-3.1-8b-instant\n      api_base: {}\n      api_key: gsk-groq-upstream\n",
                up.openai_base()
            )
        },
        chat_path: "/v1/chat/completions",
        stream_path: "/v1/chat/completions",
        check: |r| {
            assert_eq!(r.header("authorization"), Some("Bearer gsk-groq-upstream"));
            assert_eq!(r.json().unwrap()["model"], "llama-3.1-8b-instant");
        },
    };
    run_dialect("groq", up, d).await;
}

#[tokio::test]
async fn anthropic() {
    let up = with_responder(AnthropicResponder).await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: anthropic/claude-sonnet-4-5-20250929\n      api_base: {}\n      \
                 api_key: sk-ant-upstream\n",
                up.url()
            )
        },
        chat_path: "/v1/messages",
        stream_path: "/v1/messages",
        check: |r| {
            assert_eq!(r.header("x-api-key"), Some("sk-ant-upstream"));
            assert!(r.header("anthropic-version").is_some());
            assert_eq!(r.header("authorization"), None);
            let body = r.json().unwrap();
            assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
            assert!(body["max_tokens"].as_u64().is_some_and(|n| n > 0), "{body}");
        },
    };
    run_dialect("anthropic", up, d).await;
}

#[tokio::test]
async fn gemini() {
    let up = with_responder(GeminiResponder::default()).await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: gemini/gemini-2.5-flash\n      api_base: {}\n      api_key: gemini-upstream-key\n",
                up.url()
            )
        },
        chat_path: "/v1beta/models/gemini-2.5-flash:generateContent",
        stream_path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        check: |r| {
            assert_eq!(r.header("x-goog-api-key"), Some("gemini-upstream-key"));
            if r.path.ends_with(":streamGenerateContent") {
                assert_eq!(r.query_param("alt"), Some("sse"));
            }
        },
    };
    run_dialect("gemini", up, d).await;
}

const VERTEX_PATH: &str =
    "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash";

#[tokio::test]
async fn vertex_ai_with_bearer_token() {
    let up = with_responder(GeminiResponder::default()).await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: vertex_ai/gemini-2.5-flash\n      api_base: {}\n      vertex_project: tollgate-test\n      \
                 vertex_location: europe-west4\n      bearer_token: ya29.vertex-upstream\n",
                up.url()
            )
        },
        chat_path: "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent",
        stream_path: "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
        check: |r| {
            assert!(r.path.starts_with(VERTEX_PATH), "{}", r.path);
            assert_eq!(r.header("authorization"), Some("Bearer ya29.vertex-upstream"));
        },
    };
    run_dialect("vertex_ai", up, d).await;
}

/// Vertex AI with a service account (`vertex_credentials`: the JSON itself), whose `token_uri`
/// points at the mock: the key must be exchanged for a token there before the call.
#[tokio::test]
async fn vertex_ai_with_service_account() {
    let up = with_responder(GeminiResponder::default()).await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tollgate-provider-gemini/tests/fixtures/test_service_account.json");
    let mut sa: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    sa["token_uri"] = json!(format!("{}/token", up.url()));
    // A YAML single-quoted scalar: the JSON as one string ('' escapes a quote).
    let sa_yaml = serde_json::to_string(&sa).unwrap().replace('\'', "''");
    let yaml = config_yaml(&format!(
        "      model: vertex_ai/gemini-2.5-flash\n      api_base: {}\n      vertex_project: tollgate-test\n      \
         vertex_location: europe-west4\n      vertex_credentials: '{sa_yaml}'\n",
        up.url()
    ));
    let proxy = start(&yaml).await;
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(MASTER_KEY)
        .json(&chat_body(GROUP, PROMPT))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], REPLY);
    let reqs = up.requests();
    assert_eq!(reqs[0].path, "/token");
    assert!(reqs[0].body_str().unwrap().contains("grant_type="));
    assert!(reqs[1].path.starts_with(VERTEX_PATH));
    assert!(reqs[1].header("authorization").unwrap().starts_with("Bearer ya29.mock-token"));
    assert!(reqs.iter().all(|r| !request_text(r).contains(MASTER_KEY)));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn bedrock_with_aws_keys() {
    let up = with_responder(BedrockResponder).await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0\n      api_base: {}\n      \
                 aws_access_key_id: AKIDTOLLGATETEST\n      aws_secret_access_key: tollgate-test-secret\n      \
                 aws_region_name: eu-central-1\n",
                up.url()
            )
        },
        chat_path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        stream_path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
        check: |r| {
            let auth = r.header("authorization").unwrap();
            assert!(
                auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTOLLGATETEST/")
                    && auth.contains("/eu-central-1/bedrock/aws4_request"),
                "{auth}"
            );
            assert!(r.header("x-amz-date").is_some());
            assert!(!request_text(r).contains("tollgate-test-secret"), "the secret key itself is never sent");
        },
    };
    run_dialect("bedrock", up, d).await;
}

#[tokio::test]
async fn cohere() {
    let up = with_responder(CohereResponder::default()).await;
    let d = Dialect {
        params: |up| {
            format!(
                "      model: cohere_chat/command-r-plus-08-2024\n      api_base: {}\n      api_key: co-upstream-key\n",
                up.url()
            )
        },
        chat_path: "/v2/chat",
        stream_path: "/v2/chat",
        check: |r| {
            assert_eq!(r.header("authorization"), Some("Bearer co-upstream-key"));
            assert_eq!(r.json().unwrap()["model"], "command-r-plus-08-2024");
        },
    };
    run_dialect("cohere", up, d).await;
}

#[tokio::test]
async fn ollama() {
    let up = with_responder(OllamaResponder::default()).await;
    let d = Dialect {
        params: |up| format!("      model: ollama_chat/llama3.1\n      api_base: {}\n", up.url()),
        chat_path: "/api/chat",
        stream_path: "/api/chat",
        check: |r| {
            // No credentials configured: none sent (and never the client's).
            assert_eq!(r.header("authorization"), None);
            assert_eq!(r.json().unwrap()["model"], "llama3.1");
        },
    };
    run_dialect("ollama", up, d).await;
}
