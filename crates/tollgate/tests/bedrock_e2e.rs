//! The SDK end to end over real loopback HTTP against the testkit mock speaking AWS Bedrock's
//! Converse / ConverseStream dialect: SigV4 and bearer auth, URL-encoded model ids, the binary
//! event stream split anywhere, tools, cache usage, typed errors and broken streams.
#![cfg(feature = "bedrock")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use serde_json::json;
use tollgate::tollgate_core::chat::StreamOptions;
use tollgate::{
    ChatRequest, Client, ErrorKind, FinishReason, Message, ProviderSettings, StreamAccumulator, Tool,
    ToolCall,
};
use tollgate_provider_bedrock::sigv4;
use tollgate_testkit::bedrock::{
    BEDROCK_REQUEST_ID, BedrockStream, bedrock_usage_json, converse_json, reasoning_block, text_block,
};
use tollgate_testkit::{MockResponse, MockServer, RecordedRequest};

const MODEL_ID: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const MODEL: &str = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0";
const CONVERSE_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
const STREAM_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn sigv4_settings(mock: &MockServer, session_token: Option<&str>) -> ProviderSettings {
    let mut s = ProviderSettings { api_base: Some(mock.url()), ..Default::default() };
    s.options.insert("aws_region_name".into(), "us-east-1".into());
    s.secrets.insert("aws_access_key_id".into(), "AKID".into());
    s.secrets.insert("aws_secret_access_key".into(), SECRET.into());
    if let Some(t) = session_token {
        s.secrets.insert("aws_session_token".into(), t.into());
    }
    s
}

fn client(mock: &MockServer) -> Client {
    Client::builder().no_env().provider("bedrock", sigv4_settings(mock, None)).build().unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(MODEL, vec![Message::system("be terse"), Message::user("hello there")])
}

fn with_usage(mut req: ChatRequest) -> ChatRequest {
    req.stream_options = Some(StreamOptions { include_usage: Some(true), ..Default::default() });
    req
}

/// Recomputes the SigV4 signature of a recorded request with the bedrock crate's public signer
/// and checks it equals the `Authorization` header that was sent.
fn assert_signed(seen: &RecordedRequest, session_token: Option<&str>) {
    let auth = seen.header("authorization").expect("an Authorization header");
    let amz_date = seen.header("x-amz-date").expect("an x-amz-date header");
    assert_eq!(amz_date.len(), 16, "{amz_date}");
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKID/{}/us-east-1/bedrock/aws4_request, ",
            &amz_date[..8]
        )),
        "{auth}"
    );
    assert!(auth.contains("SignedHeaders=") && auth.contains("Signature="), "{auth}");
    assert_eq!(seen.header("x-amz-security-token"), session_token);

    let host = seen.header("host").expect("a Host header");
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", seen.header("content-type").unwrap()),
        ("host", host),
        ("x-amz-date", amz_date),
    ];
    if let Some(t) = session_token {
        headers.push(("x-amz-security-token", t));
    }
    let payload = sigv4::sha256_hex(&seen.body);
    let date = sigv4::AmzDate { datetime: amz_date.to_owned(), date: amz_date[..8].to_owned() };
    let creds = sigv4::Credentials {
        access_key_id: "AKID".into(),
        secret_access_key: SECRET.into(),
        session_token: session_token.map(Into::into),
    };
    let expected = sigv4::sign(
        &sigv4::SignableRequest {
            method: seen.method.as_str(),
            path: &seen.path,
            query: seen.query.as_deref().unwrap_or(""),
            headers: &headers,
            payload_sha256: &payload,
        },
        &creds,
        "us-east-1",
        "bedrock",
        &date,
    );
    assert_eq!(auth, expected.authorization, "the signature covers the request exactly as received");
    let signed = if session_token.is_some() {
        "content-type;host;x-amz-date;x-amz-security-token"
    } else {
        "content-type;host;x-amz-date"
    };
    assert_eq!(expected.signed_headers, signed);
}

/// Collects a stream: (chunks, accumulated response, errors).
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
async fn completion_is_signed_and_translated() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::bedrock_converse_with_usage(
        "Hi!",
        bedrock_usage_json(10, 5, Some(100), Some(20)),
    ));
    let mut req = hello();
    req.max_tokens = Some(64);
    req.temperature = Some(0.25);
    let resp = client(&mock).completion(req).await.unwrap();

    assert_eq!(resp.first_text(), Some("Hi!"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.id, format!("chatcmpl-{BEDROCK_REQUEST_ID}"));
    assert_eq!(resp.model, MODEL_ID, "Bedrock sends no model: the one that was called");
    let u = resp.usage.unwrap();
    assert_eq!(u.prompt_tokens, 130, "input + cache reads + cache writes");
    assert_eq!(u.cached_tokens(), 100);
    assert_eq!(u.cache_creation_tokens(), 20);
    assert_eq!(u.completion_tokens, 5);
    assert_eq!(u.total_tokens, 135);

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, CONVERSE_PATH, "the model id is URL-encoded in the path");
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_signed(&seen, None);
    let body = seen.json().unwrap();
    assert_eq!(body["system"], json!([{"text": "be terse"}]));
    assert_eq!(body["messages"], json!([{"role": "user", "content": [{"text": "hello there"}]}]));
    assert_eq!(body["inferenceConfig"]["maxTokens"], 64);
    assert_eq!(body["inferenceConfig"]["temperature"], 0.25);
    assert!(body.get("modelId").is_none() && body.get("model").is_none(), "the model is in the path only");
}

#[tokio::test]
async fn session_tokens_are_sent_and_signed() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::bedrock_converse("ok"));
    let client = Client::builder()
        .no_env()
        .provider("bedrock", sigv4_settings(&mock, Some("FwoGZXIvYXdzEXAMPLE")))
        .build()
        .unwrap();
    client.completion(hello()).await.unwrap();
    assert_signed(&mock.last_request().unwrap(), Some("FwoGZXIvYXdzEXAMPLE"));
}

#[tokio::test]
async fn bearer_token_replaces_sigv4() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::bedrock_converse("ok"));
    let mut settings = ProviderSettings { api_base: Some(mock.url()), ..Default::default() };
    settings.bearer_token = Some("bedrock-api-key-123".into());
    settings.options.insert("aws_region_name".into(), "us-west-2".into());
    let client = Client::builder().no_env().provider("bedrock", settings).build().unwrap();
    assert_eq!(client.completion(hello()).await.unwrap().first_text(), Some("ok"));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, CONVERSE_PATH);
    assert_eq!(seen.header("authorization"), Some("Bearer bedrock-api-key-123"));
    assert_eq!(seen.header("x-amz-date"), None, "no SigV4 with a bearer token");
}

#[tokio::test]
async fn missing_credentials_fail_before_sending() {
    let mock = MockServer::start().await;
    let mut settings = ProviderSettings { api_base: Some(mock.url()), ..Default::default() };
    settings.options.insert("aws_region_name".into(), "us-east-1".into());
    let client = Client::builder().no_env().provider("bedrock", settings).build().unwrap();
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn reasoning_blocks_become_reasoning_content() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::bedrock_converse_json(&converse_json(
        vec![reasoning_block("think first", Some("sig==")), text_block("42")],
        "end_turn",
        bedrock_usage_json(3, 9, None, None),
    )));
    let resp = client(&mock).completion(hello()).await.unwrap();
    let msg = &resp.choices[0].message;
    assert_eq!(msg.content.as_deref(), Some("42"));
    assert_eq!(msg.reasoning_content.as_deref(), Some("think first"));
    assert_eq!(resp.usage.unwrap().total_tokens, 12);
}

#[tokio::test]
async fn stream_yields_text_finish_and_hidden_usage() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    mock.enqueue(MockResponse::bedrock_stream_text(["Hel", "lo ", "wörld"], (7, 3)));
    let (chunks, errors, s) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(chunks.len() >= 4, "{chunks:?}");
    assert!(chunks.iter().all(|c| !c.choices.is_empty()), "the usage chunk is hidden unless asked for");
    let resp = accumulate(&chunks);
    assert_eq!(resp.first_text(), Some("Hello wörld"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.model, MODEL_ID);
    let u = s.usage().expect("usage is recorded even when hidden");
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (7, 3, 10));

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, STREAM_PATH);
    assert_eq!(seen.header("accept"), Some("application/vnd.amazon.eventstream"));
    assert_signed(&seen, None);

    // Asked for: the last chunk carries the usage (with cache reads added up) and no choices.
    mock.enqueue(
        BedrockStream::new()
            .message_start()
            .text(0, "ok")
            .block_stop(0)
            .message_stop("max_tokens")
            .metadata(bedrock_usage_json(2, 1, Some(50), None))
            .into_response(),
    );
    let (chunks, errors, _) = drain(client.stream(with_usage(hello())).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let u = last.usage.as_ref().unwrap();
    assert_eq!(u.prompt_tokens, 52);
    assert_eq!(u.cached_tokens(), 50);
    assert_eq!(accumulate(&chunks).choices[0].finish_reason, Some(FinishReason::Length));
}

#[tokio::test]
async fn event_stream_split_into_tiny_network_chunks_decodes_the_same() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    for size in [1, 5, 13, 64, 4096] {
        mock.enqueue(MockResponse::bedrock_stream_text(["Grüße ", "🦀 ", "done"], (4, 3)).chunk_size(size));
        let (chunks, errors, s) = drain(client.stream(hello()).await.unwrap()).await;
        assert!(errors.is_empty(), "chunk size {size}: {errors:?}");
        assert_eq!(accumulate(&chunks).first_text(), Some("Grüße 🦀 done"), "chunk size {size}");
        assert_eq!(s.usage().unwrap().total_tokens, 7, "chunk size {size}");
    }
}

#[tokio::test]
async fn tools_round_trip() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    let weather = Tool::function(
        "get_weather",
        "Weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );

    // 1. The model calls the tool (non-streamed).
    mock.enqueue(MockResponse::bedrock_tool_use(
        [("tooluse_1", "get_weather", json!({"city": "Zürich"}))],
        (20, 8),
    ));
    let mut req = ChatRequest::new(MODEL, vec![Message::user("weather in Zürich?")]);
    req.tools = Some(vec![weather.clone()]);
    let resp = client.completion(req.clone()).await.unwrap();
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let calls = resp.choices[0].message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "tooluse_1");
    assert_eq!(calls[0].function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Zürich"}));
    let body = mock.last_request().unwrap().json().unwrap();
    let spec = &body["toolConfig"]["tools"][0]["toolSpec"];
    assert_eq!(spec["name"], "get_weather");
    assert_eq!(spec["inputSchema"]["json"]["required"], json!(["city"]));

    // 2. The result goes back; the call and the result are translated to toolUse / toolResult.
    mock.enqueue(MockResponse::bedrock_converse("Sunny, 21 °C."));
    req.messages.push(Message::assistant_tool_calls(calls));
    req.messages.push(Message::tool_result("tooluse_1", "sunny, 21C"));
    let resp = client.completion(req.clone()).await.unwrap();
    assert_eq!(resp.first_text(), Some("Sunny, 21 °C."));
    let body = mock.last_request().unwrap().json().unwrap();
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(
        msgs[1]["content"][0]["toolUse"],
        json!({"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Zürich"}})
    );
    assert_eq!(msgs[2]["role"], "user");
    let result = &msgs[2]["content"][0]["toolResult"];
    assert_eq!(result["toolUseId"], "tooluse_1");
    assert_eq!(result["content"][0]["text"], "sunny, 21C");

    // 3. Streamed: the tool input arrives in fragments that straddle network reads.
    mock.enqueue(
        BedrockStream::new()
            .message_start()
            .text(0, "Let me check.")
            .block_stop(0)
            .tool_use_start(1, "tooluse_2", "get_weather")
            .tool_use_input(1, "{\"ci")
            .tool_use_input(1, "ty\": \"Zür")
            .tool_use_input(1, "ich\"}")
            .block_stop(1)
            .message_stop("tool_use")
            .usage(20, 12)
            .into_response()
            .chunk_size(7),
    );
    req.messages.truncate(1);
    let (chunks, errors, _) = drain(client.stream(req).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    let first_tool = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .find_map(|ch| ch.delta.tool_calls.as_ref())
        .expect("a tool-call delta");
    assert_eq!(first_tool[0].id.as_deref(), Some("tooluse_2"));
    assert_eq!(first_tool[0].function.as_ref().unwrap().name.as_deref(), Some("get_weather"));
    let resp = accumulate(&chunks);
    assert_eq!(resp.first_text(), Some("Let me check."));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let calls: &Vec<ToolCall> = resp.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.arguments, "{\"city\": \"Zürich\"}");
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = client(&mock);

    mock.enqueue(
        MockResponse::bedrock_error(429, "ThrottlingException", "Too many requests, please wait.")
            .retry_after(3),
    );
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.status, Some(429));
    assert_eq!(e.provider.as_deref(), Some("bedrock"));
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(3)));
    assert!(e.message.contains("Too many requests"), "{}", e.message);

    mock.enqueue(MockResponse::bedrock_error(
        400,
        "ValidationException",
        "Input is too long for requested model.",
    ));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ContextWindowExceeded);

    mock.enqueue(MockResponse::bedrock_error(400, "ValidationException", "temperature: must be <= 1"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::BadRequest);

    mock.enqueue(MockResponse::bedrock_error(
        403,
        "AccessDeniedException",
        "You don't have access to the model.",
    ));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::PermissionDenied);

    // Errors before the first chunk surface from `stream()` itself.
    mock.enqueue(MockResponse::bedrock_error(503, "ServiceUnavailableException", "Service is busy"));
    assert_eq!(client.stream(hello()).await.unwrap_err().kind, ErrorKind::Overloaded);
    assert_eq!(mock.requests_for(STREAM_PATH).len(), 1);
}

#[tokio::test]
async fn exception_frames_mid_stream_are_typed_errors() {
    let mock = MockServer::start().await;
    mock.enqueue(
        BedrockStream::new()
            .message_start()
            .text(0, "partial")
            .exception("throttlingException", "Too many tokens, please wait.")
            .into_response(),
    );
    let (chunks, errors, _) = drain(client(&mock).stream(hello()).await.unwrap()).await;
    assert_eq!(accumulate(&chunks).first_text(), Some("partial"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, ErrorKind::RateLimited);
    assert!(errors[0].message.contains("Too many tokens"));
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    // One frame per network chunk: the connection drops after three frames, before messageStop.
    mock.enqueue(MockResponse::bedrock_stream_text(["one ", "two ", "three"], (3, 3)).cut_after_chunks(3));
    let items: Vec<_> = client.stream(hello()).await.unwrap().collect().await;
    assert!(items[0].is_ok(), "the chunks before the cut are delivered");
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err(), "the error is the last item");

    // Cut between messageStop and metadata: the text is whole but the usage is lost → still an error.
    mock.enqueue(MockResponse::bedrock_stream_text(["a"], (1, 1)).cut_after_chunks(4));
    let items: Vec<_> = client.stream(hello()).await.unwrap().collect().await;
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err());
}

#[tokio::test]
async fn a_bad_crc_is_a_decode_error() {
    let mock = MockServer::start().await;
    mock.enqueue(
        BedrockStream::new()
            .message_start()
            .text(0, "fine")
            .text(0, " corrupted")
            .message_stop("end_turn")
            .usage(1, 2)
            .corrupt_crc(2)
            .into_response()
            .chunk_size(10),
    );
    let (chunks, errors, _) = drain(client(&mock).stream(hello()).await.unwrap()).await;
    assert_eq!(accumulate(&chunks).first_text(), Some("fine"), "nothing from the corrupted frame");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, ErrorKind::Decode);
}

#[tokio::test]
async fn the_default_responder_answers_converse_and_converse_stream() {
    let mock = MockServer::start().await;
    mock.set_responder(tollgate_testkit::bedrock::BedrockResponder);
    let client = client(&mock);
    let resp = client.completion(hello()).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));
    assert_eq!(resp.usage.unwrap().prompt_tokens, 4, "system + user words");
    let (chunks, errors, s) = drain(client.stream(hello()).await.unwrap()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(accumulate(&chunks).first_text(), Some("echo: hello there"));
    assert_eq!(s.usage().unwrap().completion_tokens, 3);
}
