//! Google's Gemini dialect (AI Studio and Vertex AI) on top of the generic [`MockResponse`]:
//! `GenerateContentResponse` JSON, `streamGenerateContent?alt=sse` streams, embeddings, Google's
//! error envelope, the OAuth2 token endpoint, and a deterministic default responder.
//!
//! Shapes follow Google's API references:
//!
//! * `GenerateContentResponse`: `{"candidates": [{"content": {"role": "model", "parts": [...]},
//!   "finishReason", "index"}], "usageMetadata", "modelVersion", "responseId"}`; parts are
//!   `{"text"}`, `{"text", "thought": true}` and `{"functionCall": {"name", "args"}}`; finish
//!   reasons `STOP`, `MAX_TOKENS`, `SAFETY`, …; `usageMetadata` has `promptTokenCount` (which
//!   *includes* `cachedContentTokenCount`), `candidatesTokenCount`, `thoughtsTokenCount`,
//!   `cachedContentTokenCount` and `totalTokenCount`;
//! * streams (`alt=sse`): each `data:` line is one whole `GenerateContentResponse`; there is no
//!   `[DONE]` sentinel, the last chunk carries the `finishReason`; `usageMetadata` is repeated
//!   and cumulative;
//! * embeddings: AI Studio `:batchEmbedContents` → `{"embeddings": [{"values": [...]}]}`,
//!   Vertex `:predict` → `{"predictions": [{"embeddings": {"values", "statistics":
//!   {"token_count", "truncated"}}}]}`;
//! * errors: `{"error": {"code", "message", "status", "details"?}}` with canonical status names
//!   (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`, `UNAVAILABLE`, …);
//! * OAuth2 token endpoint (`POST https://oauth2.googleapis.com/token`):
//!   `{"access_token", "expires_in", "token_type": "Bearer"}`.

use serde_json::{Value, json};

use crate::openai::{embedding_vector, stream_pieces, word_count};
use crate::record::RecordedRequest;
use crate::response::{MockResponse, sse_data};
use crate::server::Responder;

/// The `modelVersion` the convenience constructors report.
pub const GEMINI_MOCK_MODEL: &str = "gemini-2.5-flash";
/// The `responseId` the convenience constructors use (the responder adds `-{seq}`).
pub const GEMINI_MOCK_RESPONSE_ID: &str = "resp-mock";
/// Prompt tokens reported by the constructors that take no explicit usage.
pub const GEMINI_MOCK_PROMPT_TOKENS: u64 = 10;
/// The access token [`GeminiResponder`] issues (with `-{seq}` appended).
pub const GOOGLE_MOCK_ACCESS_TOKEN: &str = "ya29.mock-token";

/// Gemini's `usageMetadata`. `prompt` includes `cached`, as on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeminiUsage {
    pub prompt: u64,
    pub candidates: u64,
    pub cached: u64,
    pub thoughts: u64,
}

impl GeminiUsage {
    pub fn new(prompt: u64, candidates: u64) -> Self {
        GeminiUsage { prompt, candidates, ..Self::default() }
    }

    /// Sets the cached (a subset of `prompt`) and thought token counts.
    pub fn with_cached_and_thoughts(mut self, cached: u64, thoughts: u64) -> Self {
        self.cached = cached;
        self.thoughts = thoughts;
        self
    }

    /// The wire object; zero `cached`/`thoughts`/`candidates` are left out, as the API does.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "promptTokenCount": self.prompt,
            "totalTokenCount": self.prompt + self.candidates + self.thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt}]
        });
        if self.candidates > 0 {
            v["candidatesTokenCount"] = json!(self.candidates);
        }
        if self.cached > 0 {
            v["cachedContentTokenCount"] = json!(self.cached);
        }
        if self.thoughts > 0 {
            v["thoughtsTokenCount"] = json!(self.thoughts);
        }
        v
    }
}

/// A text part.
pub fn text_part(text: &str) -> Value {
    json!({"text": text})
}

/// A thought-summary part (`thought: true`).
pub fn thought_part(text: &str) -> Value {
    json!({"text": text, "thought": true})
}

/// A `functionCall` part; `args` is the arguments object.
pub fn function_call_part(name: &str, args: Value) -> Value {
    json!({"functionCall": {"name": name, "args": args}})
}

/// One candidate with these parts; `finish_reason: None` for a mid-stream chunk.
pub fn candidate_json(parts: Vec<Value>, finish_reason: Option<&str>) -> Value {
    let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(f) = finish_reason {
        c["finishReason"] = json!(f);
    }
    c
}

/// A `GenerateContentResponse` with these candidates and optional usage.
pub fn response_json(candidates: Vec<Value>, usage: Option<&GeminiUsage>, response_id: &str) -> Value {
    let mut v =
        json!({"candidates": candidates, "modelVersion": GEMINI_MOCK_MODEL, "responseId": response_id});
    if let Some(u) = usage {
        v["usageMetadata"] = u.to_json();
    }
    v
}

/// Google's error envelope, e.g. `google_error_json(429, "RESOURCE_EXHAUSTED", "Quota exceeded")`.
pub fn google_error_json(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// The OAuth2 token endpoint's answer.
pub fn token_response_json(access_token: &str, expires_in: u64) -> Value {
    json!({"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"})
}

impl MockResponse {
    /// 200 `GenerateContentResponse` answering `text`: `finishReason: STOP`, usage
    /// [`GEMINI_MOCK_PROMPT_TOKENS`] prompt and [`word_count`]`(text)` candidate tokens.
    pub fn gemini_text(text: &str) -> Self {
        Self::gemini_text_with_usage(text, GeminiUsage::new(GEMINI_MOCK_PROMPT_TOKENS, word_count(text)))
    }

    /// 200 `GenerateContentResponse` answering `text` with this usage.
    pub fn gemini_text_with_usage(text: &str, usage: GeminiUsage) -> Self {
        Self::gemini_parts(vec![text_part(text)], "STOP", usage)
    }

    /// 200 `GenerateContentResponse` with one candidate of these parts.
    pub fn gemini_parts(parts: Vec<Value>, finish_reason: &str, usage: GeminiUsage) -> Self {
        Self::json(&response_json(
            vec![candidate_json(parts, Some(finish_reason))],
            Some(&usage),
            GEMINI_MOCK_RESPONSE_ID,
        ))
    }

    /// 200 `GenerateContentResponse` calling functions `(name, args object)` (Gemini's finish
    /// reason for a function call is `STOP`), usage [`GEMINI_MOCK_PROMPT_TOKENS`] + 12.
    pub fn gemini_function_calls<I, N>(calls: I) -> Self
    where
        I: IntoIterator<Item = (N, Value)>,
        N: AsRef<str>,
    {
        let parts = calls.into_iter().map(|(n, args)| function_call_part(n.as_ref(), args)).collect();
        Self::gemini_parts(parts, "STOP", GeminiUsage::new(GEMINI_MOCK_PROMPT_TOKENS, 12))
    }

    /// 200 SSE stream of these whole `GenerateContentResponse` chunks (`data:` lines, no `[DONE]`).
    pub fn gemini_stream<I>(chunks: I) -> Self
    where
        I: IntoIterator<Item = Value>,
    {
        Self::sse(chunks.into_iter().map(|c| sse_data(c.to_string())))
    }

    /// 200 SSE stream of one text piece per chunk; every chunk repeats the cumulative usage
    /// (prompt only until the last chunk), the last one carries `finishReason: STOP` and `usage`.
    pub fn gemini_stream_text<I, S>(pieces: I, usage: GeminiUsage) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let pieces: Vec<String> = pieces.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let partial = GeminiUsage { candidates: 0, thoughts: 0, ..usage };
        let n = pieces.len();
        let chunks = pieces.iter().enumerate().map(|(i, p)| {
            let last = i + 1 == n;
            response_json(
                vec![candidate_json(vec![text_part(p)], last.then_some("STOP"))],
                Some(if last { &usage } else { &partial }),
                GEMINI_MOCK_RESPONSE_ID,
            )
        });
        Self::gemini_stream(chunks.collect::<Vec<_>>())
    }

    /// 200 SSE stream: a thought chunk, then one chunk with every function call `(name, args)`
    /// (Gemini sends each call whole), `finishReason: STOP` and `usage`.
    pub fn gemini_stream_function_calls<I, N>(calls: I, usage: GeminiUsage) -> Self
    where
        I: IntoIterator<Item = (N, Value)>,
        N: AsRef<str>,
    {
        let parts = calls.into_iter().map(|(n, args)| function_call_part(n.as_ref(), args)).collect();
        Self::gemini_stream([
            response_json(
                vec![candidate_json(vec![thought_part("Considering the tools.")], None)],
                None,
                GEMINI_MOCK_RESPONSE_ID,
            ),
            response_json(vec![candidate_json(parts, Some("STOP"))], Some(&usage), GEMINI_MOCK_RESPONSE_ID),
        ])
    }

    /// 200 AI Studio `batchEmbedContents` answer with these vectors.
    pub fn gemini_embeddings(vectors: &[Vec<f32>]) -> Self {
        let embeddings: Vec<Value> = vectors.iter().map(|v| json!({"values": v})).collect();
        Self::json(&json!({"embeddings": embeddings}))
    }

    /// 200 Vertex `predict` (text embeddings) answer with these `(vector, token_count)` pairs.
    pub fn vertex_embeddings(vectors: &[(Vec<f32>, u64)]) -> Self {
        let predictions: Vec<Value> = vectors
            .iter()
            .map(|(v, tokens)| {
                json!({"embeddings": {"values": v, "statistics": {"token_count": tokens, "truncated": false}}})
            })
            .collect();
        Self::json(&json!({"predictions": predictions, "metadata": {"billableCharacterCount": 0}}))
    }

    /// An error in Google's envelope with this HTTP status and canonical status name.
    pub fn google_error(code: u16, status: &str, message: &str) -> Self {
        Self::json(&google_error_json(code, status, message)).status(code)
    }

    /// 200 OAuth2 token response.
    pub fn google_token(access_token: &str, expires_in: u64) -> Self {
        Self::json(&token_response_json(access_token, expires_in))
    }
}

/// The deterministic Gemini / Vertex AI default responder.
///
/// * `POST …:generateContent` / `…:streamGenerateContent`: the reply is `"echo: "` + the text of
///   the last `user` content. `promptTokenCount` is the [`word_count`] of `systemInstruction` and
///   all contents' text parts, `candidatesTokenCount` that of the reply;
///   `generationConfig.maxOutputTokens` below the reply's word count cuts it with `MAX_TOKENS`.
///   The stream sends one word per chunk ([`stream_pieces`]). `responseId` is `resp-mock-{seq}`,
///   `modelVersion` the model named in the path.
/// * `POST …:batchEmbedContents` (AI Studio) / `…:predict` (Vertex): one deterministic vector
///   ([`embedding_vector`] of the text) per request / instance, `outputDimensionality` long
///   (default [`GeminiResponder::embedding_dims`]).
/// * `POST …/token` with a form body: a token response, access token
///   `ya29.mock-token-{seq}`, `expires_in: 3599`; a body without `grant_type` gets 400
///   `{"error": "invalid_request"}`.
/// * a body that is not JSON: 400 `INVALID_ARGUMENT`; anything else: 404 `NOT_FOUND`.
#[derive(Debug, Clone)]
pub struct GeminiResponder {
    /// Embedding length when the request sets no `outputDimensionality`.
    pub embedding_dims: usize,
}

impl Default for GeminiResponder {
    fn default() -> Self {
        GeminiResponder { embedding_dims: 8 }
    }
}

/// The model named by a path `…/models/{model}:{method}`.
fn path_model(path: &str) -> &str {
    let tail = path.rsplit('/').next().unwrap_or("");
    tail.split(':').next().unwrap_or("")
}

fn parts_text(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        })
        .unwrap_or_default()
}

impl Responder for GeminiResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let path = request.path.trim_end_matches('/');
        if request.method != http::Method::POST {
            return Some(not_found(request));
        }
        if path.ends_with("/token") {
            return Some(token(request));
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => {
                return Some(MockResponse::google_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid JSON payload received. {e}"),
                ));
            }
        };
        let response = if path.ends_with(":generateContent") {
            self.generate(request, &body, false)
        } else if path.ends_with(":streamGenerateContent") {
            self.generate(request, &body, true)
        } else if path.ends_with(":batchEmbedContents") {
            let requests = body.get("requests").and_then(Value::as_array).cloned().unwrap_or_default();
            let vectors: Vec<Vec<f32>> = requests
                .iter()
                .map(|r| {
                    embedding_vector(&parts_text(&r["content"]), self.dims(r.get("outputDimensionality")))
                })
                .collect();
            MockResponse::gemini_embeddings(&vectors)
        } else if path.ends_with(":predict") {
            let dims = self.dims(body.pointer("/parameters/outputDimensionality"));
            let instances = body.get("instances").and_then(Value::as_array).cloned().unwrap_or_default();
            let vectors: Vec<(Vec<f32>, u64)> = instances
                .iter()
                .map(|i| {
                    let text = i.get("content").and_then(Value::as_str).unwrap_or("");
                    (embedding_vector(text, dims), word_count(text))
                })
                .collect();
            MockResponse::vertex_embeddings(&vectors)
        } else {
            not_found(request)
        };
        Some(response)
    }
}

fn not_found(request: &RecordedRequest) -> MockResponse {
    MockResponse::google_error(
        404,
        "NOT_FOUND",
        &format!("The requested URL {} {} was not found on this server.", request.method, request.path),
    )
}

fn token(request: &RecordedRequest) -> MockResponse {
    let form = request.body_str().unwrap_or("");
    if !form.split('&').any(|kv| kv.starts_with("grant_type=")) {
        return MockResponse::json(
            &json!({"error": "invalid_request", "error_description": "Missing grant_type"}),
        )
        .status(400);
    }
    MockResponse::google_token(&format!("{GOOGLE_MOCK_ACCESS_TOKEN}-{}", request.seq), 3599)
}

impl GeminiResponder {
    fn dims(&self, v: Option<&Value>) -> usize {
        v.and_then(Value::as_u64).and_then(|d| usize::try_from(d).ok()).unwrap_or(self.embedding_dims)
    }

    fn generate(&self, request: &RecordedRequest, body: &Value, stream: bool) -> MockResponse {
        let Some(contents) = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
            return MockResponse::google_error(
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.contents: contents is not specified",
            );
        };
        let last_user = contents
            .iter()
            .rev()
            .find(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
            .map(parts_text)
            .unwrap_or_default();
        let system = body.get("systemInstruction").map(parts_text).unwrap_or_default();
        let prompt = word_count(&system) + contents.iter().map(|c| word_count(&parts_text(c))).sum::<u64>();
        let reply = format!("echo: {last_user}");
        let pieces = stream_pieces(&reply);
        let limit = body
            .pointer("/generationConfig/maxOutputTokens")
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let (pieces, finish) = match limit {
            Some(n) if n < pieces.len() => (pieces[..n].to_vec(), "MAX_TOKENS"),
            _ => (pieces, "STOP"),
        };
        let reply = pieces.concat();
        let usage = GeminiUsage::new(prompt, word_count(&reply));
        let id = format!("{GEMINI_MOCK_RESPONSE_ID}-{}", request.seq);
        let model = path_model(&request.path);
        let with_model = |mut v: Value| {
            v["modelVersion"] = json!(model);
            v
        };
        if stream {
            let n = pieces.len();
            let partial = GeminiUsage::new(prompt, 0);
            let chunks: Vec<Value> = pieces
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let last = i + 1 == n;
                    with_model(response_json(
                        vec![candidate_json(vec![text_part(p)], last.then_some(finish))],
                        Some(if last { &usage } else { &partial }),
                        &id,
                    ))
                })
                .collect();
            MockResponse::gemini_stream(chunks)
        } else {
            MockResponse::json(&with_model(response_json(
                vec![candidate_json(vec![text_part(&reply)], Some(finish))],
                Some(&usage),
                &id,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Method, Version};
    use tollgate_core::sse::SseDecoder;

    fn post(path: &str, body: &str) -> RecordedRequest {
        RecordedRequest {
            seq: 2,
            method: Method::POST,
            path: path.into(),
            query: None,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn json_of(r: &MockResponse) -> Value {
        serde_json::from_slice(r.body_bytes()).unwrap()
    }

    fn data_of(r: &MockResponse) -> Vec<Value> {
        let mut out = Vec::new();
        SseDecoder::new().feed(r.body_bytes(), &mut out).unwrap();
        out.into_iter()
            .map(|e| {
                assert!(e.event.is_none(), "Gemini streams are plain data: lines");
                serde_json::from_str(&e.data).unwrap()
            })
            .collect()
    }

    #[test]
    fn response_has_the_documented_shape() {
        let r = MockResponse::gemini_parts(
            vec![thought_part("plan"), text_part("Hi"), function_call_part("f", json!({"a": 1}))],
            "STOP",
            GeminiUsage::new(100, 5).with_cached_and_thoughts(60, 40),
        );
        let v = json_of(&r);
        let c = &v["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(c["finishReason"], "STOP");
        assert_eq!(c["content"]["parts"][0], json!({"text": "plan", "thought": true}));
        assert_eq!(c["content"]["parts"][2]["functionCall"], json!({"name": "f", "args": {"a": 1}}));
        let u = &v["usageMetadata"];
        assert_eq!(u["promptTokenCount"], 100);
        assert_eq!(u["cachedContentTokenCount"], 60);
        assert_eq!(u["thoughtsTokenCount"], 40);
        assert_eq!(u["candidatesTokenCount"], 5);
        assert_eq!(u["totalTokenCount"], 145);
    }

    #[test]
    fn stream_is_data_lines_without_done_and_finishes_on_the_last_chunk() {
        let r = MockResponse::gemini_stream_text(["a", " b"], GeminiUsage::new(3, 2));
        assert!(!String::from_utf8_lossy(r.body_bytes()).contains("[DONE]"));
        let chunks = data_of(&r);
        assert_eq!(chunks.len(), 2);
        assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
        assert_eq!(chunks[0]["usageMetadata"]["promptTokenCount"], 3);
        assert_eq!(chunks[1]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(chunks[1]["usageMetadata"]["candidatesTokenCount"], 2);

        let r = MockResponse::gemini_stream_function_calls([("f", json!({"x": 1}))], GeminiUsage::new(1, 1));
        let chunks = data_of(&r);
        assert_eq!(chunks[0]["candidates"][0]["content"]["parts"][0]["thought"], true);
        assert_eq!(chunks[1]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "f");
    }

    #[test]
    fn errors_tokens_and_embeddings() {
        let r = MockResponse::google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded");
        assert_eq!(r.status_code(), 429);
        assert_eq!(
            json_of(&r),
            json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})
        );
        assert_eq!(
            json_of(&MockResponse::google_token("ya29.x", 3599)),
            json!({"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"})
        );
        let e = json_of(&MockResponse::gemini_embeddings(&[vec![0.5, -0.25]]));
        assert_eq!(e, json!({"embeddings": [{"values": [0.5, -0.25]}]}));
        let p = json_of(&MockResponse::vertex_embeddings(&[(vec![1.0], 3)]));
        assert_eq!(p["predictions"][0]["embeddings"]["statistics"]["token_count"], 3);
    }

    #[test]
    fn responder_generates_streams_embeds_and_issues_tokens() {
        let g = GeminiResponder::default();
        let body = r#"{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hi there"}]}]}"#;
        let v = json_of(&g.respond(&post("/v1beta/models/gemini-2.5-pro:generateContent", body)).unwrap());
        assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "echo: hi there");
        assert_eq!(v["modelVersion"], "gemini-2.5-pro");
        assert_eq!(v["responseId"], "resp-mock-2");
        assert_eq!(v["usageMetadata"]["promptTokenCount"], 4);
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 3);

        let cut = r#"{"contents":[{"role":"user","parts":[{"text":"a b c"}]}],"generationConfig":{"maxOutputTokens":1}}"#;
        let chunks = data_of(&g.respond(&post("/v1beta/models/m:streamGenerateContent", cut)).unwrap());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0]["candidates"][0]["finishReason"], "MAX_TOKENS");

        let emb = r#"{"requests":[{"model":"models/e","content":{"parts":[{"text":"x"}]},"outputDimensionality":3}]}"#;
        let v = json_of(&g.respond(&post("/v1beta/models/e:batchEmbedContents", emb)).unwrap());
        assert_eq!(v["embeddings"][0]["values"].as_array().unwrap().len(), 3);
        let pred = r#"{"instances":[{"content":"a b"}]}"#;
        let v = json_of(
            &g.respond(&post("/v1/projects/p/locations/l/publishers/google/models/e:predict", pred)).unwrap(),
        );
        assert_eq!(v["predictions"][0]["embeddings"]["statistics"]["token_count"], 2);

        let t = g.respond(&post("/token", "grant_type=urn%3Aietf&assertion=x")).unwrap();
        assert_eq!(json_of(&t)["access_token"], "ya29.mock-token-2");
        assert_eq!(g.respond(&post("/token", "assertion=x")).unwrap().status_code(), 400);
        assert_eq!(g.respond(&post("/v1beta/models/m:generateContent", "{")).unwrap().status_code(), 400);
        assert_eq!(g.respond(&post("/v1beta/models/m:countTokens", "{}")).unwrap().status_code(), 404);
    }
}
