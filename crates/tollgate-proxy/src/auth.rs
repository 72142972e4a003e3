//! Who may call the gateway.
//!
//! The key a client presents is taken from `Authorization: Bearer <key>` (OpenAI clients),
//! `x-api-key` (Anthropic clients) or `api-key` (Azure clients), in that order, and handed to an
//! [`Authenticator`]. Today there is [`MasterKeyAuth`] (LiteLLM's `general_settings.master_key`,
//! compared in constant time) and [`OpenAccess`] (no master key configured). Virtual keys slot
//! in as another `Authenticator` whose [`Principal`] carries the key's id, team and limits.
//!
//! The client's key is only ever used here: it is never forwarded upstream (each deployment
//! uses its own credentials).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use http::HeaderMap;
use subtle::ConstantTimeEq;
use tollgate::Secret;

/// Who made a request, once authenticated. Inserted into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Principal {
    /// A stable, non-secret name for the key used (`master`, a virtual key's id, …); `None`
    /// when no authentication is configured.
    pub key_id: Option<String>,
    /// Whether this is the admin (master) key.
    pub is_admin: bool,
}

impl Principal {
    /// The caller of a gateway without authentication.
    pub fn anonymous() -> Self {
        Principal { key_id: None, is_admin: false }
    }

    /// The holder of the master key.
    pub fn master() -> Self {
        Principal { key_id: Some("master".into()), is_admin: true }
    }
}

/// Why a request was refused (answered with 401 and this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    pub message: String,
}

pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>>;

/// Decides whether a presented key may call the gateway. Asynchronous so implementations can
/// look keys up in a store.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// `key` is the key the client presented, if any (see [`presented_key`]).
    fn authenticate<'a>(&'a self, key: Option<&'a str>) -> AuthFuture<'a>;
}

/// Everyone may call (no master key configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAccess;

impl Authenticator for OpenAccess {
    fn authenticate<'a>(&'a self, _key: Option<&'a str>) -> AuthFuture<'a> {
        Box::pin(async { Ok(Principal::anonymous()) })
    }
}

/// Only the master key may call.
#[derive(Debug, Clone)]
pub struct MasterKeyAuth {
    key: Secret,
}

impl MasterKeyAuth {
    pub fn new(key: Secret) -> Self {
        MasterKeyAuth { key }
    }

    /// Constant-time comparison (the time taken does not depend on where the keys differ).
    fn matches(&self, presented: &str) -> bool {
        bool::from(self.key.expose().as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl Authenticator for MasterKeyAuth {
    fn authenticate<'a>(&'a self, key: Option<&'a str>) -> AuthFuture<'a> {
        Box::pin(async move {
            match key {
                None => Err(AuthError {
                    message: "Authentication required: pass the key as `Authorization: Bearer <key>`, \
                              `x-api-key` or `api-key`."
                        .into(),
                }),
                Some(k) if self.matches(k) => Ok(Principal::master()),
                Some(_) => Err(AuthError { message: "Invalid API key.".into() }),
            }
        })
    }
}

/// The key presented by a request: `Authorization: Bearer <key>`, else `x-api-key`, else
/// `api-key`. Empty values count as absent.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()).map(str::trim))
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("api-key", "c".parse().unwrap());
        assert_eq!(presented_key(&h), Some("c"));
        h.insert("x-api-key", "b".parse().unwrap());
        assert_eq!(presented_key(&h), Some("b"));
        h.insert("authorization", "Bearer a".parse().unwrap());
        assert_eq!(presented_key(&h), Some("a"));
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("b"));
    }

    #[tokio::test]
    async fn master_key_compares_whole_key() {
        let auth = MasterKeyAuth::new(Secret::new("sk-master"));
        assert!(auth.authenticate(Some("sk-master")).await.is_ok());
        assert!(auth.authenticate(Some("sk-maste")).await.is_err());
        assert!(auth.authenticate(Some("sk-master2")).await.is_err());
        assert!(auth.authenticate(None).await.is_err());
    }
}
