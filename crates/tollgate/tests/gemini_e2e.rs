//! The SDK end to end over real loopback HTTP against the testkit mock speaking Google AI
//! Studio's Gemini API: the translated request on the wire, responses, `alt=sse` streams, tools,
//! JSON schema, embeddings, and Google errors mapped to typed kinds.
#![cfg(feature = "gemini")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate::tollgate_core::chat::{JsonSchemaFormat, StreamOptions};
use tollgate::tollgate_core::embedding::EmbeddingVector;
use tollgate::{
    ChatChunk, ChatRequest, Client, EmbeddingInput, EmbeddingRequest, Error, ErrorKind, FinishReason,
    Message, ResponseFormat, StreamAccumulator, Tool,
};
use tollgate_testkit::gemini::{GeminiResponder, GeminiUsage, response_json, text_part, thought_part};
use tollgate_testkit::openai::embedding_vector;
use tollgate_testkit::{MockResponse, MockServer};

const MODEL_PATH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM_PATH: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

fn client(mock: &MockServer) -> Client {
    Client::builder().no_env().api_base("gemini", mock.url()).api_key("gemini", "AIza-test").build().unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(
        "gemini/gemini-2.5-flash",
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

async fn collect_stream(client: &Client, req: ChatRequest) -> Vec<Result<ChatChunk, Error>> {
    match client.stream(req).await {
        Ok(s) => s.collect().await,
        Err(e) => vec![Err(e)],
    }
}

#[tokio::test]
async fn completion_sends_generate_content_and_keeps_cached_and_thought_tokens_in_place() {
    let mock = MockServer::start().await;
    mock.enqueue_for(
        MODEL_PATH,
        MockResponse::gemini_parts(
            vec![thought_part("Plan the greeting."), text_part("Hi!")],
            "STOP",
            GeminiUsage::new(100, 5).with_cached_and_thoughts(60, 40),
        ),
    );
    let mut req = hello();
    req.temperature = Some(0.2);
    req.max_completion_tokens = Some(50);
    let resp = client(&mock).completion(req).await.unwrap();

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, MODEL_PATH, "the api_base gets the default /v1beta version");
    assert_eq!(seen.query, None);
    assert_eq!(seen.header("x-goog-api-key"), Some("AIza-test"));
    assert_eq!(seen.header("authorization"), None);
    let body = seen.json().unwrap();
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "hello there"}]}]));
    assert_eq!(body["systemInstruction"]["parts"], json!([{"text": "be terse"}]));
    assert_eq!(body["generationConfig"]["temperature"], 0.2);
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 50);
    assert!(body.get("model").is_none(), "the model is in the URL");

    assert_eq!(resp.first_text(), Some("Hi!"));
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert_eq!(choice.message.reasoning_content.as_deref(), Some("Plan the greeting."));
    let usage = resp.usage.unwrap();
    assert_eq!(usage.prompt_tokens, 100, "promptTokenCount already includes the cached tokens");
    assert_eq!(usage.cached_tokens(), 60);
    assert_eq!(usage.completion_tokens, 45, "candidates + thoughts");
    assert_eq!(usage.reasoning_tokens(), 40);
    assert_eq!(usage.total_tokens, 145);
}

#[tokio::test]
async fn stream_uses_alt_sse_and_hides_usage_unless_asked() {
    let mock = MockServer::start().await;
    mock.set_responder(GeminiResponder::default());
    let client = client(&mock);

    let mut stream = client.stream(hello()).await.unwrap();
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
    assert!(chunks >= 3, "one chunk per word");
    assert_eq!(text, "echo: hello there");
    assert_eq!(finish, Some(FinishReason::Stop));
    let usage = stream.usage().expect("usage is still recorded");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (4, 3));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, STREAM_PATH);
    assert_eq!(seen.query_param("alt"), Some("sse"));
    assert_eq!(seen.header("x-goog-api-key"), Some("AIza-test"));

    let mut req = hello();
    req.stream_options = Some(StreamOptions { include_usage: Some(true), ..Default::default() });
    let all: Vec<_> = client.stream(req).await.unwrap().collect().await;
    let last = all.last().unwrap().as_ref().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 7);
}

#[tokio::test]
async fn stream_split_anywhere_decodes_the_same() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    for size in [1, 3, 64, 4096] {
        mock.enqueue(
            MockResponse::gemini_stream_text(
                ["Grüße ", "🦀 ", "done"],
                GeminiUsage::new(20, 3).with_cached_and_thoughts(8, 2),
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
        assert_eq!((u.prompt_tokens, u.cached_tokens()), (20, 8), "the last usageMetadata wins");
        assert_eq!((u.completion_tokens, u.reasoning_tokens()), (5, 2));
    }
}

#[tokio::test]
async fn tools_round_trip() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    mock.enqueue(MockResponse::gemini_function_calls([("get_weather", json!({"city": "Paris"}))]));
    let mut req = ChatRequest::new("gemini/gemini-2.5-flash", vec![Message::user("Weather in Paris?")]);
    req.tools = Some(vec![weather_tool()]);
    req.tool_choice = Some(serde_json::from_value(json!("required")).unwrap());
    let resp = client.completion(req.clone()).await.unwrap();

    let body = mock.last_request().unwrap().json().unwrap();
    let decl = &body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");
    assert_eq!(decl["description"], "Current weather for a city");
    assert_eq!(
        decl["parameters"]["properties"]["city"]["type"].as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("string")
    );
    assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], "ANY");

    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].id.starts_with("call_"), "{}", calls[0].id);
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));

    // Same answer, same id: ids are deterministic.
    mock.enqueue(MockResponse::gemini_function_calls([("get_weather", json!({"city": "Paris"}))]));
    let again = client.completion(req.clone()).await.unwrap();
    assert_eq!(again.choices[0].message.tool_calls.as_ref().unwrap()[0].id, calls[0].id);

    // The follow-up: the call as a functionCall part of a model turn, the result as a
    // functionResponse named after the call.
    mock.enqueue(MockResponse::gemini_text("It is 18°C in Paris."));
    let id = calls[0].id.clone();
    req.messages.push(Message::assistant_tool_calls(calls));
    req.messages.push(Message::tool_result(id, r#"{"temp_c": 18, "sky": "cloudy"}"#));
    let resp = client.completion(req).await.unwrap();
    assert_eq!(resp.first_text(), Some("It is 18°C in Paris."));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let body = mock.last_request().unwrap().json().unwrap();
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris"}})
    );
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp_c": 18, "sky": "cloudy"}})
    );
}

#[tokio::test]
async fn streamed_function_calls_arrive_whole_with_ids_and_indices() {
    let mock = MockServer::start().await;
    mock.enqueue(
        MockResponse::gemini_stream_function_calls(
            [("get_weather", json!({"city": "Zürich"})), ("get_time", json!({}))],
            GeminiUsage::new(30, 12).with_cached_and_thoughts(0, 5),
        )
        .chunk_size(9),
    );
    let mut req = hello();
    req.tools = Some(vec![weather_tool(), Tool::function("get_time", "Now", json!({"type": "object"}))]);
    let mut stream = client(&mock).stream(req).await.unwrap();
    let mut acc = StreamAccumulator::new();
    let mut deltas = Vec::new();
    while let Some(c) = stream.next().await {
        let c = c.unwrap();
        for ch in &c.choices {
            for d in ch.delta.tool_calls.iter().flatten() {
                let f = d.function.as_ref().unwrap();
                deltas.push((d.index, d.id.is_some(), f.name.clone().unwrap(), f.arguments.clone().unwrap()));
            }
        }
        acc.push(&c);
    }
    assert_eq!(
        deltas,
        vec![
            (0, true, "get_weather".to_owned(), r#"{"city":"Zürich"}"#.to_owned()),
            (1, true, "get_time".to_owned(), "{}".to_owned())
        ]
    );
    let resp = acc.finish();
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(resp.choices[0].message.reasoning_content.as_deref(), Some("Considering the tools."));
    let u = stream.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.reasoning_tokens()), (30, 17, 5));
}

#[tokio::test]
async fn json_schema_sets_response_mime_type_and_schema() {
    let mock = MockServer::start().await;
    mock.enqueue(MockResponse::gemini_text(r#"{"name": "Bob", "age": 31}"#));
    let mut req = ChatRequest::new("gemini/gemini-2.5-flash", vec![Message::user("Extract: Bob is 31.")]);
    req.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: "person".into(),
            description: None,
            schema: Some(
                json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                                "required": ["name", "age"], "additionalProperties": false}),
            ),
            strict: Some(true),
            extra: Default::default(),
        },
    });
    let resp = client(&mock).completion(req).await.unwrap();
    let body = mock.last_request().unwrap().json().unwrap();
    let gc = &body["generationConfig"];
    assert_eq!(gc["responseMimeType"], "application/json");
    let schema = gc.get("responseSchema").or_else(|| gc.get("responseJsonSchema")).expect("a schema is sent");
    assert_eq!(schema["required"], json!(["name", "age"]));
    assert!(schema["properties"]["age"].is_object());
    let content: Value = serde_json::from_str(resp.first_text().unwrap()).unwrap();
    assert_eq!(content, json!({"name": "Bob", "age": 31}));
}

#[tokio::test]
async fn upstream_errors_become_typed_errors() {
    let mock = MockServer::start().await;
    let client = client(&mock);

    mock.enqueue(
        MockResponse::google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted").retry_after(7),
    );
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(e.status, Some(429));
    assert_eq!(e.provider.as_deref(), Some("gemini"));

    // Without Retry-After, google.rpc.RetryInfo gives the delay.
    mock.enqueue(
        MockResponse::json(
            &json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}}),
        )
        .status(429),
    );
    assert_eq!(client.completion(hello()).await.unwrap_err().retry_after, Some(Duration::from_secs(12)));

    mock.enqueue(MockResponse::google_error(
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    ));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::ContextWindowExceeded);

    mock.enqueue(MockResponse::google_error(400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::BadRequest);

    mock.enqueue(MockResponse::google_error(
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
    ));
    let e = client.completion(hello()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert!(e.kind.is_retryable());

    mock.enqueue(
        MockResponse::json(
            &json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                         "domain": "googleapis.com"}]}}),
        )
        .status(400),
    );
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::Authentication);

    mock.enqueue(MockResponse::google_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
    ));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::Authentication);

    mock.enqueue(MockResponse::google_error(404, "NOT_FOUND", "models/gemini-9 is not found"));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::NotFound);

    // An error envelope sent with 200 is still an error.
    mock.enqueue(MockResponse::json(&tollgate_testkit::gemini::google_error_json(500, "INTERNAL", "oops")));
    assert_eq!(client.completion(hello()).await.unwrap_err().kind, ErrorKind::ServerError);

    // Before the first chunk, stream errors come from `stream()` itself.
    mock.enqueue(MockResponse::google_error(503, "UNAVAILABLE", "The model is overloaded."));
    assert_eq!(client.stream(hello()).await.unwrap_err().kind, ErrorKind::Overloaded);

    // No key at all: refused before anything is sent.
    let n = mock.request_count();
    let keyless = Client::builder().no_env().api_base("gemini", mock.url()).build().unwrap();
    assert_eq!(keyless.completion(hello()).await.unwrap_err().kind, ErrorKind::Authentication);
    assert_eq!(mock.request_count(), n);
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream_with_one_typed_error() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    for size in [None, Some(16)] {
        let r = MockResponse::gemini_stream([
            response_json(
                vec![tollgate_testkit::gemini::candidate_json(vec![text_part("partial")], None)],
                None,
                "r",
            ),
            tollgate_testkit::gemini::google_error_json(503, "UNAVAILABLE", "The model is overloaded."),
        ]);
        mock.enqueue(match size {
            Some(n) => r.chunk_size(n),
            None => r,
        });
        let items = collect_stream(&client, hello()).await;
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{items:?}");
        assert_eq!(errors[0].kind, ErrorKind::Overloaded);
        assert!(items.last().unwrap().is_err(), "the error is the last item");
    }
}

#[tokio::test]
async fn a_cut_stream_ends_with_one_error() {
    let mock = MockServer::start().await;
    let client = client(&mock);
    // ~900 bytes in 100-byte network chunks, cut after 3: before the finishReason chunk.
    mock.enqueue(
        MockResponse::gemini_stream_text(["one ", "two ", "three"], GeminiUsage::new(3, 3))
            .chunk_size(100)
            .cut_after_chunks(3),
    );
    let items = collect_stream(&client, hello()).await;
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert!(matches!(errors[0].kind, ErrorKind::Transport | ErrorKind::Decode), "{:?}", errors[0].kind);
    assert!(items.last().unwrap().is_err(), "the error is the last item");

    // A body that ends cleanly before any finishReason is a decode error too.
    mock.enqueue(MockResponse::gemini_stream([response_json(
        vec![tollgate_testkit::gemini::candidate_json(vec![text_part("x")], None)],
        None,
        "r",
    )]));
    let items = collect_stream(&client, hello()).await;
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert_eq!(errors[0].kind, ErrorKind::Decode);
}

#[tokio::test]
async fn embeddings_use_batch_embed_contents() {
    let mock = MockServer::start().await;
    mock.set_responder(GeminiResponder::default());
    let mut req = EmbeddingRequest::new(
        "gemini/text-embedding-004",
        EmbeddingInput::Texts(vec!["first text".into(), "second".into()]),
    );
    req.dimensions = Some(4);
    let resp = client(&mock).embedding(req).await.unwrap();

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(seen.header("x-goog-api-key"), Some("AIza-test"));
    let body = seen.json().unwrap();
    let requests = body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["model"], "models/text-embedding-004");
    assert_eq!(requests[0]["content"]["parts"], json!([{"text": "first text"}]));
    assert_eq!(requests[1]["outputDimensionality"], 4);

    assert_eq!(resp.data.len(), 2);
    for (i, text) in ["first text", "second"].iter().enumerate() {
        assert_eq!(resp.data[i].index as usize, i);
        assert_eq!(resp.data[i].embedding, EmbeddingVector::Float(embedding_vector(text, 4)));
    }
}
