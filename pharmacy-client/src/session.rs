//! What the commands do: one [`Session`] per run holds the settings, the HTTP client and the key
//! cache; the CLI and the counter screen both go through it.

use std::path::Path;

use chrono::DateTime;
use prescrypt_barcode::PrescriptionId;
use prescrypt_contract::SignedPrescription;
use prescrypt_contract::views::{History, PrescriptionView};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, Problem, plain_problem};
use crate::config::{Settings, write_atomically};
use crate::error::{Error, Result};
use crate::jwks::KeyCache;
use crate::outbox::{Due, Entry, Kind, Outbox, State, SyncReport};
use crate::render::is_settled;
use crate::scan::{Accepted, ScanKind, ScannedCode, classify};

/// A released (or fetched) prescription whose JWS verified.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub prescription: PrescriptionView,
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
                Error::Refused(Box::new(Problem {
                    detail: format!(
                        "a bare prescription ID is only released to the pharmacy the patient \
                         nominated, and {id} is not nominated to this pharmacy (or does not exist). \
                         Scan the token's 2-D code (Data Matrix) instead"
                    ),
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
    pub fn verify(&mut self, prescription: PrescriptionView) -> Result<Verified> {
        let jws = prescription.jws.as_str();
        if jws.is_empty() {
            return Err(Error::BadSignature(
                "the centre sent no signature".to_owned(),
            ));
        }
        let signed_by = jsonwebtoken::decode_header(jws)
            .ok()
            .and_then(|h| h.kid)
            .unwrap_or_default();
        let signed: SignedPrescription = self.keys.verify_jws(jws, Some(&self.api))?;
        check_signed_content(&signed, &prescription)?;
        self.cache(&prescription);
        Ok(Verified {
            prescription,
            signed_by,
        })
    }

    fn cache(&self, prescription: &PrescriptionView) {
        let dir = self.settings.prescription_cache_dir();
        if std::fs::create_dir_all(&dir).is_ok()
            && let Ok(text) = serde_json::to_vec_pretty(prescription)
        {
            let _ = write_atomically(&dir.join(format!("{}.json", prescription.id)), &text);
        }
    }

    /// The last copy of a prescription seen by this pharmacy (for working offline). A copy this
    /// version cannot read (written by an older client) is treated as missing.
    pub fn cached(&self, id: &PrescriptionId) -> Option<PrescriptionView> {
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

    pub fn history(&self, id: &PrescriptionId) -> Result<History> {
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
            .filter(|item| !is_settled(item))
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
            State::Failed => Err(Error::Refused(Box::new(
                entry
                    .response
                    .and_then(|v| serde_json::from_value(v).ok())
                    // An entry refused by an older client stored a different shape.
                    .unwrap_or_else(|| {
                        plain_problem(0, "refused", entry.last_error.as_deref().unwrap_or(""))
                    }),
            ))),
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

/// The JWS must sign the prescription that is shown: same ID, prescriber, patient, treatment,
/// issue, schedule, expiry and items.
fn check_signed_content(signed: &SignedPrescription, shown: &PrescriptionView) -> Result<()> {
    let mismatch = |what: &str| {
        Err(Error::BadSignature(format!(
            "the signed content's {what} differs from what the centre sent"
        )))
    };
    let same_id = PrescriptionId::parse(&signed.id)
        .ok()
        .zip(PrescriptionId::parse(&shown.id).ok())
        .is_some_and(|(a, b)| a == b);
    if !same_id {
        return mismatch("prescription ID");
    }
    if signed.patient != shown.patient {
        return mismatch("patient");
    }
    if signed.prescriber != shown.prescriber {
        return mismatch("prescriber");
    }
    if signed.treatment_type != shown.treatment_type.code
        || signed.issue_number != shown.issue_number
        || signed.issue_count != shown.issue_count
    {
        return mismatch("treatment type or issue");
    }
    if signed.controlled_drug_schedule != shown.controlled_drug_schedule {
        return mismatch("controlled drug schedule");
    }
    let signed_expiry = DateTime::parse_from_rfc3339(&signed.expires_at).ok();
    if signed_expiry.is_none_or(|at| at != shown.expires_at) {
        return mismatch("expiry");
    }
    let same_items = signed.items.len() == shown.items.len()
        && signed.items.iter().zip(&shown.items).all(|(s, v)| {
            s.line == v.line
                && s.code == v.code
                && s.display == v.display
                && s.quantity == v.quantity
                && s.unit == v.unit
                && s.dosage == v.dosage
        });
    if !same_items {
        return mismatch("items");
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
    use prescrypt_contract::quantity::Decimal;
    use prescrypt_contract::views::{ItemView, Patient, Prescriber};
    use prescrypt_contract::{ItemStatus, SignedItem, Status, TreatmentType};

    const EXPIRES: &str = "2027-05-25T10:00:00.123456Z";

    fn shown() -> PrescriptionView {
        let at = DateTime::parse_from_rfc3339(EXPIRES).unwrap().to_utc();
        PrescriptionView {
            id: "D7AC09-A99968-4BA59C".into(),
            uuid: "u".into(),
            status: Status::WithDispenser.coded(),
            pending_cancellation: false,
            treatment_type: TreatmentType::Acute.coded(),
            issue_number: 1,
            issue_count: 1,
            prescriber: Prescriber {
                id: "G1234567".into(),
                org: "A99968".into(),
            },
            patient: Patient {
                nhs_number: "9434765919".into(),
                name: "Jane Smith".into(),
                birth_date: "1970-01-31".into(),
            },
            items: vec![ItemView {
                line: 1,
                uuid: "i".into(),
                code: "397".into(),
                display: "Paracetamol".into(),
                quantity: Decimal::from(32),
                unit: "tablet".into(),
                dosage: "2 qds".into(),
                status: ItemStatus::WithDispenser.coded(),
                dispensed_quantity: Decimal::ZERO,
                not_dispensed_reason: None,
            }],
            nominated_pharmacy: None,
            controlled_drug_schedule: None,
            dispenser: Some("FCG71".into()),
            created_at: at,
            expires_at: at,
            jws: String::new(),
            token: String::new(),
        }
    }

    fn signed() -> SignedPrescription {
        let view = shown();
        SignedPrescription {
            id: "D7AC09A999684BA59C".into(),
            uuid: view.uuid,
            prescriber: view.prescriber,
            patient: view.patient,
            items: vec![SignedItem {
                line: 1,
                uuid: "i".into(),
                code: "397".into(),
                display: "Paracetamol".into(),
                quantity: Decimal::from(32),
                unit: "tablet".into(),
                dosage: "2 qds".into(),
            }],
            treatment_type: "0001".into(),
            issue_number: 1,
            issue_count: 1,
            nominated_pharmacy: None,
            controlled_drug_schedule: None,
            created_at: EXPIRES.into(),
            expires_at: EXPIRES.into(),
        }
    }

    #[test]
    fn the_signature_must_cover_what_is_shown() {
        check_signed_content(&signed(), &shown()).unwrap();
        let mut other_id = signed();
        other_id.id = "83C40E-A23856-00123W".into();
        let mut more = signed();
        more.items[0].quantity = Decimal::from(320);
        let mut renamed = signed();
        renamed.patient.name = "John Smith".into();
        let mut redosed = signed();
        redosed.items[0].dosage = "4 qds".into();
        let mut scheduled = signed();
        scheduled.controlled_drug_schedule = Some(2);
        let mut later = signed();
        later.expires_at = "2027-06-25T10:00:00.123456Z".into();
        let mut fewer = signed();
        fewer.items.clear();
        for tampered in [other_id, more, renamed, redosed, scheduled, later, fewer] {
            assert!(matches!(
                check_signed_content(&tampered, &shown()),
                Err(Error::BadSignature(_))
            ));
        }
    }
}
