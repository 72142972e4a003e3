//! The SDK end to end over real loopback HTTP against the testkit mock playing Vertex AI and
//! Google's OAuth2 token endpoint: project/location URLs, the service-account JWT-bearer token
//! exchange and its cache, Gemini models (chat, streams, embeddings, errors) and Claude models
//! through `rawPredict` / `streamRawPredict`.
#![cfg(all(feature = "gemini", feature = "anthropic"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate::{
    ChatRequest, Client, EmbeddingInput, EmbeddingRequest, ErrorKind, FinishReason, Message,
    ProviderSettings, Secret,
};
use tollgate_testkit::anthropic::AnthropicResponder;
use tollgate_testkit::gemini::GeminiResponder;
use tollgate_testkit::{MockResponse, MockServer, RecordedRequest, Responder};

const SERVICE_ACCOUNT: &str =
    include_str!("../../tollgate-provider-gemini/tests/fixtures/test_service_account.json");
const PROJECT: &str = "my-proj";
const LOCATION: &str = "europe-west4";

/// Claude paths go to the Anthropic responder, everything else (token endpoint included) to Gemini's.
fn vertex_mock_responder() -> impl Responder {
    let gemini = GeminiResponder::default();
    move |r: &RecordedRequest| {
        if r.path.contains("/publishers/anthropic/") {
            AnthropicResponder.respond(r)
        } else {
            gemini.respond(r)
        }
    }
}

async fn vertex_mock() -> MockServer {
    let mock = MockServer::start().await;
    mock.set_responder(vertex_mock_responder());
    mock
}

/// The committed test key with its `token_uri` pointed at the mock.
fn credentials(mock: &MockServer) -> String {
    let mut key: Value = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
    key["token_uri"] = json!(token_uri(mock));
    key.to_string()
}

fn token_uri(mock: &MockServer) -> String {
    format!("{}/token", mock.url())
}

fn settings(mock: &MockServer) -> ProviderSettings {
    ProviderSettings {
        api_base: Some(mock.url()),
        options: BTreeMap::from([
            ("vertex_project".to_owned(), PROJECT.to_owned()),
            ("vertex_location".to_owned(), LOCATION.to_owned()),
        ]),
        secrets: BTreeMap::from([("vertex_credentials".to_owned(), Secret::new(credentials(mock)))]),
        ..Default::default()
    }
}

fn client(mock: &MockServer) -> Client {
    Client::builder().no_env().provider("vertex_ai", settings(mock)).build().unwrap()
}

fn model_path(publisher: &str, model: &str, method: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/{publisher}/models/{model}:{method}")
}

fn hello(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::system("be terse"), Message::user("hello there")])
}

/// Decodes unpadded base64url (JWT segments).
fn b64url(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | val(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn form(body: &str) -> BTreeMap<&str, &str> {
    body.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).collect()
}

#[tokio::test]
async fn service_account_is_exchanged_once_and_the_token_reused() {
    let mock = vertex_mock().await;
    let client = client(&mock);

    let resp = client.completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));

    // The token request: a form-encoded JWT-bearer grant signed for the key's token_uri.
    let token_reqs = mock.requests_for("/token");
    assert_eq!(token_reqs.len(), 1);
    let t = &token_reqs[0];
    assert_eq!(t.method, "POST");
    assert_eq!(t.header("content-type"), Some("application/x-www-form-urlencoded"));
    let fields = form(t.body_str().unwrap());
    assert_eq!(fields["grant_type"], "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let jwt: Vec<&str> = fields["assertion"].split('.').collect();
    assert_eq!(jwt.len(), 3, "header.claims.signature");
    let header: Value = serde_json::from_slice(&b64url(jwt[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "0123456789abcdef");
    let claims: Value = serde_json::from_slice(&b64url(jwt[1])).unwrap();
    assert_eq!(claims["iss"], "tollgate-test@tollgate-test.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], token_uri(&mock));
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert_eq!(b64url(jwt[2]).len(), 256, "an RSA-2048 signature");

    // The model call: project/location URL and the token the mock issued (seq 0).
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, model_path("google", "gemini-2.5-pro", "generateContent"));
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token-0"));
    assert_eq!(seen.header("x-goog-api-key"), None);
    let body = seen.json().unwrap();
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "hello there"}]}]));

    // A second call (a stream, another model) reuses the cached token.
    let mut s = client.stream(hello("vertex_ai/gemini-2.5-flash")).await.unwrap();
    let mut text = String::new();
    while let Some(c) = s.next().await {
        for ch in c.unwrap().choices {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "echo: hello there");
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, model_path("google", "gemini-2.5-flash", "streamGenerateContent"));
    assert_eq!(seen.query_param("alt"), Some("sse"));
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token-0"));
    assert_eq!(mock.requests_for("/token").len(), 1, "the token was cached, not exchanged again");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn a_rejected_assertion_is_an_authentication_error_and_nothing_else_is_sent() {
    let mock = vertex_mock().await;
    mock.enqueue_for(
        "/token",
        MockResponse::json(&json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
            .status(400),
    );
    let e = client(&mock).completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication);
    assert_eq!(e.provider.as_deref(), Some("vertex_ai"));
    assert!(e.message.contains("invalid_grant"), "{}", e.message);
    assert_eq!(mock.request_count(), 1, "only the token request was made");
}

#[tokio::test]
async fn a_configured_bearer_token_or_express_key_skips_the_exchange() {
    let mock = vertex_mock().await;
    let mut s = settings(&mock);
    s.bearer_token = Some("ya29.preset".into());
    let client = Client::builder().no_env().provider("vertex_ai", s).build().unwrap();
    client.completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap();
    assert_eq!(mock.last_request().unwrap().header("authorization"), Some("Bearer ya29.preset"));
    assert!(mock.requests_for("/token").is_empty());

    // Vertex express mode: an API key instead of OAuth, sent as x-goog-api-key.
    let mut s = settings(&mock);
    s.secrets.clear();
    s.api_key = Some("vertex-express-key".into());
    let client = Client::builder().no_env().provider("vertex_ai", s).build().unwrap();
    client.completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap();
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.header("x-goog-api-key"), Some("vertex-express-key"));
    assert_eq!(seen.header("authorization"), None);
    assert!(mock.requests_for("/token").is_empty());
}

#[tokio::test]
async fn missing_project_fails_before_the_model_call() {
    let mock = vertex_mock().await;
    let mut s = settings(&mock);
    s.options.remove("vertex_project");
    s.secrets.clear();
    s.bearer_token = Some("ya29.preset".into());
    let client = Client::builder().no_env().provider("vertex_ai", s).build().unwrap();
    let e = client.completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(e.param.as_deref(), Some("vertex_project"));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn default_location_is_us_central1() {
    let mock = vertex_mock().await;
    let mut s = settings(&mock);
    s.options.remove("vertex_location");
    let client = Client::builder().no_env().provider("vertex_ai", s).build().unwrap();
    client.completion(hello("vertex_ai/gemini-2.5-pro")).await.unwrap();
    assert_eq!(
        mock.last_request().unwrap().path,
        format!(
            "/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        )
    );
}

#[tokio::test]
async fn claude_on_vertex_uses_raw_predict_with_the_anthropic_body() {
    let mock = vertex_mock().await;
    let client = client(&mock);
    let model = "vertex_ai/claude-sonnet-4-5@20250929";

    let resp = client.completion(hello(model)).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: hello there"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let u = resp.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (4, 3));

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, model_path("anthropic", "claude-sonnet-4-5@20250929", "rawPredict"));
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token-0"));
    assert_eq!(seen.header("x-api-key"), None, "no Anthropic key travels to Vertex");
    let body = seen.json().unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none(), "the model is in the URL");
    assert_eq!(body["system"], "be terse");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hello there"}]));
    assert!(body["max_tokens"].as_u64().unwrap() > 0, "Anthropic requires max_tokens");

    // Streamed: streamRawPredict, Anthropic's named events decoded, same cached token.
    let mut s = client.stream(hello(model)).await.unwrap();
    let mut text = String::new();
    let mut finish = None;
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        assert!(!c.choices.is_empty());
        for ch in c.choices {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            finish = ch.finish_reason.or(finish);
        }
    }
    assert_eq!(text, "echo: hello there");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert_eq!(s.usage().unwrap().total_tokens, 7);
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, model_path("anthropic", "claude-sonnet-4-5@20250929", "streamRawPredict"));
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token-0"));
    let body = seen.json().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(mock.requests_for("/token").len(), 1);
}

#[tokio::test]
async fn claude_on_vertex_errors_in_either_envelope() {
    let mock = vertex_mock().await;
    let client = client(&mock);
    let model = "vertex_ai/claude-sonnet-4-5@20250929";
    let raw = model_path("anthropic", "claude-sonnet-4-5@20250929", "rawPredict");

    mock.enqueue_for(&raw, MockResponse::anthropic_error(529, "overloaded_error", "Overloaded"));
    let e = client.completion(hello(model)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    assert_eq!(e.provider.as_deref(), Some("vertex_ai"));

    mock.enqueue_for(
        &raw,
        MockResponse::google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for aiplatform.googleapis.com")
            .retry_after(3),
    );
    let e = client.completion(hello(model)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(e.provider.as_deref(), Some("vertex_ai"));

    mock.enqueue_for(
        &raw,
        MockResponse::anthropic_error(
            400,
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
        ),
    );
    assert_eq!(client.completion(hello(model)).await.unwrap_err().kind, ErrorKind::ContextWindowExceeded);

    mock.enqueue_for(
        &model_path("anthropic", "claude-sonnet-4-5@20250929", "streamRawPredict"),
        MockResponse::google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
    );
    assert_eq!(client.stream(hello(model)).await.unwrap_err().kind, ErrorKind::Authentication);
}

#[tokio::test]
async fn gemini_on_vertex_errors_and_cut_streams() {
    let mock = vertex_mock().await;
    let client = client(&mock);
    let model = "vertex_ai/gemini-2.5-pro";
    let path = model_path("google", "gemini-2.5-pro", "generateContent");

    // Vertex may wrap the envelope in an array; RetryInfo carries the delay.
    mock.enqueue_for(
        &path,
        MockResponse::json(
            &json!([{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "39s"}]}}]),
        )
        .status(429),
    );
    let e = client.completion(hello(model)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(39)));
    assert_eq!(e.provider.as_deref(), Some("vertex_ai"));

    mock.enqueue_for(
        &path,
        MockResponse::google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
    );
    assert_eq!(client.completion(hello(model)).await.unwrap_err().kind, ErrorKind::Overloaded);

    mock.enqueue_for(
        &path,
        MockResponse::google_error(403, "PERMISSION_DENIED", "Permission denied on resource project"),
    );
    assert_eq!(client.completion(hello(model)).await.unwrap_err().kind, ErrorKind::PermissionDenied);

    mock.enqueue_for(
        &model_path("google", "gemini-2.5-pro", "streamGenerateContent"),
        MockResponse::gemini_stream_text(
            ["one ", "two ", "three"],
            tollgate_testkit::gemini::GeminiUsage::new(3, 3),
        )
        .chunk_size(100)
        .cut_after_chunks(3),
    );
    let items: Vec<_> = match client.stream(hello(model)).await {
        Ok(s) => s.collect().await,
        Err(e) => vec![Err(e)],
    };
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert!(items.last().unwrap().is_err());
}

#[tokio::test]
async fn embeddings_use_predict_and_report_token_counts() {
    let mock = vertex_mock().await;
    let mut req = EmbeddingRequest::new(
        "vertex_ai/text-embedding-005",
        EmbeddingInput::Texts(vec!["one two three".into(), "four".into()]),
    );
    req.dimensions = Some(6);
    let resp = client(&mock).embedding(req).await.unwrap();

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, model_path("google", "text-embedding-005", "predict"));
    assert_eq!(seen.header("authorization"), Some("Bearer ya29.mock-token-0"));
    let body = seen.json().unwrap();
    assert_eq!(body["instances"][0]["content"], "one two three");
    assert_eq!(body["instances"][1]["content"], "four");
    assert_eq!(body["parameters"]["outputDimensionality"], 6);

    assert_eq!(resp.data.len(), 2);
    assert_eq!(
        resp.data[1].embedding,
        tollgate::tollgate_core::embedding::EmbeddingVector::Float(
            tollgate_testkit::openai::embedding_vector("four", 6)
        )
    );
    assert_eq!(resp.usage.unwrap().prompt_tokens, 4, "the sum of the statistics' token_count");
}
