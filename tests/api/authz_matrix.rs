//! The authorisation matrix (issue 7): every endpoint of the service × every kind of caller, each
//! cell the expected HTTP status. Besides the status, every cell checks that
//! - an error is `application/problem+json` with the code that status stands for;
//! - a caller who may not see the prescription finds none of its data in the answer (patient,
//!   items, ids, token, signature, the organisations and professionals involved);
//! - "not yours" answers byte-for-byte like "does not exist" (same status, headers and body as
//!   the same request naming a valid ID nobody issued), so existence never leaks;
//! - anything but a successful mutation changed nothing (the owner's view and history before and
//!   after are equal).
//!
//! Each cell runs on a fresh prescription in the state its row names, so one cell's success
//! cannot change the next cell's outcome. The forged-token columns try every real identity (and
//! the HS256 column both public keys an attacker can know): all of them must be refused.

use prescrypt::auth::{AUDIENCE, DEV_ISSUER, Role};
use prescrypt::keys::KeyRing;
use prescrypt_barcode::{NhsNumber, PrescriptionId, Token};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, alg_none, claims_as, hs256_keyed_with, signed_by_dev_issuer, spawn_app,
};
use prescrypt_testkit::PrescriberSigner;

// The matrix's own organisations and professionals (not the shared fixtures' ones), so that
// examples in public documents such as the OpenAPI schema are never mistaken for leaks.
const ORG_A: &str = "AZ7001";
const PRESCRIBER_A: &str = "GZ700001";
const ORG_B: &str = "BZ7002";
const PRESCRIBER_B: &str = "GZ700002";
const HOLDER: &str = "FZ7003";
const HOLDER_PHARMACIST: &str = "PZ700003";
const STRANGER: &str = "FZ7004";
const STRANGER_PHARMACIST: &str = "PZ700004";
const ADMIN_ORG: &str = "XZ7005";
const ADMIN: &str = "AZ700005";

/// The columns of the matrix, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No `Authorization` header, an empty bearer, or another scheme.
    NoToken,
    /// Correctly signed by the trusted issuer, expired an hour ago.
    Expired,
    /// Correctly signed by the trusted issuer's key, but naming another issuer.
    WrongIssuer,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 keyed with a public key (the issuer's, and the service's published JWKS key).
    Hs256PublicKey,
    /// A prescriber of the practice that wrote the prescription.
    PrescriberA,
    /// A prescriber of another practice.
    PrescriberB,
    /// A pharmacist of the pharmacy that released (holds) the prescription.
    HoldingPharmacist,
    /// A pharmacist of another pharmacy.
    OtherPharmacist,
    Admin,
}

use Caller::*;

const CALLERS: [Caller; 10] = [
    NoToken,
    Expired,
    WrongIssuer,
    AlgNone,
    Hs256PublicKey,
    PrescriberA,
    PrescriberB,
    HoldingPharmacist,
    OtherPharmacist,
    Admin,
];

/// The real identities, which every forged-token column impersonates in turn.
const IDENTITIES: [Caller; 5] = [
    PrescriberA,
    PrescriberB,
    HoldingPharmacist,
    OtherPharmacist,
    Admin,
];

fn identity(caller: Caller) -> (Role, &'static str, &'static str) {
    match caller {
        PrescriberA => (Role::Prescriber, ORG_A, PRESCRIBER_A),
        PrescriberB => (Role::Prescriber, ORG_B, PRESCRIBER_B),
        HoldingPharmacist => (Role::Pharmacist, HOLDER, HOLDER_PHARMACIST),
        OtherPharmacist => (Role::Pharmacist, STRANGER, STRANGER_PHARMACIST),
        Admin => (Role::Admin, ADMIN_ORG, ADMIN),
        forged => panic!("{forged:?} is not a real identity"),
    }
}

/// What a cell expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Success, and the caller may see the prescription.
    See(u16),
    /// Success, but nothing of the prescription may appear (public documents, someone else's
    /// nominated batch).
    Blind(u16),
    /// Refused with problem+json and nothing of the prescription; 401/403/404 answer exactly as
    /// for a prescription that does not exist.
    Deny(u16),
}

use Expect::*;

impl Expect {
    fn status(self) -> u16 {
        match self {
            See(status) | Blind(status) | Deny(status) => status,
        }
    }
}

/// The state of the prescription a row acts on, made afresh for every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Given {
    NoPrescription,
    /// Created by practice A, not nominated, To Be Dispensed (0001).
    ToBeDispensed,
    /// Created by practice A, nominated to the holding pharmacy, To Be Dispensed.
    NominatedToHolder,
    /// Released to the holding pharmacy by its token: With Dispenser (0002).
    HeldByHolder,
    /// Held and completely dispensed by the holding pharmacy: Dispensed (0006).
    DispensedByHolder,
    /// Held by the holding pharmacy, then returned: To Be Dispensed again, nobody holds it.
    ReturnedByHolder,
}

use Given::*;

struct Row {
    /// Method and path; `{id}` is the prescription's ID.
    call: &'static str,
    /// JSON body; `{id}` and `{token}` name the prescription.
    body: Option<&'static str>,
    given: Given,
    cells: [Expect; 10],
}

const NEW_PRESCRIPTION: &str = r#"{"patient":{"nhs_number":"9990000018","name":"Matrix Create","birth_date":"1990-05-17"},"items":[{"code":"100000001","display":"Createmol 5mg tablets","quantity":28,"unit":"tablet","dosage":"1 daily"}]}"#;
const PREPARE_WITH_KID: &str = r#"{"kid":"{kid}","patient":{"nhs_number":"9990000018","name":"Matrix Prepare","birth_date":"1990-05-17"},"items":[{"code":"100000002","display":"Preparol 5mg tablets","quantity":28,"unit":"tablet","dosage":"1 daily"}]}"#;
const CLAIM_BOTH: &str = r#"{"exemption":"0004","evidence_seen":true,"items":[{"line":1,"endorsements":[{"code":"NDEC"}]},{"line":2,"endorsements":[{"code":"NDEC"}]}]}"#;
const DISPENSE_ALL: &str =
    r#"{"items":[{"line":1,"outcome":"complete"},{"line":2,"outcome":"complete"}]}"#;

/// The matrix. Columns: no token, expired, wrong issuer, alg none, HS256 keyed with a public key,
/// prescriber A (the prescribing practice), prescriber B, pharmacist of the holding pharmacy,
/// pharmacist of another pharmacy, admin.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                                          no token   expired    wrong iss  alg none   HS256 pub  presc A    presc B    holder     other ph   admin
    Row { call: "POST /api/v1/prescriptions", body: Some(NEW_PRESCRIPTION), given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(201),  See(201),  Deny(403), Deny(403), Deny(403)] },
    Row { call: "GET /api/v1/prescriptions/{id}", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), See(200),  Deny(404), See(200)] },
    Row { call: "GET /api/v1/prescriptions/{id}/history", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), See(200),  Deny(404), See(200)] },
    // A pharmacy that handed the prescription back has lost it.
    Row { call: "GET /api/v1/prescriptions/{id}", body: None, given: ReturnedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(404), Deny(404), See(200)] },
    Row { call: "GET /api/v1/prescriptions/{id}/history", body: None, given: ReturnedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(404), Deny(404), See(200)] },
    Row { call: "GET /api/v1/prescriptions/{id}/token.pdf", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(403), Deny(403), Deny(403)] },
    Row { call: "GET /api/v1/prescriptions/{id}/token.png", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(403), Deny(403), Deny(403)] },
    Row { call: "GET /api/v1/prescriptions/{id}/token.svg", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(403), Deny(403), Deny(403)] },
    // Whoever holds the scanned token may release a prescription nobody holds.
    Row { call: "POST /api/v1/release", body: Some(r#"{"token":"{token}"}"#), given: ToBeDispensed,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  See(200),  Deny(403)] },
    // Once held, only the holder gets it again; another pharmacy with the token learns who holds it.
    Row { call: "POST /api/v1/release", body: Some(r#"{"token":"{token}"}"#), given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(409), Deny(403)] },
    Row { call: "POST /api/v1/release/nominated", body: None, given: NominatedToHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Blind(200), Deny(403)] },
    // A bare ID (no token) only releases to the nominated pharmacy.
    Row { call: "POST /api/v1/release", body: Some(r#"{"token":"{id}"}"#), given: NominatedToHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/release", body: Some(r#"{"token":"{id}"}"#), given: ToBeDispensed,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), Deny(404), Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/dispense", body: Some(DISPENSE_ALL), given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/dispense", body: Some(DISPENSE_ALL), given: ReturnedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), Deny(404), Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/dispense/withdraw", body: Some("{}"), given: DispensedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/claim", body: Some(CLAIM_BOTH), given: DispensedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "GET /api/v1/prescriptions/{id}/receipt", body: None, given: DispensedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/return", body: Some(r#"{"reason":"0001"}"#), given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Deny(403), Deny(403), See(200),  Deny(404), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions/{id}/cancel", body: Some(r#"{"reason":"0001"}"#), given: ToBeDispensed,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(403), Deny(403), Deny(403)] },
    // With a dispenser, a cancel marks the prescription pending cancellation (still 200).
    Row { call: "POST /api/v1/prescriptions/{id}/cancel", body: Some(r#"{"reason":"0001"}"#), given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(403), Deny(403), Deny(403)] },
    // Tracker search for the prescription's patient: the prescribing practice, the pharmacy that
    // holds it or once held it (unlike a GET by ID, handing it back does not hide it from the
    // search) and admins find it; anyone else finds nothing (200, an empty page).
    Row { call: "GET /api/v1/prescriptions?nhs_number={nhs}", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Blind(200), See(200),  Blind(200), See(200)] },
    Row { call: "GET /api/v1/prescriptions?nhs_number={nhs}", body: None, given: ReturnedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Blind(200), See(200),  Blind(200), See(200)] },
    Row { call: "GET /api/v1/prescriptions?nhs_number={nhs}&status=0002", body: None, given: DispensedByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    // Public: the same for everybody, and nothing of any prescription in them.
    Row { call: "GET /.well-known/jwks.json", body: None, given: HeldByHolder,
          cells: [Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    Row { call: "GET /api/v1/openapi.json", body: None, given: HeldByHolder,
          cells: [Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    Row { call: "GET /healthz", body: None, given: HeldByHolder,
          cells: [Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    Row { call: "GET /readyz", body: None, given: HeldByHolder,
          cells: [Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    // Not on the API listener for anybody: only on the metrics listener (`--metrics-listen`).
    Row { call: "GET /metrics", body: None, given: HeldByHolder,
          cells: [Deny(404), Deny(404), Deny(404), Deny(404), Deny(404), Deny(404), Deny(404), Deny(404), Deny(404), Deny(404)] },
    // Prescriber keys: each prescriber enrols their own ({x}: a fresh public key) and revokes
    // their own ({kid}: a key prescriber A enrolled); the key set is for every signed-in role.
    Row { call: "POST /api/v1/prescriber-keys", body: Some(r#"{"jwk":{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#), given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(201),  See(201),  Deny(403), Deny(403), Deny(403)] },
    Row { call: "DELETE /api/v1/prescriber-keys/{kid}", body: None, given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(404), Deny(404), Deny(404), Deny(404)] },
    Row { call: "GET /api/v1/prescriber-keys.json", body: None, given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
    // Two-step issue with prescriber A's key ({kid}) and A's prepared prescription ({prepared_id},
    // {signature}): nobody else's key prepares and nobody else's prepared ID issues.
    Row { call: "POST /api/v1/prescriptions/prepare", body: Some(PREPARE_WITH_KID), given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(200),  Deny(422), Deny(403), Deny(403), Deny(403)] },
    Row { call: "POST /api/v1/prescriptions", body: Some(r#"{"prepared_id":"{prepared_id}","signature":"{signature}"}"#), given: NoPrescription,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), See(201),  Deny(422), Deny(403), Deny(403), Deny(403)] },
    // Signed audit checkpoints: no patient data, for every organisation to keep; not anonymous.
    Row { call: "GET /api/v1/audit/checkpoints", body: None, given: HeldByHolder,
          cells: [Deny(401), Deny(401), Deny(401), Deny(401), Deny(401), Blind(200), Blind(200), Blind(200), Blind(200), Blind(200)] },
];

/// A prescription made for one cell, and everything about it a stranger must never see.
struct Fixture {
    id: String,
    uuid: String,
    token: String,
    /// The patient's (fresh for each fixture): `{nhs}` in a row's call.
    nhs_number: String,
    secrets: Vec<String>,
}

/// A valid ID and token for a prescription that was never issued (same practice, same key).
struct Phantom {
    id: String,
    token: String,
}

/// One HTTP answer, kept whole for byte-for-byte comparison.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    status: StatusCode,
    /// Every header but `date`, sorted.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body for a failure message, shortened (PDFs and PNGs are large).
    fn shown(&self) -> String {
        let text = self.text();
        text.chars().take(400).collect()
    }
}

async fn send(app: &TestApp, call: &str, authorization: Option<&str>, body: Option<&str>) -> Reply {
    let (method, path) = call.split_once(' ').expect("METHOD /path");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    if method == Method::POST {
        // As the pharmacy outbox does; dispense requires it.
        request = request.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    let body = response.bytes().await.expect("body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn bearer(app: &TestApp, caller: Caller) -> String {
    let (role, org, sub) = identity(caller);
    format!("Bearer {}", app.token(role, org, sub))
}

/// Every `Authorization` value a column sends; each must get the cell's answer.
fn authorizations(app: &TestApp, caller: Caller) -> Vec<(String, Option<String>)> {
    let forged = |kind: &str, make: &dyn Fn(&prescrypt::auth::Claims) -> Vec<(String, String)>| {
        IDENTITIES
            .iter()
            .flat_map(|&who| {
                let (role, org, sub) = identity(who);
                let claims = claims_as(role, org, sub, DEV_ISSUER, AUDIENCE, 3600);
                make(&claims)
                    .into_iter()
                    .map(move |(variant, token)| {
                        (
                            format!("{kind} as {who:?}{variant}"),
                            Some(format!("Bearer {token}")),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    match caller {
        NoToken => vec![
            ("no Authorization header".into(), None),
            ("an empty bearer".into(), Some("Bearer ".into())),
            (
                "Basic credentials".into(),
                Some("Basic cHo3MDAwMDM6eA==".into()),
            ),
        ],
        Expired => forged("expired", &|claims| {
            let mut claims = claims.clone();
            claims.iat -= 7200;
            claims.exp -= 7200;
            vec![(String::new(), signed_by_dev_issuer(app, &claims))]
        }),
        WrongIssuer => forged("wrong issuer", &|claims| {
            let mut claims = claims.clone();
            claims.iss = "https://idp.evil.example".into();
            vec![(String::new(), signed_by_dev_issuer(app, &claims))]
        }),
        AlgNone => forged("alg none", &|claims| {
            vec![(String::new(), alg_none(app, claims))]
        }),
        Hs256PublicKey => forged("HS256", &|claims| {
            let issuer = prescrypt::keys::dev_issuer(&app.keys_dir()).unwrap();
            let service = KeyRing::load_or_create(&app.keys_dir()).unwrap();
            let published = service.active();
            vec![
                (
                    " keyed with the issuer's public key".into(),
                    hs256_keyed_with(
                        issuer.signing.verifying_key().as_bytes(),
                        issuer.kid.as_str(),
                        claims,
                    ),
                ),
                (
                    " keyed with the JWKS key".into(),
                    hs256_keyed_with(
                        published.signing.verifying_key().as_bytes(),
                        published.kid.as_str(),
                        claims,
                    ),
                ),
            ]
        }),
        real => vec![(format!("{real:?}"), Some(bearer(app, real)))],
    }
}

/// A valid NHS number nobody else in the run has (the last digit found by THE rule).
fn fresh_nhs_number() -> NhsNumber {
    let mut rng = rand::thread_rng();
    loop {
        let base: u32 = rng.gen_range(100_000_000..999_999_999);
        if let Some(number) = (0..10).find_map(|d| NhsNumber::parse(&format!("{base}{d}")).ok()) {
            return number;
        }
    }
}

/// A prescription of practice A in the given state, with unique patient and item data.
async fn prescription(app: &TestApp, given: Given) -> Option<Fixture> {
    if given == NoPrescription {
        return None;
    }
    let tag = format!("{:08x}", rand::random::<u32>());
    let nhs = fresh_nhs_number();
    let codes = [
        format!("7{}", rand::random::<u32>()),
        format!("8{}", rand::random::<u32>()),
    ];
    let displays = [
        format!("Matrixol {tag} 10mg tablets"),
        format!("Cellamycin {tag} 250mg capsules"),
    ];
    let mut body = json!({
        "patient": {"nhs_number": nhs.digits(), "name": format!("Patient {tag}"),
                    "birth_date": "1961-07-04"},
        "items": [
            {"code": codes[0], "display": displays[0], "quantity": 28, "unit": "tablet",
             "dosage": "1 daily"},
            {"code": codes[1], "display": displays[1], "quantity": 21, "unit": "capsule",
             "dosage": "1 three times a day"}
        ]
    });
    if given == NominatedToHolder {
        body["nominated_pharmacy"] = json!(HOLDER);
    }
    let (status, created) = app
        .post(
            "/api/v1/prescriptions",
            &app.token(Role::Prescriber, ORG_A, PRESCRIBER_A),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let text = |key: &str| created[key].as_str().expect(key).to_owned();
    let id = text("id");
    let token = text("token");
    let mut secrets = vec![
        id.clone(),
        id.replace('-', ""),
        text("uuid"),
        token.clone(),
        text("jws"),
        nhs.digits().to_owned(),
        String::from_utf8(nhs.spaced().to_vec()).unwrap(),
        format!("Patient {tag}"),
        ORG_A.to_owned(),
        PRESCRIBER_A.to_owned(),
    ];
    secrets.extend(codes);
    secrets.extend(displays);
    secrets.extend(
        created["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["uuid"].as_str().unwrap().to_owned()),
    );
    if matches!(given, HeldByHolder | DispensedByHolder | ReturnedByHolder) {
        let holder = app.token(Role::Pharmacist, HOLDER, HOLDER_PHARMACIST);
        let (status, released) = app.release(&holder, &token).await;
        assert_eq!(status, StatusCode::OK, "{released}");
        secrets.extend([HOLDER.to_owned(), HOLDER_PHARMACIST.to_owned()]);
        if given == DispensedByHolder {
            let body: Value = serde_json::from_str(DISPENSE_ALL).unwrap();
            let (status, dispensed) = app
                .dispense(&holder, &id, &uuid::Uuid::new_v4().to_string(), &body)
                .await;
            assert_eq!(status, StatusCode::OK, "{dispensed}");
            assert_eq!(dispensed["status"]["code"], "0006", "{dispensed}");
        }
        if given == ReturnedByHolder {
            let (status, returned) = app
                .post(
                    &format!("/api/v1/prescriptions/{id}/return"),
                    &holder,
                    &json!({"reason": "0001"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{returned}");
            assert_eq!(returned["dispenser"], Value::Null, "{returned}");
        }
    }
    let uuid = text("uuid");
    Some(Fixture {
        id,
        uuid,
        token,
        nhs_number: nhs.digits().to_owned(),
        secrets,
    })
}

fn phantom(app: &TestApp) -> Phantom {
    let keys = KeyRing::load_or_create(&app.keys_dir()).unwrap();
    let mut rng = rand::thread_rng();
    let id = PrescriptionId::new(
        rng.gen_range(0..=prescrypt_barcode::id::MAX_RANDOM),
        ORG_A,
        rng.gen_range(900_000..=prescrypt_barcode::id::MAX_SEQUENCE),
    )
    .unwrap();
    let token = Token::sign(id, &keys.active().signing);
    Phantom {
        id: id.to_string(),
        token: token.text().as_str().to_owned(),
    }
}

fn fill(template: &str, id: &str, token: &str) -> String {
    template.replace("{id}", id).replace("{token}", token)
}

/// How many audit entries about the prescription name the caller.
async fn audited_accesses(app: &TestApp, fixture: &Fixture, caller: Caller) -> usize {
    let (role, org, sub) = identity(caller);
    let uuid = fixture.uuid.clone();
    let entries = app
        .store
        .read(move |conn| prescrypt::audit::for_prescription(conn, &uuid))
        .await
        .unwrap();
    entries
        .iter()
        .filter(|e| e.actor == sub && e.org == org && e.role == role.as_str())
        .count()
}

/// What the owner sees of a prescription: its view and its history.
async fn owner_snapshot(app: &TestApp, fixture: &Fixture) -> (Value, Value) {
    let owner = app.token(Role::Prescriber, ORG_A, PRESCRIBER_A);
    let (status, view) = app
        .get(&format!("/api/v1/prescriptions/{}", fixture.id), &owner)
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, history) = app
        .get(
            &format!("/api/v1/prescriptions/{}/history", fixture.id),
            &owner,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    (view, history)
}

fn problem_code(call: &str, status: u16) -> &'static str {
    match status {
        401 => "unauthenticated",
        403 => "forbidden",
        404 if call.contains("/prescriber-keys/") || call == "GET /metrics" => "not-found",
        404 => "prescription-not-found",
        409 => "held-by-another-dispenser",
        422 if call.ends_with("/prepare") => "unknown-prescriber-key",
        422 => "unknown-prepared-id",
        other => panic!("no problem code is expected with {other}"),
    }
}

/// The prescriber-key placeholders of a cell: `{x}` a fresh public key; `{kid}` a key prescriber
/// A enrolled; `{prepared_id}` and `{signature}` a prescription A prepared and signed.
async fn key_placeholders(app: &TestApp, row: &Row) -> Vec<(&'static str, String)> {
    let template = format!("{} {}", row.call, row.body.unwrap_or_default());
    let signer = PrescriberSigner::generate();
    let mut filled = vec![("{x}", signer.jwk().x)];
    if template.contains("{kid}") || template.contains("{prepared_id}") {
        let owner = app.token(Role::Prescriber, ORG_A, PRESCRIBER_A);
        signer.enrol(app, &owner).await;
        filled.push(("{kid}", signer.kid()));
        if template.contains("{prepared_id}") {
            let body: Value = serde_json::from_str(NEW_PRESCRIPTION).unwrap();
            let (status, prepared) = signer.prepare(app, &owner, &body).await;
            assert_eq!(status, StatusCode::OK, "{prepared}");
            let input = prepared["signing_input"].as_str().unwrap();
            filled.push(("{signature}", signer.sign(input)));
            filled.push((
                "{prepared_id}",
                prepared["prepared_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    filled
}

fn fill_keys(template: &str, placeholders: &[(&str, String)]) -> String {
    placeholders
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(name, value)
        })
}

/// The checks of one answer; each failure is one line.
fn check_reply(
    cell: &str,
    call: &str,
    expect: Expect,
    fixture: Option<&Fixture>,
    reply: &Reply,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |why: String| failures.push(format!("{cell}: {why}"));
    if reply.status.as_u16() != expect.status() {
        fail(format!(
            "expected {}, got {}: {}",
            expect.status(),
            reply.status,
            reply.shown()
        ));
        return failures;
    }
    let text = reply.text();
    match expect {
        Deny(status) => {
            if reply.header("content-type") != Some("application/problem+json") {
                fail(format!(
                    "content-type {:?}, not problem+json",
                    reply.header("content-type")
                ));
            }
            let code = problem_code(call, status);
            match reply.json() {
                Some(problem) => {
                    let well_formed = problem["status"] == status
                        && problem["code"] == code
                        && problem["type"] == format!("https://prescrypt.example/problems/{code}")
                        && problem["title"].is_string()
                        && problem["detail"].is_string();
                    if !well_formed {
                        fail(format!("not the {code} problem: {problem}"));
                    }
                    if status == 409 && problem["holder"] != HOLDER {
                        fail(format!("409 without the holder: {problem}"));
                    }
                }
                None => fail(format!("problem body is not JSON: {}", reply.shown())),
            }
            if status == 401 && reply.header("www-authenticate") != Some("Bearer") {
                fail("401 without WWW-Authenticate: Bearer".into());
            }
        }
        See(_) => {
            if let Some(fixture) = fixture {
                let shows_it = if call.ends_with("/history") {
                    reply.json().is_some_and(|history| {
                        history["events"]
                            .as_array()
                            .is_some_and(|events| events.iter().any(|e| e["action"] == "created"))
                    })
                } else if let Some((_, format)) = call.rsplit_once("/token.") {
                    let wanted = match format {
                        "pdf" => "application/pdf",
                        "png" => "image/png",
                        _ => "image/svg+xml",
                    };
                    reply
                        .header("content-type")
                        .is_some_and(|t| t.starts_with(wanted))
                        && reply.body.len() > 100
                } else if call.ends_with("/receipt") {
                    reply.json().is_some_and(|receipt| {
                        receipt["jws"]
                            .as_str()
                            .and_then(|jws| jws.split('.').nth(1))
                            .and_then(|payload| {
                                data_encoding::BASE64URL_NOPAD
                                    .decode(payload.as_bytes())
                                    .ok()
                            })
                            .is_some_and(|payload| {
                                String::from_utf8_lossy(&payload).contains(&fixture.id)
                            })
                    })
                } else {
                    text.contains(&fixture.id)
                };
                if !shows_it {
                    fail(format!(
                        "a caller who may see it did not get it: {}",
                        reply.shown()
                    ));
                }
            }
        }
        Blind(_) => {}
    }
    if !matches!(expect, See(_))
        && let Some(fixture) = fixture
    {
        for secret in &fixture.secrets {
            let allowed = matches!(expect, Deny(409)) && secret == HOLDER;
            if !allowed && text.contains(secret.as_str()) {
                fail(format!("leaks {secret:?}: {}", reply.shown()));
            }
        }
    }
    failures
}

/// Runs one cell: a fresh prescription, every authorisation of the column, all checks.
async fn run_cell(app: &TestApp, row: &Row, caller: Caller, expect: Expect) -> Vec<String> {
    let fixture = prescription(app, row.given).await;
    let before = match &fixture {
        Some(fixture) => Some(owner_snapshot(app, fixture).await),
        None => None,
    };
    let audited_before = match (&fixture, expect) {
        (Some(fixture), See(_)) => Some(audited_accesses(app, fixture, caller).await),
        _ => None,
    };
    let ghost = phantom(app);
    let (id, token) = fixture
        .as_ref()
        .map_or((ghost.id.as_str(), ghost.token.as_str()), |f| {
            (f.id.as_str(), f.token.as_str())
        });
    let keys = key_placeholders(app, row).await;
    let nhs_number = fixture.as_ref().map_or("", |f| f.nhs_number.as_str());
    let call = fill_keys(&fill(row.call, id, token), &keys).replace("{nhs}", nhs_number);
    let body = row.body.map(|b| fill_keys(&fill(b, id, token), &keys));
    let names_a_prescription = row.call.contains("{id}")
        || row
            .body
            .is_some_and(|b| b.contains("{id}") || b.contains("{token}"));
    let mut failures = Vec::new();
    for (variant, authorization) in authorizations(app, caller) {
        let cell = format!("{} [{:?}] {caller:?} ({variant})", row.call, row.given);
        let reply = send(app, &call, authorization.as_deref(), body.as_deref()).await;
        failures.extend(check_reply(
            &cell,
            row.call,
            expect,
            fixture.as_ref(),
            &reply,
        ));
        // Not yours must be indistinguishable from not existing (a 409 is the token holder's
        // right to know who holds it, so it is not compared).
        if let Deny(401 | 403 | 404) = expect
            && names_a_prescription
            && fixture.is_some()
        {
            let phantom_call = fill(row.call, &ghost.id, &ghost.token);
            let phantom_body = row.body.map(|b| fill(b, &ghost.id, &ghost.token));
            let absent = send(
                app,
                &phantom_call,
                authorization.as_deref(),
                phantom_body.as_deref(),
            )
            .await;
            if absent != reply {
                failures.push(format!(
                    "{cell}: answers unlike a prescription that does not exist:\n  \
                     theirs:  {} {:?} {}\n  missing: {} {:?} {}",
                    reply.status,
                    reply.headers,
                    reply.shown(),
                    absent.status,
                    absent.headers,
                    absent.shown()
                ));
            }
        }
    }
    // Every access a caller is granted is audited under the caller's name.
    if let (Some(fixture), Some(count)) = (&fixture, audited_before)
        && audited_accesses(app, fixture, caller).await <= count
    {
        failures.push(format!(
            "{} [{:?}] {caller:?}: granted without an audit entry naming the caller",
            row.call, row.given
        ));
    }
    let mutated = row.call.starts_with("POST") && matches!(expect, See(_));
    if let (Some(fixture), Some((view_before, history_before))) = (&fixture, before)
        && !mutated
    {
        let (view, history) = owner_snapshot(app, fixture).await;
        // A granted read may add to the history (printing a token is an event); nothing else may.
        let history_kept = matches!(expect, See(_)) || history == history_before;
        if view != view_before || !history_kept {
            failures.push(format!(
                "{} [{:?}] {caller:?}: the prescription changed although the request was \
                 refused or read-only:\n  before: {view_before}\n  {history_before}\n  \
                 after:  {view}\n  {history}",
                row.call, row.given
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_matrix_says() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in MATRIX {
        for (caller, expect) in CALLERS.into_iter().zip(row.cells) {
            failures.extend(run_cell(&app, row, caller, expect).await);
            cells += 1;
        }
    }
    assert_eq!(cells, MATRIX.len() * CALLERS.len());
    let chain = app.store.read(prescrypt::audit::verify).await.unwrap();
    assert!(
        matches!(chain, prescrypt::audit::Verification::Intact { .. }),
        "{chain:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
