//! # tollgate-provider-bedrock
//!
//! Layer 2 of tollgate: the sans-IO adapter for the AWS Bedrock Runtime **Converse** and
//! **ConverseStream** APIs (`POST /model/{modelId}/converse`, `/converse-stream`).
//!
//! * [`BedrockAdapter`]: canonical chat request → signed `http::Request`; Converse JSON →
//!   [`ChatResponse`]; ConverseStream event-stream bytes → OpenAI chunks
//!   ([`stream::ConverseStreamDecoder`]); Bedrock errors → typed [`ProviderError`]s.
//! * [`sigv4`]: AWS Signature Version 4 (service `bedrock`), tested against AWS's published
//!   test-suite vectors; the signing time is injectable ([`BedrockAdapter::with_clock`]).
//! * [`eventstream`]: the `application/vnd.amazon.eventstream` codec (CRC-checked decoder and
//!   an encoder the testkit mock can use to speak Bedrock).
//!
//! ## Credentials (from [`UpstreamConfig`], env names in [`Adapter::credential_env`])
//! * Bearer token (Bedrock API keys): `cfg.bearer_token` or `cfg.api_key`
//!   (`AWS_BEARER_TOKEN_BEDROCK`) → `Authorization: Bearer`, no SigV4. Wins when both kinds are set.
//! * SigV4: `cfg.secrets` `aws_access_key_id`, `aws_secret_access_key`, optional
//!   `aws_session_token` (→ signed `x-amz-security-token`).
//! * Region: `cfg.options["aws_region_name"]` (`AWS_REGION`, `AWS_DEFAULT_REGION`,
//!   `AWS_REGION_NAME`), else the region inside a model ARN.
//! * Endpoint: `cfg.api_base` (`AWS_BEDROCK_RUNTIME_ENDPOINT`) replaces
//!   `https://bedrock-runtime.{region}.amazonaws.com`.
//!
//! Bedrock sends no response id and no model name: non-streamed responses get
//! `chatcmpl-<x-amzn-requestid>` when the header is present (else a generated id) and an empty
//! `model` (the caller knows which model it asked for); streams get a generated id and
//! `cfg.model`.
//!
//! **Must never depend on** an async runtime (tokio), an HTTP client (reqwest, hyper), a server
//! framework or another tollgate crate than `tollgate-core`. Its only extra dependency is `ring`
//! (HMAC-SHA256 / SHA-256 for SigV4).

pub mod eventstream;
pub mod request;
pub mod response;
pub mod sigv4;
pub mod stream;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tollgate_core::adapter::join_url;
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, CredentialEnv, ErrorKind, ProviderError, RawResponse,
    StreamDecoder, UpstreamConfig,
};

pub use request::JSON_TOOL_NAME;

/// The provider name used in model strings and errors.
pub const PROVIDER: &str = "bedrock";

/// The provider prefixes this crate serves.
pub const PROVIDERS: &[&str] = &[PROVIDER];

/// SigV4 service name of Bedrock Runtime.
pub const SIGNING_SERVICE: &str = "bedrock";

/// The adapter for a provider prefix this crate serves.
pub fn adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    (provider == PROVIDER).then(|| Arc::new(BedrockAdapter::new()) as Arc<dyn Adapter>)
}

/// Whether a bare model name is a Bedrock model id: `<vendor>.<model>` with a known Bedrock
/// vendor (optionally behind a cross-region inference-profile prefix such as `us.`/`eu.`/
/// `global.`), or a Bedrock ARN.
pub fn is_bedrock_model(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.split(':').nth(2) == Some("bedrock");
    }
    const PROFILES: &[&str] = &["us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global."];
    const VENDORS: &[&str] = &[
        "anthropic.",
        "amazon.",
        "meta.",
        "mistral.",
        "cohere.",
        "ai21.",
        "deepseek.",
        "writer.",
        "openai.",
        "qwen.",
        "twelvelabs.",
        "stability.",
    ];
    let rest = PROFILES.iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name);
    VENDORS.iter().any(|v| rest.starts_with(v) && rest.len() > v.len())
}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The Bedrock Converse adapter.
pub struct BedrockAdapter {
    clock: Clock,
    ids: AtomicU64,
}

impl fmt::Debug for BedrockAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockAdapter").finish_non_exhaustive()
    }
}

impl Default for BedrockAdapter {
    fn default() -> Self {
        Self::new()
    }
}

const ENV: CredentialEnv = CredentialEnv {
    api_key: &["AWS_BEARER_TOKEN_BEDROCK"],
    api_base: &["AWS_BEDROCK_RUNTIME_ENDPOINT"],
    options: &[("aws_region_name", &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION_NAME"])],
    secrets: &[
        ("aws_access_key_id", &["AWS_ACCESS_KEY_ID"]),
        ("aws_secret_access_key", &["AWS_SECRET_ACCESS_KEY"]),
        ("aws_session_token", &["AWS_SESSION_TOKEN"]),
    ],
    ..CredentialEnv::NONE
};

impl BedrockAdapter {
    /// An adapter that signs with the system clock.
    pub fn new() -> Self {
        BedrockAdapter { clock: Arc::new(SystemTime::now), ids: AtomicU64::new(0) }
    }

    /// Replaces the clock used for the SigV4 timestamp, `created` and generated ids (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// An adapter frozen at `t`, for deterministic golden tests.
    pub fn at(t: SystemTime) -> Self {
        Self::new().with_clock(move || t)
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn created(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// `chatcmpl-bedrock-<time><counter>`: unique per adapter and instant.
    fn generate_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let t = self.now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) as u64;
        format!("chatcmpl-bedrock-{t:x}{n:04x}")
    }

    fn bearer(cfg: &UpstreamConfig) -> Option<&tollgate_core::Secret> {
        cfg.bearer_token.as_ref().filter(|s| !s.is_empty()).or(cfg.api_key.as_ref().filter(|s| !s.is_empty()))
    }
}

/// The model id as Bedrock knows it (`bedrock/converse/<id>` is accepted like LiteLLM does).
fn model_id(cfg: &UpstreamConfig) -> &str {
    cfg.model.strip_prefix("converse/").unwrap_or(&cfg.model)
}

/// `cfg.options["aws_region_name"]`, else the region field of a model ARN.
fn region(cfg: &UpstreamConfig) -> Option<String> {
    if let Some(r) = cfg.options.get("aws_region_name").map(|r| r.trim()).filter(|r| !r.is_empty()) {
        return Some(r.to_owned());
    }
    let m = model_id(cfg);
    m.starts_with("arn:").then(|| m.split(':').nth(3)).flatten().filter(|r| !r.is_empty()).map(str::to_owned)
}

/// Serialises JSON with object keys in sorted order whatever serde_json's `preserve_order`
/// feature says (another workspace member may turn it on), so the signed body bytes — and the
/// golden signatures — do not depend on feature unification.
pub fn sorted_json(v: &serde_json::Value) -> Vec<u8> {
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(serde_json::Value::String(k.clone()).to_string().as_bytes());
                    out.push(b':');
                    if let Some(val) = map.get(k) {
                        write(val, out);
                    }
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
        }
    }
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn bad(msg: impl Into<String>) -> ProviderError {
    ProviderError::bad_request(msg).with_provider(PROVIDER)
}

fn no_region() -> ProviderError {
    bad("Bedrock needs an AWS region: set `aws_region_name` (or AWS_REGION / AWS_DEFAULT_REGION)")
        .with_code("missing_region")
}

impl Adapter for BedrockAdapter {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn credential_env(&self) -> CredentialEnv {
        ENV
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let model = model_id(cfg);
        if model.is_empty() {
            return Err(bad("no Bedrock model id given"));
        }
        let body = request::build_body(req, cfg)?;
        let body = Bytes::from(sorted_json(&body));
        let region = region(cfg);
        let base = match (&cfg.api_base, &region) {
            (Some(b), _) => b.clone(),
            (None, Some(r)) => format!("https://bedrock-runtime.{r}.amazonaws.com"),
            (None, None) => return Err(no_region()),
        };
        let stream = req.is_stream();
        let op = if stream { "converse-stream" } else { "converse" };
        let url = join_url(&base, &format!("model/{}/{op}", sigv4::uri_encode(model, false)));
        let uri: http::Uri = url.parse().map_err(|e| bad(format!("invalid Bedrock URL {url:?}: {e}")))?;

        let mut builder = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::ACCEPT,
                if stream { "application/vnd.amazon.eventstream" } else { "application/json" },
            );

        if let Some(token) = Self::bearer(cfg) {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()));
        } else {
            let key = cfg.secrets.get("aws_access_key_id").filter(|s| !s.is_empty());
            let secret = cfg.secrets.get("aws_secret_access_key").filter(|s| !s.is_empty());
            let (Some(key), Some(secret)) = (key, secret) else {
                return Err(ProviderError::new(
                    ErrorKind::Authentication,
                    "no AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                     (optionally AWS_SESSION_TOKEN), or AWS_BEARER_TOKEN_BEDROCK",
                )
                .with_provider(PROVIDER)
                .with_code("missing_credentials"));
            };
            let region = region.ok_or_else(no_region)?;
            let creds = sigv4::Credentials {
                access_key_id: key.expose().to_owned(),
                secret_access_key: secret.clone(),
                session_token: cfg.secrets.get("aws_session_token").filter(|s| !s.is_empty()).cloned(),
            };
            let host = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
            let date = sigv4::AmzDate::from_system_time(self.now());
            let payload = sigv4::sha256_hex(&body);
            let mut signed: Vec<(&str, &str)> =
                vec![("content-type", "application/json"), ("host", &host), ("x-amz-date", &date.datetime)];
            if let Some(t) = &creds.session_token {
                signed.push(("x-amz-security-token", t.expose()));
            }
            let sig = sigv4::sign(
                &sigv4::SignableRequest {
                    method: "POST",
                    path: uri.path(),
                    query: uri.query().unwrap_or(""),
                    headers: &signed,
                    payload_sha256: &payload,
                },
                &creds,
                &region,
                SIGNING_SERVICE,
                &date,
            );
            builder = builder.header(http::header::HOST, &host).header("x-amz-date", &date.datetime);
            if let Some(t) = &creds.session_token {
                builder = builder.header("x-amz-security-token", t.expose());
            }
            builder = builder.header(http::header::AUTHORIZATION, sig.authorization);
        }
        for (k, v) in &cfg.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder.body(body).map_err(|e| bad(format!("cannot build the Bedrock request: {e}")))
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        let id = resp
            .headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| format!("chatcmpl-{v}"))
            .unwrap_or_else(|| self.generate_id());
        response::parse_chat(&resp.body, id, self.created())
    }

    fn chat_stream_decoder(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        let json_mode = matches!(
            req.response_format,
            Some(
                tollgate_core::chat::ResponseFormat::JsonObject
                    | tollgate_core::chat::ResponseFormat::JsonSchema { .. }
            )
        );
        Box::new(stream::ConverseStreamDecoder::new(
            self.generate_id(),
            model_id(cfg).to_owned(),
            self.created(),
            json_mode,
        ))
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        response::error_response(resp.status.as_u16(), &resp.headers, &resp.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_model_names() {
        assert!(is_bedrock_model("anthropic.claude-3-5-sonnet-20240620-v1:0"));
        assert!(is_bedrock_model("us.anthropic.claude-sonnet-4-20250514-v1:0"));
        assert!(is_bedrock_model("amazon.nova-pro-v1:0"));
        assert!(is_bedrock_model(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0"
        ));
        assert!(!is_bedrock_model("arn:aws:s3:::bucket"));
        assert!(!is_bedrock_model("claude-3-5-sonnet"));
        assert!(!is_bedrock_model("gpt-4o"));
        assert!(!is_bedrock_model("anthropic."));
    }

    #[test]
    fn sorted_json_is_compact_and_sorted() {
        let v = serde_json::json!({"b": [1, {"z": null, "a": "x\"y"}], "a": true});
        assert_eq!(
            String::from_utf8(sorted_json(&v)).unwrap(),
            r#"{"a":true,"b":[1,{"a":"x\"y","z":null}]}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&sorted_json(&v)).unwrap();
        assert_eq!(parsed, v);
    }

    #[test]
    fn adapter_lookup() {
        assert!(adapter("bedrock").is_some());
        assert!(adapter("anthropic").is_none());
        assert_eq!(PROVIDERS, &["bedrock"]);
    }

    #[test]
    fn region_from_options_or_arn() {
        let mut cfg = UpstreamConfig::new("arn:aws:bedrock:eu-west-1:1:inference-profile/eu.x");
        assert_eq!(region(&cfg).as_deref(), Some("eu-west-1"));
        cfg.options.insert("aws_region_name".into(), "us-west-2".into());
        assert_eq!(region(&cfg).as_deref(), Some("us-west-2"));
        assert_eq!(region(&UpstreamConfig::new("amazon.nova-pro-v1:0")), None);
    }
}
