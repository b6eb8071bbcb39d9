//! What the commands do: one [`Session`] per run holds the settings, the HTTP client and the key
//! cache; the CLI and the counter screen both go through it.

use std::path::Path;

use chrono::DateTime;
use prescrypt_barcode::{PrescriptionId, Token};
use prescrypt_contract::views::{History, ItemView, PrescriptionView};
use prescrypt_contract::{SignedPrescription, TreatmentType};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Api, ApiError, Problem, plain_problem};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::jwks::KeyCache;
use crate::outbox::{Due, Entry, Kind, Outbox, State, SyncReport};
use crate::private;
use crate::render::is_settled;
use crate::scan::{Accepted, ScanKind, ScannedCode, classify};

/// Most search pages `pharmacy find` fetches (of 50 prescriptions each).
pub const FIND_MAX_PAGES: usize = 20;

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
        let prescription = shown_from_signed(signed, prescription)?;
        self.cache(&prescription);
        Ok(Verified {
            prescription,
            signed_by,
        })
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
        let path = self
            .settings
            .prescription_cache_dir()
            .join(format!("{id}.json"));
        read_json(&path)
    }

    pub fn show(&mut self, id: &PrescriptionId) -> Result<Verified> {
        let prescription = self.api.prescription(&id.to_string())?;
        self.verify_for(prescription, id)
    }

    /// Every prescription of the patient this pharmacy holds or held (optionally in one status),
    /// newest first: the tracker search, page after page, at most [`FIND_MAX_PAGES`] pages.
    pub fn find(&self, nhs_number: &str, status: Option<&str>) -> Result<Vec<PrescriptionView>> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..FIND_MAX_PAGES {
            let mut query = vec![("nhs_number", nhs_number)];
            if let Some(status) = status {
                query.push(("status", status));
            }
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

/// What the key cache has to tell the pharmacist and nobody collected (the counter screen shows
/// them itself) goes to stderr when the command ends: once per command.
impl Drop for Session {
    fn drop(&mut self) {
        for notice in self.keys.take_notices() {
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
            uuid: s.uuid,
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
        uuid: signed.uuid,
        treatment_type,
        issue_number: signed.issue_number,
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
    let signed_creation = DateTime::parse_from_rfc3339(&signed.created_at).ok();
    if signed_creation.is_none_or(|at| at != shown.created_at) {
        return mismatch("creation time");
    }
    if signed.nominated_pharmacy != shown.nominated_pharmacy {
        return mismatch("nominated pharmacy");
    }
    if signed.uuid != shown.uuid {
        return mismatch("UUID");
    }
    let same_items = signed.items.len() == shown.items.len()
        && signed.items.iter().zip(&shown.items).all(|(s, v)| {
            s.line == v.line
                && s.uuid == v.uuid
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
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;
    use crate::config::ScannerSource;
    use crate::scan::Source;
    use ed25519_dalek::SigningKey;
    use prescrypt_barcode::KeyId;
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
            prescriber_jws: None,
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
}
