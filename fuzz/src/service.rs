//! Checks for the central service's JSON request bodies: what `actix-web`'s `Json` extractor
//! does (serde_json into the public `prescrypt::contract::views` types), then what the handlers do with a
//! body before any database access — validation, the idempotency fingerprint's canonical JSON,
//! the path ID parser and the reason code tables.

use prescrypt::contract::views::{
    CancelRequest, DispenseRequest, NewPrescription, ReleaseRequest, ReturnRequest,
};
use prescrypt::domain::{CancelReason, NotDispensedReason, ReturnReason};
use prescrypt::prescriptions::{parse_id, validate_new};
use prescrypt::signing::canonical_json;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Any bytes as each request body: parsing never panics; an accepted body has a canonical
/// JSON form (the idempotency fingerprint) that parses back to the same body; validation and
/// the code tables never panic.
pub fn json_bodies(data: &[u8]) {
    if let Some(body) = accepted::<NewPrescription>(data) {
        let _ = validate_new(&body, prescrypt::clock::Clock::default().today());
    }
    if let Some(body) = accepted::<ReleaseRequest>(data) {
        let _ = parse_id(&body.token);
    }
    if let Some(body) = accepted::<ReturnRequest>(data) {
        let _ = ReturnReason::parse(&body.reason);
    }
    if let Some(body) = accepted::<CancelRequest>(data) {
        let _ = body.reason.as_deref().map(CancelReason::parse);
    }
    if let Some(body) = accepted::<DispenseRequest>(data) {
        for line in &body.items {
            let _ = line.reason.as_deref().map(NotDispensedReason::parse);
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = parse_id(text);
    }
}

fn accepted<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let body: T = serde_json::from_slice(data).ok()?;
    let canonical = canonical_json(&body).expect("an accepted body has a canonical form");
    let again: T = serde_json::from_str(&canonical).expect("the canonical form parses back");
    assert_eq!(
        serde_json::to_value(&again).expect("serialises"),
        serde_json::to_value(&body).expect("serialises"),
        "canonical JSON changed the body: {canonical}"
    );
    Some(body)
}
