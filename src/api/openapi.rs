//! The OpenAPI 3 document of a route table (`super::routes`): each endpoint's operation from
//! its handler's annotation, the schemas of the view types, and the error responses that follow
//! from what an operation has (a bearer token, a body, an ID, a guard) rather than repeated on
//! every handler.

use actix_web::dev::ResourceDef;

use super::endpoint::Endpoint;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use prescrypt_contract::problem::PROBLEM_JSON;
use prescrypt_contract::views::{
    CancelRequest, CancelResult, ClaimLine, ClaimLineView, ClaimRequest, ClaimView, DispenseLine,
    DispenseRequest, Endorsement, EndorsementView, History, HistoryEvent, ItemView, NewItem,
    NewPatient, NewPrescription, NominatedRelease, Outcome, Patient, Prescriber, PrescriptionView,
    ReceiptView, ReleaseRequest, ReturnRequest, SearchPage, SuppliedProduct, Supply,
};
use prescrypt_contract::{Coded, Problem};

use super::audit::{CheckpointPage, SignedCheckpointView};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (EdDSA)")
                    .build(),
            ),
        );
    }
}

/// The errors an operation can answer with follow from what it has, so they are documented
/// from that rather than repeated on every handler: a bearer token (401, 403), a JSON body
/// (400, 408, 413, 415), a prescription ID in the path (400, 404), a write through `mutate`
/// (an optional `Idempotency-Key`: 400 when malformed, 422 when reused; 409 on a conflict).
fn document_problem_responses(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in &mut openapi.paths.paths {
        let has_id = path.contains("{id}");
        let api = path.starts_with("/api/v1/");
        if let Some(operation) = &mut item.get {
            document_problems(operation, has_id, false);
        }
        if let Some(operation) = &mut item.post {
            document_problems(operation, has_id, api);
        }
        if let Some(operation) = &mut item.delete {
            document_problems(operation, has_id, false);
        }
    }
}

fn document_problems(operation: &mut Operation, has_id: bool, write: bool) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    };
    if secured {
        add("401", "no, an invalid or an expired bearer token");
        add("403", "the caller's role may not do this");
    }
    if has_body || has_id || write {
        add(
            "400",
            "invalid request: body, prescription ID, query or header",
        );
    }
    if has_body {
        add(
            "408",
            "the body did not arrive within --body-timeout (body-timeout)",
        );
        add("413", "the body is larger than 64 KiB");
        add("415", "the body is not application/json");
    }
    if has_id {
        add("404", "no such prescription (or not visible to the caller)");
    }
    if write {
        add("409", "the prescription's status does not allow this");
        add(
            "422",
            "the Idempotency-Key was used before with a different request",
        );
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        let required = parameters
            .iter()
            .position(|p| p.name == "Idempotency-Key")
            .map_or(Required::False, |at| parameters.remove(at).required);
        parameters.push(idempotency_key(required));
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response
            && let Some(index) = response.content.get_index_of("application/json")
            && response.content[index].schema.as_ref().is_some_and(
                |schema| matches!(schema, RefOr::Ref(r) if r.ref_location.ends_with("/Problem")),
            )
        {
            let content = response.content.shift_remove_index(index).map(|(_, c)| c);
            if let Some(content) = content {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
        }
    }
}

fn problem(description: &str) -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if description.contains("bearer token") {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .build(),
        );
    }
    response.build()
}

/// The `Idempotency-Key` header: 1 to 128 visible ASCII characters.
fn idempotency_key(required: Required) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(required)
        .description(Some(
            "1 to 128 visible ASCII characters; a retry with the same key and request replays the first response",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Prescrypt", description = "Electronic prescription service: prescribing, release, dispensing."),
    components(schemas(
        Coded, Problem, NewPatient, NewItem, NewPrescription, ReleaseRequest, ReturnRequest,
        CancelRequest, Outcome, DispenseLine, SuppliedProduct, Supply, ClaimRequest, ClaimLine, Endorsement, ClaimView, ClaimLineView, EndorsementView, ReceiptView, DispenseRequest, Prescriber, Patient, ItemView,
        PrescriptionView, CancelResult, NominatedRelease, HistoryEvent, History, SearchPage,
        crate::audit::checkpoint::ChainHead, SignedCheckpointView, CheckpointPage,
    )),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The methods `doc` lists for a request path, as an `Allow` header value (`None` when the
/// path is none of the document's). A `GET` is answered for `HEAD` too.
pub fn allowed_methods(doc: &utoipa::openapi::OpenApi, path: &str) -> Option<String> {
    let item = doc
        .paths
        .paths
        .iter()
        .find(|(pattern, _)| ResourceDef::new(pattern.as_str()).is_match(path))?
        .1;
    let methods = [
        ("GET", item.get.is_some()),
        ("HEAD", item.get.is_some() || item.head.is_some()),
        ("POST", item.post.is_some()),
        ("PUT", item.put.is_some()),
        ("PATCH", item.patch.is_some()),
        ("DELETE", item.delete.is_some()),
    ];
    let allow: Vec<&str> = methods
        .iter()
        .filter(|(_, has)| *has)
        .map(|(name, _)| *name)
        .collect();
    Some(allow.join(", "))
}

/// The document of `endpoints` (served at `/api/v1/openapi.json`).
pub fn document(endpoints: &[Endpoint]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The crate version is part of the build, not of the contract; keep the snapshot stable.
    doc.info.version = "1".into();
    for endpoint in endpoints {
        if let Some(operation) = &endpoint.operation {
            doc.paths.add_path_operation(
                &endpoint.path,
                endpoint.methods.clone(),
                operation.clone(),
            );
        }
    }
    document_problem_responses(&mut doc);
    document_guard_responses(&mut doc, endpoints);
    doc
}

/// Adds the guards' answers to the OpenAPI document: 503 (`overloaded`, `timeout`,
/// `unavailable`) on every route but `/healthz`, 429 on the lookup routes, both
/// with `Retry-After`.
fn document_guard_responses(doc: &mut utoipa::openapi::OpenApi, endpoints: &[Endpoint]) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("seconds to wait before retrying"))
                    .build(),
            )
            .build()
    };
    for (path, item) in &mut doc.paths.paths {
        if crate::guard::exempt_from_shedding(path) && path != "/readyz" {
            continue;
        }
        let lookup = endpoints.iter().any(|e| e.lookup && e.path == *path);
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses.entry("503".into()).or_insert_with(|| {
                problem(
                    "overloaded, timed out or the store is unavailable; retry after Retry-After",
                )
                .into()
            });
            if lookup {
                responses.entry("429".into()).or_insert_with(|| {
                    problem("too many failed lookups from this organisation or address").into()
                });
            }
        }
    }
}
