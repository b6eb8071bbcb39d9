//! The API's paths. The constants are route templates (`{id}`, `{format}`) as the service routes
//! and documents them; the functions fill them in for a client.
//!
//! `{id}` is a prescription ID in short form, any case, with or without hyphens.

/// Where the versioned API lives; every template below that starts with it is part of it.
pub const API_PREFIX: &str = "/api/v1";

pub const PRESCRIPTIONS: &str = "/api/v1/prescriptions";
/// Step one of a prescriber-signed issue: the content to sign.
pub const PREPARE: &str = "/api/v1/prescriptions/prepare";
pub const PRESCRIPTION: &str = "/api/v1/prescriptions/{id}";
pub const HISTORY: &str = "/api/v1/prescriptions/{id}/history";
pub const CANCEL: &str = "/api/v1/prescriptions/{id}/cancel";
pub const RETURN: &str = "/api/v1/prescriptions/{id}/return";
pub const DISPENSE: &str = "/api/v1/prescriptions/{id}/dispense";
pub const WITHDRAW: &str = "/api/v1/prescriptions/{id}/dispense/withdraw";
pub const CLAIM: &str = "/api/v1/prescriptions/{id}/claim";
pub const RECEIPT: &str = "/api/v1/prescriptions/{id}/receipt";
/// `{format}` is `pdf`, `png` or `svg`.
pub const TOKEN: &str = "/api/v1/prescriptions/{id}/token.{format}";
pub const RELEASE: &str = "/api/v1/release";
pub const RELEASE_NOMINATED: &str = "/api/v1/release/nominated";
pub const PRESCRIBER_KEYS: &str = "/api/v1/prescriber-keys";
pub const PRESCRIBER_KEY: &str = "/api/v1/prescriber-keys/{kid}";
/// Every prescriber key, revoked ones included, as a JWKS (the counters' offline cache).
pub const PRESCRIBER_KEYS_JWKS: &str = "/api/v1/prescriber-keys.json";
/// `serve --dev` only (404 otherwise, and not in the OpenAPI document): moves the service's
/// clock forward.
pub const DEV_CLOCK: &str = "/api/v1/dev/clock";
pub const OPENAPI: &str = "/api/v1/openapi.json";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

fn with_id(template: &str, id: &str) -> String {
    template.replace("{id}", id)
}

pub fn prescription(id: &str) -> String {
    with_id(PRESCRIPTION, id)
}

pub fn receipt(id: &str) -> String {
    with_id(RECEIPT, id)
}

pub fn history(id: &str) -> String {
    with_id(HISTORY, id)
}

pub fn cancel(id: &str) -> String {
    with_id(CANCEL, id)
}

pub fn return_(id: &str) -> String {
    with_id(RETURN, id)
}

pub fn dispense(id: &str) -> String {
    with_id(DISPENSE, id)
}

pub fn withdraw(id: &str) -> String {
    with_id(WITHDRAW, id)
}

pub fn claim(id: &str) -> String {
    with_id(CLAIM, id)
}

pub fn prescriber_key(kid: &str) -> String {
    PRESCRIBER_KEY.replace("{kid}", kid)
}

/// `format` is `pdf`, `png` or `svg`.
pub fn token(id: &str, format: &str) -> String {
    with_id(TOKEN, id).replace("{format}", format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_their_templates() {
        let id = "D7AC09-A99968-4BA59C";
        assert_eq!(prescription(id), format!("{PRESCRIPTIONS}/{id}"));
        assert_eq!(history(id), format!("{}/history", prescription(id)));
        assert_eq!(withdraw(id), format!("{}/withdraw", dispense(id)));
        assert_eq!(
            token(id, "pdf"),
            "/api/v1/prescriptions/D7AC09-A99968-4BA59C/token.pdf"
        );
        for path in [cancel(id), return_(id), claim(id), RELEASE.to_owned()] {
            assert!(path.starts_with(API_PREFIX), "{path}");
            assert!(!path.contains('{'), "{path}");
        }
    }
}
