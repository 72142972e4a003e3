//! Randomness, hashing, money and time helpers.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::StoreError;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` base62 characters from the OS RNG, each uniform (rejection sampling, no modulo bias).
pub(crate) fn random_base62(len: usize) -> Result<String, StoreError> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf).map_err(|_| StoreError::Random)?;
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would bias the low digits.
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// Lower-case hex SHA-256 of `input`.
pub fn sha256_hex(input: &str) -> String {
    let d = digest::digest(&digest::SHA256, input.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// True if `s` looks like a SHA-256 hex digest (64 lower-case hex characters).
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Nano-USD per USD. Money is stored as integer nano-USD (10⁻⁹ USD): exact sums, no float drift.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// Converts a USD amount from the API (a JSON number) to nano-USD, rounding to the nearest
/// nano. Negative, non-finite and absurdly large amounts (over 9 billion USD) are refused.
pub fn usd_to_nanos(field: &'static str, usd: f64) -> Result<i64, StoreError> {
    if !usd.is_finite() {
        return Err(StoreError::invalid(field, "must be a finite number"));
    }
    if usd < 0.0 {
        return Err(StoreError::invalid(field, format!("must not be negative (got {usd})")));
    }
    let nanos = (usd * 1e9).round();
    if nanos >= 9.0e18 {
        return Err(StoreError::invalid(field, "too large"));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(nanos as i64)
}

/// Nano-USD as a USD float, for API responses.
#[allow(clippy::cast_precision_loss)]
pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

/// Nano-USD from the pricing crate's exact yoctodollars (10⁻²⁴ USD), rounded half up; saturates.
pub fn nanos_from_yocto(yocto: u128) -> i64 {
    let nanos = yocto.saturating_add(500_000_000_000_000) / 1_000_000_000_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Now as Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_sha256_hex(&sha256_hex("x")));
        assert!(!is_sha256_hex("sk-abc"));
    }

    #[test]
    fn base62_is_random_and_in_alphabet() {
        let a = random_base62(43).unwrap();
        let b = random_base62(43).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn money_conversions() {
        assert_eq!(usd_to_nanos("max_budget", 1.5).unwrap(), 1_500_000_000);
        assert_eq!(usd_to_nanos("max_budget", 0.000_000_001).unwrap(), 1);
        assert!(usd_to_nanos("max_budget", -0.01).is_err());
        assert!(usd_to_nanos("max_budget", f64::NAN).is_err());
        assert!(usd_to_nanos("max_budget", 1e12).is_err());
        assert_eq!(nanos_from_yocto(2_500_000_000_000_000), 3);
        assert_eq!(nanos_from_yocto(2_400_000_000_000_000), 2);
        assert!((nanos_to_usd(1_250_000_000) - 1.25).abs() < 1e-12);
    }
}
