//! The SDK end to end over real loopback HTTP against the testkit mock speaking Cohere's v2
//! dialect: chat, the named-event SSE stream, tools, embeddings and typed errors.
#![cfg(feature = "cohere")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use serde_json::json;
use tollgate::tollgate_core::chat::StreamOptions;
use tollgate::tollgate_core::embedding::EmbeddingVector;
use tollgate::{
    ChatRequest, Client, EmbeddingInput, EmbeddingRequest, ErrorKind, FinishReason, Message,
    StreamAccumulator, Tool,
};
use tollgate_testkit::cohere::{COHERE_MOCK_ID, CohereChatStream};
use tollgate_testkit::openai::embedding_vector;
use tollgate_testkit::{MockResponse, MockServer};

const MODEL: &str = "cohere/command-a-03-2025";

fn client(mock: &MockServer) -> Client {
    Client::builder()
        .no_env()
        .api_base("cohere", mock.url())
        .api_key("cohere", "co-test-key")
        .build()
        .unwrap()
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
async fn completion_sends_v2_chat_and_parses_the_reply() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::cohere_chat_with_usage("Hi!", 5, 2));
    let mut req = hello();
    req.top_p = Some(0.5);
    req.max_tokens = Some(40);
    req.stop = Some(tollgate::tollgate_core::chat::Stop::One("END".into()));
    let resp = client(&mock).completion(req).await.unwrap();
    assert_eq!(resp.first_text(), Some("Hi!"));
    assert_eq!(resp.id, COHERE_MOCK_ID);
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.model, "command-a-03-2025", "Cohere sends no model: the one that was called");
    assert!(resp.created > 0);
    let u = resp.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (5, 2, 7), "billed units");

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v2/chat");
    assert_eq!(seen.header("authorization"), Some("Bearer co-test-key"));
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "command-a-03-2025");
    assert_eq!(body["stream"], false);
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "be terse"}));
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["p"], 0.5);
    assert_eq!(body["max_tokens"], 40);
    assert_eq!(body["stop_sequences"], json!(["END"]));
}

#[tokio::test]
async fn bare_command_models_go_to_cohere() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::cohere_chat("ok"));
    let req = ChatRequest::new("command-r-plus", vec![Message::user("hi")]);
    assert_eq!(client(&mock).completion(req).await.unwrap().first_text(), Some("ok"));
    assert_eq!(mock.last_request().unwrap().json().unwrap()["model"], "command-r-plus");
}

#[tokio::test]
async fn stream_yields_chunks_and_hides_usage_unless_asked() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    mock.enqueue(MockResponse::cohere_stream_text(["Hel", "lo ", "wörld"], (6, 3)));
    let (chunks, errors, s) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(chunks.len() >= 4);
    assert!(chunks.iter().all(|c| !c.choices.is_empty()), "usage chunk hidden");
    assert!(chunks.iter().all(|c| c.id == COHERE_MOCK_ID), "the message-start id labels every chunk");
    let resp = accumulate(&chunks);
    assert_eq!(resp.first_text(), Some("Hello wörld"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.model, "command-a-03-2025");
    let u = s.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (6, 3));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.json().unwrap()["stream"], true);
    assert_eq!(seen.header("accept"), Some("text/event-stream"));

    let mut req = hello();
    req.stream_options = Some(StreamOptions { include_usage: Some(true), ..Default::default() });
    mock.enqueue(MockResponse::cohere_stream_text(["x"], (1, 1)));
    let (chunks, _, _) = drain(client.stream(req).await.unwrap()).await;
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 2);

    // Any network split decodes the same.
    for size in [1, 9, 50] {
        mock.enqueue(MockResponse::cohere_stream_text(["Grüße ", "🦀"], (2, 2)).chunk_size(size));
        let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
        assert!(errors.is_empty(), "size {size}: {errors:?}");
        assert_eq!(accumulate(&chunks).first_text(), Some("Grüße 🦀"), "size {size}");
    }
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
    mock.enqueue(MockResponse::cohere_tool_calls(
        "I will look up the weather.",
        &[("get_weather_r1", "get_weather", r#"{"city":"Zürich"}"#)],
        (30, 12),
    ));
    let mut req = ChatRequest::new(MODEL, vec![Message::user("weather in Zürich?")]);
    req.tools = Some(vec![weather]);
    let resp = client.completion(req.clone()).await.unwrap();
    let msg = &resp.choices[0].message;
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(msg.reasoning_content.as_deref(), Some("I will look up the weather."), "tool_plan");
    let calls = msg.tool_calls.clone().unwrap();
    assert_eq!(calls[0].id, "get_weather_r1");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Zürich"}"#);
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");

    mock.enqueue(MockResponse::cohere_chat("Sunny."));
    req.messages.push(Message::assistant_tool_calls(calls));
    req.messages.push(Message::tool_result("get_weather_r1", "sunny"));
    assert_eq!(client.completion(req.clone()).await.unwrap().first_text(), Some("Sunny."));
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["messages"][1]["tool_calls"][0]["id"], "get_weather_r1");
    assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Zürich"}"#);
    assert_eq!(body["messages"][2]["role"], "tool");
    assert_eq!(body["messages"][2]["tool_call_id"], "get_weather_r1");
    assert_eq!(body["messages"][2]["content"], "sunny");

    // Streamed: the plan, then the call's arguments in fragments.
    mock.enqueue(
        CohereChatStream::new("stream-1")
            .message_start()
            .tool_plan("I will ")
            .tool_plan("check.")
            .tool_call_start(0, "get_weather_s1", "get_weather")
            .tool_call_arguments(0, "{\"city\":")
            .tool_call_arguments(0, "\"Bern\"}")
            .tool_call_end(0)
            .message_end("TOOL_CALL", Some((30, 15)))
            .into_response()
            .chunk_size(16),
    );
    req.messages.truncate(1);
    let (chunks, errors, _) = drain(client.stream(req).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    let resp = accumulate(&chunks);
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(resp.choices[0].message.reasoning_content.as_deref(), Some("I will check."));
    let calls = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "get_weather_s1");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, "{\"city\":\"Bern\"}");
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = client(&mock);

    mock.enqueue(
        MockResponse::cohere_error(
            429,
            "You are using a Trial key, which is limited to 10 API calls / minute.",
        )
        .retry_after(6),
    );
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.status, Some(429));
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(6)));
    assert_eq!(e.provider.as_deref(), Some("cohere"));
    assert!(e.message.contains("Trial key"), "{}", e.message);

    mock.enqueue(MockResponse::cohere_error(401, "invalid api token"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::Authentication);

    mock.enqueue(MockResponse::cohere_error(400, "invalid request: messages must not be empty"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::BadRequest);

    // Before the first chunk: from `stream()` itself.
    mock.enqueue(MockResponse::cohere_error(429, "slow down"));
    assert_eq!(client.stream(hello()).await.unwrap_err().kind, ErrorKind::RateLimited);

    // A generation error reported by message-end is an error item, not a finish reason.
    mock.enqueue(
        CohereChatStream::new("s")
            .message_start()
            .content_start(0)
            .text(0, "par")
            .message_end_error("internal model failure")
            .into_response(),
    );
    let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
    assert_eq!(accumulate(&chunks).first_text(), Some("par"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::ServerError);
    assert!(errors[0].message.contains("internal model failure"));
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    mock.enqueue(
        MockResponse::cohere_stream_text(["one ", "two ", "three"], (3, 3))
            .chunk_size(60)
            .cut_after_chunks(5),
    );
    let items: Vec<_> = client(&mock).stream(hello()).await.unwrap().collect().await;
    assert!(items[0].is_ok(), "the chunks before the cut are delivered");
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err());
}

#[tokio::test]
async fn embeddings_use_v2_embed() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::cohere_embed(&["first text", "second"], 6, 3));
    let resp = client(&mock)
        .embedding(EmbeddingRequest::new(
            "cohere/embed-v4.0",
            EmbeddingInput::Texts(vec!["first text".into(), "second".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(resp.data.len(), 2);
    assert_eq!(resp.data[1].index, 1);
    match &resp.data[0].embedding {
        EmbeddingVector::Float(v) => assert_eq!(v, &embedding_vector("first text", 6)),
        other => panic!("floats expected, got {other:?}"),
    }
    assert_eq!(resp.model, "embed-v4.0");
    assert_eq!(resp.usage.as_ref().unwrap().prompt_tokens, 3);

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v2/embed");
    assert_eq!(seen.header("authorization"), Some("Bearer co-test-key"));
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "embed-v4.0");
    assert_eq!(body["texts"], json!(["first text", "second"]));
    assert_eq!(body["input_type"], "search_document");
    assert_eq!(body["embedding_types"], json!(["float"]));
}

#[tokio::test]
async fn the_default_responder_chats_streams_and_embeds() {
    let mock = MockServer::start().await;
    mock.set_responder(tollgate_testkit::cohere::CohereResponder::default());
    let client = client(&mock);
    assert_eq!(client.completion(hello()).await.unwrap().first_text(), Some("echo: hello there"));
    let (chunks, errors, _) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(accumulate(&chunks).first_text(), Some("echo: hello there"));
    let mut req = EmbeddingRequest::new("cohere/embed-v4.0", EmbeddingInput::Text("a b".into()));
    req.dimensions = Some(4);
    let resp = client.embedding(req).await.unwrap();
    match &resp.data[0].embedding {
        EmbeddingVector::Float(v) => assert_eq!(v, &embedding_vector("a b", 4)),
        other => panic!("floats expected, got {other:?}"),
    }
}
