//! The EPS FHIR R4 API (issue 15): the same prescriptions through `/FHIR/R4` and `/api/v1`,
//! errors as OperationOutcome naming the element, the same authorisation. Every FHIR answer is
//! checked against the FHIR R4 models of the `fhir.resources` Python package (an independent
//! validator; `PRESCRYPT_FHIR_PYTHON`, else `python3`, must have it: the tests fail without it).

use std::cell::RefCell;
use std::process::{Command, Stdio};

use prescrypt::auth::Role;
use prescrypt_testkit::fhir::{self, PRESCRIPTION_UUID, SHORT_FORM_ID, order_fixture, parameter};
use prescrypt_testkit::{OTHER_PHARMACY, PHARMACY, PrescriberSigner, nominated_prescription};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const FHIR: &str = "/FHIR/R4";
const PYTHON_ENV: &str = "PRESCRYPT_FHIR_PYTHON";
const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/fhir/validate_r4.py"
);
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Validates resources with the independent validator; panics with its report otherwise.
fn validate(resources: &[Value]) {
    if resources.is_empty() {
        return;
    }
    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    let mut child = Command::new(&python)
        .arg(VALIDATOR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (set {PYTHON_ENV}): {e}"));
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(resources).unwrap().as_bytes(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "FHIR R4 validation failed ({python} {VALIDATOR}; {PYTHON_ENV} names a Python with \
         fhir.resources):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A FHIR client of the app: every answer must be `application/fhir+json`, and is kept for
/// [`Fhir::validate`].
struct Fhir<'a> {
    app: &'a TestApp,
    answers: RefCell<Vec<Value>>,
}

impl<'a> Fhir<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            answers: RefCell::new(Vec::new()),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let (status, body) = read(response).await;
        assert!(
            content_type.starts_with("application/fhir+json"),
            "{status} answered {content_type:?}: {body}"
        );
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        self.answers.borrow_mut().push(body.clone());
        (status, body)
    }

    async fn post(&self, path: &str, bearer: &str, body: &Value) -> (StatusCode, Value) {
        let request = self
            .app
            .client
            .post(self.app.url(&format!("{FHIR}{path}")))
            .bearer_auth(bearer)
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        self.send(request).await
    }

    async fn post_text(&self, path: &str, bearer: &str, body: &str) -> (StatusCode, Value) {
        let request = self
            .app
            .client
            .post(self.app.url(&format!("{FHIR}{path}")))
            .bearer_auth(bearer)
            .header("content-type", "application/fhir+json")
            .body(body.to_owned());
        self.send(request).await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.app.client.get(self.app.url(&format!("{FHIR}{path}")));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        self.send(request).await
    }

    fn validate(&self) {
        validate(&self.answers.borrow());
    }
}

/// The tracker's query for `identifier`, form-encoded as a client must: a short-form ID's check
/// character may be `+`, which unencoded means a space.
fn tracker_query(identifier: &str) -> String {
    let mut url = reqwest::Url::parse("http://tracker/Task").unwrap();
    url.query_pairs_mut()
        .append_pair("focus:identifier", identifier);
    format!("/Task?{}", url.query().unwrap())
}

fn entries_of<'v>(bundle: &'v Value, resource_type: &str) -> Vec<&'v Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

fn expression(outcome: &Value) -> &str {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or("<no expression>")
}

fn assert_information(outcome: &Value) {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
}

/// The order fixture naming the signer's key.
fn order_for(signer: &PrescriberSigner) -> Value {
    fhir::order_for(&signer.kid())
}

/// `$prepare` of `bundle` (checked), signed by `signer`.
async fn prepare_and_sign(
    fhir: &Fhir<'_>,
    signer: &PrescriberSigner,
    bundle: Value,
) -> fhir::SignedOrder {
    let (status, parameters) = fhir
        .post("/$prepare", &fhir.app.prescriber(), &bundle)
        .await;
    assert_eq!(status, StatusCode::OK, "{parameters}");
    assert_eq!(parameters["resourceType"], "Parameters");
    assert_eq!(parameter(&parameters, "algorithm")["valueString"], "EdDSA");
    fhir::sign(bundle, &parameters, signer)
}

/// Prepares, signs and sends the order fixture; the prescription's short-form ID.
async fn issue_via_fhir(fhir: &Fhir<'_>, signer: &PrescriberSigner) -> String {
    let prepared = prepare_and_sign(fhir, signer, order_for(signer)).await;
    let (status, outcome) = fhir
        .post(
            "/$process-message",
            &fhir.app.prescriber(),
            &prepared.bundle,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_information(&outcome);
    prepared.short_id
}

async fn enrolled(app: &TestApp) -> PrescriberSigner {
    let signer = PrescriberSigner::generate();
    signer.enrol(app, &app.prescriber()).await;
    signer
}

async fn api_status(app: &TestApp, id: &str) -> String {
    let (status, view) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    status_of(&view).to_owned()
}

fn release_parameters(ods: &str, one: Option<&str>) -> Value {
    let mut parameters = vec![
        json!({"name": "owner", "valueIdentifier": {"system": ODS, "value": ods}}),
        json!({"name": "status", "valueCode": "accepted"}),
    ];
    if let Some(id) = one {
        parameters.push(json!({"name": "group-identifier", "valueIdentifier": {"system": SHORT_FORM_ID, "value": id}}));
    }
    json!({"resourceType": "Parameters", "parameter": parameters})
}

/// A MedicationDispense of one line item of a released prescription Bundle.
fn medication_dispense(released: &Value, line: usize, kind: &str, extra: &Value) -> Value {
    let request = entries_of(released, "MedicationRequest")[line].clone();
    let mut contained = request.clone();
    contained["id"] = json!("m1");
    let mut dispense = json!({
        "resourceType": "MedicationDispense",
        "contained": [contained],
        "status": if kind == "0002" { "declined" } else { "completed" },
        "medicationCodeableConcept": request["medicationCodeableConcept"],
        "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
        "authorizingPrescription": [{"reference": "#m1"}],
        "type": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationdispense-type", "code": kind}]},
        "performer": [{"actor": {"identifier": {"system": ODS, "value": PHARMACY}}}],
    });
    for (key, value) in extra.as_object().unwrap() {
        dispense[key] = value.clone();
    }
    dispense
}

fn dispense_notification(message_id: &str, dispenses: Vec<Value>) -> Value {
    let mut entries = vec![
        json!({"fullUrl": "urn:uuid:0b7c1c36-6c8e-4d2e-9df3-6a0d1c0e1f00", "resource": {
            "resourceType": "MessageHeader",
            "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "dispense-notification"},
            "sender": {"identifier": {"system": ODS, "value": PHARMACY}},
            "source": {"endpoint": "urn:nhs-uk:addressing:ods:FA565"},
        }}),
    ];
    for (i, dispense) in dispenses.into_iter().enumerate() {
        entries.push(json!({"fullUrl": format!("urn:uuid:0b7c1c36-6c8e-4d2e-9df3-6a0d1c0e1f1{i}"), "resource": dispense}));
    }
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": message_id},
        "type": "message",
        "entry": entries,
    })
}

fn released_bundles(answer: &Value) -> Vec<Value> {
    parameter(answer, "passedPrescriptions")["resource"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

#[tokio::test]
async fn metadata_is_a_fhir_capability_statement() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let (status, capability) = fhir.get("/metadata", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(capability["resourceType"], "CapabilityStatement");
    assert_eq!(capability["fhirVersion"], "4.0.1");
    fhir.validate();
}

#[tokio::test]
async fn a_prescription_sent_as_fhir_is_released_dispensed_and_claimed_through_api_v1() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;
    let id = issue_via_fhir(&fhir, &signer).await;

    let (status, view) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["patient"]["nhs_number"], "9449304130");
    assert_eq!(view["patient"]["name"], "STACEY MARISA TWITCHETT");
    assert_eq!(view["patient"]["birth_date"], "1948-04-30");
    assert_eq!(view["nominated_pharmacy"], PHARMACY);
    assert_eq!(view["treatment_type"]["code"], "0001");
    assert_eq!(view["items"][0]["code"], "39732311000001104");
    assert_eq!(view["items"][1]["dosage"], "3 times a day for 10 days");
    assert_eq!(view["items"][1]["quantity"], json!(30.0));
    assert!(
        view["prescriber_jws"].is_string(),
        "signed by the prescriber"
    );

    let (status, released) = app.release(&app.pharmacist(), &id).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    let (status, dispensed) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "fhir-issued-1",
            &json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dispensed}");
    assert_eq!(status_of(&dispensed), "0006");
    let (status, claimed) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/claim"),
            &app.pharmacist(),
            &claim_for(&dispensed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(status_of(&claimed), "0008");
    fhir.validate();
}

#[tokio::test]
async fn a_prescription_created_through_api_v1_is_released_dispensed_tracked_and_claimed_through_fhir()
 {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;
    let created = signer
        .issue(&app, &app.prescriber(), &nominated_prescription(PHARMACY))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Nominated release: the pharmacy's batch.
    let (status, answer) = fhir
        .post(
            "/Task/$release",
            &app.pharmacist(),
            &release_parameters(PHARMACY, None),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bundles = released_bundles(&answer);
    assert_eq!(bundles.len(), 1, "{answer}");
    let released = &bundles[0];
    let requests = entries_of(released, "MedicationRequest");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["groupIdentifier"]["value"], json!(id));
    assert_eq!(
        requests[0]["groupIdentifier"]["extension"][0]["valueIdentifier"]["value"],
        created["uuid"]
    );
    assert_eq!(
        requests[0]["dispenseRequest"]["performer"]["identifier"]["value"],
        PHARMACY
    );
    assert_eq!(
        entries_of(released, "Patient")[0]["identifier"][0]["value"],
        "9434765919"
    );
    let provenance = entries_of(released, "Provenance")[0];
    let prescriber_jws = data_encoding::BASE64
        .decode(
            provenance["signature"][0]["data"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(prescriber_jws).unwrap(),
        created["prescriber_jws"].as_str().unwrap(),
        "the released Bundle carries the prescriber's signature"
    );
    assert_eq!(api_status(&app, &id).await, "0002");

    // More than was prescribed: refused, named by the MedicationDispense's own element.
    let too_much = dispense_notification(
        "9a4c4f5e-5e0f-4c5e-8d53-1f0b0a0c0d00",
        vec![
            medication_dispense(released, 0, "0001", &json!({})),
            medication_dispense(
                released,
                1,
                "0003",
                &json!({"quantity": {"value": 999, "unit": "capsule"}}),
            ),
        ],
    );
    let (status, outcome) = fhir
        .post("/$process-message", &app.pharmacist(), &too_much)
        .await;
    assert!(status.is_client_error(), "{status}: {outcome}");
    assert_eq!(
        expression(&outcome),
        "Bundle.entry[2].resource.quantity.value",
        "{outcome}"
    );
    assert_eq!(api_status(&app, &id).await, "0002", "nothing applied");

    // Line 1 dispensed in full, line 2 in part; then the rest of line 2.
    let first = dispense_notification(
        "9a4c4f5e-5e0f-4c5e-8d53-1f0b0a0c0d01",
        vec![
            medication_dispense(released, 0, "0001", &json!({})),
            medication_dispense(
                released,
                1,
                "0003",
                &json!({"quantity": {"value": 10, "unit": "capsule"}}),
            ),
        ],
    );
    let (status, outcome) = fhir
        .post("/$process-message", &app.pharmacist(), &first)
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_information(&outcome);
    assert_eq!(api_status(&app, &id).await, "0003");
    // The same message again (an EPS client's retry) is answered as before, not applied twice.
    let (status, again) = fhir
        .post("/$process-message", &app.pharmacist(), &first)
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &outcome));
    assert_eq!(api_status(&app, &id).await, "0003");

    let rest = dispense_notification(
        "9a4c4f5e-5e0f-4c5e-8d53-1f0b0a0c0d02",
        vec![medication_dispense(
            released,
            1,
            "0003",
            &json!({"quantity": {"value": 11, "unit": "capsule"}}),
        )],
    );
    let (status, outcome) = fhir
        .post("/$process-message", &app.pharmacist(), &rest)
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(api_status(&app, &id).await, "0006");

    // The tracker.
    let (status, found) = fhir
        .get(
            &tracker_query(&format!("{SHORT_FORM_ID}|{id}")),
            Some(&app.pharmacist()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    let task = &found["entry"][0]["resource"];
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "0006");
    assert_eq!(task["output"][1]["type"]["coding"][0]["code"], "0001");

    // The claim: refused without the dispenser's endorsement, then accepted.
    let mut claim = json!({
        "resourceType": "Claim",
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
        "use": "claim",
        "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
        "created": "2026-11-26T00:00:00Z",
        "provider": {"identifier": {"system": ODS, "value": PHARMACY}},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": true, "coverage": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "T1450"}}}],
        "prescription": {"extension": [{
            "url": "https://fhir.nhs.uk/StructureDefinition/Extension-DM-GroupIdentifier",
            "extension": [
                {"url": "shortForm", "valueIdentifier": {"system": SHORT_FORM_ID, "value": id}},
                {"url": "UUID", "valueIdentifier": {"system": PRESCRIPTION_UUID, "value": created["uuid"]}},
            ],
        }]},
        "item": [{"sequence": 1, "productOrService": {"coding": [{"system": "http://snomed.info/sct", "code": "16076005", "display": "Prescription"}]},
            "programCode": [
                {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/prescription-charge-exemption", "code": "0001", "display": "Patient has paid appropriate charges"}]},
                {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/DM-exemption-evidence", "code": "no-evidence-seen", "display": "No Evidence Seen"}]}
            ],
            "detail": [
                {"sequence": 1, "productOrService": requests[0]["medicationCodeableConcept"], "programCode": [],
                 "modifier": [{"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationdispense-type", "code": "0001", "display": "Item fully dispensed"}]}]},
                {"sequence": 2, "productOrService": requests[1]["medicationCodeableConcept"],
                 "extension": [{"url": "https://fhir.nhs.uk/StructureDefinition/Extension-ClaimMedicationRequestReference",
                                "valueReference": {"identifier": {"system": "https://fhir.nhs.uk/Id/prescription-order-item-number",
                                                                  "value": requests[1]["identifier"][0]["value"]}}}],
                 "programCode": [
                    {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationdispense-endorsement", "code": "BB", "display": "Broken Bulk"}], "text": "21 of a pack of 28"},
                    {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/DM-prescription-charge", "code": "paid-once", "display": "Paid Once"}]}
                 ]}
            ]}],
    });
    let (status, refused) = fhir.post("/Claim", &app.pharmacist(), &claim).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(expression(&refused), "Claim.item[0].detail[0].programCode");
    claim["item"][0]["detail"][0]["programCode"] = json!([
        {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationdispense-endorsement", "code": "NDEC", "display": "No Dispenser Endorsement Code"}]},
        {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/DM-prescription-charge", "code": "paid-once", "display": "Paid Once"}]}
    ]);
    // A line the prescription does not have, and a line claimed twice (once by its number, once
    // by its reference), are named by the element of the message that says so.
    claim["item"][0]["detail"][0]["sequence"] = json!(9);
    let (status, refused) = fhir.post("/Claim", &app.pharmacist(), &claim).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(expression(&refused), "Claim.item[0].detail[0].sequence");
    claim["item"][0]["detail"][0]["sequence"] = json!(2);
    let (status, refused) = fhir.post("/Claim", &app.pharmacist(), &claim).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(expression(&refused), "Claim.item[0].detail[1].sequence");
    claim["item"][0]["detail"][0]["sequence"] = json!(1);
    let (status, outcome) = fhir.post("/Claim", &app.pharmacist(), &claim).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_information(&outcome);
    assert_eq!(api_status(&app, &id).await, "0008");
    // The same claim the JSON API shows: exemption, charges, endorsements by line.
    let (_, shown) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    let recorded = &shown["claim"];
    assert_eq!(recorded["exemption"]["code"], "0001", "{recorded}");
    assert_eq!(recorded["charges_paid"], 2);
    assert_eq!(recorded["evidence_seen"], false);
    assert_eq!(recorded["items"][1]["line"], 2);
    assert_eq!(
        recorded["items"][1]["endorsements"][0]["code"]["code"],
        "BB"
    );
    assert_eq!(
        recorded["items"][1]["endorsements"][0]["text"],
        "21 of a pack of 28"
    );
    fhir.validate();
}

/// What is wrong, how to break the order fixture so, the status and the element named.
type BrokenBundle = (&'static str, fn(&mut Value), StatusCode, &'static str);

#[tokio::test]
async fn bad_messages_are_refused_with_an_operation_outcome_naming_the_element() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;
    let prescriber = app.prescriber();

    let (status, outcome) = fhir.post_text("/$prepare", &prescriber, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    let (status, outcome) = fhir
        .post(
            "/$prepare",
            &prescriber,
            &json!({"resourceType": "Patient"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expression(&outcome), "Bundle.resourceType");

    let cases: Vec<BrokenBundle> = vec![
        (
            "an invalid NHS number",
            |b| b["entry"][3]["resource"]["identifier"][0]["value"] = json!("9449304131"),
            StatusCode::BAD_REQUEST,
            "Bundle.entry[3].resource.identifier[0].value",
        ),
        (
            "a negative quantity",
            |b| b["entry"][1]["resource"]["dispenseRequest"]["quantity"]["value"] = json!(-5),
            StatusCode::BAD_REQUEST,
            "Bundle.entry[1].resource.dispenseRequest.quantity.value",
        ),
        (
            "a quantity that is text",
            |b| b["entry"][2]["resource"]["dispenseRequest"]["quantity"]["value"] = json!("30"),
            StatusCode::BAD_REQUEST,
            "Bundle.entry[2].resource.dispenseRequest.quantity.value",
        ),
        (
            "no dosage",
            |b| {
                b["entry"][2]["resource"]
                    .as_object_mut()
                    .unwrap()
                    .remove("dosageInstruction");
            },
            StatusCode::BAD_REQUEST,
            "Bundle.entry[2].resource.dosageInstruction",
        ),
        (
            "no birth date",
            |b| {
                b["entry"][3]["resource"]
                    .as_object_mut()
                    .unwrap()
                    .remove("birthDate");
            },
            StatusCode::BAD_REQUEST,
            "Bundle.entry[3].resource.birthDate",
        ),
        (
            "another message event",
            |b| b["entry"][0]["resource"]["eventCoding"]["code"] = json!("dispense-notification"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bundle.entry[0].resource.eventCoding.code",
        ),
        (
            "acute mixed with repeat dispensing",
            |b| {
                b["entry"][2]["resource"]["courseOfTherapyType"] = json!({"coding": [{
                    "system": "https://fhir.nhs.uk/CodeSystem/medicationrequest-course-of-therapy",
                    "code": "continuous-repeat-dispensing"}]});
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bundle.entry[2].resource.courseOfTherapyType.coding[0].code",
        ),
        (
            "a MessageHeader that is not first",
            |b| b["entry"].as_array_mut().unwrap().swap(0, 1),
            StatusCode::BAD_REQUEST,
            "Bundle.entry[0].resource",
        ),
        (
            "a key the prescriber has not enrolled",
            |b| b["entry"][5]["resource"]["identifier"][1]["value"] = json!("not-a-key"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bundle.entry[5].resource.identifier[1].value",
        ),
    ];
    for (what, break_it, expected, path) in cases {
        let mut bundle = order_for(&signer);
        break_it(&mut bundle);
        let (status, outcome) = fhir.post("/$prepare", &prescriber, &bundle).await;
        assert_eq!(status, expected, "{what}: {outcome}");
        assert_eq!(expression(&outcome), path, "{what}: {outcome}");
    }

    // A prescription-order without the prescriber's signature.
    let (status, outcome) = fhir
        .post("/$process-message", &prescriber, &order_for(&signer))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(expression(&outcome), "Bundle");
    // A signature over other content than the Bundle's.
    let mut prepared = prepare_and_sign(&fhir, &signer, order_for(&signer)).await;
    prepared.bundle["entry"][1]["resource"]["dosageInstruction"][0]["text"] =
        json!("4 times a day");
    let (status, outcome) = fhir
        .post("/$process-message", &prescriber, &prepared.bundle)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(expression(&outcome), "Bundle.entry[1].resource");
    assert_eq!(
        app.get(
            &format!("/api/v1/prescriptions/{}", prepared.short_id),
            &prescriber
        )
        .await
        .0,
        StatusCode::NOT_FOUND,
        "nothing issued ({})",
        prepared.uuid
    );

    // Without a bearer token; an unknown path; a tracker query without an ID.
    let (status, outcome) = fhir.get("/Task?focus:identifier=X", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "login");
    let (status, _) = fhir.get("/Patient", Some(&prescriber)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, outcome) = fhir
        .get("/Task?focus:identifier=nope", Some(&prescriber))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expression(&outcome), "focus:identifier");
    // A check character `+` sent unencoded arrives as a space: the answer says how to send it.
    let plus = id_with_plus_check_character();
    let (status, outcome) = fhir
        .get(&format!("/Task?focus:identifier={plus}"), Some(&prescriber))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(expression(&outcome), "focus:identifier");
    assert!(outcome.to_string().contains("%2B"), "{outcome}");
    let (status, found) = fhir.get(&tracker_query(&plus), Some(&prescriber)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["total"], 0, "{found}");
    fhir.validate();
}

/// A well-formed short-form ID (of no prescription) whose check character is `+`.
fn id_with_plus_check_character() -> String {
    use prescrypt_barcode::id::{DATA_LEN, check_character};
    (0..0xFFFFF)
        .map(|n| format!("A84F1CA83008{n:05X}"))
        .find_map(|data| {
            let bytes: [u8; DATA_LEN] = data.as_bytes().try_into().ok()?;
            (check_character(&bytes) == b'+')
                .then(|| format!("{}-{}-{}+", &data[..6], &data[6..12], &data[12..]))
        })
        .expect("one in 37 IDs has the check character +")
}

#[tokio::test]
async fn fhir_callers_have_the_same_roles_and_organisations_as_api_v1() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;

    let (status, outcome) = fhir
        .post("/$prepare", &app.pharmacist(), &order_for(&signer))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a pharmacy cannot prepare: {outcome}"
    );
    assert_eq!(outcome["issue"][0]["code"], "forbidden");

    let id = issue_via_fhir(&fhir, &signer).await;
    let (status, answer) = fhir
        .post(
            "/Task/$release",
            &app.pharmacist(),
            &release_parameters(PHARMACY, Some(&id)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let released = released_bundles(&answer).remove(0);

    // Another pharmacy: the tracker finds nothing, its notification finds no prescription.
    let other = app.other_pharmacist();
    let (status, found) = fhir.get(&tracker_query(&id), Some(&other)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["total"], 0, "{found}");
    let (status, outcome) = fhir
        .post(
            "/$process-message",
            &other,
            &dispense_notification(
                "3e1d9a4b-7a0f-4a55-9d1c-2b7f0f0e0a01",
                vec![medication_dispense(&released, 0, "0001", &json!({}))],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{outcome}");
    // A release to another organisation than the caller's.
    let (status, outcome) = fhir
        .post(
            "/Task/$release",
            &other,
            &release_parameters(PHARMACY, None),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(
        expression(&outcome),
        "Parameters.parameter[0].valueIdentifier.value"
    );
    // Another practice cannot cancel it.
    let elsewhere = app.token(Role::Prescriber, "B81001", "G7654321");
    let (status, outcome) = fhir
        .post("/$process-message", &elsewhere, &cancellation(&id, "0001"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{outcome}");
    fhir.validate();
}

fn cancellation(id: &str, reason: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": uuid::Uuid::new_v4().to_string()},
        "type": "message",
        "entry": [
            {"fullUrl": "urn:uuid:5d0e4f0a-1d6b-4e8e-a8c4-9a1b2c3d4e00", "resource": {
                "resourceType": "MessageHeader",
                "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "prescription-order-update"},
                "source": {"endpoint": "urn:nhs-uk:addressing:ods:A83008"},
            }},
            {"fullUrl": "urn:uuid:5d0e4f0a-1d6b-4e8e-a8c4-9a1b2c3d4e01", "resource": {
                "resourceType": "MedicationRequest",
                "status": "cancelled",
                "statusReason": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-reason", "code": reason}]},
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "39732311000001104"}]},
                "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449304130"}},
                "groupIdentifier": {"system": SHORT_FORM_ID, "value": id},
            }},
        ],
    })
}

fn r_code(response: &Value) -> &str {
    let request = entries_of(response, "MedicationRequest")[0];
    request["extension"][0]["extension"][0]["valueCoding"]["code"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn cancellation_answers_eps_r_codes() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;
    let held = issue_via_fhir(&fhir, &signer).await;
    let open = issue_via_fhir(&fhir, &signer).await;

    let (status, response) = fhir
        .post(
            "/$process-message",
            &app.prescriber(),
            &cancellation(&open, "0005"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(r_code(&response), "R-0001");
    assert_eq!(
        entries_of(&response, "MedicationRequest")[0]["status"],
        "cancelled"
    );
    assert_eq!(api_status(&app, &open).await, "0005");
    let (_, response) = fhir
        .post(
            "/$process-message",
            &app.prescriber(),
            &cancellation(&open, "0005"),
        )
        .await;
    assert_eq!(r_code(&response), "R-0006", "already cancelled");

    let (status, _) = app.release(&app.pharmacist(), &held).await;
    assert_eq!(status, StatusCode::OK);
    let (_, response) = fhir
        .post(
            "/$process-message",
            &app.prescriber(),
            &cancellation(&held, "0001"),
        )
        .await;
    assert_eq!(r_code(&response), "R-0002", "with the dispenser: marked");

    let (status, outcome) = fhir
        .post(
            "/$process-message",
            &app.prescriber(),
            &cancellation(&held, "0042"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(
        expression(&outcome),
        "Bundle.entry[1].resource.statusReason.coding[0].code"
    );
    fhir.validate();
}

fn task(id: &str, status: &str, code: &str, reason_system: &str, reason: &str) -> Value {
    json!({
        "resourceType": "Task",
        "identifier": [{"system": "https://tools.ietf.org/html/rfc4122", "value": uuid::Uuid::new_v4().to_string()}],
        "groupIdentifier": {"system": SHORT_FORM_ID, "value": id},
        "status": status,
        "statusReason": {"coding": [{"system": reason_system, "code": reason}]},
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": code}]},
        "for": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449304130"}},
        "authoredOn": "2026-11-26T00:00:00Z",
        "owner": {"identifier": {"system": ODS, "value": PHARMACY}},
    })
}

#[tokio::test]
async fn withdraw_return_and_a_release_held_by_another_dispenser() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let signer = enrolled(&app).await;
    let created = signer
        .issue(&app, &app.prescriber(), &nominated_prescription(PHARMACY))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, answer) = fhir
        .post(
            "/Task/$release",
            &app.pharmacist(),
            &release_parameters(PHARMACY, Some(&id)),
        )
        .await;
    let released = released_bundles(&answer).remove(0);

    // Another pharmacy scans the token: EPS's failedPrescriptions, naming the reason.
    let token = created["token"].as_str().unwrap();
    let (status, answer) = fhir
        .post(
            "/Task/$release",
            &app.other_pharmacist(),
            &release_parameters(OTHER_PHARMACY, Some(token)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(released_bundles(&answer).is_empty());
    let failed = &parameter(&answer, "failedPrescriptions")["resource"]["entry"][0]["resource"];
    assert_eq!(
        failed["issue"][0]["details"]["coding"][0]["code"], "PRESCRIPTION_WITH_ANOTHER_DISPENSER",
        "{failed}"
    );

    let notification = dispense_notification(
        "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e01",
        vec![
            medication_dispense(&released, 0, "0001", &json!({})),
            medication_dispense(
                &released,
                1,
                "0002",
                &json!({"statusReasonCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/medicationdispense-status-reason", "code": "0002"}]}}),
            ),
        ],
    );
    let (status, outcome) = fhir
        .post("/$process-message", &app.pharmacist(), &notification)
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(api_status(&app, &id).await, "0006");

    let withdraw = task(
        &id,
        "in-progress",
        "abort",
        "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-withdraw-reason",
        "MU",
    );
    let (status, outcome) = fhir.post("/Task", &app.pharmacist(), &withdraw).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_information(&outcome);
    assert_eq!(api_status(&app, &id).await, "0002");

    let bad_reason = task(
        &id,
        "rejected",
        "fulfill",
        "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-return-status-reason",
        "0099",
    );
    let (status, outcome) = fhir.post("/Task", &app.pharmacist(), &bad_reason).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{outcome}");
    assert_eq!(expression(&outcome), "Task.statusReason.coding[0].code");
    let give_back = task(
        &id,
        "rejected",
        "fulfill",
        "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-return-status-reason",
        "0003",
    );
    let (status, outcome) = fhir.post("/Task", &app.pharmacist(), &give_back).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(api_status(&app, &id).await, "0001");
    fhir.validate();
}

#[test]
fn the_validator_refuses_what_is_not_fhir_r4() {
    let refused = std::panic::catch_unwind(|| {
        validate(&[json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]})]);
    });
    assert!(refused.is_err(), "an issue without its code is not FHIR R4");
    let refused = std::panic::catch_unwind(|| {
        validate(&[
            json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {"resourceType": "MessageHeader", "eventCoding": {"code": "x"}}}]}),
        ]);
    });
    assert!(
        refused.is_err(),
        "a MessageHeader without its source is not FHIR R4"
    );
    validate(&[order_fixture()]);
}

/// A repeat-dispensing prescription made through `/api/v1` shows its issue and interval in the
/// Bundle FHIR releases: `numberOfRepeatsAllowed`, `expectedSupplyDuration` in days.
#[tokio::test]
async fn a_repeat_dispensing_issue_is_released_with_its_interval() {
    let app = spawn_app().await;
    let fhir = Fhir::new(&app);
    let mut body = nominated_prescription(PHARMACY);
    body["treatment_type"] = json!("0003");
    body["issue_count"] = json!(3);
    body["days_supply"] = json!(56);
    let created = app.create(&body).await;
    let (status, answer) = fhir
        .post(
            "/Task/$release",
            &app.pharmacist(),
            &release_parameters(PHARMACY, None),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bundles = released_bundles(&answer);
    assert_eq!(bundles.len(), 1, "{answer}");
    let request = entries_of(&bundles[0], "MedicationRequest")[0];
    assert_eq!(request["groupIdentifier"]["value"], created["id"]);
    let dispense_request = &request["dispenseRequest"];
    assert_eq!(dispense_request["numberOfRepeatsAllowed"], 2, "{request}");
    assert_eq!(dispense_request["expectedSupplyDuration"]["value"], 56);
    assert_eq!(dispense_request["expectedSupplyDuration"]["code"], "d");
    fhir.validate();
}
