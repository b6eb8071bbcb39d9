//! Tracker search (`GET /api/v1/prescriptions`): keyset paging, filters, who sees what, bad
//! filters, audit.

use std::collections::HashSet;

use diesel::prelude::*;
use prescrypt::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const OTHER_PATIENT: &str = "9990000018";

fn ids(page: &Value) -> Vec<String> {
    page["prescriptions"]
        .as_array()
        .expect("prescriptions")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(app: &TestApp, bearer: &str, query: &str) -> Value {
    let (status, page) = app
        .get(&format!("/api/v1/prescriptions?{query}"), bearer)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

/// Every page of a search, following `next_cursor`.
async fn all_pages(app: &TestApp, bearer: &str, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let with_cursor = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let page = search(app, bearer, &with_cursor).await;
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

fn for_patient(nhs_number: &str) -> Value {
    let mut body = new_prescription();
    body["patient"]["nhs_number"] = json!(nhs_number);
    body
}

#[tokio::test]
async fn pages_are_complete_and_stable_newest_first() {
    let app = spawn_app().await;
    let mut made = Vec::new();
    for _ in 0..7 {
        made.push(
            app.create_default().await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let pages = all_pages(&app, &app.prescriber(), "limit=3").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "{pages:?}"
    );
    assert_eq!(pages.concat(), newest_first);

    // A prescription issued while a client pages through is not on later pages (it is newer
    // than the cursor), and nothing repeats or goes missing.
    let first = search(&app, &app.prescriber(), "limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    app.create_default().await;
    let second = search(&app, &app.prescriber(), &format!("limit=3&cursor={cursor}")).await;
    assert_eq!(ids(&second), newest_first[3..6]);

    // Default page size 50, at most 100.
    let page = search(&app, &app.prescriber(), "").await;
    assert_eq!(ids(&page).len(), 8);
    assert!(page["next_cursor"].is_null());
}

#[tokio::test]
async fn each_filter_narrows_the_search() {
    let app = spawn_app().await;
    let jane = app.create_default().await;
    let other = app.create(&for_patient(OTHER_PATIENT)).await;
    let released = app.create_default().await;
    app.release(&app.pharmacist(), released["token"].as_str().unwrap())
        .await;
    let gp = app.prescriber();

    let page = search(&app, &gp, &format!("nhs_number={OTHER_PATIENT}")).await;
    assert_eq!(ids(&page), [other["id"].as_str().unwrap()]);
    let page = search(&app, &gp, "nhs_number=943%20476%205919").await;
    assert_eq!(
        ids(&page),
        [
            released["id"].as_str().unwrap(),
            jane["id"].as_str().unwrap()
        ]
    );
    let page = search(&app, &gp, "status=0002").await;
    assert_eq!(ids(&page), [released["id"].as_str().unwrap()]);
    let page = search(&app, &gp, "status=0001&nhs_number=9434765919").await;
    assert_eq!(ids(&page), [jane["id"].as_str().unwrap()]);

    // Dates by the service's clock: two days on, a new prescription.
    let today = chrono::DateTime::parse_from_rfc3339(jane["created_at"].as_str().unwrap())
        .unwrap()
        .date_naive();
    let later = app.advance_clock(2 * 24 * 3600).await.date_naive();
    let newest = app.create_default().await;
    let page = search(&app, &gp, &format!("from={later}")).await;
    assert_eq!(ids(&page), [newest["id"].as_str().unwrap()]);
    let page = search(&app, &gp, &format!("to={today}")).await;
    assert_eq!(ids(&page).len(), 3, "to is inclusive: {page}");
    let page = search(&app, &gp, &format!("from={today}&to={today}")).await;
    assert_eq!(ids(&page).len(), 3);
    let yesterday = today.pred_opt().unwrap();
    let page = search(&app, &gp, &format!("to={yesterday}")).await;
    assert!(ids(&page).is_empty());
}

#[tokio::test]
async fn each_sees_its_own_the_pharmacy_what_it_holds_or_held_the_admin_all() {
    let app = spawn_app().await;
    let ours = app.create_default().await;
    let ours_id = ours["id"].as_str().unwrap().to_owned();
    let other_gp = app.token(Role::Prescriber, "B82099", "G7000001");
    let theirs = {
        let (status, created) = app
            .post("/api/v1/prescriptions", &other_gp, &new_prescription())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_owned()
    };
    let returned = app.create_default().await;
    let returned_id = returned["id"].as_str().unwrap().to_owned();
    app.release(&app.pharmacist(), returned["token"].as_str().unwrap())
        .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/prescriptions/{returned_id}/return"),
            &app.pharmacist(),
            &json!({"reason": "0001"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let held = app.create_default().await;
    let held_id = held["id"].as_str().unwrap().to_owned();
    app.release(&app.pharmacist(), held["token"].as_str().unwrap())
        .await;

    let set = |page: &Value| ids(page).into_iter().collect::<HashSet<_>>();
    let want = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<HashSet<_>>();
    assert_eq!(
        set(&search(&app, &app.prescriber(), "").await),
        want(&[&ours_id, &returned_id, &held_id])
    );
    assert_eq!(set(&search(&app, &other_gp, "").await), want(&[&theirs]));
    // Held now, or held before and handed back: the pharmacy keeps finding both.
    assert_eq!(
        set(&search(&app, &app.pharmacist(), "").await),
        want(&[&returned_id, &held_id])
    );
    assert!(ids(&search(&app, &app.other_pharmacist(), "nhs_number=9434765919").await).is_empty());
    assert_eq!(
        set(&search(&app, &app.admin(), "").await),
        want(&[&ours_id, &theirs, &returned_id, &held_id])
    );
}

#[tokio::test]
async fn bad_filters_are_400_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("nhs_number=9434765918", "nhs_number"),
        ("nhs_number=abc", "nhs_number"),
        ("status=9999", "status"),
        ("status=", "status"),
        ("from=2026-13-01", "from"),
        ("from=26-01-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-02-02&to=2026-02-01", "to"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ] {
        let (status, problem) = app
            .get(&format!("/api/v1/prescriptions?{query}"), &app.prescriber())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    let (status, problem) = app
        .get(
            "/api/v1/prescriptions?patient=9434765919",
            &app.prescriber(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = app.get("/api/v1/prescriptions", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_search_is_audited_with_its_query_and_each_prescription_shown() {
    use prescrypt::store::schema::audit_log::dsl::*;
    let app = spawn_app().await;
    let made = app.create_default().await;
    search(&app, &app.pharmacist(), "nhs_number=9434765919&status=0001").await;
    search(&app, &app.prescriber(), "nhs_number=9434765919&status=0001").await;
    let entries: Vec<(String, String, String)> = app
        .store
        .read(|conn| {
            audit_log
                .filter(action.eq_any(["searched", "search-viewed"]))
                .order((at.asc(), seq.asc()))
                .select((action, org, detail))
                .load(conn)
                .map_err(prescrypt::AppError::from)
        })
        .await
        .unwrap();
    let searched: Vec<&(String, String, String)> =
        entries.iter().filter(|e| e.0 == "searched").collect();
    assert_eq!(searched.len(), 2, "{entries:?}");
    let query: Value = serde_json::from_str(&searched[0].2).unwrap();
    assert_eq!(query["query"]["nhs_number"], "9434765919");
    assert_eq!(query["query"]["status"], "0001");
    assert_eq!(query["found"], 0, "the pharmacy holds nothing");
    let shown: Vec<_> = entries.iter().filter(|e| e.0 == "search-viewed").collect();
    assert_eq!(shown.len(), 1, "{entries:?}");
    assert_eq!(shown[0].1, PRESCRIBER_ORG);
    // Reads are not listed in the history.
    let (_, history) = app
        .get(
            &format!(
                "/api/v1/prescriptions/{}/history",
                made["id"].as_str().unwrap()
            ),
            &app.prescriber(),
        )
        .await;
    assert!(!history.to_string().contains("search-viewed"));
}
