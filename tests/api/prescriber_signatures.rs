//! Prescriber signatures (issue 12): enrolled keys, the two-step issue, the service's
//! countersignature, and every refusal — each leaving nothing stored.

use diesel::prelude::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prescrypt::audit::AuditEntry;
use prescrypt::auth::Role;
use prescrypt::store::schema::audit_log;
use prescrypt_contract::signed::{COUNTERSIGNATURE_TYP, PRESCRIBER_JWS_TYP, jws_digest};
use prescrypt_contract::{Countersignature, SignedPrescription};
use prescrypt_testkit::{PRESCRIBER, PrescriberSigner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const KEYS: &str = "/api/v1/prescriber-keys";
const KEY_SET: &str = "/api/v1/prescriber-keys.json";
const CREATE: &str = "/api/v1/prescriptions";

/// A prescriber of the same practice other than the kit's.
const COLLEAGUE: &str = "G7654321";
const OTHER_PRACTICE: &str = "B81001";

fn colleague(app: &TestApp) -> String {
    app.token(Role::Prescriber, PRESCRIBER_ORG, COLLEAGUE)
}

async fn delete(app: &TestApp, path: &str, bearer: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .delete(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    read(response).await
}

fn decoded<T: serde::de::DeserializeOwned>(part: &str) -> T {
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(part.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

fn no_claims_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation
}

/// The payload of a JWS that verifies with `key` (a stock JOSE library, as a third party would).
fn verified<T: serde::de::DeserializeOwned>(jws: &str, key: &DecodingKey) -> T {
    jsonwebtoken::decode::<T>(jws, key, &no_claims_validation())
        .expect("the JWS verifies")
        .claims
}

/// Everything one prepared prescription needs to be sent again.
async fn prepared(app: &TestApp, signer: &PrescriberSigner, bearer: &str) -> Value {
    let (status, prepared) = signer.prepare(app, bearer, &new_prescription()).await;
    assert_eq!(status, StatusCode::OK, "{prepared}");
    prepared
}

async fn signed_create(
    app: &TestApp,
    bearer: &str,
    prepared: &Value,
    signature: &str,
) -> (StatusCode, Value) {
    app.post(
        CREATE,
        bearer,
        &json!({"prepared_id": prepared["prepared_id"], "signature": signature}),
    )
    .await
}

fn signing_input(prepared: &Value) -> &str {
    prepared["signing_input"].as_str().unwrap()
}

/// The prepared prescription was not issued: its ID is unknown.
async fn assert_not_issued(app: &TestApp, prepared: &Value) {
    let id = prepared["prescription"]["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("{CREATE}/{id}"), &app.prescriber()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// The prescriber signs the prepared prescription correctly, and is refused with 422 `code`;
/// nothing is issued.
async fn assert_signed_create_refused(
    app: &TestApp,
    signer: &PrescriberSigner,
    prepared: &Value,
    code: &str,
) {
    let signature = signer.sign(signing_input(prepared));
    let (status, problem) = signed_create(app, &app.prescriber(), prepared, &signature).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code_of(&problem), code, "{problem}");
    assert_not_issued(app, prepared).await;
}

#[tokio::test]
async fn a_prescriber_enrols_a_public_key_bound_to_their_identity() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    let enrolled = signer.enrol(&app, &app.prescriber()).await;
    assert_eq!(enrolled["kid"], signer.kid());
    assert_eq!(enrolled["sub"], PRESCRIBER);
    assert_eq!(enrolled["org"], PRESCRIBER_ORG);
    assert!(enrolled["created_at"].is_string());
    assert_eq!(enrolled["revoked_at"], Value::Null);

    let (status, again) = app
        .post(KEYS, &app.prescriber(), &json!({"jwk": signer.jwk()}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same key again is the same record"
    );
    assert_eq!(again, enrolled);

    let (status, set) = app.get(KEY_SET, &app.pharmacist()).await;
    assert_eq!(status, StatusCode::OK);
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for (member, value) in [
        ("kty", json!("OKP")),
        ("crv", json!("Ed25519")),
        ("alg", json!("EdDSA")),
        ("use", json!("sig")),
        ("x", json!(signer.jwk().x)),
        ("kid", enrolled["kid"].clone()),
        ("sub", enrolled["sub"].clone()),
        ("org", enrolled["org"].clone()),
        ("created_at", enrolled["created_at"].clone()),
        ("revoked_at", Value::Null),
    ] {
        assert_eq!(keys[0][member], value, "{member}");
    }
    // A stock JOSE library reads the set as a JWKS.
    let jwks: JwkSet = serde_json::from_value(set).unwrap();
    assert!(jwks.find(&signer.kid()).is_some());
}

#[tokio::test]
async fn enrolment_refuses_private_keys_other_curves_and_other_roles() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    let mut with_private = serde_json::to_value(signer.jwk()).unwrap();
    with_private["d"] = json!("nhqQnHGsDqX_bnOYjmmTJsZZdXP_S8qjxprO1TTGHyw");
    let mut other_curve = serde_json::to_value(signer.jwk()).unwrap();
    other_curve["crv"] = json!("X25519");
    let mut short = serde_json::to_value(signer.jwk()).unwrap();
    short["x"] = json!("AAAA");
    for (jwk, field) in [
        (with_private, "jwk.d"),
        (other_curve, "jwk.crv"),
        (short, "jwk.x"),
    ] {
        let (status, problem) = app
            .post(KEYS, &app.prescriber(), &json!({"jwk": jwk}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
        assert!(
            !problem.to_string().contains("nhqQnHGs"),
            "a private key is never echoed: {problem}"
        );
    }
    let (status, _) = app
        .post(KEYS, &app.pharmacist(), &json!({"jwk": signer.jwk()}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    signer.enrol(&app, &app.prescriber()).await;
    let (status, problem) = app
        .post(KEYS, &colleague(&app), &json!({"jwk": signer.jwk()}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "prescriber-key-taken");
    let (_, set) = app.get(KEY_SET, &app.prescriber()).await;
    assert_eq!(
        set["keys"].as_array().unwrap().len(),
        1,
        "nothing else stored"
    );
}

#[tokio::test]
async fn a_signed_prescription_carries_the_prescriber_jws_and_the_service_countersignature() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;

    let input = signing_input(&prepared);
    let (header, payload) = input.split_once('.').unwrap();
    assert_eq!(
        decoded::<Value>(header),
        json!({"alg": "EdDSA", "kid": signer.kid(), "typ": PRESCRIBER_JWS_TYP})
    );
    let content: SignedPrescription = decoded(payload);
    assert_eq!(
        serde_json::to_value(&content).unwrap(),
        prepared["prescription"]
    );
    assert_eq!(content.prescriber.id, PRESCRIBER);
    assert_eq!(content.items.len(), 2);
    assert!(prepared["expires_at"].is_string());

    let signature = signer.sign(input);
    let (status, created) = signed_create(&app, &app.prescriber(), &prepared, &signature).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let prescriber_jws = created["prescriber_jws"].as_str().unwrap();
    assert_eq!(prescriber_jws, format!("{input}.{signature}"));
    assert_eq!(created["id"], content.id.as_str());
    assert_eq!(created["uuid"], content.uuid.as_str());

    // The prescriber's JWS verifies with their key from the published key set.
    let (_, set) = app.get(KEY_SET, &app.pharmacist()).await;
    let prescribers: JwkSet = serde_json::from_value(set).unwrap();
    let prescriber_key = DecodingKey::from_jwk(prescribers.find(&signer.kid()).unwrap()).unwrap();
    let signed: SignedPrescription = verified(prescriber_jws, &prescriber_key);
    assert_eq!(signed, content);

    // The service's countersignature names exactly that JWS.
    let service: JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jws = created["jws"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(jws).unwrap();
    assert_eq!(header.typ.as_deref(), Some(COUNTERSIGNATURE_TYP));
    let service_key =
        DecodingKey::from_jwk(service.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let countersignature: Countersignature = verified(jws, &service_key);
    assert_eq!(countersignature.id, content.id);
    assert_eq!(countersignature.uuid, content.uuid);
    assert_eq!(countersignature.prescriber_kid, signer.kid());
    assert_eq!(
        countersignature.prescriber_jws_sha256,
        jws_digest(prescriber_jws)
    );
    assert!(countersignature.accepted_at >= content.created_at);

    // As stored: a read gives the same signatures back.
    let (status, read_back) = app
        .get(&format!("{CREATE}/{}", content.id), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_back["prescriber_jws"], created["prescriber_jws"]);
    assert_eq!(read_back["jws"], created["jws"]);
}

#[tokio::test]
async fn sending_the_same_signature_again_answers_the_same_prescription_and_another_is_refused() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;
    let signature = signer.sign(signing_input(&prepared));
    let (status, first) = signed_create(&app, &app.prescriber(), &prepared, &signature).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = signed_create(&app, &app.prescriber(), &prepared, &signature).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first, "a retry is idempotent");

    // Ed25519 is deterministic: another signature over the same input needs another key, which
    // is refused as a reuse of the prepared ID, not as a second prescription.
    let other = PrescriberSigner::generate();
    let (status, problem) = signed_create(
        &app,
        &app.prescriber(),
        &prepared,
        &other.sign(signing_input(&prepared)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(code_of(&problem), "prepared-already-used");
}

#[tokio::test]
async fn a_signature_that_does_not_verify_is_refused_and_nothing_is_issued() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;
    let input = signing_input(&prepared);
    let stranger = PrescriberSigner::generate();
    let tampered_input = input.replacen('.', ".e", 1);
    for signature in [
        stranger.sign(input),
        signer.sign(&tampered_input),
        "not-base64!".to_owned(),
        signer.sign(input)[..40].to_owned(),
    ] {
        let (status, problem) = signed_create(&app, &app.prescriber(), &prepared, &signature).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(code_of(&problem), "invalid-signature");
        assert_eq!(problem["field"], "signature");
    }
    assert_not_issued(&app, &prepared).await;
    // The prepared ID is still good for the right signature.
    let (status, created) =
        signed_create(&app, &app.prescriber(), &prepared, &signer.sign(input)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn unknown_or_someone_elses_prepared_ids_are_refused_alike() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;
    let signature = signer.sign(signing_input(&prepared));
    let unknown = json!({"prepared_id": "00000000-0000-4000-8000-000000000000"});
    for (bearer, prepared) in [
        (app.prescriber(), &unknown),
        (colleague(&app), &prepared),
        (
            app.token(Role::Prescriber, OTHER_PRACTICE, PRESCRIBER),
            &prepared,
        ),
    ] {
        let (status, problem) = signed_create(&app, &bearer, prepared, &signature).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(code_of(&problem), "unknown-prepared-id");
        assert_eq!(problem["field"], "prepared_id");
    }
    let (status, _) = signed_create(&app, &app.pharmacist(), &prepared, &signature).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_not_issued(&app, &prepared).await;
}

#[tokio::test]
async fn an_expired_prepared_prescription_is_refused() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;
    // The default --prepared-ttl is ten minutes: the service's clock moves past it.
    app.advance_clock(10 * 60 + 1).await;
    assert_signed_create_refused(&app, &signer, &prepared, "prepared-expired").await;
}

#[tokio::test]
async fn only_the_callers_own_live_key_prepares() {
    let app = spawn_app().await;
    let mine = PrescriberSigner::generate();
    mine.enrol(&app, &app.prescriber()).await;
    let theirs = PrescriberSigner::generate();
    theirs.enrol(&app, &colleague(&app)).await;
    let never = PrescriberSigner::generate();
    for signer in [&theirs, &never] {
        let (status, problem) = signer
            .prepare(&app, &app.prescriber(), &new_prescription())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(code_of(&problem), "unknown-prescriber-key");
        assert_eq!(problem["field"], "kid");
    }
    // The same professional in another organisation is another identity.
    let (status, problem) = mine
        .prepare(
            &app,
            &app.token(Role::Prescriber, OTHER_PRACTICE, PRESCRIBER),
            &new_prescription(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code_of(&problem), "unknown-prescriber-key");

    let (status, _) = delete(&app, &format!("{KEYS}/{}", mine.kid()), &app.prescriber()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = mine
        .prepare(&app, &app.prescriber(), &new_prescription())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code_of(&problem), "prescriber-key-revoked");

    // A bad body names its field, whatever the key.
    let mut bad = new_prescription();
    bad["patient"]["nhs_number"] = json!("9434765918");
    let (status, problem) = theirs.prepare(&app, &colleague(&app), &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["field"], "patient.nhs_number");
}

#[tokio::test]
async fn a_key_revoked_between_prepare_and_create_signs_nothing() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let prepared = prepared(&app, &signer, &app.prescriber()).await;
    let (status, revoked) =
        delete(&app, &format!("{KEYS}/{}", signer.kid()), &app.prescriber()).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_signed_create_refused(&app, &signer, &prepared, "prescriber-key-revoked").await;
}

#[tokio::test]
async fn keys_are_revoked_by_their_owner_or_an_admin_of_their_organisation_only() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let path = format!("{KEYS}/{}", signer.kid());
    for bearer in [
        colleague(&app),
        app.pharmacist(),
        app.token(Role::Admin, OTHER_PRACTICE, "ADMIN1"),
    ] {
        let (status, problem) = delete(&app, &path, &bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    }
    let (_, set) = app.get(KEY_SET, &app.prescriber()).await;
    assert_eq!(set["keys"][0]["revoked_at"], Value::Null);

    let (status, revoked) = delete(
        &app,
        &path,
        &app.token(Role::Admin, PRESCRIBER_ORG, "ADMIN2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, again) = delete(&app, &path, &app.prescriber()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["revoked_at"], revoked["revoked_at"],
        "the first revocation stands"
    );
    let (_, set) = app.get(KEY_SET, &app.pharmacist()).await;
    assert_eq!(
        set["keys"][0]["revoked_at"], revoked["revoked_at"],
        "revoked keys stay listed"
    );
    let (status, problem) = app
        .post(KEYS, &app.prescriber(), &json!({"jwk": signer.jwk()}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a revoked key cannot come back: {problem}"
    );
}

#[tokio::test]
async fn enrolment_revocation_and_issue_are_audited() {
    let app = spawn_app().await;
    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let created = signer
        .issue(&app, &app.prescriber(), &new_prescription())
        .await;
    delete(&app, &format!("{KEYS}/{}", signer.kid()), &app.prescriber()).await;
    let mut conn = app.store.connection().unwrap();
    let entries: Vec<AuditEntry> = audit_log::table
        .select(AuditEntry::as_select())
        .load(&mut conn)
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str()))
        .collect();
    let kid = signer.kid();
    assert!(
        actions
            .iter()
            .any(|(a, d)| *a == "prescriber-key-enrolled" && d.contains(&kid)),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, d)| *a == "prescriber-key-revoked" && d.contains(&kid)),
        "{actions:?}"
    );
    let id = created["id"].as_str().unwrap();
    assert!(
        actions
            .iter()
            .any(|(a, d)| *a == "prepared" && d.contains(id)),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|(a, d)| *a == "created"
            && d.contains(id)
            && d.contains("\"prescriber_signed\":true")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn in_production_a_prescription_needs_its_prescribers_signature() {
    let app = TestApp::builder().production().spawn().await;
    let (status, problem) = app
        .post(CREATE, &app.prescriber(), &new_prescription())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(code_of(&problem), "prescriber-signature-required");
    let (status, problem) = app
        .post(CREATE, &app.prescriber(), &json!({"prepared_id": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("signature"),
        "{problem}"
    );

    let signer = PrescriberSigner::generate();
    signer.enrol(&app, &app.prescriber()).await;
    let created = signer
        .issue(&app, &app.prescriber(), &new_prescription())
        .await;
    assert!(created["prescriber_jws"].is_string());
}

#[tokio::test]
async fn the_dev_issuer_is_trusted_only_in_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let idp = prescrypt::keys::dev_issuer(&dir.path().join("idp")).unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_path,
        json!({"keys": [idp.jwk().unwrap()]}).to_string(),
    )
    .unwrap();
    let idp_flags = [
        "--jwks-file",
        jwks_path.to_str().unwrap(),
        "--jwks-issuer",
        "https://idp.example",
    ];
    let production = TestApp::builder()
        .production()
        .flags(idp_flags)
        .spawn()
        .await;
    let (status, _) = production.get(KEY_SET, &production.prescriber()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no --dev: the dev issuer is a stranger"
    );
    let dev = TestApp::builder().flags(idp_flags).spawn().await;
    let (status, _) = dev.get(KEY_SET, &dev.prescriber()).await;
    assert_eq!(status, StatusCode::OK, "--dev trusts it");
}

#[tokio::test]
async fn unsigned_prescriptions_of_a_dev_service_say_they_carry_no_prescriber_signature() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    assert_eq!(created["prescriber_jws"], Value::Null);
    assert!(created["jws"].is_string());
}
