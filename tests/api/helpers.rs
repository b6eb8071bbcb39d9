//! The API suite's prelude: the test kit's app and helpers, and the forged tokens only this
//! suite needs.

use prescrypt::auth::{self, Role};
pub use prescrypt_testkit::{
    OTHER_PHARMACY, PHARMACY, PRESCRIBER_ORG, TestApp, claim_both_supplied, claim_for,
    claim_nothing_supplied, new_prescription, read,
};
use serde_json::{Value, json};

/// The app with the kit's test defaults, on a fresh database.
pub async fn spawn_app() -> TestApp {
    TestApp::spawn().await
}

pub fn status_of(prescription: &Value) -> &str {
    prescription["status"]["code"]
        .as_str()
        .expect("status code")
}

pub fn code_of(problem: &Value) -> &str {
    problem["code"].as_str().unwrap_or("<no code>")
}

// Forged and faulty bearer tokens (the authentication tests and the authorisation matrix).

/// Claims of `role`/`org`/`sub`, issued by `iss` for `aud`, expiring `exp_offset` seconds from now.
pub fn claims_as(
    role: Role,
    org: &str,
    sub: &str,
    iss: &str,
    aud: &str,
    exp_offset: i64,
) -> auth::Claims {
    let now = chrono::Utc::now().timestamp();
    auth::Claims {
        sub: sub.into(),
        role,
        org: org.into(),
        iss: iss.into(),
        aud: aud.into(),
        iat: now,
        exp: now + exp_offset,
        nbf: None,
    }
}

/// Whatever claims are given, correctly signed by the development issuer key the app trusts.
pub fn signed_by_dev_issuer(app: &TestApp, claims: &auth::Claims) -> String {
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(issuer.kid.as_str().to_owned());
    jsonwebtoken::encode(&header, claims, &issuer.encoding).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// `alg: none` naming the trusted issuer's kid: the claims with an empty signature.
pub fn alg_none(app: &TestApp, claims: &auth::Claims) -> String {
    let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
    let header = json!({"alg": "none", "typ": "JWT", "kid": issuer.kid.as_str()});
    let payload = serde_json::to_vec(claims).unwrap();
    format!(
        "{}.{}.",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&payload)
    )
}

/// HS256 keyed with a public key's bytes under that key's kid: the classic key-confusion attack.
pub fn hs256_keyed_with(public_key: &[u8], kid: &str, claims: &auth::Claims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(public_key),
    )
    .unwrap()
}
