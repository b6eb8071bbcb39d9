//! What the commands do: one [`Session`] per run holds the settings, the HTTP client and the key
//! cache; the CLI and the counter screen both go through it.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use prescrypt_barcode::{PrescriptionId, Token};
use prescrypt_contract::signed::{
    COUNTERSIGNATURE_TYP, PRESCRIBER_JWS_TYP, RECEIPT_JWS_TYP, issue_uuid, jws_digest, key_valid_at,
};
use prescrypt_contract::views::{History, ItemView, PrescriptionView};
use prescrypt_contract::{
    Countersignature, DispenseReceipt, SignedPrescription, Status, TreatmentType,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, Problem, plain_problem};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::jwks::{KeyCache, jws_header};
use crate::outbox::{Due, Entry, Kind, Outbox, State, SyncReport};
pub use crate::prescriber_keys::PrescriberSignature;
use crate::prescriber_keys::{self, PrescriberKeys};
use crate::private;
use crate::render::is_settled;
use crate::scan::{Accepted, ScanKind, ScannedCode, classify};

/// Most search pages `pharmacy find` fetches (of 50 prescriptions each).
pub const FIND_MAX_PAGES: usize = 20;

/// A released (or fetched) prescription whose signatures verified.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub prescription: PrescriptionView,
    /// Key id of the centre's signature.
    pub signed_by: String,
    /// Who signed the prescription; `None` for one issued without a prescriber signature (before
    /// prescriber keys, or by a development service).
    pub prescriber_signature: Option<PrescriberSignature>,
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
    /// The centre's keys.
    pub keys: KeyCache,
    pub prescriber_keys: PrescriberKeys,
}

impl Session {
    pub fn new(settings: Settings) -> Result<Self> {
        settings.ensure_data_dir()?;
        let api = Api::new(&settings.server, settings.token.clone(), settings.timeout)
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let keys = KeyCache::load(settings.jwks_path());
        let prescriber_keys = PrescriberKeys::load(settings.prescriber_keys_path());
        Ok(Self {
            settings,
            api,
            keys,
            prescriber_keys,
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
        let released = self.verify_for(prescription, &id)?;
        Ok(Released {
            scan: code,
            scanned: what,
            prescription_id: id.to_string(),
            released,
        })
    }

    /// [`verify`](Self::verify) for an answer about prescription `id` (scanned, asked for or
    /// dispensed): the centre's ID, its token's and the signed content's must all be `id`.
    pub fn verify_for(
        &mut self,
        prescription: PrescriptionView,
        id: &PrescriptionId,
    ) -> Result<Verified> {
        check_is_scanned(*id, &prescription)?;
        let verified = self.verify(prescription)?;
        // The signed content's ID is what is shown: it must be the same.
        check_is_scanned(*id, &verified.prescription)?;
        Ok(verified)
    }

    /// Verifies what the centre sent about a prescription (see [`verify_prescription`]) and keeps
    /// it as this pharmacy's last copy.
    pub fn verify(&mut self, prescription: PrescriptionView) -> Result<Verified> {
        let verified = verify_prescription(
            &mut self.keys,
            &mut self.prescriber_keys,
            Some(&self.api),
            prescription,
        )?;
        self.cache(&verified.prescription);
        Ok(verified)
    }

    /// `show ID --offline`: this pharmacy's last copy of the prescription, verified again from the
    /// cached key sets only, without contacting the centre.
    pub fn verify_cached(&mut self, id: &PrescriptionId) -> Result<Verified> {
        let path = self.cached_path(id);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Other(format!(
                    "this pharmacy has no copy of {id}: it is kept once the prescription has \
                     been released or shown here"
                )));
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let copy: PrescriptionView = serde_json::from_slice(&text)
            .map_err(|e| Error::BadSignature(format!("the local copy of {id} is damaged ({e})")))?;
        check_is_scanned(*id, &copy)?;
        let verified = verify_prescription(&mut self.keys, &mut self.prescriber_keys, None, copy)?;
        check_is_scanned(*id, &verified.prescription)?;
        Ok(verified)
    }

    fn cache(&self, prescription: &PrescriptionView) {
        let dir = self.settings.prescription_cache_dir();
        if private::create_dir(&dir).is_ok()
            && let Ok(text) = serde_json::to_vec_pretty(prescription)
        {
            let _ = private::write(&dir.join(format!("{}.json", prescription.id)), &text);
        }
    }

    /// The last copy of a prescription seen by this pharmacy (for working offline). A copy this
    /// version cannot read (written by an older client) is treated as missing.
    pub fn cached(&self, id: &PrescriptionId) -> Option<PrescriptionView> {
        read_json(&self.cached_path(id))
    }

    fn cached_path(&self, id: &PrescriptionId) -> std::path::PathBuf {
        self.settings
            .prescription_cache_dir()
            .join(format!("{id}.json"))
    }

    pub fn show(&mut self, id: &PrescriptionId) -> Result<Verified> {
        let prescription = self
            .api
            .prescription(&id.to_string())
            .map_err(|e| match e {
                ApiError::Unreachable(reason) => Error::Offline(format!(
                    "{reason}. `pharmacy show {id} --offline` verifies this pharmacy's last copy"
                )),
                other => other.into(),
            })?;
        self.verify_for(prescription, id)
    }

    /// Every prescription of the patient this pharmacy holds or held (optionally in one status),
    /// newest first: the tracker search, page after page, at most [`FIND_MAX_PAGES`] pages.
    pub fn find(&self, nhs_number: &str, status: Option<&str>) -> Result<Vec<PrescriptionView>> {
        let mut query = vec![("nhs_number", nhs_number)];
        if let Some(status) = status {
            query.push(("status", status));
        }
        self.search_pages(&query)
    }

    /// Prescriptions this pharmacy holds (With Dispenser) of which it has no copy: a nominated
    /// batch the centre released but whose answer never arrived. Empty when this pharmacy's ODS
    /// code is not configured (it cannot tell its own holdings from another's).
    pub fn stranded(&self) -> Result<Vec<PrescriptionView>> {
        let Some(ods) = self.settings.ods.clone() else {
            return Ok(Vec::new());
        };
        let held = self.search_pages(&[("status", Status::WithDispenser.code())])?;
        Ok(held
            .into_iter()
            .filter(|p| p.dispenser.as_deref() == Some(ods.as_str()))
            .filter(|p| {
                PrescriptionId::parse(&p.id.replace('-', ""))
                    .ok()
                    .is_none_or(|id| self.cached(&id).is_none())
            })
            .collect())
    }

    /// Every page of a tracker search (at most [`FIND_MAX_PAGES`]).
    fn search_pages(&self, base: &[(&str, &str)]) -> Result<Vec<PrescriptionView>> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..FIND_MAX_PAGES {
            let mut query = base.to_vec();
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor));
            }
            let page = self.api.search(&query)?;
            found.extend(page.prescriptions);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(found)
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

    /// The lines supplied so far (wholly or in part): what a claim claims. From the centre, or the
    /// last copy seen while it is unreachable.
    pub fn supplied_lines(&mut self, id: &PrescriptionId) -> Result<Vec<i32>> {
        let prescription = match self.api.prescription(&id.to_string()) {
            Ok(p) => p,
            Err(ApiError::Unreachable(reason)) => self.cached(id).ok_or_else(|| {
                Error::Offline(format!(
                    "{reason}; no local copy of {id} to know what was supplied"
                ))
            })?,
            Err(other) => return Err(other.into()),
        };
        Ok(prescription
            .items
            .iter()
            .filter(|item| !item.dispensed_quantity.is_zero())
            .map(|item| item.line)
            .collect())
    }

    /// The centre's signed receipt of what was handed over and claimed for `id`: verified with
    /// the centre's pinned keys, checked to be a receipt of this prescription, and kept
    /// (owner-only) as `receipts/ID.jws` in the data directory. Returns it and where it is kept.
    pub fn receipt(&mut self, id: &PrescriptionId) -> Result<(DispenseReceipt, PathBuf)> {
        let view = self.api.receipt(&id.to_string())?;
        let (header, receipt): (_, DispenseReceipt) =
            self.keys.verify_jws(&view.jws, Some(&self.api))?;
        if header.typ.as_deref() != Some(RECEIPT_JWS_TYP) {
            return Err(Error::BadSignature(format!(
                "not a dispense receipt (typ {:?})",
                header.typ
            )));
        }
        if PrescriptionId::parse(&receipt.id).ok() != Some(*id) {
            return Err(Error::BadSignature(format!(
                "the centre signed a receipt for {}, not {id}",
                crate::terminal::safe(&receipt.id)
            )));
        }
        let dir = self.settings.receipts_dir();
        private::create_dir(&dir)?;
        let path = dir.join(format!("{id}.jws"));
        private::write(&path, view.jws.as_bytes())?;
        Ok((receipt, path))
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

    /// What both key caches have to tell the pharmacist since the last call (once each).
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut notices = self.keys.take_notices();
        notices.extend(self.prescriber_keys.take_notices());
        notices
    }

    /// Refreshes stale key sets when the centre answers; offline this is a no-op.
    pub fn refresh_keys_if_stale(&mut self) {
        self.keys.refresh_if_stale(&self.api);
        self.prescriber_keys.refresh_if_stale(&self.api);
    }
}

/// A prescription's signatures verified ([`verify_signatures`]), and that they sign what is shown;
/// every signed field shown is then taken from the signed content. `api` is `None` offline.
pub fn verify_prescription(
    keys: &mut KeyCache,
    prescriber_keys: &mut PrescriberKeys,
    api: Option<&Api>,
    prescription: PrescriptionView,
) -> Result<Verified> {
    let (signed, signed_by, prescriber_signature) =
        verify_signatures(keys, prescriber_keys, api, &prescription)?;
    check_signed_content(&signed, &prescription)?;
    Ok(Verified {
        prescription: shown_from_signed(signed, prescription)?,
        signed_by,
        prescriber_signature,
    })
}

/// The verification rule at the counter (docs/signatures.md). The centre's `jws` verifies with
/// its pinned keys. Without a prescriber JWS (issued before prescriber keys) it signs the content
/// itself. With one, it is a countersignature of exactly that prescriber JWS (its digest), for
/// this prescription (ID, UUID), under the key the prescriber JWS names; that key, from the
/// cached prescriber key set, verifies the prescriber JWS, was not revoked at or before the
/// centre accepted it, and belongs to the prescriber the signed content names.
///
/// Returns the signed content (still to be compared with what is shown), the centre's key id and
/// the prescriber's signature. `api` is `None` when working offline.
pub fn verify_signatures(
    keys: &mut KeyCache,
    prescriber_keys: &mut PrescriberKeys,
    api: Option<&Api>,
    prescription: &PrescriptionView,
) -> Result<(SignedPrescription, String, Option<PrescriberSignature>)> {
    let bad = |why: String| Err(Error::BadSignature(why));
    let jws = prescription.jws.as_str();
    if jws.is_empty() {
        return bad("the centre sent no signature".to_owned());
    }
    let (header, payload) = keys.verify_jws::<serde_json::Value>(jws, api)?;
    let service_kid = header.kid.clone().unwrap_or_default();
    let Some(prescriber_jws) = prescription.prescriber_jws.as_deref() else {
        if header.typ.as_deref() == Some(COUNTERSIGNATURE_TYP) {
            return bad(
                "the centre countersigned a prescriber's signature that is missing".to_owned(),
            );
        }
        let signed = serde_json::from_value(payload)
            .map_err(|e| Error::BadSignature(format!("the signed content is malformed: {e}")))?;
        return Ok((signed, service_kid, None));
    };

    if header.typ.as_deref() != Some(COUNTERSIGNATURE_TYP) {
        return bad("the centre's signature is not a countersignature".to_owned());
    }
    let counter: Countersignature = serde_json::from_value(payload).map_err(|e| {
        Error::BadSignature(format!("the centre's countersignature is malformed: {e}"))
    })?;
    let same_id = PrescriptionId::parse(&counter.id)
        .ok()
        .zip(PrescriptionId::parse(&prescription.id).ok())
        .is_some_and(|(a, b)| a == b);
    if !same_id || counter.uuid != prescription.uuid {
        return bad("the centre's countersignature is for another prescription".to_owned());
    }
    if counter.prescriber_jws_sha256 != jws_digest(prescriber_jws) {
        return bad(
            "the prescriber's signature is not the one the centre accepted (digest differs)"
                .to_owned(),
        );
    }
    let (prescriber_header, kid) = jws_header(prescriber_jws)
        .map_err(|e| Error::BadSignature(format!("the prescriber's signature: {e}")))?;
    if prescriber_header.typ.as_deref() != Some(PRESCRIBER_JWS_TYP) {
        return bad("the prescriber's signature is not a prescription signature".to_owned());
    }
    if kid != counter.prescriber_kid {
        return bad(format!(
            "the prescriber's signature names key {kid}, the centre accepted it under key {}",
            counter.prescriber_kid
        ));
    }
    let accepted_at = DateTime::parse_from_rfc3339(&counter.accepted_at)
        .map_err(|_| {
            Error::BadSignature("the countersignature's acceptance time is malformed".to_owned())
        })?
        .to_utc();
    let key = prescriber_keys.key_for(&kid, accepted_at, api)?;
    let signed: SignedPrescription = prescriber_keys::verify_with(prescriber_jws, &key)?;
    if !key_valid_at(key.key.revoked_at, accepted_at) {
        return bad(format!(
            "the prescriber's key {kid} was revoked at {}, at or before the centre \
             accepted the signature at {}",
            key.key
                .revoked_at
                .map_or_else(String::new, |at| crate::render::time(&at)),
            crate::render::time(&accepted_at)
        ));
    }
    if key.key.sub != signed.prescriber.id || key.key.org != signed.prescriber.org {
        return bad(format!(
            "the prescriber's key {kid} belongs to {} ({}), not to the prescriber named, {} ({})",
            key.key.sub, key.key.org, signed.prescriber.id, signed.prescriber.org
        ));
    }
    Ok((
        signed,
        service_kid,
        Some(PrescriberSignature {
            sub: key.key.sub,
            org: key.key.org,
            kid,
            accepted_at,
        }),
    ))
}

/// What the key cache has to tell the pharmacist and nobody collected (the counter screen shows
/// them itself) goes to stderr when the command ends: once per command.
impl Drop for Session {
    fn drop(&mut self) {
        for notice in self.take_notices() {
            eprintln!("note: {}", crate::terminal::safe(&notice));
        }
    }
}

/// What the centre returned must be what was scanned (or asked for): the same prescription ID
/// and, when it returns the prescription's token, a token for that same ID.
fn check_is_scanned(wanted: PrescriptionId, returned: &PrescriptionView) -> Result<()> {
    let returned_id = PrescriptionId::parse(&returned.id).ok();
    if returned_id != Some(wanted) {
        return Err(Error::NotScanned(format!(
            "the centre returned prescription {} when {wanted} was asked for",
            crate::terminal::safe(&returned.id)
        )));
    }
    if !returned.token.is_empty() {
        let token_id = Token::parse_bytes(returned.token.as_bytes())
            .ok()
            .map(|token| token.prescription_id());
        if token_id != Some(wanted) {
            return Err(Error::NotScanned(format!(
                "the centre returned {wanted} with a token that is not that prescription's"
            )));
        }
    }
    Ok(())
}

/// The prescription as shown: every field the JWS signs is taken from the verified signed content
/// (the centre's copy was already checked equal to it), the rest (status, holder, progress) from
/// the centre's answer.
fn shown_from_signed(
    signed: SignedPrescription,
    answer: PrescriptionView,
) -> Result<PrescriptionView> {
    let bad = |what: &str| Error::BadSignature(format!("the signed content's {what} is malformed"));
    let id = PrescriptionId::parse(&signed.id).map_err(|_| bad("prescription ID"))?;
    let created_at = DateTime::parse_from_rfc3339(&signed.created_at)
        .map_err(|_| bad("creation time"))?
        .to_utc();
    let expires_at = DateTime::parse_from_rfc3339(&signed.expires_at)
        .map_err(|_| bad("expiry"))?
        .to_utc();
    let treatment_type = TreatmentType::parse(&signed.treatment_type)
        .ok_or_else(|| bad("treatment type"))?
        .coded();
    let items = signed
        .items
        .into_iter()
        .zip(answer.items)
        .map(|(s, progress)| ItemView {
            line: s.line,
            uuid: issue_uuid(&s.uuid, answer.issue_number),
            code: s.code,
            display: s.display,
            quantity: s.quantity,
            unit: s.unit,
            dosage: s.dosage,
            ..progress
        })
        .collect();
    Ok(PrescriptionView {
        id: id.to_string(),
        uuid: issue_uuid(&signed.uuid, answer.issue_number),
        treatment_type,
        issue_number: answer.issue_number,
        issue_count: signed.issue_count,
        prescriber: signed.prescriber,
        patient: signed.patient,
        items,
        nominated_pharmacy: signed.nominated_pharmacy,
        controlled_drug_schedule: signed.controlled_drug_schedule,
        created_at,
        expires_at,
        ..answer
    })
}

/// The JWS must sign the prescription that is shown: same ID, prescriber, patient, treatment,
/// issue, schedule, nomination, creation, expiry and items.
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
        || !signed_issue_covers(signed, shown.issue_number)
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
    let signed_creation = DateTime::parse_from_rfc3339(&signed.created_at).ok();
    if signed_creation.is_none_or(|at| at != shown.created_at) {
        return mismatch("creation time");
    }
    if signed.nominated_pharmacy != shown.nominated_pharmacy {
        return mismatch("nominated pharmacy");
    }
    if issue_uuid(&signed.uuid, shown.issue_number) != shown.uuid {
        return mismatch("UUID");
    }
    let same_items = signed.items.len() == shown.items.len()
        && signed.items.iter().zip(&shown.items).all(|(s, v)| {
            s.line == v.line
                && issue_uuid(&s.uuid, shown.issue_number) == v.uuid
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

/// Whether one signature covers issue `issue_number`: its own issue, or any issue of a
/// repeat-dispensing (0003) batch signed once as issue 1 (each later issue's UUIDs follow from
/// the signed ones, [`issue_uuid`]).
fn signed_issue_covers(signed: &SignedPrescription, issue_number: i32) -> bool {
    signed.issue_number == issue_number
        || (signed.treatment_type == TreatmentType::RepeatDispensing.code()
            && signed.issue_number == 1
            && (1..=signed.issue_count).contains(&issue_number))
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
    use std::io::{Read, Write};

    use chrono::Utc;
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;
    use crate::config::ScannerSource;
    use crate::scan::Source;
    use ed25519_dalek::SigningKey;
    use prescrypt_barcode::KeyId;
    use prescrypt_contract::quantity::Decimal;
    use prescrypt_contract::views::{
        ItemView, Patient, Prescriber, PrescriberJwk, PrescriberKey, PrescriberKeySet, PublicJwk,
    };
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
                supplies: Vec::new(),
            }],
            nominated_pharmacy: None,
            controlled_drug_schedule: None,
            dispenser: Some("FCG71".into()),
            created_at: at,
            expires_at: at,
            jws: String::new(),
            prescriber_jws: None,
            token: String::new(),
            claim: None,
            days_supply: None,
            start_date: None,
            ready_at: None,
            authorisation: None,
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
            days_supply: None,
            start_date: None,
            authorisation: None,
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

    #[test]
    fn a_later_repeat_dispensing_issue_is_checked_against_the_one_signature() {
        let mut batch = signed();
        batch.treatment_type = TreatmentType::RepeatDispensing.code().into();
        batch.issue_count = 3;
        let mut second = shown();
        second.treatment_type = TreatmentType::RepeatDispensing.coded();
        second.issue_count = 3;
        second.issue_number = 2;
        second.uuid = issue_uuid(&batch.uuid, 2);
        for (item, signed_item) in second.items.iter_mut().zip(&batch.items) {
            item.uuid = issue_uuid(&signed_item.uuid, 2);
        }
        check_signed_content(&batch, &second).unwrap();
        let shown_view = shown_from_signed(batch.clone(), second.clone()).unwrap();
        assert_eq!(shown_view.issue_number, 2);
        assert_eq!(shown_view.uuid, second.uuid);
        assert!(crate::render::prescription(&shown_view).contains("issue 2 of 3"));

        let mut signed_uuid = second.clone();
        signed_uuid.uuid = batch.uuid.clone();
        let mut beyond = second.clone();
        beyond.issue_number = 4;
        beyond.uuid = issue_uuid(&batch.uuid, 4);
        for answer in [signed_uuid, beyond] {
            assert!(matches!(
                check_signed_content(&batch, &answer),
                Err(Error::BadSignature(_))
            ));
        }
        // An acute prescription signed as issue 1 covers no other issue.
        let mut acute_second = second.clone();
        acute_second.treatment_type = TreatmentType::Acute.coded();
        let mut acute = batch;
        acute.treatment_type = TreatmentType::Acute.code().into();
        assert!(matches!(
            check_signed_content(&acute, &acute_second),
            Err(Error::BadSignature(_))
        ));
    }

    #[test]
    fn every_signed_field_shown_comes_from_the_signed_content() {
        // The centre's copy differs only in fields the old check left out: refused.
        let mut created_elsewhere = shown();
        created_elsewhere.created_at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let mut renominated = shown();
        renominated.nominated_pharmacy = Some("FX001".into());
        for answer in [created_elsewhere, renominated] {
            assert!(matches!(
                check_signed_content(&signed(), &answer),
                Err(Error::BadSignature(_))
            ));
        }
        // What is shown is built from the signed content: printing it prints the signed payload.
        let shown_view = shown_from_signed(signed(), shown()).unwrap();
        let printed = crate::render::prescription(&shown_view);
        let payload = signed();
        for signed_text in [
            "D7AC09-A99968-4BA59C",
            payload.patient.name.as_str(),
            payload.prescriber.id.as_str(),
            payload.items[0].display.as_str(),
            payload.items[0].dosage.as_str(),
            "Acute (0001)",
        ] {
            assert!(printed.contains(signed_text), "{signed_text} in {printed}");
        }
        assert_eq!(shown_view.patient, payload.patient);
        assert_eq!(shown_view.prescriber, payload.prescriber);
        assert_eq!(shown_view.items[0].quantity, payload.items[0].quantity);
        // Unsigned progress still comes from the centre's answer.
        assert_eq!(shown_view.status, shown().status);
        assert_eq!(shown_view.items[0].status, shown().items[0].status);
    }

    /// A one-request HTTP server on loopback answering 200 with `body`.
    fn centre_answering(body: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 8192];
            let _ = stream.read(&mut request);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        });
        address
    }

    fn jws(content: &SignedPrescription, key: &SigningKey) -> String {
        let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(key).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(KeyId::of(&key.verifying_key()).as_str().to_owned());
        jsonwebtoken::encode(
            &header,
            content,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }

    fn session_with_keys(dir: &tempfile::TempDir, server: String, key: &SigningKey) -> Session {
        session_with(dir, server, key, &[])
    }

    /// A session whose data dir pins the centre's `key` and caches the prescriber keys
    /// `prescribers` (none: no prescriber key set cached).
    fn session_with(
        dir: &tempfile::TempDir,
        server: String,
        key: &SigningKey,
        prescribers: &[PrescriberJwk],
    ) -> Session {
        let public = key.verifying_key();
        let set = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": KeyId::of(&public).as_str(),
            "x": data_encoding::BASE64URL_NOPAD.encode(public.as_bytes())}]});
        let settings = Settings {
            config_dir: dir.path().join("config"),
            server,
            token: None,
            ods: None,
            data_dir: dir.path().join("data"),
            scanner: ScannerSource::Wedge,
            timeout: Duration::from_secs(5),
        };
        settings.ensure_data_dir().unwrap();
        std::fs::write(settings.jwks_path(), set.to_string()).unwrap();
        if !prescribers.is_empty() {
            let set = PrescriberKeySet {
                keys: prescribers.to_vec(),
            };
            std::fs::write(
                settings.prescriber_keys_path(),
                serde_json::to_string(&set).unwrap(),
            )
            .unwrap();
        }
        Session::new(settings).unwrap()
    }

    #[test]
    fn a_genuine_prescription_other_than_the_scanned_one_is_refused() {
        let centre = SigningKey::from_bytes(&[9; 32]);
        let scanned = PrescriptionId::parse("83C40E-A23856-00123W").unwrap();
        // The centre answers with another prescription, correctly signed, and its own token.
        let mut answer = shown();
        answer.jws = jws(&signed(), &centre);
        answer.token = Token::sign(PrescriptionId::parse(&answer.id).unwrap(), &centre)
            .text()
            .as_str()
            .to_owned();
        let dir = tempfile::tempdir().unwrap();
        let body = serde_json::to_string(&answer).unwrap();
        let mut session = session_with_keys(&dir, centre_answering(body.clone()), &centre);
        let token = Token::sign(scanned, &centre);
        let error = session
            .release_scanned(ScannedCode {
                source: Source::Wedge,
                aim: None,
                text: token.text().as_str().to_owned(),
            })
            .unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit::BAD_SIGNATURE);
        assert!(
            error
                .to_string()
                .contains("83C40E-A23856-00123W was asked for"),
            "{error}"
        );

        // Scanning the bare ID of one prescription and getting another is refused the same way.
        let dir = tempfile::tempdir().unwrap();
        let mut session = session_with_keys(&dir, centre_answering(body), &centre);
        let error = session
            .release_scanned(ScannedCode {
                source: Source::Wedge,
                aim: None,
                text: scanned.to_string(),
            })
            .unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit::BAD_SIGNATURE);
    }

    #[test]
    fn show_refuses_another_prescription_than_the_one_asked_for() {
        let centre = SigningKey::from_bytes(&[9; 32]);
        let mut answer = shown();
        answer.jws = jws(&signed(), &centre);
        let dir = tempfile::tempdir().unwrap();
        let mut session = session_with_keys(
            &dir,
            centre_answering(serde_json::to_string(&answer).unwrap()),
            &centre,
        );
        let asked = PrescriptionId::parse("83C40E-A23856-00123W").unwrap();
        assert!(matches!(
            session.show(&asked),
            Err(Error::NotScanned(m)) if m.contains("83C40E-A23856-00123W")
        ));
    }

    #[test]
    fn a_token_returned_for_another_prescription_is_refused() {
        let centre = SigningKey::from_bytes(&[9; 32]);
        let mut answer = shown();
        answer.token = Token::sign(
            PrescriptionId::parse("83C40E-A23856-00123W").unwrap(),
            &centre,
        )
        .text()
        .as_str()
        .to_owned();
        let scanned = PrescriptionId::parse(&answer.id).unwrap();
        assert!(matches!(
            check_is_scanned(scanned, &answer),
            Err(Error::NotScanned(_))
        ));
        answer.token = "RX1-not-a-token".into();
        assert!(check_is_scanned(scanned, &answer).is_err());
    }

    /// When the centre accepted the prescriber signatures of these tests: before the key caches
    /// written by the tests, so verifying needs no refresh.
    const ACCEPTED: &str = "2026-11-20T09:30:00.123456Z";
    /// Nothing listens here: the centre is down.
    const CENTRE_DOWN: &str = "http://127.0.0.1:1";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn centre_key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    /// A prescriber's own Ed25519 key (the GP system's, never the service's).
    fn prescriber_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The key id the centre gives a prescriber key: its RFC 7638 thumbprint.
    fn kid_of(key: &SigningKey) -> String {
        PublicJwk::ed25519(key.verifying_key().as_bytes()).thumbprint()
    }

    /// `key` as the prescriber key set publishes it, owned by `sub` of `org`.
    fn enrolled(key: &SigningKey, sub: &str, org: &str, revoked_at: Option<&str>) -> PrescriberJwk {
        PrescriberJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: data_encoding::BASE64URL_NOPAD.encode(key.verifying_key().as_bytes()),
            alg: "EdDSA".into(),
            use_: "sig".into(),
            key: PrescriberKey {
                kid: kid_of(key),
                sub: sub.into(),
                org: org.into(),
                created_at: at("2026-01-05T08:00:00Z"),
                revoked_at: revoked_at.map(at),
            },
        }
    }

    /// A compact EdDSA JWS over `payload` with header `kid` and `typ`.
    fn sign_jws<T: Serialize>(payload: &T, key: &SigningKey, kid: &str, typ: &str) -> String {
        let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(key).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(
            &header,
            payload,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }

    /// The prescriber's JWS over `content`, as their system makes it.
    fn prescriber_jws(content: &SignedPrescription, prescriber: &SigningKey) -> String {
        sign_jws(content, prescriber, &kid_of(prescriber), PRESCRIBER_JWS_TYP)
    }

    /// What the centre sends for a prescription whose prescriber signed `prescriber_jws`: the
    /// centre's countersignature of it, accepted at `accepted_at`.
    fn countersigned(prescriber_jws: String, accepted_at: &str) -> PrescriptionView {
        let view = shown();
        let counter = Countersignature {
            id: view.id.clone(),
            uuid: view.uuid.clone(),
            prescriber_kid: jsonwebtoken::decode_header(&prescriber_jws)
                .unwrap()
                .kid
                .unwrap(),
            prescriber_jws_sha256: jws_digest(&prescriber_jws),
            accepted_at: accepted_at.into(),
        };
        let centre = centre_key();
        let centre_kid = KeyId::of(&centre.verifying_key()).as_str().to_owned();
        PrescriptionView {
            jws: sign_jws(&counter, &centre, &centre_kid, COUNTERSIGNATURE_TYP),
            prescriber_jws: Some(prescriber_jws),
            ..view
        }
    }

    /// The prescription of these tests, signed by `prescriber` and accepted at [`ACCEPTED`].
    fn signed_by(prescriber: &SigningKey) -> PrescriptionView {
        countersigned(prescriber_jws(&signed(), prescriber), ACCEPTED)
    }

    /// A counter whose caches hold the centre's key and `prescribers`, with the centre down.
    fn counter_offline(dir: &tempfile::TempDir, prescribers: &[PrescriberJwk]) -> Session {
        session_with(dir, CENTRE_DOWN.to_owned(), &centre_key(), prescribers)
    }

    /// Refused as a bad signature (exit 7), with a message containing `why`.
    fn assert_refused(result: Result<Verified>, why: &str) {
        match result {
            Err(error @ Error::BadSignature(_)) => {
                assert_eq!(error.exit_code(), crate::error::exit::BAD_SIGNATURE);
                assert!(error.to_string().contains(why), "{error}");
            }
            other => panic!("expected a refusal ({why}), got {other:?}"),
        }
    }

    #[test]
    fn a_prescriber_signed_prescription_shows_who_signed_it() {
        let gp = prescriber_key(21);
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", None)]);
        let verified = session.verify(signed_by(&gp)).unwrap();
        let signature = verified.prescriber_signature.clone().unwrap();
        assert_eq!(
            signature,
            PrescriberSignature {
                sub: "G1234567".into(),
                org: "A99968".into(),
                kid: kid_of(&gp),
                accepted_at: at(ACCEPTED),
            }
        );
        assert_eq!(
            crate::render::prescriber_signature(Some(&signature)),
            format!("Signed by G1234567 (A99968), key {}", kid_of(&gp))
        );
        assert_eq!(
            verified.signed_by,
            KeyId::of(&centre_key().verifying_key()).as_str()
        );
        // What is shown is the content the prescriber signed.
        assert_eq!(verified.prescription.patient, signed().patient);
    }

    #[test]
    fn a_prescription_issued_before_prescriber_keys_verifies_without_a_prescriber_signature() {
        let dir = tempfile::tempdir().unwrap();
        // No prescriber key cached, and the centre down: nothing is needed for legacy content.
        let mut session = counter_offline(&dir, &[]);
        let legacy = PrescriptionView {
            jws: jws(&signed(), &centre_key()),
            ..shown()
        };
        assert!(legacy.prescriber_jws.is_none());
        let verified = session.verify(legacy).unwrap();
        assert_eq!(verified.prescriber_signature, None);
        assert_eq!(
            crate::render::prescriber_signature(None),
            "No prescriber signature"
        );

        // A countersignature whose prescriber signature was removed is not legacy content.
        let mut stripped = signed_by(&prescriber_key(21));
        stripped.prescriber_jws = None;
        assert_refused(session.verify(stripped), "missing");
    }

    #[test]
    fn a_tampered_prescriber_payload_is_refused() {
        let gp = prescriber_key(21);
        let genuine = prescriber_jws(&signed(), &gp);
        let mut more = signed();
        more.items[0].quantity = Decimal::from(320);
        let mut parts: Vec<&str> = genuine.split('.').collect();
        let payload = data_encoding::BASE64URL_NOPAD.encode(&serde_json::to_vec(&more).unwrap());
        parts[1] = &payload;
        // Even countersigned by the centre as it is, the prescriber's signature does not cover it.
        let tampered = countersigned(parts.join("."), ACCEPTED);
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", None)]);
        assert_refused(session.verify(tampered), "does not verify with their key");
    }

    #[test]
    fn a_prescriber_signature_other_than_the_one_countersigned_is_refused() {
        let gp = prescriber_key(21);
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", None)]);
        // A genuine signature of the same prescriber over other content, put in place of the one
        // the centre accepted.
        let mut redosed = signed();
        redosed.items[0].dosage = "4 qds".into();
        let swapped = PrescriptionView {
            prescriber_jws: Some(prescriber_jws(&redosed, &gp)),
            ..signed_by(&gp)
        };
        assert_refused(session.verify(swapped), "digest differs");

        // The centre's countersignature of another prescription.
        let mut elsewhere = signed_by(&gp);
        elsewhere.uuid = "another".into();
        assert_refused(session.verify(elsewhere), "another prescription");

        // The centre's signature over the content itself, not a countersignature of the
        // prescriber's signature that comes with it.
        let uncountersigned = PrescriptionView {
            jws: jws(&signed(), &centre_key()),
            ..signed_by(&gp)
        };
        assert_refused(session.verify(uncountersigned), "not a countersignature");
    }

    #[test]
    fn a_key_revoked_at_or_before_acceptance_is_refused_and_after_it_accepted() {
        let gp = prescriber_key(21);
        for revoked in ["2026-11-20T09:30:00.123455Z", ACCEPTED] {
            let dir = tempfile::tempdir().unwrap();
            let mut session =
                counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", Some(revoked))]);
            assert_refused(session.verify(signed_by(&gp)), "was revoked at");
        }
        let dir = tempfile::tempdir().unwrap();
        let later = "2026-11-20T09:30:00.123457Z";
        let mut session =
            counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", Some(later))]);
        let verified = session.verify(signed_by(&gp)).unwrap();
        assert_eq!(verified.prescriber_signature.unwrap().kid, kid_of(&gp));
    }

    #[test]
    fn a_key_of_another_prescriber_is_refused() {
        let other = prescriber_key(22);
        for owner in [("G7654321", "A99968"), ("G1234567", "B12345")] {
            let dir = tempfile::tempdir().unwrap();
            let mut session = counter_offline(&dir, &[enrolled(&other, owner.0, owner.1, None)]);
            // Signed with a valid key, but not one of the prescriber the prescription names.
            assert_refused(
                session.verify(signed_by(&other)),
                "not to the prescriber named",
            );
        }
    }

    #[test]
    fn an_unknown_key_is_refused_when_the_centre_cannot_provide_it() {
        let gp = prescriber_key(21);
        let colleague = enrolled(&prescriber_key(23), "G7777777", "A99968", None);
        // The centre is down: only the cached set is known, without the key.
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, std::slice::from_ref(&colleague));
        assert_refused(session.verify(signed_by(&gp)), "does not know");

        // The centre answers with a set that does not have it either.
        let published = serde_json::to_string(&PrescriberKeySet {
            keys: vec![colleague.clone()],
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut session = session_with(
            &dir,
            centre_answering(published),
            &centre_key(),
            std::slice::from_ref(&colleague),
        );
        assert_refused(session.verify(signed_by(&gp)), "does not publish");

        // A key cached under a kid that is not its own thumbprint is not that key.
        let mut relabelled = enrolled(&prescriber_key(24), "G1234567", "A99968", None);
        relabelled.key.kid = kid_of(&gp);
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &[relabelled]);
        assert_refused(session.verify(signed_by(&gp)), "does not know");
    }

    #[test]
    fn a_signature_accepted_after_the_keys_were_fetched_makes_the_counter_ask_again() {
        let gp = prescriber_key(21);
        let accepted = (Utc::now() + chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let prescription = countersigned(prescriber_jws(&signed(), &gp), &accepted);
        let before_acceptance = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        // The centre now says the key was revoked before the acceptance; the cache did not know.
        let published = serde_json::to_string(&PrescriberKeySet {
            keys: vec![enrolled(
                &gp,
                "G1234567",
                "A99968",
                Some(&before_acceptance),
            )],
        })
        .unwrap();
        let cached = [enrolled(&gp, "G1234567", "A99968", None)];
        let dir = tempfile::tempdir().unwrap();
        let mut session = session_with(&dir, centre_answering(published), &centre_key(), &cached);
        assert_refused(session.verify(prescription.clone()), "was revoked at");

        // With the centre down, the cache is used as it is, and the pharmacist is told.
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &cached);
        let verified = session.verify(prescription).unwrap();
        assert!(verified.prescriber_signature.is_some());
        let notices = session.take_notices();
        assert!(
            notices.iter().any(|n| n.contains("would not be known")),
            "{notices:?}"
        );
    }

    #[test]
    fn the_last_copy_of_a_released_prescription_verifies_again_offline() {
        let gp = prescriber_key(21);
        let dir = tempfile::tempdir().unwrap();
        let mut session = counter_offline(&dir, &[enrolled(&gp, "G1234567", "A99968", None)]);
        let id = PrescriptionId::parse(&shown().id).unwrap();
        assert!(matches!(session.verify_cached(&id), Err(Error::Other(_))));
        let released = session.verify(signed_by(&gp)).unwrap();
        let again = session.verify_cached(&id).unwrap();
        assert_eq!(again.prescriber_signature, released.prescriber_signature);
        assert_eq!(again.prescription, released.prescription);
        assert!(session.take_notices().is_empty());

        // The copy altered on disk: its content, or the prescriber's signature in it.
        let path = session.cached_path(&id);
        let copy: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut renamed = copy.clone();
        renamed["patient"]["name"] = "John Smith".into();
        let mut resigned = copy.clone();
        let jws = copy["prescriber_jws"].as_str().unwrap();
        let flipped = if jws.ends_with('A') { 'B' } else { 'A' };
        resigned["prescriber_jws"] = format!("{}{flipped}", &jws[..jws.len() - 1]).into();
        for (altered, why) in [(renamed, "patient"), (resigned, "digest differs")] {
            std::fs::write(&path, serde_json::to_vec(&altered).unwrap()).unwrap();
            assert_refused(session.verify_cached(&id), why);
        }
        std::fs::write(&path, b"{not json").unwrap();
        assert_refused(session.verify_cached(&id), "damaged");
    }
}
