//! The SDK end to end over real loopback HTTP against the testkit mock speaking Anthropic's
//! Messages API: the translated request on the wire, responses, named-event streams, tools,
//! JSON schema, and errors mapped to typed kinds.
#![cfg(feature = "anthropic")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate::tollgate_core::chat::{JsonSchemaFormat, StreamOptions};
use tollgate::{
    CallOptions, ChatRequest, Client, ErrorKind, FinishReason, Message, ProviderSettings, ResponseFormat,
    StreamAccumulator, Tool,
};
use tollgate_testkit::anthropic::{
    AnthropicResponder, AnthropicStream, AnthropicUsage, text_block, thinking_block,
};
use tollgate_testkit::{MockResponse, MockServer};

fn client(mock: &MockServer) -> Client {
    Client::builder()
        .no_env()
        .api_base("anthropic", mock.url())
        .api_key("anthropic", "sk-ant-test")
        .build()
        .unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(
        "anthropic/claude-sonnet-4-5",
        vec![Message::system("be terse"), Message::user("hello there")],
    )
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

#[tokio::test]
async fn completion_sends_messages_wire_format_and_sums_cache_tokens_into_prompt() {
    let mock = MockServer::start().await;
    mock.enqueue_for(
        "/v1/messages",
        MockResponse::anthropic_message_blocks(
            vec![thinking_block("Short answer.", "sig-1"), text_block("Hi!")],
            "end_turn",
            AnthropicUsage::new(10, 7).with_cache(100, 20),
        ),
    );
    let mut req = hello();
    req.temperature = Some(0.3);
    req.max_completion_tokens = Some(256);
    req.stop = Some(tollgate::tollgate_core::chat::Stop::One("END".into()));
    let resp = client(&mock).completion(req).await.unwrap();

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None, "the key travels only in x-api-key");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "claude-sonnet-4-5", "the provider prefix is not sent upstream");
    assert_eq!(body["system"], "be terse", "system messages move to the top-level `system`");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hello there"}]));
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert!(body.get("stream").is_none());

    assert_eq!(resp.first_text(), Some("Hi!"));
    assert_eq!(resp.id, "msg_mock");
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(choice.message.reasoning_content.as_deref(), Some("Short answer."));
    let usage = resp.usage.unwrap();
    assert_eq!(usage.prompt_tokens, 130, "input + cache reads + cache writes");
    assert_eq!(usage.cached_tokens(), 100);
    assert_eq!(usage.cache_creation_tokens(), 20);
    assert_eq!(usage.completion_tokens, 7);
    assert_eq!(usage.total_tokens, 137);
}

#[tokio::test]
async fn bearer_token_and_api_version_settings_are_used() {
    let mock = MockServer::start().await;
    mock.set_responder(AnthropicResponder);
    let client = Client::builder()
        .no_env()
        .provider(
            "anthropic",
            ProviderSettings {
                api_base: Some(format!("{}/v1", mock.url())),
                bearer_token: Some("oauth-token".into()),
                api_version: Some("2099-01-01".into()),
                ..Default::default()
            },
        )
        .build()
        .unwrap();
    let resp = client.completion(hello()).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/messages", "a base ending in /v1 is not doubled");
    assert_eq!(seen.header("authorization"), Some("Bearer oauth-token"));
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("anthropic-version"), Some("2099-01-01"));
}

#[tokio::test]
async fn stream_yields_chunks_and_hides_usage_unless_asked() {
    let mock = MockServer::start().await;
    mock.set_responder(AnthropicResponder);
    let client = client(&mock);

    let mut stream = client.stream(hello()).await.unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    let mut finish = None;
    let mut first_role = None;
    while let Some(c) = stream.next().await {
        let c = c.unwrap();
        chunks += 1;
        assert!(!c.choices.is_empty(), "the usage-only chunk is hidden when not asked for");
        assert_eq!(c.id, format!("msg_mock_{}", 0), "every chunk carries message_start's id");
        for ch in &c.choices {
            if first_role.is_none() {
                first_role = ch.delta.role;
            }
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            if ch.finish_reason.is_some() {
                finish = ch.finish_reason.clone();
            }
        }
    }
    assert!(chunks > 3, "one chunk per text_delta");
    assert_eq!(first_role, Some(tollgate::Role::Assistant));
    assert_eq!(text, "echo: hello there");
    assert_eq!(finish, Some(FinishReason::Stop));
    let usage = stream.usage().expect("usage is still recorded");
    assert_eq!(usage.prompt_tokens, 4, "word count of system + messages");
    assert_eq!(usage.completion_tokens, 3);
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["stream"], true);

    let mut req = hello();
    req.stream_options = Some(StreamOptions { include_usage: Some(true), ..Default::default() });
    let all: Vec<_> = client.stream(req).await.unwrap().collect().await;
    let last = all.last().unwrap().as_ref().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 7);
}

#[tokio::test]
async fn stream_split_anywhere_decodes_the_same_with_cache_usage() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    for size in [1, 5, 64, 4096] {
        mock.enqueue(
            MockResponse::anthropic_stream_text(
                ["Grüße ", "🦀 ", "done"],
                AnthropicUsage::new(3, 4).with_cache(50, 8),
            )
            .chunk_size(size),
        );
        let mut s = client.stream(hello()).await.unwrap();
        let mut text = String::new();
        while let Some(c) = s.next().await {
            for ch in c.unwrap().choices {
                text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            }
        }
        assert_eq!(text, "Grüße 🦀 done", "chunk size {size}");
        let u = s.usage().unwrap();
        assert_eq!((u.prompt_tokens, u.cached_tokens(), u.cache_creation_tokens()), (61, 50, 8));
        assert_eq!(u.completion_tokens, 4, "message_delta's cumulative output_tokens win");
    }
}

#[tokio::test]
async fn stream_carries_thinking_and_signature() {
    let mock = MockServer::start().await;
    mock.enqueue(
        AnthropicStream::new("msg_t", "claude-sonnet-4-5", AnthropicUsage::new(5, 1))
            .thinking(["Let me ", "think."], "sig-xyz")
            .ping()
            .text(["Answer"])
            .finish("end_turn", 9)
            .into_response(),
    );
    let items: Vec<_> = client(&mock).stream(hello()).await.unwrap().collect().await;
    let mut acc = StreamAccumulator::new();
    let mut blocks = Vec::new();
    for i in &items {
        let c = i.as_ref().unwrap();
        for ch in &c.choices {
            if let Some(b) = ch.delta.extra.get("thinking_blocks") {
                blocks.push(b.clone());
            }
        }
        acc.push(c);
    }
    let resp = acc.finish();
    assert_eq!(resp.choices[0].message.reasoning_content.as_deref(), Some("Let me think."));
    assert_eq!(resp.first_text(), Some("Answer"));
    assert_eq!(
        blocks,
        vec![json!([{"type": "thinking", "thinking": "Let me think.", "signature": "sig-xyz"}])]
    );
}

#[tokio::test]
async fn tools_round_trip() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    mock.enqueue(MockResponse::anthropic_tool_use([("toolu_01", "get_weather", json!({"city": "Paris"}))]));
    let mut req = ChatRequest::new("anthropic/claude-sonnet-4-5", vec![Message::user("Weather in Paris?")]);
    req.tools = Some(vec![weather_tool()]);
    req.tool_choice = Some(serde_json::from_value(json!("auto")).unwrap());
    let resp = client.completion(req.clone()).await.unwrap();

    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(
        body["tools"],
        json!([{"name": "get_weather", "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));

    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));

    // The follow-up carries the call and its result in Anthropic's shapes.
    mock.enqueue(MockResponse::anthropic_message("It is 18°C in Paris."));
    req.messages.push(Message::assistant_tool_calls(calls));
    req.messages.push(Message::tool_result("toolu_01", "18°C, cloudy"));
    let resp = client.completion(req).await.unwrap();
    assert_eq!(resp.first_text(), Some("It is 18°C in Paris."));
    let body = mock.last_request().unwrap().json().unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"],
        json!([{"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}])
    );
    assert_eq!(messages[2]["role"], "user", "tool results travel in a user turn");
    assert_eq!(
        messages[2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, cloudy"}])
    );
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_indexed_deltas() {
    let mock = MockServer::start().await;
    mock.enqueue(
        MockResponse::anthropic_stream_tool_use(
            [
                ("toolu_A", "get_weather", r#"{"city": "Zürich"}"#),
                ("toolu_B", "get_time", r#"{"tz": "Europe/Paris"}"#),
            ],
            AnthropicUsage::new(30, 40),
        )
        .chunk_size(7),
    );
    let mut req = hello();
    req.tools = Some(vec![weather_tool(), Tool::function("get_time", "Now", json!({"type": "object"}))]);
    let mut stream = client(&mock).stream(req).await.unwrap();
    let mut acc = StreamAccumulator::new();
    let mut starts = Vec::new();
    let mut fragments = 0;
    while let Some(c) = stream.next().await {
        let c = &c.unwrap();
        for ch in &c.choices {
            for d in ch.delta.tool_calls.iter().flatten() {
                match &d.id {
                    Some(id) => starts.push((d.index, id.clone(), d.function.as_ref().unwrap().name.clone())),
                    None => {
                        assert!(d.function.as_ref().unwrap().name.is_none());
                        fragments += 1;
                    }
                }
            }
        }
        acc.push(c);
    }
    assert_eq!(
        starts,
        vec![
            (0, "toolu_A".to_owned(), Some("get_weather".to_owned())),
            (1, "toolu_B".to_owned(), Some("get_time".to_owned()))
        ]
    );
    assert_eq!(fragments, 4, "two input_json_delta fragments per call");
    let resp = acc.finish();
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let calls = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].function.arguments, r#"{"city": "Zürich"}"#, "partial_json is forwarded verbatim");
    assert_eq!(calls[1].function.arguments, r#"{"tz": "Europe/Paris"}"#);
    assert!(resp.usage.is_none(), "the usage-only chunk was not asked for");
    assert_eq!(stream.usage().unwrap().total_tokens, 70);
}

#[tokio::test]
async fn json_schema_becomes_a_forced_tool_and_comes_back_as_content() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::anthropic_tool_use([(
        "toolu_J",
        "json_tool_call",
        json!({"name": "Alice", "age": 30}),
    )]));
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"]});
    let mut req =
        ChatRequest::new("anthropic/claude-sonnet-4-5", vec![Message::user("Extract: Alice is 30.")]);
    req.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: "person".into(),
            description: Some("A person".into()),
            schema: Some(schema.clone()),
            strict: Some(true),
            extra: Default::default(),
        },
    });
    let resp = client(&mock).completion(req).await.unwrap();
    let body = mock.last_request().unwrap().json().unwrap();
    assert_eq!(body["tools"][0]["name"], "json_tool_call");
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "json_tool_call"}));

    let content: Value = serde_json::from_str(resp.first_text().unwrap()).unwrap();
    assert_eq!(content, json!({"name": "Alice", "age": 30}));
    assert!(resp.choices[0].message.tool_calls.is_none(), "the JSON tool is not a tool call");
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = client(&mock);

    mock.enqueue(
        MockResponse::anthropic_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your limit",
        )
        .retry_after(7),
    );
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(e.status, Some(429));
    assert_eq!(e.provider.as_deref(), Some("anthropic"));
    assert_eq!(e.code.as_deref(), Some("rate_limit_error"));

    mock.enqueue(MockResponse::anthropic_error(
        400,
        "invalid_request_error",
        "prompt is too long: 215000 tokens > 200000 maximum",
    ));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ContextWindowExceeded);
    assert_eq!(e.status, Some(400));

    mock.enqueue(MockResponse::anthropic_error(400, "invalid_request_error", "max_tokens: Field required"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::BadRequest);

    mock.enqueue(MockResponse::anthropic_error(529, "overloaded_error", "Overloaded"));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(e.status, Some(529));
    assert!(e.kind.is_retryable());

    mock.enqueue(MockResponse::anthropic_error(401, "authentication_error", "invalid x-api-key"));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert!(!e.kind.is_retryable());

    mock.enqueue(MockResponse::anthropic_error(500, "api_error", "Internal server error"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::ServerError);

    mock.enqueue(MockResponse::bytes("text/html", "<html>502 Bad Gateway</html>").status(502));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServerError);
    assert!(e.message.contains("502 Bad Gateway"), "{}", e.message);

    // A 200 whose body is an error envelope is still an error.
    mock.enqueue(MockResponse::json(&tollgate_testkit::anthropic::error_json(
        "overloaded_error",
        "Overloaded",
    )));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::Overloaded);

    // Before the first chunk, stream errors come from `stream()` itself.
    mock.enqueue(MockResponse::anthropic_error(529, "overloaded_error", "Overloaded"));
    assert_eq!(client.stream(hello()).await.unwrap_err().kind, ErrorKind::Overloaded);
}

/// Everything a stream call yields: `stream()`'s own error, or the items.
async fn collect_stream(
    client: &Client,
    req: ChatRequest,
) -> Vec<Result<tollgate::ChatChunk, tollgate::Error>> {
    match client.stream(req).await {
        Ok(s) => s.collect().await,
        Err(e) => vec![Err(e)],
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream_with_one_typed_error() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    for size in [None, Some(16)] {
        let r = AnthropicStream::new("msg_e", "claude-sonnet-4-5", AnthropicUsage::new(5, 1))
            .text(["partial ", "answer"])
            .error("overloaded_error", "Overloaded")
            .into_response();
        mock.enqueue(match size {
            Some(n) => r.chunk_size(n),
            None => r,
        });
        let items = collect_stream(&client, hello()).await;
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{items:?}");
        assert_eq!(errors[0].kind, ErrorKind::Overloaded);
        assert_eq!(errors[0].provider.as_deref(), Some("anthropic"));
        assert!(items.last().unwrap().is_err(), "the error is the last item");
        // How much of the text arrives first depends on how the body was split on the network
        // (see the report on the transport); whatever arrives is a prefix of the real text.
        let text: String = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
            .collect();
        assert!("partial answer".starts_with(&text), "{text:?}");
    }
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    // The stream is ~1.4 kB; 100-byte network chunks, cut after 6: long before message_stop.
    mock.enqueue(
        MockResponse::anthropic_stream_text(["one ", "two ", "three"], AnthropicUsage::new(3, 3))
            .chunk_size(100)
            .cut_after_chunks(6),
    );
    let items: Vec<_> = client(&mock).stream(hello()).await.unwrap().collect().await;
    assert!(items[0].is_ok(), "the chunks before the cut are delivered");
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert!(matches!(errors[0].kind, ErrorKind::Transport | ErrorKind::Decode), "{:?}", errors[0].kind);
    assert!(items.last().unwrap().is_err(), "the error is the last item");

    // A body that ends cleanly but without message_stop is a decode error too.
    mock.enqueue(
        AnthropicStream::new("msg_c", "claude-sonnet-4-5", AnthropicUsage::new(1, 1))
            .text(["x"])
            .into_response(),
    );
    let items: Vec<_> = client(&mock).stream(hello()).await.unwrap().collect().await;
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Decode);
    assert!(items.last().unwrap().is_err());
}

#[tokio::test]
async fn per_call_options_reach_the_wire() {
    let mock = MockServer::start().await;
    mock.set_responder(AnthropicResponder);
    let opts = CallOptions::default()
        .header("anthropic-beta", "context-1m-2025-08-07")
        .extra_body("metadata", json!({"user_id": "u-1"}))
        .api_key("sk-call");
    client(&mock).completion_with(hello(), &opts).await.unwrap();
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.header("x-api-key"), Some("sk-call"), "a per-call key wins");
    assert_eq!(seen.header("anthropic-beta"), Some("context-1m-2025-08-07"));
    assert_eq!(seen.json().unwrap()["metadata"], json!({"user_id": "u-1"}));
}
