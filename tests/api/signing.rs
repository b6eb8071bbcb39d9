//! The published JWKS verifies what the service signed: the stored JWS and the barcode token.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prescrypt_barcode::Token;
use reqwest::StatusCode;

use crate::helpers::*;

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn verify_jws(jwks: &JwkSet, jws: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(jws).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(
        jws,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("JWS verifies")
    .claims
}

fn verifying_key(jwks: &JwkSet, kid: &str) -> ed25519_dalek::VerifyingKey {
    let jwk = jwks.find(kid).expect("kid in JWKS");
    let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
        panic!("not an OKP key");
    };
    let bytes: [u8; 32] = data_encoding::BASE64URL_NOPAD
        .decode(okp.x.as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap()
}

#[tokio::test]
async fn jwks_verifies_the_stored_jws_and_token() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let set = jwks(&app).await;
    let content = verify_jws(&set, created["jws"].as_str().unwrap());
    assert_eq!(content["id"], created["id"]);
    assert_eq!(content["uuid"], created["uuid"]);
    assert_eq!(content["patient"]["nhs_number"], "9434765919");
    assert_eq!(content["items"][0]["code"], "39720311000001101");
    assert_eq!(content["prescriber"]["id"], "G1234567");

    // The payload is canonical JSON: re-canonicalising it changes nothing.
    let payload_b64 = created["jws"].as_str().unwrap().split('.').nth(1).unwrap();
    let payload = data_encoding::BASE64URL_NOPAD
        .decode(payload_b64.as_bytes())
        .unwrap();
    let reparsed: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(serde_jcs::to_vec(&reparsed).unwrap(), payload);

    let token = Token::parse(created["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        token.prescription_id().to_string(),
        created["id"].as_str().unwrap()
    );
    token
        .verify(&verifying_key(&set, token.key_id().as_str()))
        .expect("token verifies");
}

#[tokio::test]
async fn after_rotation_old_signatures_still_verify_and_still_release() {
    let old = spawn_app().await;
    let keys_dir = old.keys_dir();
    let created = old.create_default().await;
    let new_kid = prescrypt::keys::rotate(&keys_dir).unwrap();
    // A second app on the same database and keys: the restart after a rotation.
    let app = TestApp::builder()
        .database_url(old.database_url.clone())
        .keys_dir(&keys_dir)
        .spawn()
        .await;
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 2);
    verify_jws(&set, created["jws"].as_str().unwrap());
    let (_, fresh) = app
        .post(
            "/api/v1/prescriptions",
            &app.prescriber(),
            &new_prescription(),
        )
        .await;
    assert_eq!(
        Token::parse(fresh["token"].as_str().unwrap())
            .unwrap()
            .key_id(),
        new_kid
    );
    let (status, released) = app
        .release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{released}");
}
