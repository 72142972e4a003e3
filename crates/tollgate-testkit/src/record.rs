//! What the mock server received.

use bytes::Bytes;
use http::{HeaderMap, Method, Version};

/// One request as the mock server received it, body fully read.
///
/// Requests are recorded before the server picks and sends its response, so a test may inspect
/// them as soon as the client call under test returns.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival order at this server, starting at 0 (also counts requests made while recording
    /// was switched off).
    pub seq: u64,
    pub method: Method,
    /// The URI path, e.g. `/v1/chat/completions` (no query string).
    pub path: String,
    /// The raw query string without the `?`, if any (e.g. `api-version=2024-10-21`).
    pub query: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The first value of a header as text (names are case-insensitive), if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The raw (not percent-decoded) value of the first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_read_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert("api-key", "k".parse().unwrap());
        let r = RecordedRequest {
            seq: 0,
            method: Method::POST,
            path: "/openai/deployments/d/chat/completions".into(),
            query: Some("x&api-version=2024-10-21".into()),
            version: Version::HTTP_11,
            headers,
            body: Bytes::from_static(b"{\"a\":1}"),
        };
        assert_eq!(r.json().unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(r.body_str(), Some("{\"a\":1}"));
        assert_eq!(r.header("API-Key"), Some("k"));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.query_param("api-version"), Some("2024-10-21"));
        assert_eq!(r.query_param("x"), Some(""));
        assert_eq!(r.query_param("y"), None);
    }
}
