//! A prescriber's signing key as a GP system holds it: enrol it, then issue prescriptions the
//! two-step way (prepare, sign the signing input, create).

use ed25519_dalek::{Signer, SigningKey};
use prescrypt_contract::routes;
use prescrypt_contract::views::PublicJwk;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::http::Endpoint;

/// An Ed25519 key of a prescriber's.
#[derive(Debug, Clone)]
pub struct PrescriberSigner {
    key: SigningKey,
}

impl Default for PrescriberSigner {
    fn default() -> Self {
        Self::generate()
    }
}

impl PrescriberSigner {
    pub fn generate() -> Self {
        Self {
            key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    pub fn jwk(&self) -> PublicJwk {
        PublicJwk::ed25519(self.key.verifying_key().as_bytes())
    }

    pub fn kid(&self) -> String {
        self.jwk().thumbprint()
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// BASE64URL of the Ed25519 signature of the signing input's ASCII bytes.
    pub fn sign(&self, signing_input: &str) -> String {
        data_encoding::BASE64URL_NOPAD.encode(&self.key.sign(signing_input.as_bytes()).to_bytes())
    }

    /// Enrols the key for the prescriber `bearer` names; panics unless 201.
    pub async fn enrol(&self, app: &Endpoint, bearer: &str) -> Value {
        let (status, body) = app
            .post(routes::PRESCRIBER_KEYS, bearer, &json!({"jwk": self.jwk()}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "enrol: {body}");
        body
    }

    /// `POST …/prepare` with this key's kid.
    pub async fn prepare(&self, app: &Endpoint, bearer: &str, new: &Value) -> (StatusCode, Value) {
        let mut body = new.clone();
        body["kid"] = self.kid().into();
        app.post(routes::PREPARE, bearer, &body).await
    }

    /// Prepares, signs and creates; panics unless both steps succeed. The created prescription.
    pub async fn issue(&self, app: &Endpoint, bearer: &str, new: &Value) -> Value {
        let (status, prepared) = self.prepare(app, bearer, new).await;
        assert_eq!(status, StatusCode::OK, "prepare: {prepared}");
        let signing_input = prepared["signing_input"].as_str().expect("signing_input");
        let (status, created) = app
            .post(
                routes::PRESCRIPTIONS,
                bearer,
                &json!({"prepared_id": prepared["prepared_id"], "signature": self.sign(signing_input)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create: {created}");
        created
    }
}
