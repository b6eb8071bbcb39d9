//! Bearer-token authentication: EdDSA JWTs from trusted issuers only.
//!
//! Trusted keys come from the identity provider's JWKS (a file or an HTTPS URL, re-read by
//! [`crate::issuer`] so a rotation or revocation takes effect without a restart; each key bound
//! to the configured issuer) and, with `serve --dev` only, the local development issuer key that
//! `prescrypt token` signs with. Only `alg: EdDSA` is accepted, so `none` and
//! HS256-with-a-public-key confusion are rejected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::error::AppError;
use crate::keys::NamedKey;

/// The issuer name of the local development issuer.
pub const DEV_ISSUER: &str = "prescrypt-dev";
/// The audience every token must name.
pub const AUDIENCE: &str = "prescrypt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Prescriber,
    Pharmacist,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prescriber => "prescriber",
            Self::Pharmacist => "pharmacist",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub org: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Not before (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Who is calling: professional id, role and organisation (ODS code, upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub role: Role,
    pub org: String,
}

impl Principal {
    pub fn require(&self, role: Role, action: &'static str) -> Result<(), AppError> {
        if self.role == role {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                role: self.role.as_str().to_owned(),
                action,
            })
        }
    }
}

struct TrustedKey {
    key: DecodingKey,
    issuer: String,
}

/// The most keys one JWKS may hold: an identity provider publishes a handful (current, next,
/// recently retired); the bound keeps a hostile document from growing the key table.
pub const MAX_JWKS_KEYS: usize = 64;

/// Verifies bearer tokens against the trusted keys.
pub struct Authenticator {
    /// The identity provider's keys by kid, replaced whole on every refresh.
    issuer_keys: RwLock<Arc<HashMap<String, TrustedKey>>>,
    /// The development issuer's key (`serve --dev` only), never replaced by a refresh.
    dev_key: Option<(String, Arc<TrustedKey>)>,
    max_lifetime_seconds: i64,
    /// Tokens already verified, by their exact text: a client sends the same token with every
    /// request, so its signature is checked once and only its expiry on every later use.
    verified: Mutex<HashMap<String, Verified>>,
}

/// A verified token's caller and the last second (`exp` + leeway) it may be used.
struct Verified {
    principal: Principal,
    usable_until: i64,
}

/// Most verified tokens remembered; when full the memory starts again (bounded, never stale:
/// an expired token is verified afresh and refused).
const VERIFIED_TOKENS: usize = 4096;

/// Seconds of clock difference allowed between the issuer and the service.
const LEEWAY_SECONDS: i64 = 30;

/// The longest a bearer token may live (`exp - iat`) unless configured otherwise.
pub const DEFAULT_MAX_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(12);

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer_kids", &self.issuer_kids())
            .field("dev_kid", &self.dev_key.as_ref().map(|(kid, _)| kid))
            .finish()
    }
}

impl Authenticator {
    pub fn new() -> Self {
        Self {
            issuer_keys: RwLock::new(Arc::new(HashMap::new())),
            dev_key: None,
            max_lifetime_seconds: DEFAULT_MAX_TOKEN_LIFETIME.num_seconds(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses tokens whose `exp - iat` is longer than `lifetime`.
    pub fn cap_lifetime(&mut self, lifetime: chrono::Duration) {
        self.max_lifetime_seconds = lifetime.num_seconds();
    }

    /// Trusts the development issuer's key.
    pub fn trust_dev_issuer(&mut self, key: &NamedKey) {
        self.dev_key = Some((
            key.kid.as_str().to_owned(),
            Arc::new(TrustedKey {
                key: key.decoding_key(),
                issuer: DEV_ISSUER.to_owned(),
            }),
        ));
    }

    /// Trusts exactly the Ed25519 keys of `jwks` for tokens from `issuer`, replacing the keys of
    /// the previous JWKS: a key the identity provider no longer publishes stops verifying. A
    /// document that cannot be used whole (a key without kid or not Ed25519, no keys, too many)
    /// changes nothing.
    pub fn replace_issuer_keys(&self, jwks: &JwkSet, issuer: &str) -> anyhow::Result<usize> {
        if jwks.keys.is_empty() {
            anyhow::bail!("the JWKS has no keys");
        }
        if jwks.keys.len() > MAX_JWKS_KEYS {
            anyhow::bail!(
                "the JWKS has {} keys, more than {MAX_JWKS_KEYS}",
                jwks.keys.len()
            );
        }
        let mut keys = HashMap::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                anyhow::bail!("a JWKS key without kid");
            };
            if !matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)
            ) {
                anyhow::bail!("JWKS key {kid} is not an Ed25519 (OKP) key");
            }
            let key = DecodingKey::from_jwk(jwk)?;
            keys.insert(
                kid,
                TrustedKey {
                    key,
                    issuer: issuer.to_owned(),
                },
            );
        }
        let count = keys.len();
        *self
            .issuer_keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        // A token verified under a key the provider no longer publishes must stop working now,
        // not when it expires: the remembered verifications go with the old keys.
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(count)
    }

    /// The kids of the identity provider's keys trusted now.
    pub fn issuer_kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.current_issuer_keys().keys().cloned().collect();
        kids.sort();
        kids
    }

    fn current_issuer_keys(&self) -> Arc<HashMap<String, TrustedKey>> {
        self.issuer_keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks a bearer token and returns the caller. A token verified before is only checked
    /// for expiry (the same text was signed by the same trusted key with the same claims).
    pub fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(known) = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .filter(|known| now <= known.usable_until)
        {
            return Ok(known.principal.clone());
        }
        let (principal, exp) = self.verify(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(
            token.to_owned(),
            Verified {
                principal: principal.clone(),
                usable_until: exp.saturating_add(LEEWAY_SECONDS),
            },
        );
        Ok(principal)
    }

    /// Verifies a token's signature and claims: the caller and the token's `exp`.
    fn verify(&self, token: &str) -> Result<(Principal, i64), AppError> {
        let unauthenticated = |why: &str| AppError::Unauthenticated(why.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthenticated("malformed token"))?;
        if has_critical_extensions(token) {
            // RFC 7515 §4.1.11: a critical extension the recipient does not understand makes the
            // JWS invalid, and this service understands none.
            return Err(unauthenticated("unsupported critical header (crit)"));
        }
        if header.alg != Algorithm::EdDSA {
            return Err(unauthenticated("only EdDSA tokens are accepted"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("token without kid"))?;
        let issuer_keys = self.current_issuer_keys();
        let trusted = match &self.dev_key {
            Some((dev_kid, dev)) if *dev_kid == kid => dev.as_ref(),
            _ => issuer_keys
                .get(&kid)
                .ok_or_else(|| unauthenticated("token signed by an unknown key"))?,
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&trusted.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        let data =
            jsonwebtoken::decode::<Claims>(token, &trusted.key, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm => "only EdDSA tokens are accepted",
                    _ => "invalid token",
                })
            })?;
        let claims = data.claims;
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS {
            return Err(unauthenticated("token issued in the future (iat)"));
        }
        if claims.exp - claims.iat > self.max_lifetime_seconds {
            return Err(unauthenticated(
                "token lifetime (exp - iat) longer than this service accepts",
            ));
        }
        let org = claims.org.trim().to_ascii_uppercase();
        if !is_ods_code(&org) {
            return Err(unauthenticated("org is not an ODS code"));
        }
        if org == SYSTEM_ORG {
            return Err(unauthenticated(
                "org SYSTEM is reserved for the service itself",
            ));
        }
        if !is_professional_id(&claims.sub) {
            return Err(unauthenticated(
                "sub must be 1 to 64 printable ASCII characters without spaces",
            ));
        }
        Ok((
            Principal {
                sub: claims.sub,
                role: claims.role,
                org,
            },
            claims.exp,
        ))
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl FromRequest for Principal {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// The caller of a request, from its bearer token and the `App`'s [`Authenticator`] (verified
/// once per request; the guards and the handler share it).
pub fn authenticate(req: &HttpRequest) -> Result<Principal, AppError> {
    if let Some(known) = req.extensions().get::<Principal>() {
        return Ok(known.clone());
    }
    let principal = verify_bearer(req)?;
    req.extensions_mut().insert(principal.clone());
    Ok(principal)
}

fn verify_bearer(req: &HttpRequest) -> Result<Principal, AppError> {
    let authenticator = req
        .app_data::<web::Data<Authenticator>>()
        .ok_or_else(|| AppError::Internal("no authenticator".into()))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthenticated("no Authorization header".into()))?
        .to_str()
        .map_err(|_| AppError::Unauthenticated("unreadable Authorization header".into()))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| AppError::Unauthenticated("expected a Bearer token".into()))?;
    authenticator.authenticate(token.trim())
}

/// The organisation of the service's own actions (expiry) in the audit log; no token may claim it.
pub const SYSTEM_ORG: &str = "SYSTEM";

/// The longest `sub` accepted: it is written into audit entries and histories.
pub const MAX_SUB_LEN: usize = 64;

/// A professional's identifier as a token's `sub`: 1 to [`MAX_SUB_LEN`] printable ASCII
/// characters, no spaces (SDS user IDs, GMC/GPhC numbers and IdP subject IDs all fit).
fn is_professional_id(sub: &str) -> bool {
    (1..=MAX_SUB_LEN).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether the token's protected header carries `crit`.
fn has_critical_extensions(token: &str) -> bool {
    token
        .split('.')
        .next()
        .and_then(|header| {
            data_encoding::BASE64URL_NOPAD
                .decode(header.as_bytes())
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .is_none_or(|header| header.get("crit").is_some())
}

/// An ODS organisation code: 1 to 6 letters or digits (the ID format pads it to 6).
pub fn is_ods_code(text: &str) -> bool {
    (1..=6).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Mints a bearer token with the development issuer key.
pub fn mint(
    issuer_key: &NamedKey,
    role: Role,
    org: &str,
    sub: &str,
    ttl: chrono::Duration,
) -> Result<String, AppError> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        org: org.to_ascii_uppercase(),
        iss: DEV_ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        iat: now,
        exp: now + ttl.num_seconds(),
        nbf: None,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(issuer_key.kid.as_str().to_owned());
    jsonwebtoken::encode(&header, &claims, &issuer_key.encoding)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Parses durations like `8h`, `30m`, `45s`, `2d`.
pub fn parse_ttl(text: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let value: i64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(value)),
        "m" => Ok(chrono::Duration::minutes(value)),
        "h" => Ok(chrono::Duration::hours(value)),
        "d" => Ok(chrono::Duration::days(value)),
        _ => Err(format!("a duration ends in s, m, h or d: {text}")),
    }
}
