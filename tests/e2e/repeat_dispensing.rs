//! A six-issue repeat-dispensing prescription nominated to a pharmacy, dispensed issue by issue
//! through the pharmacy client over simulated months (the service's `--dev` clock), one issue not
//! dispensed, the rest cancelled by the prescriber; then no-claim and retention by moving the
//! clock on.

use std::time::{Duration, Instant};

use prescrypt::auth::Role;
use prescrypt_testkit::{PHARMACY, Pharmacy, Service, nominated_prescription, prescrypt_bin};
use serde_json::{Value, json};

const DAY: i64 = 24 * 60 * 60;

fn advance(service: &Service, days: i64) {
    let admin = service.api(service.token(Role::Admin, "XA0001", "A0000001"));
    admin
        .post("/dev/clock", &json!({"advance_seconds": days * DAY}), None)
        .expect("move the service's clock");
}

/// Every issue of `id` as the tracker search shows them to the prescriber, by issue number.
fn issues(service: &Service, id: &str) -> Vec<(i64, String)> {
    let text = service
        .prescriber()
        .get("/prescriptions?nhs_number=9434765919")
        .expect("search");
    let page: Value = serde_json::from_str(&text).expect("json");
    let mut found: Vec<(i64, String)> = page["prescriptions"]
        .as_array()
        .expect("prescriptions")
        .iter()
        .filter(|p| p["id"] == json!(id))
        .map(|p| {
            (
                p["issue_number"].as_i64().expect("issue number"),
                p["status"]["code"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Waits (the sweep runs every second) until `done` holds for the issues of `id`.
fn wait_for(service: &Service, id: &str, done: impl Fn(&[(i64, String)]) -> bool) {
    let start = Instant::now();
    loop {
        let now = issues(service, id);
        if done(&now) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{now:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn six_issues_dispensed_over_months_then_cancelled_no_claimed_and_deleted() {
    let service = Service::builder(prescrypt_bin!())
        .flags([
            "--sweep-interval",
            "1s",
            "--claim-window",
            "90d",
            "--retention",
            "365d",
        ])
        .start();
    let mut body = nominated_prescription(PHARMACY);
    body["treatment_type"] = json!("0003");
    body["issue_count"] = json!(6);
    body["days_supply"] = json!(28);
    let created: Value = serde_json::from_str(
        &service
            .prescriber()
            .post("/prescriptions", &body, None)
            .expect("create"),
    )
    .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);

    for issue in 1..=4_i64 {
        // Each issue arrives by nominated download when due, and the pharmacy sees which it holds.
        let run = pharmacy.run(&["nominated", "--json"], "");
        assert_eq!(run.code, 0, "{run:?}");
        let released = run.json()["released"]
            .as_array()
            .cloned()
            .expect("released");
        assert_eq!(released.len(), 1, "issue {issue}: {released:?}");
        assert_eq!(released[0]["id"], json!(id));
        assert_eq!(released[0]["issue_number"], issue);
        assert_eq!(released[0]["issue_count"], 6);

        let show = pharmacy.run(&["show", &id], "");
        assert_eq!(show.code, 0, "{show:?}");
        assert!(
            show.stdout.contains(&format!("issue {issue} of 6")),
            "{show:?}"
        );
        let shown = pharmacy.run(&["show", &id, "--json"], "");
        assert_eq!(shown.json()["prescription"]["issue_number"], issue);

        // Issue 3 the patient did not want; the others are dispensed in full.
        let outcome = if issue == 3 {
            pharmacy.run(
                &[
                    "dispense",
                    &id,
                    "--item",
                    "1=not-dispensed:0001",
                    "--item",
                    "2=not-dispensed:0001",
                    "--json",
                ],
                "",
            )
        } else {
            pharmacy.run(&["dispense", &id, "--all-complete", "--json"], "")
        };
        assert_eq!(outcome.code, 0, "{outcome:?}");
        assert_eq!(outcome.json()["entry"]["state"], "sent", "{outcome:?}");

        // The next issue waits for its nominated download date: nothing to download yet.
        let early = pharmacy.run(&["nominated", "--json"], "");
        assert_eq!(early.json()["released"].as_array().map(Vec::len), Some(0));
        let central = service.central(&id);
        assert_eq!(central["issue_number"], issue + 1);
        assert_eq!(central["status"]["code"], "0000", "{central}");
        advance(&service, 28);
    }
    let expected_first_four = ["0006", "0006", "0007", "0006"];
    let now = issues(&service, &id);
    for (issue, want) in (1..).zip(expected_first_four) {
        assert!(
            now.contains(&(issue, want.to_owned())) || now.contains(&(issue, "0009".to_owned())),
            "issue {issue}: {now:?}"
        );
    }

    // The prescriber cancels the remaining issues (5 is due, 6 still in the future).
    let answer: Value = serde_json::from_str(
        &service
            .prescriber()
            .post(&format!("/prescriptions/{id}/cancel"), &json!({}), None)
            .expect("cancel"),
    )
    .expect("json");
    assert_eq!(answer["response"], Value::Null, "{answer}");
    let now = issues(&service, &id);
    assert_eq!(now[4], (5, "0005".to_owned()), "{now:?}");
    assert_eq!(now[5], (6, "0005".to_owned()), "{now:?}");
    let nothing = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(nothing.json()["released"].as_array().map(Vec::len), Some(0));

    // History shows every issue.
    let history = service.history(&id);
    for issue in 1..=6 {
        assert!(
            history.iter().any(|e| e["issue_number"] == issue),
            "issue {issue}: {history:?}"
        );
    }

    // Unclaimed dispensed / not-dispensed issues become No-Claimed once the window passes.
    advance(&service, 91);
    wait_for(&service, &id, |now| {
        now.iter().take(4).all(|(_, status)| status == "0009")
    });

    // A year after they finished, every issue is deleted; the audit log still verifies.
    advance(&service, 366);
    wait_for(&service, &id, <[(i64, String)]>::is_empty);
    let verify = std::process::Command::new(prescrypt_bin!())
        .args(["audit", "verify", "--database-url", service.database_url()])
        .arg("--keys-dir")
        .arg(service.keys_dir())
        .output()
        .expect("prescrypt audit verify");
    assert!(
        verify.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
