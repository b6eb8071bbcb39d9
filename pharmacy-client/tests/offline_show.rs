//! `pharmacy show ID --offline`, the real binary with the centre down: this pharmacy's last copy of
//! a prescriber-signed prescription verifies again from the cached key sets (exit 0, who signed
//! it), and a copy altered on disk is refused (exit 7).

use std::path::Path;
use std::process::{Command, Output};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use prescrypt_barcode::{KeyId, PrescriptionId};
use prescrypt_contract::quantity::Decimal;
use prescrypt_contract::signed::{COUNTERSIGNATURE_TYP, PRESCRIBER_JWS_TYP, jws_digest};
use prescrypt_contract::views::{
    ItemView, Patient, Prescriber, PrescriberJwk, PrescriberKey, PrescriberKeySet,
    PrescriptionView, PublicJwk,
};
use prescrypt_contract::{
    Countersignature, ItemStatus, SignedItem, SignedPrescription, Status, TreatmentType,
};
use prescrypt_pharmacy::config::{Overrides, Settings};
use prescrypt_pharmacy::session::Session;
use serde_json::{Value, json};

const ID: &str = "D7AC09-A99968-4BA59C";
const AT: &str = "2026-11-20T09:30:00.123456Z";
/// Nothing listens here: the centre is down.
const CENTRE_DOWN: &str = "http://127.0.0.1:1";

fn sign<T: serde::Serialize>(payload: &T, key: &SigningKey, kid: &str, typ: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    let der = key.to_pkcs8_der().expect("PKCS#8");
    let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    jsonwebtoken::encode(&header, payload, &key).expect("JWS")
}

/// A prescription signed by the prescriber `gp` and countersigned by the `centre`.
fn released(centre: &SigningKey, gp: &SigningKey, gp_kid: &str) -> PrescriptionView {
    let at = chrono::DateTime::parse_from_rfc3339(AT)
        .expect("time")
        .to_utc();
    let prescriber = Prescriber {
        id: "G1234567".into(),
        org: "A99968".into(),
    };
    let patient = Patient {
        nhs_number: "9434765919".into(),
        name: "Jane Smith".into(),
        birth_date: "1970-01-31".into(),
    };
    let content = SignedPrescription {
        id: ID.into(),
        uuid: "u".into(),
        prescriber: prescriber.clone(),
        patient: patient.clone(),
        items: vec![SignedItem {
            line: 1,
            uuid: "i".into(),
            code: "397".into(),
            display: "Paracetamol".into(),
            quantity: Decimal::from(32),
            unit: "tablet".into(),
            dosage: "2 qds".into(),
        }],
        treatment_type: TreatmentType::Acute.coded().code,
        issue_number: 1,
        issue_count: 1,
        nominated_pharmacy: None,
        controlled_drug_schedule: None,
        created_at: AT.into(),
        expires_at: AT.into(),
        days_supply: None,
        start_date: None,
        authorisation: None,
    };
    let prescriber_jws = sign(&content, gp, gp_kid, PRESCRIBER_JWS_TYP);
    let counter = Countersignature {
        id: ID.into(),
        uuid: "u".into(),
        prescriber_kid: gp_kid.into(),
        prescriber_jws_sha256: jws_digest(&prescriber_jws),
        accepted_at: AT.into(),
    };
    let centre_kid = KeyId::of(&centre.verifying_key()).as_str().to_owned();
    PrescriptionView {
        id: ID.into(),
        uuid: "u".into(),
        status: Status::WithDispenser.coded(),
        pending_cancellation: false,
        treatment_type: TreatmentType::Acute.coded(),
        issue_number: 1,
        issue_count: 1,
        prescriber,
        patient,
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
        jws: sign(&counter, centre, &centre_kid, COUNTERSIGNATURE_TYP),
        prescriber_jws: Some(prescriber_jws),
        token: String::new(),
        claim: None,
        days_supply: None,
        start_date: None,
        ready_at: None,
        authorisation: None,
    }
}

fn pharmacy(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pharmacy"))
        .args(["--config-dir", &data_dir.join("config").to_string_lossy()])
        .args(["--data-dir", &data_dir.to_string_lossy()])
        .args(["--server", CENTRE_DOWN])
        .args(args)
        .env_remove("PHARMACY_TOKEN")
        .env_remove("PHARMACY_TOKEN_FILE")
        .output()
        .expect("run pharmacy")
}

#[test]
fn the_last_copy_verifies_offline_and_an_altered_copy_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let settings = Settings::resolve(Overrides {
        config_dir: Some(root.path().join("config")),
        data_dir: Some(data_dir.clone()),
        server: Some(CENTRE_DOWN.into()),
        ..Overrides::default()
    })
    .unwrap();
    settings.ensure_data_dir().unwrap();
    // The key sets as the centre served them while it was up.
    let centre = SigningKey::from_bytes(&[9; 32]);
    let centre_public = centre.verifying_key();
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": KeyId::of(&centre_public).as_str(),
        "x": data_encoding::BASE64URL_NOPAD.encode(centre_public.as_bytes())}]});
    std::fs::write(settings.jwks_path(), jwks.to_string()).unwrap();
    let gp = SigningKey::from_bytes(&[21; 32]);
    let gp_jwk = PublicJwk::ed25519(gp.verifying_key().as_bytes());
    let gp_kid = gp_jwk.thumbprint();
    let set = PrescriberKeySet {
        keys: vec![PrescriberJwk {
            kty: gp_jwk.kty,
            crv: gp_jwk.crv,
            x: gp_jwk.x,
            alg: "EdDSA".into(),
            use_: "sig".into(),
            key: PrescriberKey {
                kid: gp_kid.clone(),
                sub: "G1234567".into(),
                org: "A99968".into(),
                created_at: chrono::Utc::now() - chrono::Duration::days(30),
                revoked_at: None,
            },
        }],
    };
    std::fs::write(
        settings.prescriber_keys_path(),
        serde_json::to_string(&set).unwrap(),
    )
    .unwrap();
    // Released while the centre was up: verified and kept as this pharmacy's last copy.
    Session::new(settings.clone())
        .unwrap()
        .verify(released(&centre, &gp, &gp_kid))
        .unwrap();

    let shown = pharmacy(&data_dir, &["show", ID, "--offline"]);
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{shown:?}");
    assert!(
        stdout.contains(&format!("Signed by G1234567 (A99968), key {gp_kid}")),
        "{stdout}"
    );
    assert!(stdout.contains("Jane Smith"), "{stdout}");

    let shown = pharmacy(&data_dir, &["--json", "show", ID, "--offline"]);
    let answer: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(answer["prescriber_signature"]["kid"], gp_kid.as_str());
    assert_eq!(answer["prescriber_signature"]["sub"], "G1234567");
    assert_eq!(answer["offline"], true);

    // The copy on disk altered: the patient, or one character of the prescriber's signature.
    let id = PrescriptionId::parse(ID).unwrap();
    let path = settings.prescription_cache_dir().join(format!("{id}.json"));
    let copy: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut renamed = copy.clone();
    renamed["patient"]["name"] = "John Smith".into();
    let mut resigned = copy.clone();
    let jws = copy["prescriber_jws"].as_str().unwrap();
    let last = if jws.ends_with('A') { 'B' } else { 'A' };
    resigned["prescriber_jws"] = format!("{}{last}", &jws[..jws.len() - 1]).into();
    for altered in [renamed, resigned] {
        std::fs::write(&path, serde_json::to_vec(&altered).unwrap()).unwrap();
        let shown = pharmacy(&data_dir, &["show", ID, "--offline"]);
        assert_eq!(shown.status.code(), Some(7), "{shown:?}");
        assert!(shown.stdout.is_empty(), "{shown:?}");
        assert!(
            String::from_utf8_lossy(&shown.stderr).contains("do not dispense"),
            "{shown:?}"
        );
    }

    // No copy of another prescription.
    let shown = pharmacy(&data_dir, &["show", "83C40E-A23856-00123W", "--offline"]);
    assert_eq!(shown.status.code(), Some(1), "{shown:?}");
}
