//! The prescribers' public keys (`GET /api/v1/prescriber-keys.json`), cached in the data directory
//! (`prescriber-keys.json`) so a prescriber's signature verifies with the centre down.
//!
//! Unlike the centre's own keys this set is not pinned: prescribers enrol and revoke keys every
//! day. What makes a cached key usable is checked at every use instead: its key id must be the
//! RFC 7638 thumbprint of the key itself, so no answer can put another key under the kid a
//! signature names; who owns it (`sub`, `org`) and when it was revoked are checked by the
//! verification rule ([`crate::session`]).
//!
//! Refreshed like the centre's keys ([`crate::jwks`]: when older than an hour, once for an unknown
//! key id) and also when a signature was accepted after the set was fetched, since a revocation
//! made in between would not be known. When the centre cannot be asked, the cache is used as it is
//! (and the pharmacist is told that a recent revocation may be missing).

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::DecodingKey;
use prescrypt_contract::views::{PrescriberJwk, PrescriberKeySet, PublicJwk};
use serde::de::DeserializeOwned;

use crate::api::{Api, ApiError};
use crate::error::{Error, Result};
use crate::jwks::{CachedSet, KeySource, key_refreshing_once, verify_eddsa};

#[derive(Debug)]
pub struct PrescriberKeys {
    file: CachedSet<PrescriberKeySet>,
    notices: Vec<String>,
}

impl PrescriberKeys {
    pub fn load(path: PathBuf) -> Self {
        Self {
            file: CachedSet::load(path),
            notices: Vec::new(),
        }
    }

    /// Every cached key, revoked ones included.
    pub fn keys(&self) -> &[PrescriberJwk] {
        self.file.set().map_or(&[], |set| &set.keys)
    }

    /// What the pharmacist should be told about these keys since the last call (once each).
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Fetches the centre's current set and caches it.
    pub fn refresh(&mut self, api: &Api) -> std::result::Result<(), ApiError> {
        let (set, body) = api.prescriber_keys()?;
        self.file
            .store(set, &body)
            .map_err(|e| ApiError::Unexpected(e.to_string()))
    }

    /// Refreshes a stale or missing cache when the centre answers; offline this is a no-op.
    pub fn refresh_if_stale(&mut self, api: &Api) {
        if self.file.is_stale() {
            let _ = self.refresh(api);
        }
    }

    /// When the cached set was fetched from the centre.
    fn fetched(&self) -> Option<DateTime<Utc>> {
        self.file.fetched_at().map(DateTime::<Utc>::from)
    }

    /// Whether the cached set may not know what happened up to `at` (a revocation).
    fn fetched_before(&self, at: DateTime<Utc>) -> bool {
        self.fetched().is_none_or(|fetched| fetched < at)
    }

    /// The key `kid` as this pharmacy knows it, for a signature the centre accepted at
    /// `accepted_at`. With `api` (`None` when working offline) the set is refreshed first when it
    /// is stale or older than the acceptance, and once more for an unknown kid.
    pub fn key_for(
        &mut self,
        kid: &str,
        accepted_at: DateTime<Utc>,
        api: Option<&Api>,
    ) -> Result<PrescriberJwk> {
        let refreshed = match api {
            Some(api) if self.file.is_stale() || self.fetched_before(accepted_at) => {
                Some(self.refresh(api))
            }
            _ => None,
        };
        let key = key_refreshing_once(self, kid, api, refreshed.clone()).map_err(|e| match e {
            Error::Rejected(reason) => Error::BadSignature(reason),
            other => other,
        })?;
        let not_asked = match refreshed {
            _ if !self.fetched_before(accepted_at) => None,
            None => Some("working offline".to_owned()),
            Some(Err(error)) => Some(error.to_string()),
            // Fetched just now: the clocks differ, nothing is missing.
            Some(Ok(())) => None,
        };
        if let Some(why) = not_asked {
            self.notices.push(format!(
                "the prescriber keys were fetched at {}, before this signature was accepted ({}), \
                 and the centre could not be asked ({why}): a revocation of key {kid} since then \
                 would not be known here",
                self.fetched().map_or("?".to_owned(), rfc3339),
                rfc3339(accepted_at),
            ));
        }
        Ok(key)
    }
}

impl KeySource for PrescriberKeys {
    type Key = PrescriberJwk;
    const KEY: &'static str = "prescriber key";
    const KEYS: &'static str = "prescriber keys";

    /// A cached key whose kid is its own thumbprint.
    fn cached_key(&self, kid: &str) -> Option<PrescriberJwk> {
        self.keys()
            .iter()
            .find(|key| key.key.kid == kid && public_jwk(key).thumbprint() == kid)
            .cloned()
    }

    fn refresh_from(&mut self, api: &Api) -> std::result::Result<(), ApiError> {
        self.refresh(api)
    }

    fn holds_no_key(&self) -> bool {
        self.keys().is_empty()
    }
}

fn public_jwk(key: &PrescriberJwk) -> PublicJwk {
    PublicJwk {
        kty: key.kty.clone(),
        crv: key.crv.clone(),
        x: key.x.clone(),
        d: None,
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Verifies a prescriber's compact JWS (EdDSA) with `key` and returns its payload, decoded as `T`.
pub fn verify_with<T: DeserializeOwned>(jws: &str, key: &PrescriberJwk) -> Result<T> {
    let bad = |why: String| {
        Error::BadSignature(format!(
            "the prescriber's signature does not verify with their key {}: {why}",
            key.key.kid
        ))
    };
    public_jwk(key).ed25519_bytes().map_err(bad)?;
    let decoding = DecodingKey::from_ed_components(&key.x).map_err(|e| bad(e.to_string()))?;
    verify_eddsa(jws, &decoding).map_err(|e| match e {
        Error::BadSignature(why) => bad(why),
        other => other,
    })
}

/// A prescriber's signature as verified at this counter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrescriberSignature {
    /// The prescriber: the key's owner, who is the prescriber the prescription names.
    pub sub: String,
    pub org: String,
    pub kid: String,
    /// When the centre accepted the signature (from its countersignature).
    pub accepted_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::time::Duration;

    use ed25519_dalek::SigningKey;
    use prescrypt_contract::views::PrescriberKey;

    use super::*;

    fn enrolled(key: &SigningKey) -> PrescriberJwk {
        let public = PublicJwk::ed25519(key.verifying_key().as_bytes());
        PrescriberJwk {
            kty: public.kty.clone(),
            crv: public.crv.clone(),
            x: public.x.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
            key: PrescriberKey {
                kid: public.thumbprint(),
                sub: "G1234567".into(),
                org: "A99968".into(),
                created_at: Utc::now(),
                revoked_at: None,
            },
        }
    }

    /// A centre on loopback answering one request with `body`; the request is sent back.
    fn centre_serving(body: String) -> (Api, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (requests, received) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 8192];
            let read = stream.read(&mut request).unwrap_or(0);
            let _ = requests.send(String::from_utf8_lossy(&request[..read]).into_owned());
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        });
        let api = Api::new(&address, Some("T0KEN".into()), Duration::from_secs(5)).unwrap();
        (api, received)
    }

    #[test]
    fn the_set_is_fetched_with_the_token_kept_private_and_used_offline_afterwards() {
        let key = enrolled(&SigningKey::from_bytes(&[21; 32]));
        let kid = key.key.kid.clone();
        let body = serde_json::to_string(&PrescriberKeySet {
            keys: vec![key.clone()],
        })
        .unwrap();
        let (api, requests) = centre_serving(body);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prescriber-keys.json");
        let mut keys = PrescriberKeys::load(path.clone());
        // Nothing cached and the centre down: wait for it (exit 5), not "forged".
        assert!(matches!(
            keys.key_for(&kid, Utc::now(), None),
            Err(Error::Offline(_))
        ));

        let accepted = Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(keys.key_for(&kid, accepted, Some(&api)).unwrap(), key);
        let request = requests.recv().unwrap();
        assert!(
            request.starts_with("GET /api/v1/prescriber-keys.json "),
            "{request}"
        );
        assert!(request.contains("Bearer T0KEN"), "{request}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, crate::private::FILE_MODE);
        }

        // Another run, the centre down: the cached set serves, with no notice (fetched after the
        // signature was accepted).
        let mut reloaded = PrescriberKeys::load(path);
        assert_eq!(reloaded.key_for(&kid, accepted, None).unwrap(), key);
        assert!(reloaded.take_notices().is_empty());
        let mut parts = kid.into_bytes();
        parts[0] = if parts[0] == b'A' { b'B' } else { b'A' };
        let unknown = String::from_utf8(parts).unwrap();
        assert!(matches!(
            reloaded.key_for(&unknown, accepted, None),
            Err(Error::BadSignature(m)) if m.contains("does not know")
        ));
    }
}
