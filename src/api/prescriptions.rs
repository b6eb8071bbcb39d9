//! Reading prescriptions: one prescription's current state and its history, and the tracker
//! search (all audited).

use actix_web::HttpResponse;
use actix_web::web;
use prescrypt_contract::Problem;
use prescrypt_contract::routes;
use prescrypt_contract::views::{History, PrescriptionView, SearchPage};

use super::mutate::read_json;
use super::state::State;
use crate::auth::Principal;
use crate::error::AppError;
use crate::prescriptions as ops;

/// Tracker search: the prescriptions the caller may see (admin: all; others: what their
/// organisation issued, holds or held), newest first, a page at a time. Audited with its query.
#[utoipa::path(get, path = routes::PRESCRIPTIONS, params(ops::SearchQuery),
    responses((status = 200, body = SearchPage), (status = 400, body = Problem)),
    security(("bearer" = [])), tag = "prescriptions")]
pub async fn search(
    state: State,
    who: Principal,
    query: web::Query<ops::SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let valid = ops::validate_search(&who, query.into_inner())?;
    read_json(&state, who, move |conn, who, at| {
        ops::search(conn, who, &valid, at)
    })
    .await
}

/// The current state of a prescription (prescribing org, holding pharmacy).
#[utoipa::path(get, path = routes::PRESCRIPTION,
    params(("id" = String, Path, description = "short-form ID, any case, with or without hyphens")),
    responses((status = 200, body = PrescriptionView), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescriptions")]
pub async fn get(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    if state.store.has_replica() {
        let viewer = who.clone();
        let clock = state.clock.clone();
        let seen = state
            .store
            .read_fresh(move |conn| {
                ops::peek(conn, &viewer, &id, clock.now())?
                    .map(|loaded| Ok((ops::full_view(conn, &loaded)?, loaded.row.uuid)))
                    .transpose()
            })
            .await?;
        if let Some((view, uuid)) = seen {
            let clock = state.clock.clone();
            state
                .store
                .write(move |conn| ops::record_read(conn, &who, &uuid, "viewed", clock.now()))
                .await?;
            return Ok(HttpResponse::Ok().json(view));
        }
    }
    read_json(&state, who, move |conn, who, at| {
        ops::get(conn, who, &id, at)
    })
    .await
}

/// Every event of a prescription with actor and time.
#[utoipa::path(get, path = routes::HISTORY, params(("id" = String, Path)),
    responses((status = 200, body = History), (status = 404, body = Problem)),
    security(("bearer" = [])), tag = "prescriptions")]
pub async fn history(
    state: State,
    who: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ops::parse_id(&id)?;
    if state.store.has_replica() {
        let viewer = who.clone();
        let clock = state.clock.clone();
        let seen = state
            .store
            .read_fresh(move |conn| {
                ops::peek(conn, &viewer, &id, clock.now())?
                    .map(|loaded| {
                        Ok((
                            ops::events(conn, &loaded.row.prescription_id)?,
                            loaded.row.uuid,
                        ))
                    })
                    .transpose()
            })
            .await?;
        if let Some((history, uuid)) = seen {
            let clock = state.clock.clone();
            state
                .store
                .write(move |conn| {
                    ops::record_read(conn, &who, &uuid, "history-viewed", clock.now())
                })
                .await?;
            return Ok(HttpResponse::Ok().json(history));
        }
    }
    read_json(&state, who, move |conn, who, at| {
        ops::history(conn, who, &id, at)
    })
    .await
}
