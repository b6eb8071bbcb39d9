//! A GP system talking EPS FHIR R4 to the service: the prescription-order Bundle of
//! `tests/fixtures/fhir/prescription-order.json` (written after EPS's published examples: two
//! acute items nominated to [`crate::PHARMACY`], from [`crate::PRESCRIBER_ORG`]), signed the
//! Prescrypt way ($prepare, the prescriber's Ed25519 key, $process-message; docs/fhir.md).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::http::Endpoint;
use crate::signer::PrescriberSigner;

pub const PREFIX: &str = "/FHIR/R4";
pub const PRESCRIBER_KEY: &str = "https://prescrypt.example/fhir/Id/prescriber-key";
pub const PREPARED_ID: &str = "https://prescrypt.example/fhir/Id/prepared-prescription";
pub const SHORT_FORM_ID: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
pub const PRESCRIPTION_UUID: &str = "https://fhir.nhs.uk/Id/prescription";

pub fn order_fixture() -> Value {
    serde_json::from_str(include_str!("../../fixtures/fhir/prescription-order.json"))
        .expect("the order fixture is JSON")
}

/// The order fixture as a new message (its own `Bundle.identifier`: the same identifier again is
/// a retry, answered as the first time) naming `kid` as the prescriber's key.
pub fn order_for(kid: &str) -> Value {
    let mut bundle = order_fixture();
    bundle["identifier"]["value"] = json!(uuid::Uuid::new_v4().to_string());
    for entry in bundle["entry"].as_array_mut().expect("entries") {
        for identifier in entry["resource"]["identifier"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if identifier["system"] == PRESCRIBER_KEY {
                identifier["value"] = json!(kid);
            }
        }
    }
    bundle
}

/// The named parameter of a `Parameters`.
pub fn parameter<'v>(parameters: &'v Value, name: &str) -> &'v Value {
    parameters["parameter"]
        .as_array()
        .expect("parameter")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}: {parameters}"))
}

/// What `$prepare` answered, and the Bundle signed as the prescription-order to send.
#[derive(Debug)]
pub struct SignedOrder {
    pub short_id: String,
    pub uuid: String,
    pub bundle: Value,
}

/// Signs what `$prepare` answered (`parameters`) for `bundle` with `signer`: every
/// MedicationRequest gets the assigned IDs, and a Provenance carries the signature.
pub fn sign(bundle: Value, parameters: &Value, signer: &PrescriberSigner) -> SignedOrder {
    let digest = parameter(parameters, "digest")["valueString"]
        .as_str()
        .expect("digest");
    let signing_input = String::from_utf8(
        data_encoding::BASE64
            .decode(digest.as_bytes())
            .expect("base64 digest"),
    )
    .expect("ASCII signing input");
    let value = |name: &str| {
        parameter(parameters, name)["valueIdentifier"]["value"]
            .as_str()
            .expect("an identifier")
            .to_owned()
    };
    let (prepared_id, short_id, uuid) = (
        value("prepared-id"),
        value("short-form-id"),
        value("prescription-id"),
    );
    let jws = format!("{signing_input}.{}", signer.sign(&signing_input));
    let mut bundle = bundle;
    let mut targets = Vec::new();
    let mut role = Value::Null;
    for entry in bundle["entry"].as_array_mut().expect("entries") {
        match entry["resource"]["resourceType"].as_str() {
            Some("MedicationRequest") => {
                entry["resource"]["groupIdentifier"] = json!({
                    "system": SHORT_FORM_ID,
                    "value": short_id,
                    "extension": [{
                        "url": "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionId",
                        "valueIdentifier": {"system": PRESCRIPTION_UUID, "value": uuid},
                    }],
                });
                targets.push(json!({"reference": entry["fullUrl"]}));
            }
            Some("PractitionerRole") => role = entry["fullUrl"].clone(),
            _ => {}
        }
    }
    bundle["entry"]
        .as_array_mut()
        .expect("entries")
        .push(json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": {
                "resourceType": "Provenance",
                "target": targets,
                "recorded": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "agent": [{"who": {"reference": role}}],
                "entity": [{"role": "source", "what": {"identifier": {"system": PREPARED_ID, "value": prepared_id}}}],
                "signature": [{
                    "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}],
                    "when": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "who": {"reference": role},
                    "sigFormat": "application/jose",
                    "data": data_encoding::BASE64.encode(jws.as_bytes()),
                }],
            },
        }));
    SignedOrder {
        short_id,
        uuid,
        bundle,
    }
}

/// Issues the order fixture through FHIR as the prescriber `bearer` with the (enrolled)
/// `signer`; panics unless both steps succeed. The prescription's short-form ID.
pub async fn issue(app: &Endpoint, bearer: &str, signer: &PrescriberSigner) -> String {
    let bundle = order_for(&signer.kid());
    let (status, parameters) = app
        .post(&format!("{PREFIX}/$prepare"), bearer, &bundle)
        .await;
    assert_eq!(status, StatusCode::OK, "$prepare: {parameters}");
    let signed = sign(bundle, &parameters, signer);
    let (status, outcome) = app
        .post(
            &format!("{PREFIX}/$process-message"),
            bearer,
            &signed.bundle,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "$process-message: {outcome}");
    signed.short_id
}
