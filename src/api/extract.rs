//! Extractor failures (JSON body, query string) as the contract's errors.

use actix_web::HttpRequest;
use actix_web::error::JsonPayloadError;
use prescrypt_contract::limits::BODY_LIMIT;

use crate::error::AppError;

/// Maps actix's JSON extractor failures onto the contract's errors.
pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let app = match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            AppError::PayloadTooLarge { limit: BODY_LIMIT }
        }
        JsonPayloadError::ContentType => AppError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error) => from_serde(&error),
        other => AppError::MalformedJson(other.to_string()),
    };
    app.into()
}

fn from_serde(error: &serde_json::Error) -> AppError {
    let message = error.to_string();
    let quoted = message.split('`').nth(1).unwrap_or_default().to_owned();
    if message.starts_with("unknown field") {
        AppError::UnknownField {
            field: quoted,
            detail: message,
        }
    } else if message.starts_with("missing field") {
        AppError::field(quoted, message)
    } else if error.is_data() {
        AppError::invalid("invalid-field", "body", message)
    } else {
        AppError::MalformedJson(message)
    }
}

// The signature is actix's error-handler type.
#[allow(clippy::needless_pass_by_value)]
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    AppError::field("query", error.to_string()).into()
}
