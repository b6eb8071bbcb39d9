//! The FHIR route table, relative to [`PREFIX`]; [`crate::api::routes`] mounts it in a scope of
//! its own (wrapped in [`super::outcome::render`]) with the same per-route guards as `/api/v1`.
//! Left out of the OpenAPI document: the CapabilityStatement describes it.

use utoipa::openapi::path::HttpMethod;

use super::{capability, claim, prepare, process_message, release, task};
use crate::api::endpoint::Endpoint;

/// Where the FHIR API lives.
pub const PREFIX: &str = "/FHIR/R4";

pub fn endpoints() -> Vec<Endpoint> {
    use Endpoint as E;
    use HttpMethod::{Get, Post};
    vec![
        E::undocumented(Get, "/metadata", capability::metadata),
        E::undocumented(Post, "/$prepare", prepare::prepare),
        E::undocumented(Post, "/$process-message", process_message::process_message).lookup(),
        E::undocumented(Post, "/Task/$release", release::release).lookup(),
        E::undocumented(Post, "/Task", task::create).lookup(),
        E::undocumented(Get, "/Task", task::search).lookup(),
        E::undocumented(Post, "/Claim", claim::claim).lookup(),
    ]
}
