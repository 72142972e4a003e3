//! Vertex AI access tokens: the OAuth2 exchange the sans-IO Gemini crate describes, driven here.
//!
//! When a `vertex_ai/…` call has no bearer token and no API key, the service-account (or
//! `gcloud` user) credentials — `vertex_credentials` (the JSON itself, or a path to it) or the
//! file named by `GOOGLE_APPLICATION_CREDENTIALS` — are exchanged for an access token at their
//! `token_uri`. Tokens are cached per credential until shortly before they expire.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tollgate_core::{ErrorKind, ProviderError, Secret, UpstreamConfig};
use tollgate_provider_gemini::auth::{
    CLOUD_PLATFORM_SCOPE, GoogleCredentials, TokenCache, parse_token_response,
};
use tollgate_transport::{HttpTransport, Timeouts};

/// Cached tokens, keyed by a hash of the credential JSON (never the JSON itself).
#[derive(Debug, Default)]
pub(crate) struct GoogleTokens {
    cache: Mutex<HashMap<u64, TokenCache>>,
    /// Held while a token is fetched, so concurrent first calls make one exchange, not one each.
    refreshing: futures_util::lock::Mutex<()>,
}

impl GoogleTokens {
    /// Sets `cfg.bearer_token` for a Vertex call that has credentials but no token yet.
    pub(crate) async fn authorize(
        &self,
        transport: &HttpTransport,
        cfg: &mut UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<(), ProviderError> {
        if let Some(token) = self.token(transport, cfg, timeouts).await? {
            cfg.bearer_token = Some(token);
        }
        Ok(())
    }

    /// Whether a call with `cfg` needs a token exchanged first: no bearer token or API key yet, a
    /// project to call, and credentials to exchange.
    pub(crate) fn needs_token(cfg: &UpstreamConfig) -> bool {
        cfg.bearer_token.is_none()
            && cfg.api_key.is_none()
            // Without a project the call cannot be made; the adapter says so before any exchange.
            && cfg.options.contains_key("vertex_project")
            && (cfg.secrets.contains_key("vertex_credentials") || cfg.options.contains_key("vertex_credentials_file"))
    }

    /// The access token for `cfg`'s credentials: cached, or exchanged now.
    pub(crate) async fn token(
        &self,
        transport: &HttpTransport,
        cfg: &UpstreamConfig,
        timeouts: &Timeouts,
    ) -> Result<Option<Secret>, ProviderError> {
        if !Self::needs_token(cfg) {
            return Ok(None);
        }
        let Some(json) = credential_json(cfg)? else {
            return Ok(None);
        };
        let key = {
            let mut h = DefaultHasher::new();
            json.hash(&mut h);
            h.finish()
        };
        if let Some(token) = self.lock().get(&key).and_then(|c| c.token(unix_now()).cloned()) {
            return Ok(Some(token));
        }
        let _refreshing = self.refreshing.lock().await;
        // Another call may have fetched it while this one waited.
        let now = unix_now();
        if let Some(token) = self.lock().get(&key).and_then(|c| c.token(now).cloned()) {
            return Ok(Some(token));
        }
        let creds = GoogleCredentials::from_json(&json).map_err(ProviderError::from)?;
        let req = creds.token_request(CLOUD_PLATFORM_SCOPE, now).map_err(ProviderError::from)?;
        let raw = transport.send(req, timeouts).await.map_err(|e| e.with_provider("vertex_ai"))?;
        let token = parse_token_response(raw.status.as_u16(), &raw.body, now).map_err(ProviderError::from)?;
        let secret = token.token.clone();
        self.lock().entry(key).or_default().store(token);
        Ok(Some(secret))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TokenCache>> {
        // A poisoned cache only means another call panicked mid-insert; the map is still valid.
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn credential_json(cfg: &UpstreamConfig) -> Result<Option<String>, ProviderError> {
    let (source, is_path) = match cfg.secrets.get("vertex_credentials") {
        Some(s) => (s.expose().to_owned(), !s.expose().trim_start().starts_with('{')),
        None => match cfg.options.get("vertex_credentials_file") {
            Some(p) => (p.clone(), true),
            None => return Ok(None),
        },
    };
    if !is_path {
        return Ok(Some(source));
    }
    std::fs::read_to_string(&source).map(Some).map_err(|e| {
        ProviderError::new(
            ErrorKind::Authentication,
            format!("cannot read Google credentials file `{source}`: {e}"),
        )
        .with_provider("vertex_ai")
    })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
