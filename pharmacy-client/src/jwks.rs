//! The centre's signing keys, pinned in the data directory on first use, so tokens verify with
//! the centre down and a substituted key set is noticed.
//!
//! Trust on first use: the first key set fetched is pinned (`jwks.json`). A later set is adopted
//! without asking only when it keeps every pinned key unchanged: a key *added* for a rotation is
//! accepted (with a notice naming its fingerprint), because the centre publishes the next key
//! before it signs with it and a prompt at every routine rotation would only teach pharmacists to
//! confirm blindly. A set that removes or changes a pinned key is not adopted: it is kept aside
//! (`jwks.offered.json`), the keys in dispute are not used, and only `pharmacy keys trust`, which
//! shows every fingerprint, pins it.
//!
//! A token or JWS naming a key id that is not pinned triggers one refresh; still not pinned →
//! rejected.
//!
//! What both key caches share (this one and the prescribers' keys, [`crate::prescriber_keys`])
//! lives here too: a key set in a private file with its fetch time ([`CachedSet`]), the same
//! refresh policy ([`STALE_AFTER`]; one refresh for an unknown key id, [`KeySource`]) and the
//! EdDSA JWS check ([`verify_eddsa`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ed25519_dalek::VerifyingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prescrypt_barcode::Token;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::api::{Api, ApiError};
use crate::error::{Error, Result};
use crate::private;

/// A pinned set older than this is refreshed when the centre answers (failures are ignored).
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// File beside the pins holding a key set the centre offered that is not trusted yet.
const OFFERED_FILE: &str = "jwks.offered.json";

/// How a fetched key set differs from the pinned one, by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same key id, different key.
    pub changed: Vec<String>,
}

impl KeyChange {
    pub fn between(pinned: &JwkSet, offered: &JwkSet) -> Self {
        let kid = |jwk: &Jwk| jwk.common.key_id.clone().unwrap_or_default();
        let mut change = Self::default();
        for old in &pinned.keys {
            match offered.keys.iter().find(|new| kid(new) == kid(old)) {
                None => change.removed.push(kid(old)),
                Some(new) if key_material(new) != key_material(old) => {
                    change.changed.push(kid(old));
                }
                Some(_) => {}
            }
        }
        for new in &offered.keys {
            if !pinned.keys.iter().any(|old| kid(old) == kid(new)) {
                change.added.push(kid(new));
            }
        }
        change
    }

    /// Keeps every pinned key as it was (additions only).
    pub fn only_adds(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty()
    }

    fn disputes(&self, kid: &str) -> bool {
        self.removed.iter().chain(&self.changed).any(|k| k == kid)
    }
}

/// What a refresh did with the centre's key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Nothing was pinned: the set is now (trust on first use).
    FirstUse,
    /// The pinned keys are all still published, unchanged; `added` ones are now pinned too.
    Kept { added: Vec<String> },
    /// The set removes or changes pinned keys: not adopted (see `pharmacy keys trust`).
    Disputed(KeyChange),
}

/// A key set kept in a private file of the data directory (mode 0600, written whole through a
/// rename): the set last fetched from the centre, as served, and when it was fetched or last
/// confirmed (the file's modification time). Both key caches keep their set this way.
#[derive(Debug)]
pub struct CachedSet<S> {
    path: PathBuf,
    set: Option<S>,
}

/// A JSON file, or `None` if it is missing or unreadable (a cache is then simply empty).
fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

impl<S: DeserializeOwned> CachedSet<S> {
    pub fn load(path: PathBuf) -> Self {
        let set = read_json(&path);
        Self { path, set }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set(&self) -> Option<&S> {
        self.set.as_ref()
    }

    /// When the cached set was fetched from the centre (or last confirmed unchanged).
    pub fn fetched_at(&self) -> Option<SystemTime> {
        self.set.as_ref()?;
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    /// Missing, or fetched more than [`STALE_AFTER`] ago.
    pub fn is_stale(&self) -> bool {
        self.fetched_at()
            .and_then(|fetched| SystemTime::now().duration_since(fetched).ok())
            .is_none_or(|age| age > STALE_AFTER)
    }

    /// Keeps `set` (`body` is its JSON as served) as the cached one.
    pub fn store(&mut self, set: S, body: &str) -> Result<()> {
        private::write(&self.path, body.as_bytes())?;
        self.set = Some(set);
        Ok(())
    }

    /// Marks the cached set as just confirmed without changing it.
    pub fn touch(&self) -> Result<()> {
        private::write(&self.path, &std::fs::read(&self.path).unwrap_or_default())
    }
}

/// A cache of keys that signatures name by key id (`kid`): a key not cached makes it ask the
/// centre once.
pub trait KeySource {
    type Key;
    /// How a key is named in messages, e.g. "prescriber key".
    const KEY: &'static str;
    /// The cache as a whole in messages, e.g. "prescriber keys".
    const KEYS: &'static str;

    /// A cached key that may be used.
    fn cached_key(&self, kid: &str) -> Option<Self::Key>;
    fn refresh_from(&mut self, api: &Api) -> std::result::Result<(), ApiError>;
    fn holds_no_key(&self) -> bool;

    /// Why the key `kid` cannot be used, after `refresh` (the refresh made for it).
    fn unknown(&self, kid: &str, refresh: std::result::Result<(), ApiError>) -> Error {
        unknown_key::<Self>(self.holds_no_key(), kid, refresh)
    }
}

/// Why a key is not known: the centre does not publish it (forged); nothing cached and the centre
/// unreachable (wait for it); or the centre unreachable (treat as forged until it confirms).
fn unknown_key<S: KeySource + ?Sized>(
    holds_no_key: bool,
    kid: &str,
    refresh: std::result::Result<(), ApiError>,
) -> Error {
    let what = S::KEY;
    match refresh {
        Ok(()) => Error::Rejected(format!(
            "signed with {what} {kid}, which the centre does not publish: forged or revoked"
        )),
        Err(error) if holds_no_key => Error::Offline(format!(
            "no {} cached yet and the centre could not provide them ({error})",
            S::KEYS
        )),
        Err(error) => Error::Rejected(format!(
            "signed with {what} {kid}, which this pharmacy does not know ({error}): \
             treat as forged until the centre confirms the key"
        )),
    }
}

/// The key `kid` from `source`, asking the centre (`api`; `None` when working offline) once if it
/// is not cached, unless this verification already did (`refreshed`: how that went).
pub fn key_refreshing_once<S: KeySource>(
    source: &mut S,
    kid: &str,
    api: Option<&Api>,
    refreshed: Option<std::result::Result<(), ApiError>>,
) -> Result<S::Key> {
    if let Some(key) = source.cached_key(kid) {
        return Ok(key);
    }
    let refresh = match (refreshed, api) {
        (Some(refresh), _) => refresh,
        (None, Some(api)) => source.refresh_from(api),
        (None, None) => Err(ApiError::Unreachable("working offline".to_owned())),
    };
    match source.cached_key(kid) {
        Some(key) => Ok(key),
        None => Err(source.unknown(kid, refresh)),
    }
}

/// The header of a compact JWS, which must name its key.
pub fn jws_header(jws: &str) -> Result<(jsonwebtoken::Header, String)> {
    let header = jsonwebtoken::decode_header(jws)
        .map_err(|e| Error::BadSignature(format!("malformed JWS: {e}")))?;
    let kid = header
        .kid
        .clone()
        .ok_or_else(|| Error::BadSignature("the JWS names no key".to_owned()))?;
    Ok((header, kid))
}

/// Verifies a compact JWS made with EdDSA under `key` and returns its payload, decoded as `T`.
pub fn verify_eddsa<T: DeserializeOwned>(jws: &str, key: &DecodingKey) -> Result<T> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<T>(jws, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| Error::BadSignature(e.to_string()))
}

/// The centre's signing keys, pinned (see the module).
#[derive(Debug)]
pub struct KeyCache {
    file: CachedSet<JwkSet>,
    /// A fetched set that removes or changes pinned keys, with how.
    offered: Option<(JwkSet, KeyChange)>,
    notices: Vec<String>,
}

impl KeyCache {
    pub fn load(path: PathBuf) -> Self {
        let file = CachedSet::<JwkSet>::load(path);
        let offered = read_json(&file.path().with_file_name(OFFERED_FILE)).and_then(|offered| {
            let change = KeyChange::between(file.set()?, &offered);
            (!change.only_adds()).then_some((offered, change))
        });
        Self {
            file,
            offered,
            notices: Vec::new(),
        }
    }

    fn offered_path(&self) -> PathBuf {
        self.file.path().with_file_name(OFFERED_FILE)
    }

    pub fn is_empty(&self) -> bool {
        self.file.set().is_none_or(|set| set.keys.is_empty())
    }

    /// The pinned keys.
    pub fn pinned(&self) -> &[Jwk] {
        self.file.set().map_or(&[], |set| &set.keys)
    }

    /// A key set the centre offers that is not trusted, and how it differs from the pins.
    pub fn offered(&self) -> Option<&(JwkSet, KeyChange)> {
        self.offered.as_ref()
    }

    /// What the pharmacist should be told about the keys since the last call (once each).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    pub fn is_stale(&self) -> bool {
        self.file.is_stale()
    }

    /// Fetches the centre's key set and pins it if it keeps every pinned key (see the module).
    pub fn refresh(&mut self, api: &Api) -> std::result::Result<Refresh, ApiError> {
        let (set, body) = api.jwks()?;
        self.consider(set, &body)
            .map_err(|e| ApiError::Unexpected(e.to_string()))
    }

    /// Decides on a fetched key set (`body` is its JSON as served).
    fn consider(&mut self, set: JwkSet, body: &str) -> Result<Refresh> {
        let Some(pinned) = self.file.set().filter(|pinned| !pinned.keys.is_empty()) else {
            self.pin(set, body)?;
            self.notices.push(format!(
                "pinned the centre's signing keys on first use: {}",
                fingerprints(self.pinned())
            ));
            return Ok(Refresh::FirstUse);
        };
        let change = KeyChange::between(pinned, &set);
        if change.only_adds() {
            for kid in &change.added {
                if let Some(jwk) = set.find(kid) {
                    self.notices.push(format!(
                        "the centre added signing key {}; now pinned",
                        describe(jwk)
                    ));
                }
            }
            self.pin(set, body)?;
            return Ok(Refresh::Kept {
                added: change.added,
            });
        }
        private::write(&self.offered_path(), body.as_bytes())?;
        // Refreshed: ask again in an hour, not at every scan.
        self.file.touch()?;
        self.notices.push(format!(
            "the centre's signing keys changed ({}): not trusted. Confirm the fingerprints with \
             the centre, then run `pharmacy keys trust`",
            describe_change(&change)
        ));
        self.offered = Some((set, change.clone()));
        Ok(Refresh::Disputed(change))
    }

    fn pin(&mut self, set: JwkSet, body: &str) -> Result<()> {
        self.file.store(set, body)?;
        match std::fs::remove_file(self.offered_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(self.offered_path(), e));
            }
            _ => {}
        }
        self.offered = None;
        Ok(())
    }

    /// `pharmacy keys trust`: pins the centre's current key set whatever it changes, and says how
    /// it differs from what was pinned.
    pub fn trust(&mut self, api: &Api) -> Result<KeyChange> {
        let (set, body) = api.jwks()?;
        let change = KeyChange::between(self.file.set().unwrap_or(&JwkSet { keys: vec![] }), &set);
        self.pin(set, &body)?;
        Ok(change)
    }

    /// Refreshes a stale or missing pin when the centre answers; offline this is a no-op.
    pub fn refresh_if_stale(&mut self, api: &Api) {
        if self.is_empty() || self.is_stale() {
            let _ = self.refresh(api);
        }
    }

    /// The key named `kid`, refreshing once from `api` if it is not pinned.
    fn key(&mut self, kid: &str, api: Option<&Api>) -> Result<Jwk> {
        key_refreshing_once(self, kid, api, None)
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

    /// Verifies a compact JWS (EdDSA) of the centre and returns its header and payload, decoded
    /// as `T`.
    pub fn verify_jws<T: DeserializeOwned>(
        &mut self,
        jws: &str,
        api: Option<&Api>,
    ) -> Result<(jsonwebtoken::Header, T)> {
        let (header, kid) = jws_header(jws)?;
        let jwk = self.key(&kid, api).map_err(|e| match e {
            Error::Rejected(reason) => Error::BadSignature(reason),
            other => other,
        })?;
        let bad = |why: String| {
            Error::BadSignature(format!(
                "the centre's signature does not verify with its key {kid}: {why}"
            ))
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| bad(e.to_string()))?;
        let payload = verify_eddsa(jws, &key).map_err(|e| match e {
            Error::BadSignature(why) => bad(why),
            other => other,
        })?;
        Ok((header, payload))
    }
}

impl KeySource for KeyCache {
    type Key = Jwk;
    const KEY: &'static str = "the centre's key";
    const KEYS: &'static str = "signing keys of the centre";

    /// A pinned key not in dispute.
    fn cached_key(&self, kid: &str) -> Option<Jwk> {
        if self
            .offered
            .as_ref()
            .is_some_and(|(_, change)| change.disputes(kid))
        {
            return None;
        }
        self.file.set()?.find(kid).cloned()
    }

    fn refresh_from(&mut self, api: &Api) -> std::result::Result<(), ApiError> {
        self.refresh(api).map(|_| ())
    }

    fn holds_no_key(&self) -> bool {
        self.is_empty()
    }

    fn unknown(&self, kid: &str, refresh: std::result::Result<(), ApiError>) -> Error {
        match &self.offered {
            Some((_, change)) => Error::Rejected(format!(
                "signed with key {kid}, which is not trusted: the centre's signing keys changed \
                 ({}). Confirm the fingerprints with the centre, then run `pharmacy keys trust`",
                describe_change(change)
            )),
            None => unknown_key::<Self>(self.is_empty(), kid, refresh),
        }
    }
}

/// What identifies a key: its Ed25519 public key bytes, or for another kind of key its parameters.
fn key_material(jwk: &Jwk) -> Vec<u8> {
    match ed25519_key(jwk) {
        Ok(key) => key.as_bytes().to_vec(),
        Err(_) => serde_json::to_vec(&jwk.algorithm).unwrap_or_default(),
    }
}

/// SHA-256 of the key (its Ed25519 public key bytes), in hex groups of four, to read out over the
/// phone when confirming a key with the centre.
pub fn fingerprint(jwk: &Jwk) -> String {
    let digest = Sha256::digest(key_material(jwk));
    let hex = data_encoding::HEXLOWER.encode(&digest);
    hex.as_bytes()
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `kid (SHA-256 fingerprint)`.
pub fn describe(jwk: &Jwk) -> String {
    format!(
        "{} (SHA-256 {})",
        jwk.common.key_id.as_deref().unwrap_or("?"),
        fingerprint(jwk)
    )
}

fn fingerprints(keys: &[Jwk]) -> String {
    keys.iter().map(describe).collect::<Vec<_>>().join(", ")
}

fn describe_change(change: &KeyChange) -> String {
    let mut parts = Vec::new();
    for (what, kids) in [
        ("removed", &change.removed),
        ("changed", &change.changed),
        ("added", &change.added),
    ] {
        if !kids.is_empty() {
            parts.push(format!("{what} {}", kids.join(", ")));
        }
    }
    parts.join("; ")
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
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A key set as the centre publishes it, holding `keys`.
    fn published(keys: &[SigningKey]) -> String {
        json!({"keys": keys.iter().map(|k| {
            let public = k.verifying_key();
            json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                   "kid": KeyId::of(&public).as_str(),
                   "x": data_encoding::BASE64URL_NOPAD.encode(public.as_bytes())})
        }).collect::<Vec<_>>()})
        .to_string()
    }

    /// A cache file pinning `keys`.
    fn cache_with(dir: &tempfile::TempDir, keys: &[SigningKey]) -> KeyCache {
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, published(keys)).unwrap();
        KeyCache::load(path)
    }

    /// A centre on loopback serving `body` as its JWKS to every request.
    fn centre_publishing(body: String) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut request = [0_u8; 4096];
                let _ = stream.read(&mut request);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Api::new(&address, None, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn a_key_set_that_replaces_the_pinned_keys_is_not_accepted_until_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(&dir, &[key(1)]);
        // The centre (or whoever answers in its name) now publishes a different key.
        let centre = centre_publishing(published(&[key(2)]));
        let _ = cache.refresh(&centre);
        assert!(matches!(
            cache.verify_token(&token(2), Some(&centre)),
            Err(Error::Rejected(m)) if m.contains("pharmacy keys trust")
        ));
        // The key the centre stopped publishing is not used either while in dispute.
        assert!(cache.verify_token(&token(1), None).is_err());
        // The dispute survives a restart of the client.
        let mut reloaded = KeyCache::load(dir.path().join("jwks.json"));
        assert!(reloaded.verify_token(&token(2), None).is_err());
        assert!(reloaded.offered().is_some());

        // The explicit command pins the new set and says what changed.
        let change = reloaded.trust(&centre).unwrap();
        assert_eq!(change.added, [KeyId::of(&key(2).verifying_key()).as_str()]);
        assert_eq!(
            change.removed,
            [KeyId::of(&key(1).verifying_key()).as_str()]
        );
        reloaded.verify_token(&token(2), None).unwrap();
        assert!(reloaded.verify_token(&token(1), None).is_err());
        assert!(
            KeyCache::load(dir.path().join("jwks.json"))
                .offered()
                .is_none()
        );
    }

    #[test]
    fn a_key_changed_under_the_same_id_is_disputed() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(&dir, &[key(1)]);
        let mut set: serde_json::Value = serde_json::from_str(&published(&[key(1)])).unwrap();
        set["keys"][0]["x"] = data_encoding::BASE64URL_NOPAD
            .encode(key(3).verifying_key().as_bytes())
            .into();
        let set_text = set.to_string();
        let refresh = cache
            .consider(serde_json::from_str(&set_text).unwrap(), &set_text)
            .unwrap();
        let kid = KeyId::of(&key(1).verifying_key()).as_str().to_owned();
        assert_eq!(
            refresh,
            Refresh::Disputed(KeyChange {
                changed: vec![kid],
                ..KeyChange::default()
            })
        );
        assert!(cache.verify_token(&token(1), None).is_err());
    }

    #[test]
    fn a_key_added_by_rotation_is_pinned_with_its_fingerprint_shown() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = KeyCache::load(dir.path().join("jwks.json"));
        let centre = centre_publishing(published(&[key(1)]));
        assert_eq!(cache.refresh(&centre).unwrap(), Refresh::FirstUse);
        assert!(cache.take_notices()[0].contains("first use"));

        let rotated = centre_publishing(published(&[key(1), key(2)]));
        let added = KeyId::of(&key(2).verifying_key()).as_str().to_owned();
        assert_eq!(
            cache.refresh(&rotated).unwrap(),
            Refresh::Kept {
                added: vec![added.clone()]
            }
        );
        let notices = cache.take_notices();
        let fingerprint = fingerprint(&cache.pinned()[1]);
        assert_eq!(fingerprint.len(), 64 + 15);
        assert!(notices[0].contains(&added) && notices[0].contains(&fingerprint));
        cache.verify_token(&token(1), None).unwrap();
        cache.verify_token(&token(2), None).unwrap();
        assert!(cache.take_notices().is_empty());
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
            cache.verify_jws::<serde_json::Value>(&jws, None).unwrap().1,
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
