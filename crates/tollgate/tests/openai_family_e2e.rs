//! The SDK end to end over real loopback HTTP against the testkit mock: OpenAI, Azure and
//! OpenAI-compatible vendors, streaming and not, errors, timeouts and credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tollgate::{
    CallOptions, ChatRequest, Client, EmbeddingInput, EmbeddingRequest, ErrorKind, Message,
    TextCompletionRequest, TimeoutPhase,
};
use tollgate_testkit::{MockResponse, MockServer};

#[path = "../examples/stream_from_mock.rs"]
#[allow(dead_code)]
mod stream_example;
#[path = "../examples/vendor_by_prefix.rs"]
#[allow(dead_code)]
mod vendor_example;

fn openai_client(mock: &MockServer) -> Client {
    Client::builder()
        .no_env()
        .api_base("openai", mock.openai_base())
        .api_key("openai", "sk-test")
        .build()
        .unwrap()
}

fn hello(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::system("be terse"), Message::user("hello there")])
}

#[tokio::test]
async fn example_streams_from_the_mock() {
    let text = stream_example::run().await.unwrap();
    assert_eq!(text, "echo: tell me about toll gates");
}

#[tokio::test]
async fn example_calls_a_vendor_by_prefix_with_env_base_url() {
    let (reply, path) = vendor_example::run().await.unwrap();
    assert_eq!(reply, "echo: hello from tollgate");
    assert_eq!(path, "/v1/chat/completions");
}

#[tokio::test]
async fn completion_sends_openai_wire_format_and_parses_the_reply() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::openai_chat_with_usage("Hi!", 12, 3));
    let client = openai_client(&mock);
    let mut req = hello("openai/gpt-4o-mini");
    req.temperature = Some(0.2);
    req.extra.insert("vendor_knob".into(), json!({"a": 1}));
    let resp = client.completion(req).await.unwrap();
    assert_eq!(resp.first_text(), Some("Hi!"));
    assert_eq!(resp.usage.as_ref().unwrap().total_tokens, 15);

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "gpt-4o-mini", "the provider prefix is not sent upstream");
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["vendor_knob"], json!({"a": 1}), "unknown fields pass through");
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "be terse"}));
    assert!(body.get("stream").is_none());
}

#[tokio::test]
async fn stream_yields_chunks_and_hides_usage_unless_asked() {
    let mock = MockServer::start_openai().await;
    let client = openai_client(&mock);

    let mut stream = client.stream(hello("gpt-4o-mini")).await.unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    let mut finish = None;
    while let Some(c) = stream.next().await {
        let c = c.unwrap();
        chunks += 1;
        assert!(!c.choices.is_empty(), "the usage-only chunk is hidden when not asked for");
        for ch in &c.choices {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            if ch.finish_reason.is_some() {
                finish = ch.finish_reason.clone();
            }
        }
    }
    assert!(chunks > 1, "the mock streams several chunks");
    assert_eq!(text, "echo: hello there");
    assert_eq!(finish, Some(tollgate::FinishReason::Stop));
    let usage = stream.usage().expect("usage is still recorded");
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true, "the gateway always asks for usage upstream");

    // Asked for: the final chunk carries usage and no choices, like OpenAI's.
    let mut req = hello("gpt-4o-mini");
    req.stream_options = Some(tollgate::tollgate_core::chat::StreamOptions {
        include_usage: Some(true),
        ..Default::default()
    });
    let all: Vec<_> = client.stream(req).await.unwrap().collect().await;
    let last = all.last().unwrap().as_ref().unwrap();
    assert!(last.choices.is_empty());
    assert!(last.usage.is_some());
}

#[tokio::test]
async fn stream_chunks_split_anywhere_decode_the_same() {
    let mock = MockServer::start().await;
    let client = openai_client(&mock);
    for size in [1, 3, 7, 64] {
        mock.enqueue(
            MockResponse::openai_stream_text(["Grüße ", "🦀 ", "done"], Some((4, 3))).chunk_size(size),
        );
        let mut s = client.stream(hello("gpt-4o-mini")).await.unwrap();
        let mut text = String::new();
        while let Some(c) = s.next().await {
            for ch in c.unwrap().choices {
                text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            }
        }
        assert_eq!(text, "Grüße 🦀 done", "chunk size {size}");
        assert_eq!(s.usage().unwrap().total_tokens, 7);
    }
}

#[tokio::test]
async fn embeddings_and_text_completions() {
    let mock = MockServer::start_openai().await;
    let client = openai_client(&mock);
    let resp = client
        .embedding(EmbeddingRequest::new(
            "text-embedding-3-small",
            EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(resp.data.len(), 2);
    assert_eq!(mock.last_request().unwrap().path, "/v1/embeddings");

    let resp = client
        .text_completion(TextCompletionRequest::new("gpt-3.5-turbo-instruct", "say this"))
        .await
        .unwrap();
    assert!(!resp.choices[0].text.is_empty());
    assert_eq!(mock.last_request().unwrap().path, "/v1/completions");

    let mut s = client
        .text_completion_stream(
            TextCompletionRequest::new("gpt-3.5-turbo-instruct", "say this"),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(c) = s.next().await {
        for ch in c.unwrap().choices {
            text.push_str(&ch.text);
        }
    }
    assert!(!text.is_empty());
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = openai_client(&mock);

    mock.enqueue(
        MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down").retry_after(7),
    );
    let e = client.completion(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(e.status, Some(429));
    assert_eq!(e.provider.as_deref(), Some("openai"));

    mock.enqueue(MockResponse::openai_error(
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        "This model's maximum context length is 128000 tokens.",
    ));
    let e = client.completion(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ContextWindowExceeded);

    mock.enqueue(
        MockResponse::bytes("text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>").status(502),
    );
    let e = client.completion(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(e.message.contains("502 Bad Gateway"), "{}", e.message);

    mock.enqueue(MockResponse::bytes(
        "application/json",
        &b"{\"id\": \"chatcmpl-1\", \"choices\": [\xff"[..],
    ));
    let e = client.completion(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode);

    // Stream errors before the first chunk are ordinary errors from `stream()`.
    mock.enqueue(MockResponse::openai_error(503, "server_error", None, "overloaded"));
    let e = client.stream(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    let client = openai_client(&mock);
    // 100-byte network chunks: the connection drops after 500 bytes (two events), long before [DONE].
    mock.enqueue(
        MockResponse::openai_stream_text(["one ", "two ", "three"], None).chunk_size(100).cut_after_chunks(5),
    );
    let items: Vec<_> = client.stream(hello("gpt-4o")).await.unwrap().collect().await;
    let errors: Vec<_> = items.iter().filter(|i| i.is_err()).collect();
    assert!(items[0].is_ok(), "the chunks before the cut are delivered");
    assert_eq!(errors.len(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err(), "the error is the last item");
}

#[tokio::test]
async fn chunks_that_arrive_with_a_mid_stream_error_are_delivered_before_it() {
    let mock = MockServer::start().await;
    let client = openai_client(&mock);
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    let error = format!("data: {}\n\n", json!({"error": {"message": "overloaded", "type": "server_error"}}));
    // The second network read holds a content chunk *and* the error.
    mock.enqueue(MockResponse::chunked("text/event-stream", [chunk("a"), format!("{}{error}", chunk("b"))]));
    let items: Vec<_> = client.stream(hello("gpt-4o")).await.unwrap().collect().await;
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
        .collect();
    assert_eq!(texts, ["a", "b"], "{items:?}");
    assert!(items.last().unwrap().is_err());
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
}

#[tokio::test]
async fn timeouts_total_and_first_token() {
    let mock = MockServer::start().await;
    let client = openai_client(&mock);

    mock.enqueue(MockResponse::openai_chat("late").delay_before_headers(Duration::from_secs(5)));
    let started = Instant::now();
    let e = client
        .completion_with(hello("gpt-4o"), &CallOptions::default().timeout(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout(TimeoutPhase::Total));
    assert!(started.elapsed() < Duration::from_secs(5), "the call gave up before the upstream answered");

    // Headers come at once, but the first chunk never does.
    mock.enqueue(MockResponse::openai_stream_text(["x"], None).stall_after_chunks(0));
    let e = client
        .stream_with(hello("gpt-4o"), &CallOptions::default().first_token_timeout(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout(TimeoutPhase::FirstToken));
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let mock = MockServer::start().await;
    let base = mock.openai_base();
    mock.shutdown().await;
    let client = Client::builder().no_env().api_base("openai", base).api_key("openai", "k").build().unwrap();
    let e = client.completion(hello("gpt-4o")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transport);
    assert!(e.kind.is_retryable());
}

#[tokio::test]
async fn credentials_come_from_the_providers_own_env_vars_and_never_cross() {
    let mock = MockServer::start_openai().await;
    let env: HashMap<&'static str, String> = HashMap::from([
        ("OPENAI_API_KEY", "sk-openai".to_owned()),
        ("OPENAI_BASE_URL", mock.openai_base()),
        ("GROQ_API_BASE", mock.openai_base()),
        ("GROQ_API_KEY", "gsk-groq".to_owned()),
    ]);
    let client = Client::builder().env(move |n| env.get(n).cloned()).build().unwrap();

    client.completion(hello("gpt-4o-mini")).await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer sk-openai"));
    client.completion(hello("groq/llama-3.3-70b-versatile")).await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer gsk-groq"));

    // A per-call key wins over the environment.
    client.completion_with(hello("gpt-4o-mini"), &CallOptions::default().api_key("sk-call")).await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer sk-call"));
}

#[tokio::test]
async fn unknown_providers_and_bad_model_strings_fail_before_sending() {
    let mock = MockServer::start_openai().await;
    let client = openai_client(&mock);
    let e = client.completion(hello("nosuchvendor/some-model")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(e.code.as_deref(), Some("unknown_provider"));
    assert!(e.message.contains("nosuchvendor"));
    let e = client.completion(hello("openai/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(mock.request_count(), 0, "nothing was sent");
}

#[tokio::test]
async fn unsupported_params_fail_unless_dropped() {
    let mock = MockServer::start_openai().await;
    let client = Client::builder()
        .no_env()
        .api_base("perplexity", mock.openai_base())
        .api_key("perplexity", "pplx-test")
        .build()
        .unwrap();
    let mut req = hello("perplexity/sonar");
    req.tools = Some(vec![tollgate::Tool::function("f", "d", json!({"type": "object"}))]);
    let e = client.completion(req.clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedParams);
    assert!(e.message.contains("tools"), "{}", e.message);
    assert_eq!(mock.request_count(), 0);

    client.completion_with(req, &CallOptions::default().drop_params(true)).await.unwrap();
    let body = mock.last_request().unwrap().json().unwrap();
    assert!(body.get("tools").is_none(), "dropped: {body}");
}

#[tokio::test]
async fn azure_uses_deployment_urls_and_api_key_header() {
    let mock = MockServer::start_openai().await;
    let client = Client::builder()
        .no_env()
        .provider(
            "azure",
            tollgate::ProviderSettings {
                api_key: Some("az-key".into()),
                api_base: Some(mock.url()),
                api_version: Some("2024-10-21".into()),
                ..Default::default()
            },
        )
        .build()
        .unwrap();
    let resp = client.completion(hello("azure/my-gpt4o-deployment")).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/openai/deployments/my-gpt4o-deployment/chat/completions");
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_eq!(seen.header("api-key"), Some("az-key"));
    assert_eq!(seen.header("authorization"), None, "the key travels only in api-key");
}
