use futures_util_free::join_all;
use reqwest::StatusCode;

use crate::helpers::*;

/// `join_all` without a futures dependency: spawn and await in order.
mod futures_util_free {
    pub async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await.expect("task"));
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_pharmacies_race_for_one_prescription_exactly_one_wins() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let token = created["token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let bearer = app.token(
            prescrypt::auth::Role::Pharmacist,
            &format!("FX{n:03}"),
            &format!("P{n}"),
        );
        let client = app.client.clone();
        let url = app.url("/api/v1/release");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(bearer)
                .json(&serde_json::json!({"token": token}))
                .send()
                .await
                .expect("request");
            read(response).await
        }));
    }
    let results = join_all(tasks).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one release succeeds");
    let holder = winners[0].1["dispenser"].as_str().unwrap().to_owned();
    let losers: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!(losers.len(), 49);
    for (_, problem) in losers {
        assert_eq!(code_of(problem), "held-by-another-dispenser");
        assert_eq!(problem["holder"], holder.as_str());
    }
}

#[tokio::test]
async fn the_same_pharmacy_releasing_again_gets_200() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let token = created["token"].as_str().unwrap();
    let (a, _) = app.release(&app.pharmacist(), token).await;
    let (b, again) = app.release(&app.pharmacist(), token).await;
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
    assert_eq!(again["dispenser"], PHARMACY);
    let (c, problem) = app.release(&app.other_pharmacist(), token).await;
    assert_eq!(c, StatusCode::CONFLICT);
    assert_eq!(problem["holder"], PHARMACY);
}
