//! Every action against every reachable status, over HTTP: only the status machine's legal
//! transitions succeed; the rest are 409 (or 404 where the caller does not hold the prescription).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expiry::force_expiry_into_the_past;
use crate::helpers::*;

async fn in_status(app: &TestApp, status: &str) -> Value {
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let ph = app.pharmacist();
    let dispense = |body: Value, key: &'static str| {
        let id = id.clone();
        let ph = ph.clone();
        async move {
            let (s, v) = app.dispense(&ph, &id, &format!("{key}-{id}"), &body).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    match status {
        "0001" => {}
        "0005" => {
            app.post(
                &format!("/api/v1/prescriptions/{id}/cancel"),
                &app.prescriber(),
                &json!({}),
            )
            .await;
        }
        "0004" => force_expiry_into_the_past(app, &id).await,
        _ => {
            app.release(&ph, &token).await;
            match status {
                "0002" => {}
                "0003" => dispense(json!({"items": [{"line": 1, "outcome": "partial", "quantity": 1}]}), "setup").await,
                "0006" => dispense(json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}), "setup").await,
                "0007" | "0008" => {
                    dispense(json!({"items": [{"line": 1, "outcome": "not_dispensed", "reason": "0001"},
                                              {"line": 2, "outcome": "not_dispensed", "reason": "0001"}]}), "setup").await;
                    if status == "0008" {
                        app.post(&format!("/api/v1/prescriptions/{id}/claim"), &ph, &claim_nothing_supplied()).await;
                    }
                }
                other => panic!("no setup for {other}"),
            }
        }
    }
    let (_, now) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
        .await;
    assert_eq!(status_of(&now), status, "setup reached {status}");
    now
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Release,
    Return,
    Dispense,
    Withdraw,
    Claim,
}

async fn attempt(app: &TestApp, prescription: &Value, action: Action) -> (StatusCode, Value) {
    let id = prescription["id"].as_str().unwrap();
    let ph = app.pharmacist();
    match action {
        Action::Release => {
            app.release(&ph, prescription["token"].as_str().unwrap())
                .await
        }
        Action::Return => {
            app.post(
                &format!("/api/v1/prescriptions/{id}/return"),
                &ph,
                &json!({"reason": "0001"}),
            )
            .await
        }
        Action::Dispense => {
            app.dispense(
                &ph,
                id,
                &format!("attempt-{id}"),
                &json!({"items": [{"line": 1, "outcome": "complete"}]}),
            )
            .await
        }
        Action::Withdraw => {
            app.post(
                &format!("/api/v1/prescriptions/{id}/dispense/withdraw"),
                &ph,
                &json!({}),
            )
            .await
        }
        Action::Claim => {
            app.post(
                &format!("/api/v1/prescriptions/{id}/claim"),
                &ph,
                &claim_for(prescription),
            )
            .await
        }
    }
}

#[tokio::test]
async fn only_legal_transitions_succeed() {
    use Action::*;
    const OK: u16 = 200;
    const ILLEGAL: u16 = 409;
    const NOT_HELD: u16 = 404;
    let table: &[(&str, [(Action, u16); 5])] = &[
        (
            "0001",
            [
                (Release, OK),
                (Return, NOT_HELD),
                (Dispense, NOT_HELD),
                (Withdraw, NOT_HELD),
                (Claim, NOT_HELD),
            ],
        ),
        (
            "0002",
            [
                (Release, OK),
                (Return, OK),
                (Dispense, OK),
                (Withdraw, ILLEGAL),
                (Claim, ILLEGAL),
            ],
        ),
        (
            "0003",
            [
                (Release, OK),
                (Return, ILLEGAL),
                (Dispense, OK),
                (Withdraw, OK),
                (Claim, ILLEGAL),
            ],
        ),
        (
            "0006",
            [
                (Release, ILLEGAL),
                (Return, ILLEGAL),
                (Dispense, ILLEGAL),
                (Withdraw, OK),
                (Claim, OK),
            ],
        ),
        (
            "0007",
            [
                (Release, ILLEGAL),
                (Return, ILLEGAL),
                (Dispense, ILLEGAL),
                (Withdraw, OK),
                (Claim, OK),
            ],
        ),
        (
            "0008",
            [
                (Release, ILLEGAL),
                (Return, ILLEGAL),
                (Dispense, ILLEGAL),
                (Withdraw, ILLEGAL),
                // Claiming again within the claim window amends the claim.
                (Claim, OK),
            ],
        ),
        (
            "0005",
            [
                (Release, ILLEGAL),
                (Return, NOT_HELD),
                (Dispense, NOT_HELD),
                (Withdraw, NOT_HELD),
                (Claim, NOT_HELD),
            ],
        ),
        (
            "0004",
            [
                (Release, ILLEGAL),
                (Return, NOT_HELD),
                (Dispense, NOT_HELD),
                (Withdraw, NOT_HELD),
                (Claim, NOT_HELD),
            ],
        ),
    ];
    let app = spawn_app().await;
    for (status, attempts) in table {
        for (action, expected) in attempts {
            let prescription = in_status(&app, status).await;
            let (got, body) = attempt(&app, &prescription, *action).await;
            assert_eq!(got.as_u16(), *expected, "{action:?} from {status}: {body}");
            if *expected == ILLEGAL {
                assert_eq!(
                    code_of(&body),
                    "illegal-transition",
                    "{action:?} from {status}"
                );
            }
            if *expected == NOT_HELD {
                assert_eq!(code_of(&body), "prescription-not-found");
            }
        }
    }
}

#[tokio::test]
async fn expired_while_held_is_still_illegal_to_touch() {
    let app = spawn_app().await;
    let held = in_status(&app, "0002").await;
    force_expiry_into_the_past(&app, held["id"].as_str().unwrap()).await;
    for action in [
        Action::Return,
        Action::Dispense,
        Action::Claim,
        Action::Withdraw,
    ] {
        let (status, body) = attempt(&app, &held, action).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action:?}: {body}");
    }
}
