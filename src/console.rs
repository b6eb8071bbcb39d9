//! The prescriber console (issue 13): a static web app under `/console/`, its files embedded in
//! the binary (the console works on a practice LAN with no internet). It calls the JSON API like
//! any client; its own routes are not part of the API or its OpenAPI document.
//!
//! Its pages carry their own Content-Security-Policy ([`CSP`]): scripts and styles from the
//! console only (no inline script or style), data from the service only, and `blob:` images
//! and documents for the token preview and PDF. The EPS code tables the console shows come from
//! [`prescrypt_contract::codes`] at `/console/codes.json`, so they exist once.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use prescrypt_contract::codes::{CancelReason, Coded, Status, TreatmentType};

use crate::error::AppError;

/// Where the console is served.
pub const PREFIX: &str = "/console";

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob:; connect-src 'self' blob:; frame-src blob:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// One embedded file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../console/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("keys.js", "text/javascript; charset=utf-8"),
    asset!("nhs.js", "text/javascript; charset=utf-8"),
];

/// Mounts the console's routes (before the API's catch-all).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for method in [web::get as fn() -> actix_web::Route, web::head] {
        cfg.route(PREFIX, method().to(redirect))
            .route(&format!("{PREFIX}/"), method().to(index))
            .route(&format!("{PREFIX}/codes.json"), method().to(codes))
            .route(&format!("{PREFIX}/{{file}}"), method().to(file));
    }
}

async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, format!("{PREFIX}/")))
        .finish()
}

async fn index() -> Result<HttpResponse, AppError> {
    serve("index.html")
}

async fn file(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    serve(&name)
}

fn serve(name: &str) -> Result<HttpResponse, AppError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or(AppError::NotFound)?;
    Ok(page(asset.content_type).body(asset.bytes))
}

/// A console response: its content type, its CSP, and no caching (the assets are small and a
/// new version of the service must not meet an old console).
fn page(content_type: &'static str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    response
}

/// The code tables the console's selects offer.
#[derive(Debug, serde::Serialize)]
struct Codes {
    treatment_types: Vec<Coded>,
    cancel_reasons: Vec<Coded>,
    statuses: Vec<Coded>,
}

async fn codes() -> Result<HttpResponse, AppError> {
    let codes = Codes {
        treatment_types: TreatmentType::ALL.iter().map(|t| t.coded()).collect(),
        cancel_reasons: CancelReason::ALL.iter().map(|r| r.coded()).collect(),
        statuses: Status::ALL.iter().map(|s| s.coded()).collect(),
    };
    Ok(page("application/json").body(serde_json::to_vec(&codes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_embedded() {
        let index = std::str::from_utf8(ASSETS[0].bytes).expect("utf-8");
        for asset in ASSETS {
            assert!(!asset.bytes.is_empty(), "{}", asset.name);
        }
        for script in ["app.js", "console.css"] {
            assert!(index.contains(script), "{script}");
        }
        assert!(
            !index.contains("style=\""),
            "no inline style attributes (CSP)"
        );
        assert!(!index.contains("<script>"), "no inline script (CSP)");
    }
}
