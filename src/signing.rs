//! Signing a prescription's clinical content: a compact JWS (EdDSA, `kid` = [`KeyId`]) over its
//! canonical JSON (RFC 8785, via `serde_jcs`), and the barcode token, issued at the same moment.

use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{Algorithm, Header};
use prescrypt_barcode::{PrescriptionId, Token};
use serde::Serialize;

use crate::error::AppError;
use crate::keys::NamedKey;

/// The canonical (RFC 8785) JSON text of `value`.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<String, AppError> {
    serde_jcs::to_string(value).map_err(|e| AppError::Internal(format!("canonical JSON: {e}")))
}

/// A compact JWS whose payload is the canonical JSON of `content`.
pub fn sign_jws<T: Serialize>(content: &T, key: &NamedKey) -> Result<String, AppError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.as_str().to_owned());
    let header_json = canonical_json(&header)?;
    let payload = canonical_json(content)?;
    let message = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(header_json.as_bytes()),
        BASE64URL_NOPAD.encode(payload.as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, Algorithm::EdDSA)
        .map_err(|e| AppError::Internal(format!("signing: {e}")))?;
    Ok(format!("{message}.{signature}"))
}

/// The token for the printed barcode.
pub fn issue_token(id: PrescriptionId, key: &NamedKey) -> Token {
    Token::sign(id, &key.signing)
}
