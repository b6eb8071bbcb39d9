//! What the commands do: one [`Session`] per run holds the settings, the HTTP client and the key
//! cache; the CLI and the counter screen both go through it.

use std::path::Path;

use prescrypt_barcode::PrescriptionId;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, ApiError};
use crate::config::{Settings, write_atomically};
use crate::error::{Error, Result};
use crate::jwks::KeyCache;
use crate::model::{Events, Prescription};
use crate::outbox::{Due, Entry, Kind, Outbox, State, SyncReport};
use crate::scan::{Accepted, ScanKind, ScannedCode, classify};

/// A released (or fetched) prescription whose JWS verified.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub prescription: Prescription,
    /// Key id that signed the prescription.
    pub signed_by: String,
}

/// The result of processing one scan.
#[derive(Debug, Clone, Serialize)]
pub struct Released {
    pub scan: ScannedCode,
    /// A token (signature verified offline) or a bare prescription ID.
    pub scanned: ScanKind,
    pub prescription_id: String,
    pub released: Verified,
}

#[derive(Debug)]
pub struct Session {
    pub settings: Settings,
    pub api: Api,
    pub keys: KeyCache,
}

impl Session {
    pub fn new(settings: Settings) -> Result<Self> {
        settings.ensure_data_dir()?;
        let api = Api::new(&settings.server, settings.token.clone(), settings.timeout)
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let keys = KeyCache::load(settings.jwks_path());
        Ok(Self {
            settings,
            api,
            keys,
        })
    }

    pub fn outbox(&self) -> Result<Outbox> {
        Outbox::open(&self.settings.outbox_path())
    }

    /// Checks a scanned code without any release call: a token's signature is verified against the
    /// cached keys (one refresh for an unknown key id).
    pub fn check_offline(&mut self, code: &ScannedCode) -> Result<Accepted> {
        let scanned = classify(code)?;
        if let Accepted::Token(token) = &scanned {
            self.keys.refresh_if_stale(&self.api);
            self.keys.verify_token(token, Some(&self.api))?;
        }
        Ok(scanned)
    }

    /// Scan → offline verification → release → JWS verification.
    pub fn release_scanned(&mut self, code: ScannedCode) -> Result<Released> {
        let scanned = self.check_offline(&code)?;
        let what = scanned.kind();
        let id = scanned.prescription_id();
        let prescription = self
            .api
            .release(&scanned.release_text())
            .map_err(|e| match (e, what) {
            (ApiError::Unreachable(reason), ScanKind::Token) => Error::Offline(format!(
                "{reason}. The token for {id} is genuine (verified offline), \
                 but the release must wait until the centre is back"
            )),
            (ApiError::Unreachable(reason), _) => Error::Offline(format!(
                "{reason}. The release of {id} must wait until the centre is back"
            )),
            (ApiError::Refused(problem), ScanKind::Id) if problem.status == 404 => {
                Error::Refused(Box::new(crate::api::Problem {
                    detail: Some(format!(
                        "a bare prescription ID is only released to the pharmacy the patient \
                         nominated, and {id} is not nominated to this pharmacy (or does not exist). \
                         Scan the token's 2-D code (Data Matrix) instead"
                    )),
                    ..*problem
                }))
            }
            (other, _) => other.into(),
        })?;
        let released = self.verify(prescription)?;
        Ok(Released {
            scan: code,
            scanned: what,
            prescription_id: id.to_string(),
            released,
        })
    }

    /// Verifies a prescription's JWS against the centre's keys and that it signs what is shown.
    pub fn verify(&mut self, prescription: Prescription) -> Result<Verified> {
        let jws = prescription
            .jws
            .as_deref()
            .ok_or_else(|| Error::BadSignature("the centre sent no signature".to_owned()))?;
        let signed_by = jsonwebtoken::decode_header(jws)
            .ok()
            .and_then(|h| h.kid)
            .unwrap_or_default();
        let payload = self.keys.verify_jws(jws, Some(&self.api))?;
        check_signed_content(&payload, &prescription)?;
        self.cache(&prescription);
        Ok(Verified {
            prescription,
            signed_by,
        })
    }

    fn cache(&self, prescription: &Prescription) {
        let dir = self.settings.prescription_cache_dir();
        if std::fs::create_dir_all(&dir).is_ok()
            && let Ok(text) = serde_json::to_vec_pretty(prescription)
        {
            let _ = write_atomically(&dir.join(format!("{}.json", prescription.id)), &text);
        }
    }

    /// The last copy of a prescription seen by this pharmacy (for working offline).
    pub fn cached(&self, id: &PrescriptionId) -> Option<Prescription> {
        let path = self
            .settings
            .prescription_cache_dir()
            .join(format!("{id}.json"));
        read_json(&path)
    }

    pub fn show(&mut self, id: &PrescriptionId) -> Result<Verified> {
        let prescription = self.api.prescription(&id.to_string())?;
        self.verify(prescription)
    }

    pub fn history(&self, id: &PrescriptionId) -> Result<Events> {
        Ok(self.api.history(&id.to_string())?)
    }

    /// Body of a dispense that completes every unsettled item (from the centre, else the local copy).
    pub fn all_complete_items(&mut self, id: &PrescriptionId) -> Result<Vec<Value>> {
        let prescription = match self.api.prescription(&id.to_string()) {
            Ok(p) => p,
            Err(ApiError::Unreachable(reason)) => self.cached(id).ok_or_else(|| {
                Error::Offline(format!(
                    "{reason}; no local copy of {id} to know its items: give them with --item"
                ))
            })?,
            Err(other) => return Err(other.into()),
        };
        let items: Vec<Value> = prescription
            .items
            .iter()
            .filter(|item| !item.is_settled())
            .map(|item| json!({"line": item.line, "outcome": "complete"}))
            .collect();
        if items.is_empty() {
            return Err(Error::Other(format!("{id}: every item is already settled")));
        }
        Ok(items)
    }

    /// Writes the request to the outbox, then sends it (after any earlier queued request for the
    /// same prescription). Returns the entry as it ended up.
    pub fn submit(&mut self, kind: Kind, id: &PrescriptionId, body: &Value) -> Result<Entry> {
        let mut outbox = self.outbox()?;
        let entry = outbox.enqueue(kind, id, body)?;
        outbox.sync(&self.api, Due::All, Some(&id.to_string()))?;
        let entry = outbox.get(entry.id)?;
        match entry.state {
            State::Sent => Ok(entry),
            State::Failed => Err(Error::Refused(
                entry
                    .response
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
            )),
            State::Queued => Err(Error::Queued(format!(
                "{} (outbox entry {}, attempt {})",
                entry
                    .last_error
                    .as_deref()
                    .unwrap_or("waiting behind an earlier request"),
                entry.id,
                entry.attempts
            ))),
        }
    }

    pub fn sync(&mut self, due: Due) -> Result<SyncReport> {
        self.outbox()?.sync(&self.api, due, None)
    }
}

/// The JWS must sign the prescription that is shown: same ID and, when the payload carries them,
/// the same patient and items.
fn check_signed_content(payload: &Value, prescription: &Prescription) -> Result<()> {
    let mismatch = |what: &str| {
        Err(Error::BadSignature(format!(
            "the signed content's {what} differs from what the centre sent"
        )))
    };
    let signed_id = payload
        .get("id")
        .or_else(|| payload.get("prescription_id"))
        .and_then(Value::as_str);
    match signed_id {
        Some(signed) => {
            let same = PrescriptionId::parse(signed)
                .ok()
                .zip(PrescriptionId::parse(&prescription.id).ok())
                .is_some_and(|(a, b)| a == b);
            if !same {
                return mismatch("prescription ID");
            }
        }
        None => return mismatch("prescription ID"),
    }
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(patient) = payload.get("patient") {
        let shown = &prescription.patient;
        if text(patient, "nhs_number").is_some_and(|n| n != shown.nhs_number)
            || text(patient, "name").is_some_and(|n| n != shown.name)
        {
            return mismatch("patient");
        }
    }
    if let Some(items) = payload.get("items").and_then(Value::as_array) {
        let same = items.len() == prescription.items.len()
            && items
                .iter()
                .zip(&prescription.items)
                .all(|(signed, shown)| {
                    let quantity = match (
                        signed.get("quantity").and_then(Value::as_f64),
                        shown.quantity.as_f64(),
                    ) {
                        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                        _ => false,
                    };
                    quantity
                        && text(signed, "code").is_none_or(|c| c == shown.code)
                        && text(signed, "display").is_none_or(|d| d == shown.display)
                        && text(signed, "dosage").is_none_or(|d| d == shown.dosage)
                        && text(signed, "unit").is_none_or(|u| u == shown.unit)
                });
        if !same {
            return mismatch("items");
        }
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Parses an ID given on the command line.
pub fn parse_id(text: &str) -> Result<PrescriptionId> {
    PrescriptionId::parse(text.trim())
        .map_err(|e| Error::Other(format!("`{text}` is not a valid prescription ID ({e:?})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Prescription {
        serde_json::from_value(json!({
            "id": "D7AC09-A99968-4BA59C",
            "patient": {"nhs_number": "9434765919", "name": "Jane Smith"},
            "items": [{"line": 1, "code": "397", "display": "Paracetamol", "quantity": 32,
                       "unit": "tablet", "dosage": "2 qds"}]
        }))
        .unwrap()
    }

    fn signed() -> Value {
        json!({
            "id": "D7AC09-A99968-4BA59C",
            "patient": {"nhs_number": "9434765919", "name": "Jane Smith"},
            "items": [{"line": 1, "code": "397", "display": "Paracetamol", "quantity": 32.0,
                       "unit": "tablet", "dosage": "2 qds"}]
        })
    }

    #[test]
    fn the_signature_must_cover_what_is_shown() {
        check_signed_content(&signed(), &shown()).unwrap();
        let mut other_id = signed();
        other_id["id"] = json!("83C40E-A23856-00123W");
        let mut more = signed();
        more["items"][0]["quantity"] = json!(320);
        let mut renamed = signed();
        renamed["patient"]["name"] = json!("John Smith");
        let mut redosed = signed();
        redosed["items"][0]["dosage"] = json!("4 qds");
        for tampered in [other_id, more, renamed, redosed, json!({})] {
            assert!(matches!(
                check_signed_content(&tampered, &shown()),
                Err(Error::BadSignature(_))
            ));
        }
    }
}
