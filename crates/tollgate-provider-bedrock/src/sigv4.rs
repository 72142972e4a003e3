//! AWS Signature Version 4, written against the published algorithm (canonical request →
//! string to sign → derived signing key → `Authorization` header) with ring's HMAC-SHA256 and
//! SHA-256. Sans-IO: the caller passes the signing time, so signatures are reproducible.
//!
//! Canonical URI: for every service except S3, AWS encodes the (already percent-encoded) request
//! path a second time (`%` → `%25`). Bedrock model ids are sent percent-encoded
//! (`anthropic.claude-v2%3A1`), so their canonical form is `anthropic.claude-v2%253A1`.
//! For paths made only of unreserved characters and `/` (all of AWS's test-suite vectors used
//! here) both forms are identical.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};
use tollgate_core::Secret;

/// SHA-256 of the empty string, hex: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Long-term or temporary AWS credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// STS session token, sent (and signed) as `x-amz-security-token`.
    pub session_token: Option<Secret>,
}

/// The `x-amz-date` timestamp (`20150830T123600Z`) and its date part (`20150830`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmzDate {
    pub datetime: String,
    pub date: String,
}

impl AmzDate {
    /// Formats a point in time as UTC. Times before 1970 are clamped to the epoch.
    pub fn from_system_time(t: SystemTime) -> AmzDate {
        let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let date = format!("{y:04}{m:02}{d:02}");
        let datetime = format!("{date}T{:02}{:02}{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60);
        AmzDate { datetime, date }
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// What gets signed: the request as it goes on the wire.
#[derive(Debug, Clone)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path exactly as sent (already percent-encoded), e.g. `/model/a%3A0/converse`.
    pub path: &'a str,
    /// The raw query string without `?` (may be empty).
    pub query: &'a str,
    /// Headers to sign, as sent. Must include `host` and `x-amz-date` (and
    /// `x-amz-security-token` when a session token is used).
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body ([`sha256_hex`]).
    pub payload_sha256: &'a str,
}

/// Every intermediate of a signature, so tests can compare each step with AWS's vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOutput {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signed_headers: String,
    pub signature: String,
    /// The complete `Authorization` header value.
    pub authorization: String,
}

/// Signs a request for `service` in `region` at `date`.
pub fn sign(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    date: &AmzDate,
) -> SigningOutput {
    let (canonical_headers, signed_headers) = canonical_headers(req.headers);
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers,
        signed_headers,
        req.payload_sha256
    );
    let scope = format!("{}/{region}/{service}/aws4_request", date.date);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", date.datetime, sha256_hex(canonical_request.as_bytes()));
    let key = signing_key(creds.secret_access_key.expose(), &date.date, region, service);
    let signature = hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    );
    SigningOutput { canonical_request, string_to_sign, signed_headers, signature, authorization }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes());
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(k_date.as_ref(), region);
    let k_service = step(k_region.as_ref(), service);
    let k_signing = step(k_service.as_ref(), "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// RFC 3986 unreserved characters are kept; every other byte becomes `%XX` (upper-case hex).
/// With `keep_slash`, `/` is kept too (paths).
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(input: &str) -> Vec<u8> {
    fn val(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (val(b[i + 1]), val(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() { "/".to_owned() } else { uri_encode(path, true) }
}

/// Query parameters decoded, re-encoded strictly, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| uri_encode(&String::from_utf8_lossy(&percent_decode(s)), false);
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Lower-cased names, trimmed values with inner whitespace runs collapsed, repeated names joined
/// with `,`, sorted by name. Returns (canonical headers block incl. trailing newline, signed list).
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (name, value) in headers {
        let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
        map.entry(name.trim().to_ascii_lowercase()).or_default().push(v);
    }
    let mut block = String::new();
    for (name, values) in &map {
        block.push_str(name);
        block.push(':');
        block.push_str(&values.join(","));
        block.push('\n');
    }
    let signed = map.keys().cloned().collect::<Vec<_>>().join(";");
    (block, signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn amz_date_formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let d = AmzDate::from_system_time(t);
        assert_eq!(d.datetime, "20150830T123600Z");
        assert_eq!(d.date, "20150830");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(AmzDate::from_system_time(leap).datetime, "20000229T000000Z");
        assert_eq!(AmzDate::from_system_time(UNIX_EPOCH).datetime, "19700101T000000Z");
    }

    #[test]
    fn encoding_rules() {
        assert_eq!(uri_encode("a b/c:d~", false), "a%20b%2Fc%3Ad~");
        assert_eq!(uri_encode("/model/a%3A0/converse", true), "/model/a%253A0/converse");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("p=a%20b&q"), "p=a%20b&q=");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz%41"), b"%zzA");
    }
}
