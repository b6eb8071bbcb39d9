//! Development endpoints, mounted by `serve --dev` only (without it they answer 404 like any
//! path that does not exist) and left out of the OpenAPI document.

use actix_web::{HttpResponse, web};
use chrono::SecondsFormat;
use prescrypt_contract::views::{AdvanceClock, ClockView};
use serde_json::json;

use super::state::State;
use crate::audit;
use crate::auth::{Principal, Role};
use crate::clock::AdvanceError;
use crate::error::AppError;

/// `POST /api/v1/dev/clock` `{"advance_seconds": N}` (admin only): moves the service's clock
/// forward for every worker; answers the new now. The move is audited.
pub async fn advance_clock(
    state: State,
    who: Principal,
    body: web::Json<AdvanceClock>,
) -> Result<HttpResponse, AppError> {
    who.require(Role::Admin, "move the clock")?;
    let seconds = body.advance_seconds;
    let now = state.clock.advance(seconds).map_err(|error| match error {
        AdvanceError::OutOfRange => AppError::field("advance_seconds", error.to_string()),
        AdvanceError::TooFarAhead => {
            AppError::refused("clock-too-far-ahead", "advance_seconds", error.to_string())
        }
    })?;
    let detail = json!({
        "advance_seconds": seconds,
        "now": now.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    state
        .store
        .write(move |conn| {
            audit::append(
                conn,
                &who,
                "dev-clock-advanced",
                None,
                &detail,
                now.naive_utc(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(ClockView { now }))
}
