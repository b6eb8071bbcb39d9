//! The one error type of the service. Each variant is part of the HTTP contract: it renders as
//! `application/problem+json` with a stable kebab-case `code`, and `field` for validation errors.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use prescrypt_contract::Problem;
use prescrypt_contract::limits::IDEMPOTENCY_KEY_HEADER;
use prescrypt_contract::problem::PROBLEM_JSON;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid bearer token: {0}")]
    Unauthenticated(String),
    #[error("the role {role} may not {action}")]
    Forbidden { role: String, action: &'static str },
    #[error("no such prescription")]
    PrescriptionNotFound,
    #[error("no such resource")]
    NotFound,
    #[error("this resource answers {allow} only")]
    MethodNotAllowed { allow: String },
    #[error("{detail}")]
    Invalid {
        code: &'static str,
        field: String,
        detail: String,
    },
    /// Well-formed, but refused by a rule (422); `field` names the member at fault, if one is.
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        field: Option<String>,
        detail: String,
    },
    /// Refused because of what was done before (409).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unknown field {field}")]
    UnknownField { field: String, detail: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    #[error("the prescription is held by dispenser {holder}")]
    HeldByAnotherDispenser { holder: String },
    #[error("cannot {action} a prescription in status {status}")]
    IllegalTransition { action: String, status: String },
    #[error("the prescription changed concurrently; retry")]
    ConcurrentUpdate,
    #[error("the prescriber has asked for this prescription to be cancelled; return it")]
    PendingCancellation,
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("the Idempotency-Key was used before with a different request")]
    IdempotencyKeyReused,
    #[error("the store is unavailable")]
    Unavailable(String),
    #[error("the service is at capacity; retry shortly")]
    Overloaded,
    #[error(
        "the request took longer than {seconds} s; it may or may not have taken effect, retry with the same Idempotency-Key"
    )]
    Timeout { seconds: u64 },
    #[error("the request body did not arrive within {seconds} s")]
    BodyTimeout { seconds: u64 },
    #[error("too many failed lookups; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn invalid(
        code: &'static str,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            code,
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// A 422 naming the field at fault.
    pub fn refused(code: &'static str, field: &str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            field: Some(field.to_owned()),
            detail: detail.into(),
        }
    }

    /// The same error with the field it names (a 400's, or a 422's if it names one) renamed:
    /// how another representation (FHIR) names the field the shared validation refused.
    #[must_use]
    pub fn rename_field(self, rename: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Invalid {
                code,
                field,
                detail,
            } => Self::Invalid {
                code,
                field: rename(field),
                detail,
            },
            Self::Unprocessable {
                code,
                field: Some(field),
                detail,
            } => Self::Unprocessable {
                code,
                field: Some(rename(field)),
                detail,
            },
            other => other,
        }
    }

    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::invalid("invalid-field", field, detail)
    }

    pub fn illegal(action: impl Into<String>, status: impl Into<String>) -> Self {
        Self::IllegalTransition {
            action: action.into(),
            status: status.into(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
            Self::PrescriptionNotFound => "prescription-not-found",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::Invalid { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::MalformedJson(_) => "malformed-json",
            Self::UnknownField { .. } => "unknown-field",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::HeldByAnotherDispenser { .. } => "held-by-another-dispenser",
            Self::IllegalTransition { .. } => "illegal-transition",
            Self::PendingCancellation => "pending-cancellation",
            Self::ConcurrentUpdate => "concurrent-update",
            Self::IdempotencyKeyRequired => "idempotency-key-required",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Timeout { .. } => "timeout",
            Self::BodyTimeout { .. } => "body-timeout",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "Unauthenticated",
            Self::Forbidden { .. } => "Forbidden",
            Self::PrescriptionNotFound | Self::NotFound => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::Invalid { .. } | Self::UnknownField { .. } => "Invalid request",
            Self::Unprocessable { .. } => "Refused",
            Self::Conflict { .. } => "Conflict",
            Self::MalformedJson(_) => "Malformed JSON",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::HeldByAnotherDispenser { .. } => "Held by another dispenser",
            Self::IllegalTransition { .. } => "Illegal transition",
            Self::PendingCancellation => "Pending cancellation",
            Self::ConcurrentUpdate => "Concurrent update",
            Self::IdempotencyKeyRequired => "Idempotency-Key required",
            Self::IdempotencyKeyReused => "Idempotency-Key reused",
            Self::Unavailable(_) | Self::Overloaded => "Service unavailable",
            Self::Timeout { .. } | Self::BodyTimeout { .. } => "Request timeout",
            Self::TooManyRequests { .. } => "Too many requests",
            Self::Internal(_) => "Internal error",
        }
    }

    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Unavailable(_) | Self::Overloaded | Self::Timeout { .. } => Some(1),
            Self::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let detail = match self {
            // Never leak store or internal details to the client; they are logged instead.
            Self::Unavailable(_) | Self::Internal(_) => self.title().to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("https://prescrypt.example/problems/{}", self.code()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            code: self.code().to_owned(),
            detail,
            field: match self {
                Self::Invalid { field, .. } | Self::UnknownField { field, .. } => {
                    Some(field.clone())
                }
                Self::Unprocessable { field, .. } => field.clone(),
                Self::IdempotencyKeyRequired => Some(IDEMPOTENCY_KEY_HEADER.to_owned()),
                _ => None,
            },
            holder: match self {
                Self::HeldByAnotherDispenser { holder } => Some(holder.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::PrescriptionNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Invalid { .. }
            | Self::MalformedJson(_)
            | Self::UnknownField { .. }
            | Self::IdempotencyKeyRequired => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::HeldByAnotherDispenser { .. }
            | Self::IllegalTransition { .. }
            | Self::PendingCancellation
            | Self::ConcurrentUpdate
            | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused | Self::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unavailable(_) | Self::Overloaded | Self::Timeout { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable(cause) | Self::Internal(cause) => {
                tracing::error!(code = self.code(), %cause, "request failed");
            }
            _ => tracing::debug!(code = self.code(), "request rejected"),
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        if matches!(self, Self::Unauthenticated(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.problem())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::PrescriptionNotFound,
            // A stored value the service cannot read (e.g. a code not in its table) is a defect
            // of the data, not an outage.
            diesel::result::Error::DeserializationError(cause) => {
                Self::Internal(format!("reading a stored value: {cause:?}"))
            }
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("serialisation: {error}"))
    }
}
