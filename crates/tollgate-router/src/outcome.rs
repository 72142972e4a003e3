//! What a routed call returns: the response and how it was obtained, or every attempt's error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::{ErrorKind, ProviderError};

/// One upstream call the router made for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The model group the deployment belongs to.
    pub group: Arc<str>,
    pub deployment_id: Arc<str>,
    /// The provider model called (`groq/llama-3.3-70b-versatile`).
    pub model: Arc<str>,
    /// How long the call took (for a stream: until the first chunk).
    pub duration: Duration,
    /// `None` for the attempt that answered.
    pub error: Option<ProviderError>,
}

/// How a request was routed.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    /// The model the caller asked for.
    pub requested: String,
    /// The group that answered (the requested one, or a fallback).
    pub group: Arc<str>,
    pub deployment_id: Arc<str>,
    pub model: Arc<str>,
    /// Every call made, in order, the answering one last.
    pub attempts: Vec<Attempt>,
    /// How many fallback groups were entered (0: the requested group answered).
    pub fallbacks: u32,
}

/// A response with the route that produced it.
#[derive(Debug)]
pub struct Routed<T> {
    pub response: T,
    pub route: RouteInfo,
}

/// Why no response could be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// No group (and no wildcard) matches the requested model.
    UnknownModel,
    /// The group has no deployment that can take this request (tags, context window).
    NoEligibleDeployment,
    /// Every eligible deployment is cooling down or at its rpm / tpm / parallel limit.
    AllUnavailable,
    /// Calls were made and all failed.
    AttemptsFailed,
}

/// The router gave up. `error` is what a client should see (kind, message, `retry_after`);
/// `attempts` holds every call made, each with its own error.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterError {
    pub reason: FailureReason,
    /// Boxed to keep `Result<_, RouterError>` small on the success path.
    pub error: Box<ProviderError>,
    pub attempts: Vec<Attempt>,
}

impl RouterError {
    pub fn kind(&self) -> ErrorKind {
        self.error.kind
    }

    /// The error of every failed attempt, in order.
    pub fn attempt_errors(&self) -> impl Iterator<Item = &ProviderError> {
        self.attempts.iter().filter_map(|a| a.error.as_ref())
    }

    /// The client-facing error, its message listing every attempt.
    pub fn into_provider_error(self) -> ProviderError {
        let mut e = *self.error;
        if self.attempts.len() > 1 {
            e.message = format!("{} ({})", e.message, summarise(&self.attempts));
        }
        e
    }
}

fn summarise(attempts: &[Attempt]) -> String {
    let mut s = format!("{} attempts:", attempts.len());
    for a in attempts {
        match &a.error {
            Some(e) => {
                s.push_str(&format!(" [{} {}: {:?}: {}]", a.group, a.deployment_id, e.kind, e.message))
            }
            None => s.push_str(&format!(" [{} {}: ok]", a.group, a.deployment_id)),
        }
    }
    s
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if !self.attempts.is_empty() {
            write!(f, " ({})", summarise(&self.attempts))?;
        }
        Ok(())
    }
}

impl std::error::Error for RouterError {}

/// Why a router could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("deployment {index} of `{group}`: {message}")]
    Deployment { group: String, index: usize, message: String },
    #[error("two deployments have the id `{0}`")]
    DuplicateId(String),
    #[error("invalid router settings: {0}")]
    Settings(String),
}
