//! The SDK end to end over real loopback HTTP against the testkit mock speaking Ollama's native
//! dialect: `/api/chat` JSON and NDJSON streams, tools with object arguments, `/api/embed`, and
//! `{"error": ...}` bodies.
#![cfg(feature = "ollama")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use serde_json::json;
use tollgate::tollgate_core::chat::StreamOptions;
use tollgate::tollgate_core::embedding::EmbeddingVector;
use tollgate::{
    ChatRequest, Client, EmbeddingInput, EmbeddingRequest, ErrorKind, FinishReason, Message,
    StreamAccumulator, Tool,
};
use tollgate_testkit::ollama::OllamaChatStream;
use tollgate_testkit::openai::{MOCK_CREATED, embedding_vector};
use tollgate_testkit::{MockResponse, MockServer};

const MODEL: &str = "ollama/llama3.2";

fn client(mock: &MockServer) -> Client {
    Client::builder().no_env().api_base("ollama", mock.url()).build().unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(MODEL, vec![Message::system("be terse"), Message::user("hello there")])
}

async fn drain(
    mut s: tollgate::ChatStream,
) -> (Vec<tollgate::ChatChunk>, Vec<tollgate::Error>, tollgate::ChatStream) {
    let mut chunks = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => {
                assert!(errors.is_empty(), "no chunk after an error");
                chunks.push(c);
            }
            Err(e) => errors.push(e),
        }
    }
    (chunks, errors, s)
}

fn accumulate(chunks: &[tollgate::ChatChunk]) -> tollgate::ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(c);
    }
    acc.finish()
}

#[tokio::test]
async fn completion_sends_api_chat_and_parses_the_reply() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::ollama_chat_with_usage("llama3.2", "Hi!", 26, 3));
    let mut req = hello();
    req.temperature = Some(0.1);
    req.max_tokens = Some(32);
    req.extra.insert("top_k".into(), json!(20));
    req.extra.insert("keep_alive".into(), json!("5m"));
    let resp = client(&mock).completion(req).await.unwrap();
    assert_eq!(resp.first_text(), Some("Hi!"));
    assert_eq!(resp.model, "llama3.2");
    assert_eq!(resp.created, MOCK_CREATED, "from created_at");
    assert!(resp.id.starts_with("chatcmpl-"), "{}", resp.id);
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let u = resp.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (26, 3, 29));

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/api/chat");
    assert_eq!(seen.header("authorization"), None, "local Ollama needs no key");
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(body["stream"], false, "Ollama streams by default: always say so");
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "be terse"}));
    assert_eq!(body["messages"][1], json!({"role": "user", "content": "hello there"}));
    assert_eq!(body["options"]["temperature"], 0.1);
    assert_eq!(body["options"]["num_predict"], 32);
    assert_eq!(body["options"]["top_k"], 20, "option names move into options");
    assert_eq!(body["keep_alive"], "5m", "other fields stay at the top level");
}

#[tokio::test]
async fn an_api_key_is_sent_as_bearer() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::ollama_chat("llama3.2", "ok"));
    let client = Client::builder()
        .no_env()
        .api_base("ollama", format!("{}/api", mock.url()))
        .api_key("ollama", "ol-key")
        .build()
        .unwrap();
    client.completion(hello()).await.unwrap();
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/api/chat", "a base ending in /api is respected");
    assert_eq!(seen.header("authorization"), Some("Bearer ol-key"));
}

#[tokio::test]
async fn ndjson_stream_yields_chunks_and_hides_usage_unless_asked() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    mock.enqueue(MockResponse::ollama_stream_text("llama3.2", ["Hel", "lo ", "wörld"], (12, 3)));
    let (chunks, errors, s) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(chunks.len() >= 4);
    assert!(chunks.iter().all(|c| !c.choices.is_empty()), "usage chunk hidden");
    let id = &chunks[0].id;
    assert!(chunks.iter().all(|c| &c.id == id), "one id for the whole stream");
    let resp = accumulate(&chunks);
    assert_eq!(resp.first_text(), Some("Hello wörld"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.model, "llama3.2");
    let u = s.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 3));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.json().unwrap()["stream"], true);

    let mut req = hello();
    req.stream_options = Some(StreamOptions { include_usage: Some(true), ..Default::default() });
    mock.enqueue(MockResponse::ollama_stream_text("llama3.2", ["x"], (2, 1)));
    let (chunks, _, _) = drain(client.stream(req).await.unwrap()).await;
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 3);

    for size in [1, 5, 33] {
        mock.enqueue(MockResponse::ollama_stream_text("llama3.2", ["Grüße ", "🦀"], (2, 2)).chunk_size(size));
        let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
        assert!(errors.is_empty(), "size {size}: {errors:?}");
        assert_eq!(accumulate(&chunks).first_text(), Some("Grüße 🦀"), "size {size}");
    }
}

#[tokio::test]
async fn thinking_becomes_reasoning_content() {
    let mock = MockServer::start().await;
    mock.enqueue(
        OllamaChatStream::new("qwen3")
            .thinking("Let me think")
            .thinking(" briefly.")
            .content("42")
            .done("stop", 5, 9)
            .into_response(),
    );
    let (chunks, errors, _) = drain(
        client(&mock).stream(ChatRequest::new("ollama/qwen3", vec![Message::user("?")])).await.unwrap(),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    let resp = accumulate(&chunks);
    assert_eq!(resp.first_text(), Some("42"));
    assert_eq!(resp.choices[0].message.reasoning_content.as_deref(), Some("Let me think briefly."));
}

#[tokio::test]
async fn tools_round_trip() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    let weather = Tool::function(
        "get_weather",
        "Weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    );
    mock.enqueue(MockResponse::ollama_tool_calls(
        "llama3.2",
        &[("get_weather", json!({"city": "Zürich"}))],
        (40, 15),
    ));
    let mut req = ChatRequest::new(MODEL, vec![Message::user("weather in Zürich?")]);
    req.tools = Some(vec![weather]);
    let resp = client.completion(req.clone()).await.unwrap();
    assert_eq!(
        resp.choices[0].finish_reason,
        Some(FinishReason::ToolCalls),
        "Ollama says stop; calls mean tool_calls"
    );
    let calls = resp.choices[0].message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].id.is_empty(), "a generated call id");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Zürich"}), "object arguments become a JSON string");
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");

    mock.enqueue(MockResponse::ollama_chat("llama3.2", "Sunny."));
    let id = calls[0].id.clone();
    req.messages.push(Message::assistant_tool_calls(calls));
    req.messages.push(Message::tool_result(id, "sunny"));
    assert_eq!(client.completion(req.clone()).await.unwrap().first_text(), Some("Sunny."));
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(
        body["messages"][1]["tool_calls"][0],
        json!({"function": {"name": "get_weather", "arguments": {"city": "Zürich"}}}),
        "arguments go back as an object"
    );
    assert_eq!(body["messages"][2]["role"], "tool");
    assert_eq!(body["messages"][2]["tool_name"], "get_weather");
    assert_eq!(body["messages"][2]["content"], "sunny");

    // Streamed: Ollama sends each call whole, in one line.
    mock.enqueue(
        OllamaChatStream::new("llama3.2")
            .tool_calls(&[("get_weather", json!({"city": "Bern"})), ("get_time", json!({}))])
            .done("stop", 40, 20)
            .into_response()
            .chunk_size(11),
    );
    req.messages.truncate(1);
    let (chunks, errors, _) = drain(client.stream(req).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    let resp = accumulate(&chunks);
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let calls = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&calls[0].function.arguments).unwrap(),
        json!({"city": "Bern"})
    );
    assert_eq!(calls[1].function.name, "get_time");
    assert_ne!(calls[0].id, calls[1].id);
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = client(&mock);

    mock.enqueue(MockResponse::ollama_model_not_found("llama3.2"));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.status, Some(404));
    assert_eq!(e.provider.as_deref(), Some("ollama"));
    assert!(e.message.contains("try pulling it first"), "{}", e.message);

    mock.enqueue(MockResponse::ollama_error(
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    ));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::Overloaded);

    mock.enqueue(MockResponse::ollama_model_not_found("llama3.2"));
    assert_eq!(client.stream(hello()).await.unwrap_err().kind, ErrorKind::NotFound, "before the first chunk");

    // An error line mid-stream (e.g. the runner crashed) is one error item after the chunks.
    mock.enqueue(
        OllamaChatStream::new("llama3.2")
            .content("par")
            .error("llama runner process has terminated")
            .into_response(),
    );
    let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
    assert_eq!(accumulate(&chunks).first_text(), Some("par"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::ServerError);
    assert!(errors[0].message.contains("runner process"));
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    // One line per network chunk: the connection drops after two lines, before `done: true`.
    mock.enqueue(
        MockResponse::ollama_stream_text("llama3.2", ["one ", "two ", "three"], (3, 3)).cut_after_chunks(2),
    );
    let items: Vec<_> = client(&mock).stream(hello()).await.unwrap().collect().await;
    assert!(items[0].is_ok(), "the chunks before the cut are delivered");
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err());
}

#[tokio::test]
async fn embeddings_use_api_embed() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::ollama_embed(
        "all-minilm",
        &["why is the sky blue?", "why is grass green?"],
        5,
        14,
    ));
    let resp = client(&mock)
        .embedding(EmbeddingRequest::new(
            "ollama/all-minilm",
            EmbeddingInput::Texts(vec!["why is the sky blue?".into(), "why is grass green?".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(resp.data.len(), 2);
    match &resp.data[1].embedding {
        EmbeddingVector::Float(v) => assert_eq!(v, &embedding_vector("why is grass green?", 5)),
        other => panic!("floats expected, got {other:?}"),
    }
    assert_eq!(resp.model, "all-minilm");
    assert_eq!(resp.usage.as_ref().unwrap().prompt_tokens, 14);
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/api/embed");
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "all-minilm");
    assert_eq!(body["input"], json!(["why is the sky blue?", "why is grass green?"]));

    mock.enqueue(MockResponse::ollama_model_not_found("all-minilm"));
    let e = client(&mock)
        .embedding(EmbeddingRequest::new("ollama/all-minilm", EmbeddingInput::Text("x".into())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(mock.last_request().unwrap().json().unwrap()["input"], "x", "a single text stays a string");
}

#[tokio::test]
async fn the_default_responder_chats_streams_embeds_and_misses_models() {
    let mock = MockServer::start().await;
    mock.set_responder(tollgate_testkit::ollama::OllamaResponder {
        missing_models: vec!["not-pulled".into()],
        ..Default::default()
    });
    let client = client(&mock);
    let resp = client.completion(hello()).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));
    assert_eq!(resp.usage.unwrap().prompt_tokens, 4);
    let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(accumulate(&chunks).first_text(), Some("echo: hello there"));
    let resp = client
        .embedding(EmbeddingRequest::new(
            "ollama/all-minilm",
            EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(resp.data.len(), 2);
    let e = client
        .completion(ChatRequest::new("ollama/not-pulled", vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}
