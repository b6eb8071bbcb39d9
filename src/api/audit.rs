//! `GET /api/v1/audit/checkpoints`: the signed checkpoints of the audit log, for anyone who
//! wants to hold the service to its log later (see `audit::checkpoint`).

use serde::{Deserialize, Serialize};

use super::state::State;
use crate::audit::checkpoint::{self, ChainHead, MAX_PAGE};
use crate::auth::Principal;
use crate::error::AppError;
use actix_web::{HttpResponse, web};

/// Which page of checkpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// Only checkpoints after this one (`next_after` of the previous page); default 0.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One signed checkpoint, exactly as a line of the checkpoint file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedCheckpointView {
    /// `prescrypt-audit-v1`.
    pub log: String,
    /// When the heads were read (RFC 3339, UTC).
    pub at: String,
    pub chains: Vec<ChainHead>,
    /// Compact JWS with detached payload (`header..signature`, EdDSA, `kid` in
    /// `/.well-known/jwks.json`) over the canonical JSON of the other fields.
    pub signature: String,
}

/// A page of checkpoints, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointPage {
    #[schema(value_type = Vec<SignedCheckpointView>)]
    pub checkpoints: Vec<serde_json::Value>,
    /// Pass as `after` for the next page (equal to `after` when there is nothing new).
    pub next_after: i64,
}

/// The signed checkpoints of the audit log (any authenticated caller: they hold no patient data).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", params(CheckpointQuery),
    responses((status = 200, body = CheckpointPage), (status = 400, body = prescrypt_contract::Problem)),
    security(("bearer" = [])), tag = "audit")]
pub async fn checkpoints(
    state: State,
    _who: Principal,
    query: web::Query<CheckpointQuery>,
) -> Result<HttpResponse, AppError> {
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(AppError::field("after", "a checkpoint id, 0 or more"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::field("limit", format!("1 to {MAX_PAGE}")));
    }
    let rows = state
        .store
        .read(move |conn| checkpoint::published(conn, after, limit))
        .await?;
    let next_after = rows.last().map_or(after, |(id, _)| *id);
    Ok(HttpResponse::Ok().json(CheckpointPage {
        checkpoints: rows.into_iter().map(|(_, value)| value).collect(),
        next_after,
    }))
}
