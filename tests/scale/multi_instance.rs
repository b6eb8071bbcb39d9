//! Two `prescrypt serve` processes on one PostgreSQL database race 200 conflicting operations
//! on the same prescriptions; the database must afterwards hold exactly what one instance
//! would have produced: one holder at a time, every successful dispense recorded once, no lost
//! update, an intact audit chain.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use prescrypt::auth::Role;
use prescrypt::store::schema::{audit_log, dispense_notifications, items, prescriptions};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use prescrypt_testkit::service::audit_verify;
use prescrypt_testkit::{dev_token, new_prescription, prescrypt_bin};

use crate::instance;
use crate::pg::{Cluster, require_postgres};

const PRESCRIPTIONS: usize = 10;
const OPERATIONS: usize = 200;
const PHARMACIES: [&str; 3] = ["FA001", "FA002", "FA003"];
const PRESCRIBER_ORG: &str = "A83008";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Release,
    /// Line 1, one unit.
    DispensePartial,
    /// Every line complete.
    DispenseComplete,
    Return,
    Cancel,
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    target: usize,
    org: &'static str,
    /// Dispenses carry a key; some keys are sent twice at once, once to each instance.
    key: Option<String>,
    instance: usize,
}

#[derive(Debug)]
struct Outcome {
    op: Op,
    status: StatusCode,
    body: Value,
    replayed: bool,
}

fn plan(seed: u64) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ops = Vec::with_capacity(OPERATIONS);
    while ops.len() < OPERATIONS {
        let target = rng.gen_range(0..PRESCRIPTIONS);
        let org = PHARMACIES[rng.gen_range(0..PHARMACIES.len())];
        let instance = ops.len() % 2;
        let roll = rng.gen_range(0..100);
        let kind = match roll {
            0..35 => Kind::Release,
            35..65 => Kind::DispensePartial,
            65..72 => Kind::DispenseComplete,
            72..88 => Kind::Return,
            _ => Kind::Cancel,
        };
        let is_dispense = matches!(kind, Kind::DispensePartial | Kind::DispenseComplete);
        let key = is_dispense.then(|| format!("k{}", ops.len()));
        let op = Op {
            kind,
            target,
            org,
            key,
            instance,
        };
        // A third of the dispenses are duplicated: the same key to the other instance at once.
        if is_dispense && rng.gen_range(0..3) == 0 && ops.len() + 1 < OPERATIONS {
            let mut twin = op.clone();
            twin.instance = 1 - instance;
            ops.push(op);
            ops.push(twin);
        } else {
            ops.push(op);
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_race_200_conflicting_operations_and_the_database_stays_consistent() {
    let Some(bin) = require_postgres("multi-instance") else {
        return;
    };
    let cluster = Cluster::start_primary(&bin);
    let url = cluster.create_database("prescrypt");
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    // The first instance creates the shared keys directory; both sign with the same ring.
    let first = instance::start("a", &url, &keys, &[]);
    let second = instance::start("b", &url, &keys, &[]);
    let servers = Arc::new([first, second]);

    let prescriber = dev_token(&keys, Role::Prescriber, PRESCRIBER_ORG, "G1234567");
    let mut created = Vec::new();
    for n in 0..PRESCRIPTIONS {
        let (status, body) = servers[n % 2]
            .endpoint()
            .post("/api/v1/prescriptions", &prescriber, &new_prescription())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        created.push(body);
    }
    let bearers: HashMap<&str, String> = PHARMACIES
        .iter()
        .map(|org| {
            (
                *org,
                dev_token(&keys, Role::Pharmacist, org, &format!("P{org}")),
            )
        })
        .collect();

    let ops = plan(0x5EED_2026);
    let mut tasks = Vec::new();
    for op in ops {
        let servers = servers.clone();
        let id = created[op.target]["id"].as_str().expect("id").to_owned();
        let token_text = created[op.target]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let bearer = match op.kind {
            Kind::Cancel => prescriber.clone(),
            _ => bearers[op.org].clone(),
        };
        tasks.push(tokio::spawn(async move {
            let server = &servers[op.instance];
            let (path, body) = match op.kind {
                Kind::Release => ("/api/v1/release".to_owned(), json!({"token": token_text})),
                Kind::DispensePartial => (
                    format!("/api/v1/prescriptions/{id}/dispense"),
                    json!({"items": [{"line": 1, "outcome": "partial", "quantity": 1}]}),
                ),
                Kind::DispenseComplete => (
                    format!("/api/v1/prescriptions/{id}/dispense"),
                    json!({"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}),
                ),
                Kind::Return => (
                    format!("/api/v1/prescriptions/{id}/return"),
                    json!({"reason": "0002"}),
                ),
                Kind::Cancel => (
                    format!("/api/v1/prescriptions/{id}/cancel"),
                    json!({"reason": "0001"}),
                ),
            };
            let reply = server
                .endpoint()
                .post_keyed(&path, &bearer, &body, op.key.as_deref())
                .await;
            Outcome {
                op,
                status: reply.status,
                body: reply.body,
                replayed: reply.replayed,
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }

    // Every answer is one a single instance could give: no 5xx, no optimistic-lock failure.
    for outcome in &outcomes {
        assert!(
            !outcome.status.is_server_error(),
            "{:?} → {} {}\nlogs: {} {}",
            outcome.op,
            outcome.status,
            outcome.body,
            servers[0].log_path().display(),
            servers[1].log_path().display()
        );
        assert_ne!(
            outcome.body["code"], "concurrent-update",
            "{:?}: the database must serialise, not fail",
            outcome.op
        );
    }
    let succeeded = |kind: Kind| {
        outcomes
            .iter()
            .filter(|o| o.op.kind == kind && o.status == StatusCode::OK)
            .count()
    };
    assert!(succeeded(Kind::Release) > 0 && succeeded(Kind::DispensePartial) > 0);
    assert!(
        outcomes
            .iter()
            .any(|o| o.status == StatusCode::CONFLICT
                && o.body["code"] == "held-by-another-dispenser"),
        "the plan must produce real conflicts"
    );

    // A duplicated key is applied at most once.
    let mut by_key: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for outcome in &outcomes {
        if let Some(key) = &outcome.op.key {
            by_key.entry(key).or_default().push(outcome);
        }
    }
    for (key, answers) in &by_key {
        let fresh = answers
            .iter()
            .filter(|o| o.status == StatusCode::OK && !o.replayed)
            .count();
        assert!(fresh <= 1, "key {key} applied {fresh} times");
        if answers.len() == 2 && fresh == 1 {
            let (a, b) = (&answers[0].body, &answers[1].body);
            let replay = answers.iter().find(|o| o.replayed);
            if let Some(replay) = replay {
                assert_eq!(replay.status, StatusCode::OK);
                assert_eq!(
                    a["id"], b["id"],
                    "a replay answers with the original response"
                );
            }
        }
    }

    let mut conn = prescrypt::store::connect(&url).expect("connect");
    for (n, prescription) in created.iter().enumerate() {
        let uuid = prescription["uuid"].as_str().expect("uuid");
        let (status, dispenser): (String, Option<String>) = prescriptions::table
            .filter(prescriptions::uuid.eq(uuid))
            .select((prescriptions::status, prescriptions::dispenser))
            .first(&mut conn)
            .expect("row");
        match status.as_str() {
            "0001" => assert_eq!(dispenser, None, "#{n}: To Be Dispensed has no holder"),
            "0002" | "0003" => assert!(dispenser.is_some(), "#{n}: With Dispenser has a holder"),
            _ => {}
        }

        // Replaying the audited events must never show a second holder.
        let events: Vec<(String, String)> = audit_log::table
            .filter(audit_log::prescription_uuid.eq(uuid))
            .order(audit_log::seq.asc())
            .select((audit_log::action, audit_log::org))
            .load(&mut conn)
            .expect("events");
        let mut holder: Option<String> = None;
        for (action, org) in &events {
            match action.as_str() {
                "released" => {
                    assert!(
                        holder.is_none(),
                        "#{n}: {org} released while {holder:?} held it: {events:?}"
                    );
                    holder = Some(org.clone());
                }
                "returned" => {
                    assert_eq!(holder.as_deref(), Some(org.as_str()), "#{n}: {events:?}");
                    holder = None;
                }
                "dispensed" | "withdrawn" | "claimed" => {
                    assert_eq!(holder.as_deref(), Some(org.as_str()), "#{n}: {events:?}");
                }
                _ => {}
            }
        }
        if matches!(status.as_str(), "0001" | "0002" | "0003") {
            assert_eq!(holder, dispenser, "#{n}: the audit trail and the row agree");
        }

        // Every successful dispense is recorded exactly once, and none is lost.
        let answered: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| {
                o.op.target == n
                    && matches!(o.op.kind, Kind::DispensePartial | Kind::DispenseComplete)
                    && o.status == StatusCode::OK
                    && !o.replayed
            })
            .collect();
        let notifications: i64 = dispense_notifications::table
            .filter(dispense_notifications::prescription_uuid.eq(uuid))
            .count()
            .get_result(&mut conn)
            .expect("count");
        let audited = events.iter().filter(|(a, _)| a == "dispensed").count();
        assert_eq!(
            usize::try_from(notifications).expect("count"),
            answered.len(),
            "#{n}"
        );
        assert_eq!(audited, answered.len(), "#{n}");
        // Stored as whole thousandths (exact decimals).
        let line_one: i64 = items::table
            .filter(items::prescription_uuid.eq(uuid))
            .filter(items::line.eq(1))
            .select(items::dispensed_quantity_milli)
            .first(&mut conn)
            .expect("item");
        let completed = answered.iter().any(|o| o.op.kind == Kind::DispenseComplete);
        let partials = answered
            .iter()
            .filter(|o| o.op.kind == Kind::DispensePartial)
            .count();
        let expected = if completed {
            32_000
        } else {
            i64::try_from(partials).expect("count") * 1_000
        };
        assert!(
            line_one == expected,
            "#{n}: line 1 dispensed {line_one}, the answers add up to {expected}"
        );
    }

    let report = audit_verify(prescrypt_bin!(), &url);
    assert!(report.success(), "{report:?}");
    assert!(report.stdout.contains("intact"), "{report:?}");
    drop(servers);
    drop(cluster);
}
