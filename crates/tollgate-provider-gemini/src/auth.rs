//! Sans-IO Google service-account OAuth2 (the "JWT bearer" flow Vertex AI needs).
//!
//! The transport layer drives it:
//! 1. parse the key once: [`GoogleCredentials::from_json`] (a `service_account` key, or an
//!    `authorized_user` file from `gcloud auth application-default login`), or
//!    [`ServiceAccountKey::from_json`] (the JSON from
//!    `cfg.secrets["vertex_credentials"]`, or the file `GOOGLE_APPLICATION_CREDENTIALS` names);
//! 2. when [`TokenCache::needs_refresh`] says so, build the exchange with
//!    [`GoogleCredentials::token_request`] / [`ServiceAccountKey::token_request`] (`POST token_uri`, form-encoded
//!    `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256-signed JWT>`),
//!    send it, and parse the answer with [`parse_token_response`];
//! 3. [`TokenCache::store`] the [`AccessToken`] and put [`TokenCache::token`] into
//!    `UpstreamConfig::bearer_token`.
//!
//! Time is always passed in (`now`: seconds since the Unix epoch), so nothing here reads a clock.
//! Signing uses ring's RSA PKCS#1 v1.5 / SHA-256 (RS256); ring asks for a random source, which
//! RSA PKCS#1 v1.5 does not actually consume, so signatures are deterministic.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::{ErrorKind, ProviderError, Secret};

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint (used when the key names none).
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth2 grant type of the JWT bearer flow (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime requested for the assertion (Google's maximum).
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Why a service-account key or a token exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the service-account key is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the credentials are of type {0:?}; only \"service_account\" keys are supported")]
    UnsupportedType(String),
    #[error("the service-account key's private_key is not a usable RSA PEM key: {0}")]
    InvalidKey(String),
    #[error("signing the JWT failed")]
    Signing,
    #[error("the token endpoint rejected the assertion (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the token endpoint's answer is not a token response: {0}")]
    InvalidTokenResponse(String),
}

impl From<AuthError> for ProviderError {
    fn from(e: AuthError) -> Self {
        let kind = match &e {
            AuthError::Rejected { status, .. } if *status >= 500 => ErrorKind::ServerError,
            AuthError::InvalidTokenResponse(_) => ErrorKind::Decode,
            _ => ErrorKind::Authentication,
        };
        let mut pe = ProviderError::new(kind, e.to_string()).with_provider("vertex_ai");
        if let AuthError::Rejected { status, .. } = e {
            pe = pe.with_status(status);
        }
        pe
    }
}

#[derive(Deserialize)]
struct RawKey {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A parsed Google service-account key.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub project_id: Option<String>,
    pub private_key_id: Option<String>,
    pub token_uri: String,
    key_pair: RsaKeyPair,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"***")
            .finish()
    }
}

impl ServiceAccountKey {
    /// Parses the key file's JSON (`type: service_account`, `client_email`, `private_key` PEM,
    /// optional `token_uri`, `private_key_id`, `project_id`).
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let raw: RawKey = serde_json::from_str(json).map_err(|e| AuthError::InvalidJson(e.to_string()))?;
        if let Some(kind) = raw.kind.as_deref()
            && kind != "service_account"
        {
            return Err(AuthError::UnsupportedType(kind.to_owned()));
        }
        let client_email = raw
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| AuthError::InvalidJson("missing client_email".into()))?;
        let pem = raw.private_key.ok_or_else(|| AuthError::InvalidJson("missing private_key".into()))?;
        let key_pair = key_pair_from_pem(&pem)?;
        Ok(ServiceAccountKey {
            client_email,
            project_id: raw.project_id,
            private_key_id: raw.private_key_id,
            token_uri: raw
                .token_uri
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            key_pair,
        })
    }

    /// The JWT claims for an assertion issued at `now`.
    pub fn claims(&self, scope: &str, now: u64) -> Value {
        json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        })
    }

    /// The RS256-signed JWT assertion (`header.claims.signature`, base64url without padding).
    pub fn signed_jwt(&self, scope: &str, now: u64) -> Result<Secret, AuthError> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let mut jwt = String::new();
        jwt.push_str(&URL_SAFE_NO_PAD.encode(header.to_string()));
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(self.claims(scope, now).to_string()));
        let sig = self.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(Secret::new(jwt))
    }

    /// RS256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut sig = vec![0u8; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| AuthError::Signing)?;
        Ok(sig)
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (for verification).
    pub fn public_key_der(&self) -> &[u8] {
        self.key_pair.public().as_ref()
    }

    /// The token exchange request: `POST token_uri` with the form-encoded JWT-bearer grant.
    pub fn token_request(&self, scope: &str, now: u64) -> Result<http::Request<Bytes>, AuthError> {
        let jwt = self.signed_jwt(scope, now)?;
        // A JWT only holds base64url characters and dots: nothing to percent-encode.
        let body = format!("grant_type={}&assertion={}", form_encode(JWT_BEARER_GRANT), jwt.expose());
        form_post(&self.token_uri, body)
    }
}

/// An `authorized_user` credential (what `gcloud auth application-default login` writes):
/// exchanged with `grant_type=refresh_token`.
pub struct AuthorizedUser {
    pub client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    pub token_uri: String,
}

impl fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("refresh_token", &self.refresh_token)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl AuthorizedUser {
    /// The refresh-token exchange: `POST token_uri` with the form-encoded refresh grant.
    pub fn token_request(&self) -> Result<http::Request<Bytes>, AuthError> {
        let body = format!(
            "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
            form_encode(&self.client_id),
            form_encode(self.client_secret.expose()),
            form_encode(self.refresh_token.expose()),
        );
        form_post(&self.token_uri, body)
    }
}

/// Any credential JSON `vertex_credentials` may hold, by its `type`.
#[derive(Debug)]
pub enum GoogleCredentials {
    ServiceAccount(Box<ServiceAccountKey>),
    AuthorizedUser(AuthorizedUser),
}

impl GoogleCredentials {
    /// Parses a `service_account` key or an `authorized_user` file.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let v: Value = serde_json::from_str(json).map_err(|e| AuthError::InvalidJson(e.to_string()))?;
        match v.get("type").and_then(Value::as_str) {
            Some("authorized_user") => {
                let field = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| AuthError::InvalidJson(format!("missing {k}")))
                };
                Ok(GoogleCredentials::AuthorizedUser(AuthorizedUser {
                    client_id: field("client_id")?,
                    client_secret: Secret::new(field("client_secret")?),
                    refresh_token: Secret::new(field("refresh_token")?),
                    token_uri: field("token_uri").unwrap_or_else(|_| DEFAULT_TOKEN_URI.to_owned()),
                }))
            }
            _ => ServiceAccountKey::from_json(json).map(|k| GoogleCredentials::ServiceAccount(Box::new(k))),
        }
    }

    /// The token request for these credentials at `now` (`scope` applies to service accounts;
    /// user credentials carry the scopes they were granted).
    pub fn token_request(&self, scope: &str, now: u64) -> Result<http::Request<Bytes>, AuthError> {
        match self {
            GoogleCredentials::ServiceAccount(k) => k.token_request(scope, now),
            GoogleCredentials::AuthorizedUser(u) => u.token_request(),
        }
    }
}

fn form_post(uri: &str, body: String) -> Result<http::Request<Bytes>, AuthError> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::from(body))
        .map_err(|e| AuthError::InvalidJson(format!("invalid token_uri: {e}")))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`).
fn key_pair_from_pem(pem: &str) -> Result<RsaKeyPair, AuthError> {
    // Keys pasted through env vars sometimes keep literal `\n` escapes.
    let pem = pem.replace("\\n", "\n");
    let (label, der) = pem_body(&pem)?;
    match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).map_err(|e| AuthError::InvalidKey(e.to_string())),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map_err(|e| AuthError::InvalidKey(e.to_string())),
        other => Err(AuthError::InvalidKey(format!("unsupported PEM block {other:?}"))),
    }
}

fn pem_body(pem: &str) -> Result<(String, Vec<u8>), AuthError> {
    let begin = pem.find("-----BEGIN ").ok_or_else(|| AuthError::InvalidKey("no PEM BEGIN line".into()))?;
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(|| AuthError::InvalidKey("malformed BEGIN line".into()))?;
    let label = rest[..label_end].to_owned();
    let body_start = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_start.find(&end_marker).ok_or_else(|| AuthError::InvalidKey("no PEM END line".into()))?;
    let b64: String = body_start[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|e| AuthError::InvalidKey(format!("bad base64: {e}")))?;
    Ok((label, der))
}

/// An OAuth2 access token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    pub token_type: String,
}

/// Parses the token endpoint's answer (`{"access_token", "expires_in", "token_type"}`; errors
/// are `{"error", "error_description"}`). `now` is when the request was sent.
pub fn parse_token_response(status: u16, body: &[u8], now: u64) -> Result<AccessToken, AuthError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        if (200..300).contains(&status) {
            AuthError::InvalidTokenResponse(tollgate_core::error::body_excerpt(body))
        } else {
            AuthError::Rejected { status, message: tollgate_core::error::body_excerpt(body) }
        }
    })?;
    if !(200..300).contains(&status) || v.get("error").is_some() {
        let err = v.get("error").and_then(Value::as_str).unwrap_or("error");
        let desc = v.get("error_description").and_then(Value::as_str).unwrap_or("");
        let message = if desc.is_empty() { err.to_owned() } else { format!("{err}: {desc}") };
        return Err(AuthError::Rejected { status, message });
    }
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::InvalidTokenResponse("no access_token".into()))?;
    let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(ASSERTION_LIFETIME_SECS);
    let token_type = v.get("token_type").and_then(Value::as_str).unwrap_or("Bearer").to_owned();
    Ok(AccessToken { token: Secret::new(token), expires_at: now.saturating_add(expires_in), token_type })
}

/// When to refresh a cached access token: `margin` before it expires (default 5 minutes).
#[derive(Debug, Clone)]
pub struct TokenCache {
    token: Option<AccessToken>,
    margin: Duration,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
    /// The default refresh margin.
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);

    pub fn new() -> Self {
        Self::with_margin(Self::DEFAULT_MARGIN)
    }

    pub fn with_margin(margin: Duration) -> Self {
        TokenCache { token: None, margin }
    }

    /// Whether a new token must be fetched before a request at `now`.
    pub fn needs_refresh(&self, now: u64) -> bool {
        match &self.token {
            None => true,
            Some(t) => now.saturating_add(self.margin.as_secs()) >= t.expires_at,
        }
    }

    /// The cached token if it is still good at `now`.
    pub fn token(&self, now: u64) -> Option<&Secret> {
        if self.needs_refresh(now) { None } else { self.token.as_ref().map(|t| &t.token) }
    }

    /// When the cached token should be refreshed (seconds since the epoch), if one is cached.
    pub fn refresh_at(&self) -> Option<u64> {
        self.token.as_ref().map(|t| t.expires_at.saturating_sub(self.margin.as_secs()))
    }

    pub fn store(&mut self, token: AccessToken) {
        self.token = Some(token);
    }

    pub fn clear(&mut self) {
        self.token = None;
    }
}
