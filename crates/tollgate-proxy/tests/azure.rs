//! Azure OpenAI deployment routes: `/openai/deployments/{deployment}/…?api-version=…`, where
//! the deployment is the model group, authenticated with the `api-key` header as Azure clients do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_testkit::MockServer;

const VERSION: &str = "api-version=2024-10-21";

async fn azure_proxy() -> (MockServer, Proxy) {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "general_settings: {{master_key: sk-gw}}\nmodel_list:\n{}  - model_name: echo\n    litellm_params: {{model: mock/x}}\n",
        openai_deployment("gpt-4o-mini", &up.openai_base(), "")
    );
    (up, start(&yaml).await)
}

fn post(proxy: &Proxy, path: &str, body: &Value) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(proxy.url(path)).header("api-key", "sk-gw").json(body)
}

#[tokio::test]
async fn chat_on_a_deployment_route_goes_to_that_group() {
    let (up, proxy) = azure_proxy().await;
    // Azure clients may leave `model` out; a `model` in the body is overridden by the path.
    for body in [
        json!({"messages": [{"role": "user", "content": "hi azure"}]}),
        json!({"model": "something-else", "messages": [{"role": "user", "content": "hi azure"}]}),
    ] {
        let resp =
            post(&proxy, &format!("/openai/deployments/gpt-4o-mini/chat/completions?{VERSION}"), &body)
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-tollgate-model-group"], "gpt-4o-mini");
        let out: Value = resp.json().await.unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "echo: hi azure");
        let sent = up.last_request().unwrap();
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.json().unwrap()["model"], "gpt-4o-mini");
        // The gateway key stays here; the deployment's own key goes upstream.
        assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"));
        assert_eq!(sent.header("api-key"), None);
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_completions_and_embeddings_on_deployment_routes() {
    let (_up, proxy) = azure_proxy().await;
    let body = json!({"messages": [{"role": "user", "content": "a b c"}], "stream": true});
    let resp = post(&proxy, &format!("/openai/deployments/echo/chat/completions?{VERSION}"), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert_eq!(stream_text(&sse_json(&text)).split_whitespace().collect::<Vec<_>>(), ["a", "b", "c"]);

    let resp =
        post(&proxy, &format!("/openai/deployments/echo/completions?{VERSION}"), &json!({"prompt": "x y"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["object"], "text_completion");
    assert_eq!(out["choices"][0]["text"], "x y");

    let resp = post(
        &proxy,
        &format!("/openai/deployments/echo/embeddings?{VERSION}"),
        &json!({"input": ["one", "two"]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn deployment_routes_check_the_key_and_the_group() {
    let (_up, proxy) = azure_proxy().await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let path = format!("/openai/deployments/echo/chat/completions?{VERSION}");
    let resp = reqwest::Client::new().post(proxy.url(&path)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = reqwest::Client::new()
        .post(proxy.url(&path))
        .header("api-key", "sk-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = post(&proxy, &format!("/openai/deployments/nope/chat/completions?{VERSION}"), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["error"]["code"], "model_not_found");

    // A body that is not JSON is still a 400 in OpenAI's envelope.
    let resp = reqwest::Client::new()
        .post(proxy.url(&path))
        .header("api-key", "sk-gw")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["error"]["type"], "invalid_request_error");
    proxy.stop().await.unwrap();
}

/// The official `openai` Python SDK's `AzureOpenAI` client against the gateway (the venv of
/// `scripts/setup-python-e2e.sh`; skipped without it unless `TOLLGATE_REQUIRE_PYTHON_SDKS=1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_openai_python_client_works() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-e2e/bin/python");
    let required =
        std::env::var("TOLLGATE_REQUIRE_PYTHON_SDKS").is_ok_and(|v| matches!(v.trim(), "1" | "true"));
    if !python.exists() {
        assert!(!required, "{} is missing", python.display());
        eprintln!("skipped: {} is missing (run scripts/setup-python-e2e.sh)", python.display());
        return;
    }
    let (_up, proxy) = azure_proxy().await;
    let script = r#"
import sys
from openai import AzureOpenAI
c = AzureOpenAI(azure_endpoint=sys.argv[1], api_key="sk-gw", api_version="2024-10-21", max_retries=0)
r = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi from azure"}])
print("chat:" + r.choices[0].message.content)
s = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "one two"}], stream=True)
print("stream:" + "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices))
e = c.embeddings.create(model="echo", input=["a", "b", "c"])
print("embeddings:%d" % len(e.data))
r = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "routed"}])
print("routed:" + r.choices[0].message.content)
try:
    c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
except Exception as ex:
    print("missing:%s" % type(ex).__name__)
"#;
    let base = proxy.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).args(["-c", script, &base]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "chat:hi from azure",
            "stream:one two",
            "embeddings:3",
            "routed:echo: routed",
            "missing:NotFoundError"
        ]
    );
    proxy.stop().await.unwrap();
}
