//! The centre's signing keys, cached in the data directory so tokens verify with the centre down.
//!
//! A token or JWS naming a key id the cache does not hold triggers one refresh; still unknown → rejected.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ed25519_dalek::VerifyingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prescrypt_barcode::Token;
use serde::de::DeserializeOwned;

use crate::api::{Api, ApiError};
use crate::config::write_atomically;
use crate::error::{Error, Result};

/// A cache older than this is refreshed when the centre answers (failures are ignored).
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct KeyCache {
    path: PathBuf,
    set: Option<JwkSet>,
}

impl KeyCache {
    pub fn load(path: PathBuf) -> Self {
        let set = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Self { path, set }
    }

    pub fn is_empty(&self) -> bool {
        self.set.as_ref().is_none_or(|set| set.keys.is_empty())
    }

    pub fn is_stale(&self) -> bool {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_none_or(|age| age > STALE_AFTER)
    }

    /// Fetches the JWKS and replaces the cache file.
    pub fn refresh(&mut self, api: &Api) -> std::result::Result<(), ApiError> {
        let (set, body) = api.jwks()?;
        write_atomically(&self.path, body.as_bytes())
            .map_err(|e| ApiError::Unexpected(e.to_string()))?;
        self.set = Some(set);
        Ok(())
    }

    /// Refreshes a stale or missing cache when the centre answers; offline this is a no-op.
    pub fn refresh_if_stale(&mut self, api: &Api) {
        if self.is_empty() || self.is_stale() {
            let _ = self.refresh(api);
        }
    }

    fn find(&self, kid: &str) -> Option<Jwk> {
        self.set.as_ref()?.find(kid).cloned()
    }

    /// The key named `kid`, refreshing once from `api` if it is not cached.
    fn key(&mut self, kid: &str, api: Option<&Api>) -> Result<Jwk> {
        if let Some(jwk) = self.find(kid) {
            return Ok(jwk);
        }
        let refreshed = match api {
            Some(api) => self.refresh(api),
            None => Err(ApiError::Unreachable("offline".to_owned())),
        };
        match (self.find(kid), refreshed) {
            (Some(jwk), _) => Ok(jwk),
            (None, Ok(())) => Err(Error::Rejected(format!(
                "signed with key {kid}, which the centre does not publish: forged or revoked"
            ))),
            (None, Err(_)) if self.is_empty() => Err(Error::Offline(
                "no signing keys cached yet and the centre is unreachable to fetch them".to_owned(),
            )),
            (None, Err(error)) => Err(Error::Rejected(format!(
                "signed with key {kid}, which this pharmacy does not know ({error}): \
                 treat as forged until the centre confirms the key"
            ))),
        }
    }

    /// Checks a scanned token's signature offline (one key refresh if its key id is unknown).
    pub fn verify_token(&mut self, token: &Token, api: Option<&Api>) -> Result<()> {
        let jwk = self.key(token.key_id().as_str(), api)?;
        let key = ed25519_key(&jwk)?;
        token.verify(&key).map_err(|e| {
            Error::Rejected(format!(
                "{e} — forged or damaged token, do not dispense from it"
            ))
        })
    }

    /// Verifies a compact JWS (EdDSA) and returns its payload, decoded as `T`.
    pub fn verify_jws<T: DeserializeOwned>(&mut self, jws: &str, api: Option<&Api>) -> Result<T> {
        let header = jsonwebtoken::decode_header(jws)
            .map_err(|e| Error::BadSignature(format!("malformed JWS: {e}")))?;
        let kid = header
            .kid
            .ok_or_else(|| Error::BadSignature("the JWS names no key".to_owned()))?;
        let jwk = self.key(&kid, api).map_err(|e| match e {
            Error::Rejected(reason) => Error::BadSignature(reason),
            other => other,
        })?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| Error::BadSignature(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<T>(jws, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Error::BadSignature(e.to_string()))
    }
}

/// The Ed25519 public key of an OKP JWK.
fn ed25519_key(jwk: &Jwk) -> Result<VerifyingKey> {
    let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
        return Err(Error::Rejected(
            "the centre's key is not an Ed25519 key".to_owned(),
        ));
    };
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(params.x.trim_end_matches('=').as_bytes())
        .map_err(|e| Error::Other(format!("the centre's key is not base64url: {e}")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Other("the centre's key is not 32 bytes".to_owned()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| Error::Other(format!("the centre's key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use prescrypt_barcode::{KeyId, PrescriptionId};
    use serde_json::json;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A cache file as the centre publishes it, holding `keys`.
    fn cache_with(dir: &tempfile::TempDir, keys: &[SigningKey]) -> KeyCache {
        let set = json!({"keys": keys.iter().map(|k| {
            let public = k.verifying_key();
            json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                   "kid": KeyId::of(&public).as_str(),
                   "x": data_encoding::BASE64URL_NOPAD.encode(public.as_bytes())})
        }).collect::<Vec<_>>()});
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, set.to_string()).unwrap();
        KeyCache::load(path)
    }

    fn token(seed: u8) -> Token {
        Token::sign(
            PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap(),
            &key(seed),
        )
    }

    #[test]
    fn tokens_verify_offline_against_the_cached_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(&dir, &[key(1), key(2)]);
        cache.verify_token(&token(1), None).unwrap();
        cache.verify_token(&token(2), None).unwrap();

        // One changed signature character.
        let mut text = token(1).text().as_str().to_owned().into_bytes();
        text[60] = if text[60] == b'A' { b'B' } else { b'A' };
        let forged = Token::parse_bytes(&text).unwrap();
        assert!(matches!(
            cache.verify_token(&forged, None),
            Err(Error::Rejected(_))
        ));

        // A key the centre never published; no way to refresh → rejected, not accepted.
        assert!(matches!(
            cache.verify_token(&token(3), None),
            Err(Error::Rejected(_))
        ));
    }

    #[test]
    fn without_any_cached_key_the_scan_must_wait_for_the_centre() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = KeyCache::load(dir.path().join("jwks.json"));
        assert!(cache.is_empty());
        assert!(matches!(
            cache.verify_token(&token(1), None),
            Err(Error::Offline(_))
        ));
    }

    #[test]
    fn jws_verification_uses_the_kid_and_rejects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(&dir, &[key(1)]);
        let signer = key(1);
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(
            &ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&signer)
                .unwrap()
                .to_bytes(),
        );
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(KeyId::of(&signer.verifying_key()).as_str().to_owned());
        let payload = json!({"id": "D7AC09-A99968-4BA59C", "items": []});
        let jws = jsonwebtoken::encode(&header, &payload, &encoding).unwrap();
        assert_eq!(
            cache.verify_jws::<serde_json::Value>(&jws, None).unwrap(),
            payload
        );

        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        parts[1] = data_encoding::BASE64URL_NOPAD.encode(
            json!({"id": "83C40E-A23856-00123W", "items": []})
                .to_string()
                .as_bytes(),
        );
        let tampered = parts.join(".");
        assert!(matches!(
            cache.verify_jws::<serde_json::Value>(&tampered, None),
            Err(Error::BadSignature(_))
        ));
    }
}
