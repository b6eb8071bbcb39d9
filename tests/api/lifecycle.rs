use diesel::prelude::*;
use prescrypt::auth::Role;
use prescrypt::store::schema::{audit_log, idempotency_keys};
use prescrypt_testkit::PRESCRIBER;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn full_lifecycle_create_release_dispense_claim() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    assert_eq!(status_of(&created), "0001");
    assert_eq!(created["status"]["display"], "To Be Dispensed");
    assert_eq!(created["treatment_type"]["code"], "0001");
    assert_eq!(created["prescriber"]["org"], PRESCRIBER_ORG);
    assert_eq!(created["items"][0]["status"]["code"], "0007");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(prescrypt_barcode::PrescriptionId::parse(&id).is_ok());
    assert!(id.contains("-A83008-"), "{id}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), prescrypt_barcode::token::TOKEN_LEN);
    assert_eq!(
        created["expires_at"].as_str().unwrap()[..4]
            .parse::<i32>()
            .unwrap()
            * 12
            + created["expires_at"].as_str().unwrap()[5..7]
                .parse::<i32>()
                .unwrap()
            - created["created_at"].as_str().unwrap()[..4]
                .parse::<i32>()
                .unwrap()
                * 12
            - created["created_at"].as_str().unwrap()[5..7]
                .parse::<i32>()
                .unwrap(),
        6
    );

    let (status, released) = app.release(&app.pharmacist(), &token).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(status_of(&released), "0002");
    assert_eq!(released["dispenser"], PHARMACY);
    assert_eq!(released["items"][0]["status"]["code"], "0008");
    assert_eq!(released["jws"], created["jws"]);

    let (status, partly) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "k1",
            &json!({"items": [
                {"line": 1, "outcome": "complete"},
                {"line": 2, "outcome": "partial", "quantity": 14}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{partly}");
    assert_eq!(status_of(&partly), "0003");
    assert_eq!(partly["items"][0]["status"]["code"], "0001");
    assert_eq!(partly["items"][1]["status"]["code"], "0003");
    assert_eq!(partly["items"][1]["dispensed_quantity"], 14.0);

    let (status, done) = app
        .dispense(
            &app.pharmacist(),
            &id,
            "k2",
            &json!({"items": [{"line": 2, "outcome": "complete"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(status_of(&done), "0006");

    let (status, claimed) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/claim"),
            &app.pharmacist(),
            &claim_both_supplied(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(status_of(&claimed), "0008");

    // The prescriber still sees it, under any spelling of the ID.
    let compact = id.replace('-', "").to_lowercase();
    let (status, seen) = app
        .get(
            &format!("/api/v1/prescriptions/{compact}"),
            &app.prescriber(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&seen), "0008");

    let (status, history) = app
        .get(
            &format!("/api/v1/prescriptions/{id}/history"),
            &app.pharmacist(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["created", "released", "dispensed", "dispensed", "claimed"]
    );
    assert_eq!(history["events"][1]["actor"], "P7654321");
    assert_eq!(history["events"][1]["org"], PHARMACY);
}

#[tokio::test]
async fn not_dispensed_then_withdraw_restores_the_previous_state() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    let (status, none) = app
        .dispense(
            &app.pharmacist(),
            id,
            "nd",
            &json!({"items": [
                {"line": 1, "outcome": "not_dispensed", "reason": "0002"},
                {"line": 2, "outcome": "not_dispensed", "reason": "0010"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{none}");
    assert_eq!(status_of(&none), "0007");
    assert_eq!(none["items"][0]["not_dispensed_reason"]["code"], "0002");

    let path = format!("/api/v1/prescriptions/{id}/dispense/withdraw");
    let (status, withdrawn) = app.post(&path, &app.pharmacist(), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(status_of(&withdrawn), "0002");
    assert_eq!(withdrawn["items"][0]["status"]["code"], "0008");
    assert!(withdrawn["items"][0].get("not_dispensed_reason").is_none());

    // Nothing left to withdraw.
    let (status, problem) = app.post(&path, &app.pharmacist(), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&problem), "illegal-transition");
}

#[tokio::test]
async fn return_puts_it_back_for_any_pharmacy() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    app.release(&app.pharmacist(), token).await;
    let (status, returned) = app
        .post(
            &format!("/api/v1/prescriptions/{id}/return"),
            &app.pharmacist(),
            &json!({"reason": "0003"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(status_of(&returned), "0001");
    assert!(returned["dispenser"].is_null());
    assert_eq!(returned["items"][0]["status"]["code"], "0007");
    // The first pharmacy no longer holds it: 404 for it now.
    let (status, _) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, other) = app.release(&app.other_pharmacist(), token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other["dispenser"], OTHER_PHARMACY);
}

#[tokio::test]
async fn idempotent_dispense_replay_returns_the_original_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app.create_default().await;
    let id = created["id"].as_str().unwrap();
    app.release(&app.pharmacist(), created["token"].as_str().unwrap())
        .await;
    let body = json!({"items": [{"line": 1, "outcome": "partial", "quantity": 10}]});
    let (status, first) = app.dispense(&app.pharmacist(), id, "same-key", &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, replay) = app.dispense(&app.pharmacist(), id, "same-key", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, first);
    let (_, now) = app
        .get(&format!("/api/v1/prescriptions/{id}"), &app.pharmacist())
        .await;
    assert_eq!(
        now["items"][0]["dispensed_quantity"], 10.0,
        "the replay supplied nothing more"
    );

    let other_body = json!({"items": [{"line": 1, "outcome": "complete"}]});
    let (status, problem) = app
        .dispense(&app.pharmacist(), id, "same-key", &other_body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code_of(&problem), "idempotency-key-reused");

    let response = app
        .client
        .post(app.url(&format!("/api/v1/prescriptions/{id}/dispense")))
        .bearer_auth(app.pharmacist())
        .json(&other_body)
        .send()
        .await
        .unwrap();
    let (status, problem) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&problem), "idempotency-key-required");
    assert_eq!(problem["field"], "Idempotency-Key");
}

#[tokio::test]
async fn optional_idempotency_key_on_create_replays_the_same_prescription() {
    let app = spawn_app().await;
    let body = new_prescription();
    let (s1, a) = app
        .post_with(
            "/api/v1/prescriptions",
            &app.prescriber(),
            &body,
            Some("c-1"),
        )
        .await;
    let (s2, b) = app
        .post_with(
            "/api/v1/prescriptions",
            &app.prescriber(),
            &body,
            Some("c-1"),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a["id"], b["id"]);
}

#[tokio::test]
async fn a_key_replays_only_to_its_caller_audited_and_is_forgotten_after_the_retention() {
    let app = TestApp::builder()
        .flags(["--idempotency-retention", "1s", "--sweep-interval", "1s"])
        .spawn()
        .await;
    let body = new_prescription();
    let create = |bearer: String| {
        let app = &app;
        let body = &body;
        async move {
            app.post_keyed("/api/v1/prescriptions", &bearer, body, Some("shared-key"))
                .await
        }
    };
    let first = create(app.prescriber()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let colleague = app.token(Role::Prescriber, PRESCRIBER_ORG, "G7654321");
    let theirs = create(colleague).await;
    assert_eq!(
        theirs.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        theirs.body
    );
    assert!(
        !theirs
            .body
            .to_string()
            .contains(first.body["id"].as_str().unwrap()),
        "another caller never sees the first caller's answer: {}",
        theirs.body
    );
    let again = create(app.prescriber()).await;
    assert!(again.replayed);
    assert_eq!(again.body["id"], first.body["id"]);
    let mut conn = app.store.connection().unwrap();
    let replays: i64 = audit_log::table
        .filter(audit_log::action.eq("idempotent-replay"))
        .filter(audit_log::actor.eq(PRESCRIBER))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(replays, 1);
    drop(conn);

    // Past the retention the sweep forgets the key (and the answer it kept).
    let mut forgotten = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut conn = app.store.connection().unwrap();
        let left: i64 = idempotency_keys::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        if left == 0 {
            forgotten = true;
            break;
        }
    }
    assert!(forgotten, "the key was never pruned");
    let after = create(app.prescriber()).await;
    assert_eq!(after.status, StatusCode::CREATED);
    assert!(!after.replayed);
    assert_ne!(after.body["id"], first.body["id"]);
}

#[tokio::test]
async fn a_nominated_batch_sent_again_with_its_key_is_the_same_batch() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.create(&prescrypt_testkit::nominated_prescription(PHARMACY))
            .await;
    }
    let first = app
        .post_keyed(
            "/api/v1/release/nominated",
            &app.pharmacist(),
            &json!({}),
            Some("batch-1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["prescriptions"].as_array().unwrap().len(), 3);
    let again = app
        .post_keyed(
            "/api/v1/release/nominated",
            &app.pharmacist(),
            &json!({}),
            Some("batch-1"),
        )
        .await;
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn nominated_release_hands_out_at_most_25_and_bare_ids_only_when_nominated() {
    let app = spawn_app().await;
    let mut body = new_prescription();
    body["nominated_pharmacy"] = json!(PHARMACY);
    let mut ids = Vec::new();
    for _ in 0..27 {
        ids.push(app.create(&body).await["id"].as_str().unwrap().to_owned());
    }
    let plain = app.create_default().await;

    // A bare ID works for the nominated pharmacy, not for another one, nor for a non-nominated one.
    let (status, _) = app.release(&app.other_pharmacist(), &ids[0]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .release(&app.pharmacist(), plain["id"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, one) = app.release(&app.pharmacist(), &ids[0]).await;
    assert_eq!(status, StatusCode::OK, "{one}");

    let (status, batch) = app
        .post("/api/v1/release/nominated", &app.pharmacist(), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(batch["prescriptions"].as_array().unwrap().len(), 25);
    assert_eq!(batch["more"], true);
    let (_, rest) = app
        .post("/api/v1/release/nominated", &app.pharmacist(), &json!({}))
        .await;
    assert_eq!(rest["prescriptions"].as_array().unwrap().len(), 1);
    assert_eq!(rest["more"], false);
    let (_, empty) = app
        .post("/api/v1/release/nominated", &app.pharmacist(), &json!({}))
        .await;
    assert_eq!(empty["prescriptions"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn sequence_numbers_are_per_organisation() {
    let app = spawn_app().await;
    let first = app.create_default().await;
    let second = app.create_default().await;
    let seq = |v: &serde_json::Value| {
        i64::from_str_radix(&v["id"].as_str().unwrap()[14..19], 16).unwrap()
    };
    assert_eq!(seq(&second), seq(&first) + 1);
    let other = app.token(prescrypt::auth::Role::Prescriber, "B82005", "G7");
    let (_, elsewhere) = app
        .post("/api/v1/prescriptions", &other, &new_prescription())
        .await;
    assert_eq!(seq(&elsewhere), 0);
}
