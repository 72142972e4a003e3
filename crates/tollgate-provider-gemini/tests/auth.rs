//! Service-account OAuth helpers. The fixtures hold an RSA test key generated offline with
//! `openssl genpkey`, its public key exported by openssl (PKCS#1 DER), a JWT signing input and
//! openssl's RS256 signature of it (`openssl dgst -sha256 -sign`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::fixture_dir;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use tollgate_core::{ErrorKind, ProviderError};
use tollgate_provider_gemini::auth::{
    AccessToken, AuthError, CLOUD_PLATFORM_SCOPE, ServiceAccountKey, TokenCache, parse_token_response,
};

fn key() -> ServiceAccountKey {
    let json = std::fs::read_to_string(fixture_dir("").join("test_service_account.json")).unwrap();
    ServiceAccountKey::from_json(&json).unwrap()
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir("").join(name)).unwrap()
}

const NOW: u64 = 1_700_000_000;

#[test]
fn parses_the_key_and_hides_the_private_key() {
    let k = key();
    assert_eq!(k.client_email, "tollgate-test@tollgate-test.iam.gserviceaccount.com");
    assert_eq!(k.token_uri, "https://oauth2.googleapis.com/token");
    assert_eq!(k.project_id.as_deref(), Some("tollgate-test"));
    assert_eq!(k.public_key_der(), fixture_bytes("test_sa_pub_pkcs1.der").as_slice());
    let dbg = format!("{k:?}");
    assert!(dbg.contains("***") && !dbg.contains("PRIVATE KEY"), "{dbg}");
}

#[test]
fn signature_matches_openssl_byte_for_byte() {
    let input = fixture_bytes("jwt_signing_input.txt");
    let sig = key().sign(&input).unwrap();
    assert_eq!(sig, fixture_bytes("jwt_signature_openssl.bin"));
}

#[test]
fn signed_jwt_has_google_claims_and_verifies_with_the_openssl_public_key() {
    let jwt = key().signed_jwt(CLOUD_PLATFORM_SCOPE, NOW).unwrap();
    let parts: Vec<&str> = jwt.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap() };
    assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}));
    assert_eq!(
        decode(parts[1]),
        json!({
            "iss": "tollgate-test@tollgate-test.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": NOW,
            "exp": NOW + 3600
        })
    );
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, fixture_bytes("test_sa_pub_pkcs1.der"));
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    public.verify(signing_input.as_bytes(), &sig).expect("signature verifies");
    // A tampered claim set does not verify.
    let tampered = format!("{}.{}x", parts[0], parts[1]);
    assert!(public.verify(tampered.as_bytes(), &sig).is_err());
}

#[test]
fn token_request_is_a_form_encoded_jwt_bearer_post() {
    let req = key().token_request(CLOUD_PLATFORM_SCOPE, NOW).unwrap();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri(), "https://oauth2.googleapis.com/token");
    assert_eq!(req.headers()["content-type"], "application/x-www-form-urlencoded");
    let body = std::str::from_utf8(req.body()).unwrap();
    let (grant, assertion) = body.split_once('&').unwrap();
    assert_eq!(grant, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let jwt = assertion.strip_prefix("assertion=").unwrap();
    assert_eq!(jwt, key().signed_jwt(CLOUD_PLATFORM_SCOPE, NOW).unwrap().expose());
}

#[test]
fn token_response_parsing() {
    let ok = br#"{"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"}"#;
    let t = parse_token_response(200, ok, NOW).unwrap();
    assert_eq!(t.token.expose(), "ya29.c.abc");
    assert_eq!(t.expires_at, NOW + 3599);
    assert_eq!(t.token_type, "Bearer");

    let denied = br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#;
    let e = parse_token_response(400, denied, NOW).unwrap_err();
    assert_eq!(
        e,
        AuthError::Rejected { status: 400, message: "invalid_grant: Invalid JWT Signature.".into() }
    );
    let pe: ProviderError = e.into();
    assert_eq!(pe.kind, ErrorKind::Authentication);

    assert!(matches!(parse_token_response(200, b"<html>", NOW), Err(AuthError::InvalidTokenResponse(_))));
    assert!(matches!(parse_token_response(200, b"{}", NOW), Err(AuthError::InvalidTokenResponse(_))));
    let e: ProviderError = parse_token_response(503, b"<html>down</html>", NOW).unwrap_err().into();
    assert_eq!(e.kind, ErrorKind::ServerError);
}

#[test]
fn bad_keys_are_typed_errors() {
    assert!(matches!(ServiceAccountKey::from_json("nope"), Err(AuthError::InvalidJson(_))));
    assert!(matches!(
        ServiceAccountKey::from_json(r#"{"type":"authorized_user","client_email":"a","private_key":"x"}"#),
        Err(AuthError::UnsupportedType(_))
    ));
    assert!(matches!(
        ServiceAccountKey::from_json(
            r#"{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#
        ),
        Err(AuthError::InvalidKey(_))
    ));
    assert!(matches!(
        ServiceAccountKey::from_json(
            r#"{"type":"service_account","client_email":"a@b","private_key":"garbage"}"#
        ),
        Err(AuthError::InvalidKey(_))
    ));
}

#[test]
fn token_cache_refreshes_five_minutes_before_expiry() {
    let mut cache = TokenCache::new();
    assert!(cache.needs_refresh(NOW));
    assert!(cache.token(NOW).is_none());
    cache.store(AccessToken { token: "t1".into(), expires_at: NOW + 3600, token_type: "Bearer".into() });
    assert_eq!(cache.token(NOW).map(|s| s.expose()), Some("t1"));
    assert_eq!(cache.refresh_at(), Some(NOW + 3300));
    assert!(!cache.needs_refresh(NOW + 3299));
    assert!(cache.needs_refresh(NOW + 3300));
    assert!(cache.token(NOW + 3500).is_none());
    let short = TokenCache::with_margin(Duration::from_secs(10));
    assert!(short.needs_refresh(0));
    cache.clear();
    assert!(cache.needs_refresh(NOW));
}

#[test]
fn authorized_user_credentials_use_the_refresh_grant() {
    use tollgate_provider_gemini::auth::GoogleCredentials;
    let json = r#"{"type":"authorized_user","client_id":"123.apps.googleusercontent.com","client_secret":"s3cr/t","refresh_token":"1//r+t"}"#;
    let creds = GoogleCredentials::from_json(json).unwrap();
    assert!(!format!("{creds:?}").contains("s3cr"));
    let req = creds.token_request(CLOUD_PLATFORM_SCOPE, NOW).unwrap();
    assert_eq!(req.uri(), "https://oauth2.googleapis.com/token");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        "grant_type=refresh_token&client_id=123.apps.googleusercontent.com&client_secret=s3cr%2Ft&refresh_token=1%2F%2Fr%2Bt"
    );
    let sa = std::fs::read_to_string(fixture_dir("").join("test_service_account.json")).unwrap();
    assert!(matches!(GoogleCredentials::from_json(&sa).unwrap(), GoogleCredentials::ServiceAccount(_)));
    assert!(matches!(
        GoogleCredentials::from_json(r#"{"type":"authorized_user","client_id":"x"}"#),
        Err(AuthError::InvalidJson(_))
    ));
}
