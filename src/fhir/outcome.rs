//! Errors as `OperationOutcome`. Every response of `/FHIR/R4/` that is an error (4xx, 5xx) is
//! rendered here, whatever refused it (authentication, a role, the throttle, a domain rule, a
//! malformed body): the service's one error type renders as problem+json, and [`render`]
//! rewrites it, keeping the status and naming the element at fault in `expression`.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use prescrypt_contract::Problem;
use serde_json::{Value, json};

use super::FHIR_JSON;
use super::codes;

/// The FHIR issue type (`OperationOutcome.issue.code`) of a status, and the Spine error code.
fn issue_codes(status: StatusCode, problem_code: &str) -> (&'static str, &'static str) {
    match (status.as_u16(), problem_code) {
        (401, _) => ("login", "ACCESS_DENIED"),
        (403, _) => ("forbidden", "ACCESS_DENIED"),
        (404, "prescription-not-found") => ("not-found", "PRESCRIPTION_NOT_FOUND"),
        (404, _) => ("not-found", "RESOURCE_NOT_FOUND"),
        (405 | 415, _) => ("not-supported", "INVALID_VALUE"),
        (400, "missing-field") => ("required", "MISSING_VALUE"),
        (400, "malformed-json") => ("structure", "INVALID_VALUE"),
        (400, _) => ("value", "INVALID_VALUE"),
        (409, "held-by-another-dispenser") => ("conflict", "PRESCRIPTION_WITH_ANOTHER_DISPENSER"),
        (409, _) => ("conflict", "INVALID_VALUE"),
        (413, _) => ("too-costly", "INVALID_VALUE"),
        (422, _) => ("business-rule", "INVALID_VALUE"),
        (429, _) => ("throttled", "SERVICE_UNAVAILABLE"),
        (503 | 504, _) => ("transient", "SERVICE_UNAVAILABLE"),
        _ => ("exception", "SERVER_ERROR"),
    }
}

/// The `OperationOutcome` of a refusal.
pub fn of_problem(status: StatusCode, problem: &Problem) -> Value {
    let (issue_type, spine_code) = issue_codes(status, &problem.code);
    let spine_system = if spine_code == "PRESCRIPTION_WITH_ANOTHER_DISPENSER" {
        codes::EPS_ISSUE_CODE
    } else {
        codes::ISSUE_CODE
    };
    let mut issue = json!({
        "severity": if status.is_server_error() { "fatal" } else { "error" },
        "code": issue_type,
        "details": {"coding": [
            {"system": spine_system, "code": spine_code},
            {"system": codes::PROBLEM_CODE, "code": problem.code, "display": problem.title},
        ]},
        "diagnostics": problem.detail,
    });
    if let Some(field) = &problem.field {
        issue["expression"] = json!([field]);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

/// The `OperationOutcome` of a success (EPS answers a processed message with one).
pub fn information(diagnostics: impl Into<String>) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": diagnostics.into()}],
    })
}

fn is_fhir(response: &HttpResponse<impl MessageBody>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(FHIR_JSON))
}

/// Middleware of the `/FHIR/R4` scope: an error response that is not FHIR already (a
/// problem+json, or a framework's plain text) becomes its `OperationOutcome`.
pub async fn render(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Handlers' and extractors' errors arrive as responses; only a middleware's own `Err` (none
    // of the service's guards answers with one) passes through as it is.
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_fhir(response.response()) {
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes_limited(body, 64 * 1024)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let problem = serde_json::from_slice::<Problem>(&bytes).unwrap_or_else(|_| Problem {
        problem_type: "about:blank".to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        code: status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "-"),
        detail: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
        field: None,
        holder: None,
    });
    let outcome = of_problem(status, &problem);
    let mut rewritten = HttpResponse::build(status);
    for (name, value) in head.headers() {
        if name != CONTENT_TYPE && name != actix_web::http::header::CONTENT_LENGTH {
            rewritten.append_header((name.clone(), value.clone()));
        }
    }
    let mut rewritten = rewritten.body(outcome.to_string());
    rewritten
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(ServiceResponse::new(request, rewritten))
}
