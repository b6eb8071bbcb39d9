//! Signing a prescription's clinical content: compact JWS (EdDSA) over canonical JSON (RFC 8785,
//! via `serde_jcs`), and the barcode token, issued at the same moment.
//!
//! - The prescriber signs [`prescriber_signing_input`] (header `typ`
//!   [`PRESCRIBER_JWS_TYP`], their key's `kid`) with their own key, outside the service.
//! - The service then [`countersign`]s: a [`Countersignature`] naming the prescriber JWS by its
//!   digest, with the acceptance time.
//! - A prescription issued without a prescriber signature (a `--dev` service) carries the
//!   service's [`sign_jws`] over the content itself.

use chrono::NaiveDateTime;
use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{Algorithm, Header};
use prescrypt_barcode::{PrescriptionId, Token};
use prescrypt_contract::Countersignature;
use prescrypt_contract::signed::{COUNTERSIGNATURE_TYP, PRESCRIBER_JWS_TYP};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::keys::NamedKey;

/// The canonical (RFC 8785) JSON text of `value`.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, AppError> {
    serde_jcs::to_string(value).map_err(|e| AppError::Internal(format!("canonical JSON: {e}")))
}

/// A time as signed content carries it: RFC 3339, UTC, microseconds.
pub fn signed_time(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `BASE64URL(canonical header) "." BASE64URL(canonical content)`.
fn signing_input<H: Serialize, T: Serialize>(header: &H, content: &T) -> Result<String, AppError> {
    Ok(format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(canonical_json(header)?.as_bytes()),
        BASE64URL_NOPAD.encode(canonical_json(content)?.as_bytes())
    ))
}

fn sign_with(message: &str, key: &NamedKey) -> Result<String, AppError> {
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::EdDSA)
        .map_err(|e| AppError::Internal(format!("signing: {e}")))?;
    Ok(format!("{message}.{signature}"))
}

fn service_header(key: &NamedKey, typ: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.as_str().to_owned());
    if let Some(typ) = typ {
        header.typ = Some(typ.to_owned());
    }
    header
}

/// The service's compact JWS whose payload is the canonical JSON of `content`.
pub fn sign_jws<T: Serialize>(content: &T, key: &NamedKey) -> Result<String, AppError> {
    sign_with(&signing_input(&service_header(key, None), content)?, key)
}

/// The service's compact JWS of type `typ` over the canonical JSON of `content`.
pub fn sign_typed<T: Serialize>(
    content: &T,
    typ: &str,
    key: &NamedKey,
) -> Result<String, AppError> {
    sign_with(
        &signing_input(&service_header(key, Some(typ)), content)?,
        key,
    )
}

/// The service's JWS over what it accepted from a prescriber.
pub fn countersign(content: &Countersignature, key: &NamedKey) -> Result<String, AppError> {
    sign_with(
        &signing_input(&service_header(key, Some(COUNTERSIGNATURE_TYP)), content)?,
        key,
    )
}

/// What a prescriber signs with key `kid`: header `{"alg":"EdDSA","kid":…,"typ":…}`.
pub fn prescriber_signing_input<T: Serialize>(kid: &str, content: &T) -> Result<String, AppError> {
    let header = serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": PRESCRIBER_JWS_TYP});
    signing_input(&header, content)
}

/// The payload of a signing input the service made itself.
pub fn payload_of<T: DeserializeOwned>(signing_input: &str) -> Result<T, AppError> {
    let payload = signing_input
        .split_once('.')
        .and_then(|(_, payload)| BASE64URL_NOPAD.decode(payload.as_bytes()).ok())
        .ok_or_else(|| AppError::Internal("a stored signing input is malformed".into()))?;
    Ok(serde_json::from_slice(&payload)?)
}

/// The token for the printed barcode.
pub fn issue_token(id: PrescriptionId, key: &NamedKey) -> Token {
    Token::sign(id, &key.signing)
}
