//! Adapter behaviour beyond the golden fixtures: registration, credentials, parameter policy,
//! embeddings, Anthropic-on-Vertex delegation, and robustness (proptest).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use proptest::prelude::*;
use serde_json::{Value, json};
use tollgate_core::embedding::{EmbeddingInput, EmbeddingRequest, EmbeddingVector};
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, ErrorKind, Message, ProviderError, RawResponse, Secret,
    StreamDecoder, UpstreamConfig,
};
use tollgate_provider_gemini::{Flavor, GeminiAdapter, PROVIDERS, adapter, parse_embedding_response};

fn gemini_cfg() -> UpstreamConfig {
    let mut c = UpstreamConfig::new("gemini-2.5-flash");
    c.api_key = Some(Secret::new("k"));
    c
}

fn vertex_cfg(model: &str) -> UpstreamConfig {
    let mut c = UpstreamConfig::new(model);
    c.bearer_token = Some(Secret::new("ya29.tok"));
    c.options.insert("vertex_project".into(), "proj".into());
    c.options.insert("vertex_location".into(), "us-east5".into());
    c
}

fn body_json(req: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(req.body()).unwrap()
}

#[test]
fn registration_and_credential_env() {
    assert_eq!(PROVIDERS, &["gemini", "vertex_ai"]);
    for p in PROVIDERS {
        assert_eq!(adapter(p).unwrap().provider(), *p);
    }
    assert!(adapter("anthropic").is_none());
    assert_eq!(tollgate_provider_gemini::provider_for_bare_model("gemini-2.5-pro"), Some("gemini"));
    assert_eq!(tollgate_provider_gemini::provider_for_bare_model("gpt-4o"), None);
    let env = adapter("gemini").unwrap().credential_env();
    assert_eq!(env.api_key, &["GEMINI_API_KEY", "GOOGLE_API_KEY"]);
    let env = adapter("vertex_ai").unwrap().credential_env();
    let opt = |name: &str| env.options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap();
    assert_eq!(opt("vertex_project")[0], "VERTEXAI_PROJECT");
    assert!(opt("vertex_project").contains(&"GOOGLE_CLOUD_PROJECT"));
    assert!(opt("vertex_location").contains(&"GOOGLE_CLOUD_LOCATION"));
    assert_eq!(opt("vertex_credentials_file"), &["GOOGLE_APPLICATION_CREDENTIALS"]);
}

#[test]
fn missing_credentials_and_project_are_typed() {
    let req = ChatRequest::new("m", vec![Message::user("hi")]);
    let a = adapter("gemini").unwrap();
    let e = a.chat_request(&req, &UpstreamConfig::new("gemini-2.5-flash")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    let v = adapter("vertex_ai").unwrap();
    let mut cfg = UpstreamConfig::new("gemini-2.5-flash");
    cfg.options.insert("vertex_project".into(), "p".into());
    assert_eq!(v.chat_request(&req, &cfg).unwrap_err().kind, ErrorKind::Authentication);
    // Express mode: an API key on Vertex goes into x-goog-api-key.
    cfg.api_key = Some(Secret::new("express"));
    let built = v.chat_request(&req, &cfg).unwrap();
    assert_eq!(built.headers()["x-goog-api-key"], "express");
    cfg.options.clear();
    assert_eq!(v.chat_request(&req, &cfg).unwrap_err().param.as_deref(), Some("vertex_project"));
}

#[test]
fn streaming_request_uses_sse_endpoint() {
    let mut req = ChatRequest::new("m", vec![Message::user("hi")]);
    req.stream = Some(true);
    let built = adapter("gemini").unwrap().chat_request(&req, &gemini_cfg()).unwrap();
    assert_eq!(
        built.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn unsupported_params_fail_unless_dropped() {
    let a = adapter("gemini").unwrap();
    let mut req: ChatRequest = serde_json::from_value(json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "logit_bias": {"1": 5}, "modalities": ["text", "audio"], "temperature": 0.1
    }))
    .unwrap();
    let e = a.chat_request(&req, &gemini_cfg()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedParams);
    assert!(e.message.contains("[logit_bias, modalities]"), "{}", e.message);
    let mut cfg = gemini_cfg();
    cfg.drop_params = true;
    let body = body_json(&a.chat_request(&req, &cfg).unwrap());
    assert_eq!(body["generationConfig"], json!({"temperature": 0.1}));
    assert!(body.get("logit_bias").is_none());
    req.logit_bias = None;
    req.modalities = Some(vec!["text".into()]);
    assert!(a.chat_request(&req, &gemini_cfg()).is_ok());
}

#[test]
fn bad_tool_history_is_a_bad_request() {
    let a = adapter("gemini").unwrap();
    let orphan = ChatRequest::new("m", vec![Message::user("hi"), Message::tool_result("nope", "42")]);
    assert_eq!(a.chat_request(&orphan, &gemini_cfg()).unwrap_err().kind, ErrorKind::BadRequest);
    let bad_args = ChatRequest::new(
        "m",
        vec![
            Message::user("hi"),
            Message::assistant_tool_calls(vec![tollgate_core::chat::ToolCall::function(
                "c",
                "f",
                "{not json",
            )]),
        ],
    );
    assert_eq!(a.chat_request(&bad_args, &gemini_cfg()).unwrap_err().kind, ErrorKind::BadRequest);
    let mut tool_req = ChatRequest::new("m", vec![Message::user("hi")]);
    tool_req.tools = Some(vec![serde_json::from_value(json!({"type": "web_search"})).unwrap()]);
    assert_eq!(a.chat_request(&tool_req, &gemini_cfg()).unwrap_err().kind, ErrorKind::UnsupportedParams);
}

#[test]
fn synthesized_tool_call_ids_are_stable_and_distinct() {
    let body = json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "f", "args": {"a": 1}}},
        {"functionCall": {"name": "f", "args": {"a": 2}}}
    ]}, "finishReason": "STOP"}], "responseId": "r1"});
    let a = adapter("gemini").unwrap();
    let parse = || a.chat_response(&RawResponse::ok_json(body.to_string())).unwrap();
    let (r1, r2) = (parse(), parse());
    let ids = |r: &ChatResponse| -> Vec<String> {
        r.choices[0].message.tool_calls.as_ref().unwrap().iter().map(|t| t.id.clone()).collect()
    };
    assert_eq!(ids(&r1), ids(&r2));
    assert_ne!(ids(&r1)[0], ids(&r1)[1]);
    assert!(ids(&r1).iter().all(|i| i.starts_with("call_") && i.len() == 21));
    // The id round-trips: a tool result answering it resolves to the function name.
    let call = r1.choices[0].message.tool_calls.as_ref().unwrap()[0].clone();
    let req = ChatRequest::new(
        "m",
        vec![
            Message::user("q"),
            Message::assistant_tool_calls(vec![call.clone()]),
            Message::tool_result(call.id, "ok"),
        ],
    );
    let built = body_json(&a.chat_request(&req, &gemini_cfg()).unwrap());
    assert_eq!(built["contents"][2]["parts"][0]["functionResponse"]["name"], "f");
}

#[test]
fn embeddings_ai_studio() {
    let a = adapter("gemini").unwrap();
    let mut req = EmbeddingRequest::new(
        "gemini/gemini-embedding-001",
        EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
    );
    req.dimensions = Some(3);
    req.extra.insert("task_type".into(), json!("RETRIEVAL_QUERY"));
    let mut cfg = gemini_cfg();
    cfg.model = "gemini-embedding-001".into();
    let built = a.embedding_request(&req, &cfg).unwrap();
    assert_eq!(
        built.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        body_json(&built),
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3, "taskType": "RETRIEVAL_QUERY"},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3, "taskType": "RETRIEVAL_QUERY"}
        ]})
    );
    let raw = RawResponse::ok_json(r#"{"embeddings": [{"values": [0.5, -1, 0.25]}, {"values": [1, 2, 3]}]}"#);
    let resp = a.embedding_response(&raw).unwrap();
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        json!({"object": "list", "model": "", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.0, 0.25]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 2.0, 3.0]}
        ]})
    );
    req.encoding_format = Some("base64".into());
    let resp = parse_embedding_response(Flavor::AiStudio, &raw, &req).unwrap();
    assert_eq!(resp.model, "gemini/gemini-embedding-001");
    // 0.5, -1.0, 0.25 as little-endian f32s.
    assert_eq!(resp.data[0].embedding, EmbeddingVector::Base64("AAAAPwAAgL8AAIA+".into()));
    let tokens = EmbeddingRequest::new("m", EmbeddingInput::Tokens(vec![1, 2]));
    assert_eq!(a.embedding_request(&tokens, &cfg).unwrap_err().kind, ErrorKind::BadRequest);
    assert_eq!(a.embedding_response(&RawResponse::ok_json("{}")).unwrap_err().kind, ErrorKind::Decode);
}

#[test]
fn embeddings_vertex() {
    let a = adapter("vertex_ai").unwrap();
    let req = EmbeddingRequest::new("text-embedding-005", EmbeddingInput::Text("hello".into()));
    let built = a.embedding_request(&req, &vertex_cfg("text-embedding-005")).unwrap();
    assert_eq!(
        built.uri(),
        "https://us-east5-aiplatform.googleapis.com/v1/projects/proj/locations/us-east5/publishers/google/models/text-embedding-005:predict"
    );
    assert_eq!(built.headers()["authorization"], "Bearer ya29.tok");
    assert_eq!(body_json(&built), json!({"instances": [{"content": "hello"}]}));
    let raw = RawResponse::ok_json(
        r#"{"predictions": [{"embeddings": {"statistics": {"truncated": false, "token_count": 2}, "values": [0.1, 0.2]}}]}"#,
    );
    let resp = a.embedding_response(&raw).unwrap();
    assert_eq!(resp.data[0].embedding, EmbeddingVector::Float(vec![0.1, 0.2]));
    assert_eq!(resp.usage.unwrap().prompt_tokens, 2);
}

/// A stand-in for the Anthropic adapter: builds a Messages-shaped request and records calls.
#[derive(Debug, Default)]
struct FakeAnthropic {
    calls: Mutex<Vec<&'static str>>,
}

impl Adapter for FakeAnthropic {
    fn provider(&self) -> &str {
        "anthropic"
    }
    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        self.calls.lock().unwrap().push("chat_request");
        let body = json!({"model": cfg.model, "max_tokens": 1024, "stream": req.is_stream(),
            "messages": [{"role": "user", "content": req.messages[0].text()}]});
        Ok(http::Request::builder()
            .method("POST")
            .uri("https://api.anthropic.com/v1/messages")
            .header("x-api-key", cfg.api_key.as_ref().unwrap().expose())
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "context-1m-2025-08-07")
            .body(Bytes::from(body.to_string()))
            .unwrap())
    }
    fn chat_response(&self, _resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        self.calls.lock().unwrap().push("chat_response");
        Err(ProviderError::decode("fake"))
    }
    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        _cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        self.calls.lock().unwrap().push("chat_stream_decoder");
        Box::new(tollgate_provider_gemini::GeminiStreamDecoder::new("anthropic", "x"))
    }
    fn error_response(&self, _resp: &RawResponse) -> ProviderError {
        self.calls.lock().unwrap().push("error_response");
        ProviderError::new(ErrorKind::Overloaded, "anthropic overloaded")
    }
}

#[test]
fn claude_on_vertex_goes_through_the_anthropic_delegate() {
    let fake = Arc::new(FakeAnthropic::default());
    let v = GeminiAdapter::vertex().with_anthropic(fake.clone());
    let cfg = vertex_cfg("claude-sonnet-4-5@20250929");
    let mut req = ChatRequest::new("vertex_ai/claude-sonnet-4-5@20250929", vec![Message::user("hi")]);
    let built = v.chat_request(&req, &cfg).unwrap();
    assert_eq!(
        built.uri(),
        "https://us-east5-aiplatform.googleapis.com/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(built.headers()["authorization"], "Bearer ya29.tok");
    assert_eq!(built.headers()["anthropic-beta"], "context-1m-2025-08-07");
    assert!(built.headers().get("x-api-key").is_none());
    assert!(built.headers().get("anthropic-version").is_none());
    assert_eq!(
        body_json(&built),
        json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 1024, "stream": false,
            "messages": [{"role": "user", "content": "hi"}]})
    );
    req.stream = Some(true);
    let built = v.chat_request(&req, &cfg).unwrap();
    assert!(built.uri().to_string().ends_with(":streamRawPredict"));
    let _ = v.chat_stream_decoder(&req, &cfg);
    let _ = v.chat_response(&RawResponse::ok_json(r#"{"type": "message", "content": []}"#));
    let e = v.error_response(&RawResponse::new(
        StatusCode::from_u16(529).unwrap(),
        http::HeaderMap::new(),
        r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
    ));
    assert_eq!(e.provider.as_deref(), Some("vertex_ai"));
    // Google envelopes from Vertex's front end are classified here.
    let e = v.error_response(&RawResponse::new(
        StatusCode::FORBIDDEN,
        http::HeaderMap::new(),
        r#"{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}"#,
    ));
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert_eq!(
        *fake.calls.lock().unwrap(),
        ["chat_request", "chat_request", "chat_stream_decoder", "chat_response", "error_response"]
    );
    // Gemini models on the same adapter do not touch the delegate.
    let g = v
        .chat_request(&ChatRequest::new("m", vec![Message::user("x")]), &vertex_cfg("gemini-2.5-pro"))
        .unwrap();
    assert!(g.uri().to_string().contains("/publishers/google/models/gemini-2.5-pro:generateContent"));
    // Without a delegate, Claude on Vertex is a clear error.
    let plain = adapter("vertex_ai").unwrap();
    let e = plain.chat_request(&req, &cfg).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("with_anthropic"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
        let a = adapter("gemini").unwrap();
        let req = ChatRequest::new("m", vec![Message::user("hi")]);
        let mut d = a.chat_stream_decoder(&req, &gemini_cfg());
        let mut out = Vec::new();
        let cut = cut.min(bytes.len());
        let _ = d.decode(&bytes[..cut], &mut out);
        let _ = d.decode(&bytes[cut..], &mut out);
        let _ = d.finish(&mut out);
    }

    #[test]
    fn random_sse_json_never_panics(frames in proptest::collection::vec("[ -~]{0,80}", 0..6)) {
        let a = adapter("vertex_ai").unwrap();
        let req = ChatRequest::new("m", vec![Message::user("hi")]);
        let mut d = a.chat_stream_decoder(&req, &vertex_cfg("gemini-2.5-pro"));
        let mut out = Vec::new();
        for f in &frames {
            let _ = d.decode(format!("data: {{\"candidates\": [{f}]}}\n\n").as_bytes(), &mut out);
        }
        let _ = d.finish(&mut out);
    }

    #[test]
    fn random_bodies_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..512), status in 200u16..600) {
        for p in ["gemini", "vertex_ai"] {
            let a = adapter(p).unwrap();
            let raw = RawResponse::new(StatusCode::from_u16(status).unwrap(), http::HeaderMap::new(), bytes.clone());
            let _ = a.chat_response(&raw);
            let _ = a.embedding_response(&raw);
            let e = a.error_response(&raw);
            prop_assert_eq!(e.provider.as_deref(), Some(p));
        }
    }

    #[test]
    fn random_json_shapes_never_panic_the_parser(v in arb_json()) {
        let a = adapter("gemini").unwrap();
        let wrapped = json!({"candidates": [v.clone()], "usageMetadata": v.clone(), "promptFeedback": v});
        let _ = a.chat_response(&RawResponse::ok_json(wrapped.to_string()));
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("content".to_owned()),
                    Just("parts".to_owned()),
                    Just("text".to_owned()),
                    Just("functionCall".to_owned()),
                    Just("finishReason".to_owned()),
                    Just("index".to_owned()),
                    Just("args".to_owned()),
                    Just("logprobsResult".to_owned()),
                    Just("chosenCandidates".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn thinking_variants() {
    let a = adapter("gemini").unwrap();
    let gen_cfg = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let req: ChatRequest = serde_json::from_value(body).unwrap();
        body_json(&a.chat_request(&req, &gemini_cfg()).unwrap())["generationConfig"].clone()
    };
    assert_eq!(
        gen_cfg(json!({"reasoning_effort": "none"})),
        json!({"thinkingConfig": {"thinkingBudget": 0}})
    );
    assert_eq!(
        gen_cfg(json!({"reasoning_effort": "low"})),
        json!({"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})
    );
    assert_eq!(
        gen_cfg(json!({"thinking": {"type": "enabled", "budget_tokens": 5000}})),
        json!({"thinkingConfig": {"thinkingBudget": 5000, "includeThoughts": true}})
    );
    assert_eq!(
        gen_cfg(json!({"thinking": {"type": "disabled"}})),
        json!({"thinkingConfig": {"thinkingBudget": 0}})
    );
    assert_eq!(gen_cfg(json!({"tool_choice": "none"})), Value::Null);
}
