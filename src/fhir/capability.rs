//! `GET /FHIR/R4/metadata`: the CapabilityStatement (what this FHIR endpoint serves). Public,
//! like `/api/v1/openapi.json`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use super::{FHIR_JSON, respond};

pub async fn metadata() -> HttpResponse {
    let operation = |name: &str, definition: &str| json!({"name": name, "definition": definition});
    respond(
        StatusCode::OK,
        &json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-26",
            "publisher": "Prescrypt",
            "kind": "instance",
            "software": {"name": "Prescrypt", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {"description": "Prescrypt: the NHS EPS FHIR API messages on Prescrypt's prescriptions (docs/fhir.md)"},
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON],
            "rest": [{
                "mode": "server",
                "security": {"description": "Bearer tokens (an EdDSA JWT naming the professional, role and organisation), as for /api/v1"},
                "resource": [
                    {
                        "type": "Task",
                        "interaction": [{"code": "create"}, {"code": "search-type"}],
                        "searchParam": [{"name": "focus", "type": "reference", "documentation": "focus:identifier=<short-form prescription ID>"}],
                        "operation": [operation("release", "https://fhir.nhs.uk/OperationDefinition/Task-release")],
                    },
                    {"type": "Claim", "interaction": [{"code": "create"}]},
                ],
                "operation": [
                    operation("prepare", "https://fhir.nhs.uk/OperationDefinition/MessageHeader-prepare"),
                    operation("process-message", "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"),
                ],
            }],
        }),
    )
}
