//! The pharmacy client SIGKILLed while its dispense is (a) written to the outbox but not yet
//! delivered, (b) applied centrally but not yet acknowledged to it. A real TCP proxy between
//! client and service holds the request or the answer; the next `outbox sync` straight to the
//! service must deliver it exactly once, with the same idempotency key.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use diesel::prelude::*;
use prescrypt::store::schema::{dispense_notifications, idempotency_keys};
use serde_json::Value;

use prescrypt_testkit::{Hold, PHARMACY, Pharmacy, Proxy, Service, actions, prescrypt_bin};

fn dispense_events(service: &Service, id: &str) -> usize {
    actions(&service.history(id))
        .iter()
        .filter(|a| a.as_str() == "dispensed")
        .count()
}

fn outbox_entries(pharmacy: &Pharmacy) -> Vec<Value> {
    let list = pharmacy.run(&["outbox", "list", "--json"], "");
    assert_eq!(list.code, 0, "{list:?}");
    list.json()["entries"].as_array().cloned().expect("entries")
}

/// Rows in the service's database: (idempotency keys named `key` of the pharmacy, dispense
/// notifications of the prescription).
fn stored(database: &Path, key: &str, uuid: &str) -> (i64, i64) {
    let mut conn = SqliteConnection::establish(&database.display().to_string()).expect("open");
    let keys = idempotency_keys::table
        .filter(idempotency_keys::org.eq(PHARMACY))
        .filter(idempotency_keys::key.eq(key))
        .filter(idempotency_keys::response_status.eq(200))
        .count()
        .get_result(&mut conn)
        .expect("count keys");
    let notifications = dispense_notifications::table
        .filter(dispense_notifications::prescription_uuid.eq(uuid))
        .count()
        .get_result(&mut conn)
        .expect("count notifications");
    (keys, notifications)
}

/// One kill: a fresh prescription, released by scanning, dispensed through the proxy, the client
/// killed while the proxy holds it, then synced straight to the service.
fn kill_mid_dispense(service: &Service, pharmacy: &Pharmacy, hold: Hold) {
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let uuid = created["uuid"].as_str().expect("uuid").to_owned();
    let token = created["token"].as_str().expect("token");
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{token}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");

    let proxy = Proxy::start(&service.url, hold);
    let mut client = pharmacy
        .command()
        .env("PHARMACY_SERVER", &proxy.url)
        .args([
            "dispense",
            &id,
            "--item",
            "1=complete",
            "--item",
            "2=partial:10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pharmacy dispense");
    proxy
        .held
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{hold:?}: the proxy never held the dispense"));
    client.kill().expect("SIGKILL the pharmacy client");
    let _ = client.wait();
    drop(proxy);

    // Killed before it could record anything: queued, never attempted as far as it knows.
    let entries: Vec<Value> = outbox_entries(pharmacy)
        .into_iter()
        .filter(|e| e["prescription_id"] == id.as_str())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["state"], "queued", "{entries:?}");
    assert_eq!(entries[0]["kind"], "dispense", "{entries:?}");
    let key = entries[0]["idempotency_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let database = Path::new(service.database_url());
    let applied = usize::from(hold == Hold::Answer);
    assert_eq!(dispense_events(service, &id), applied, "{hold:?}");
    assert_eq!(
        service.central(&id)["status"]["code"],
        if applied == 1 { "0003" } else { "0002" }
    );

    // The client again, straight to the service: delivered once, with the same key.
    let sync = pharmacy.run(&["outbox", "sync", "--json"], "");
    assert_eq!(sync.code, 0, "{sync:?}");
    let report = sync.json()["report"].clone();
    let sent = report["sent"].as_array().expect("sent");
    assert_eq!(sent.len(), 1, "{report}");
    assert_eq!(sent[0]["idempotency_key"], key.as_str(), "{report}");
    assert_eq!(sent[0]["response"]["status"]["code"], "0003", "{report}");
    assert_eq!(sent[0]["response"]["items"][1]["dispensed_quantity"], 10.0);

    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0003", "{central}");
    assert_eq!(central["items"][0]["status"]["code"], "0001", "{central}");
    assert_eq!(central["items"][1]["dispensed_quantity"], 10.0, "{central}");
    assert_eq!(
        dispense_events(service, &id),
        1,
        "{:?}",
        service.history(&id)
    );
    assert_eq!(stored(database, &key, &uuid), (1, 1), "{hold:?}");

    // Nothing left to send; a further sync changes nothing.
    assert!(
        outbox_entries(pharmacy)
            .iter()
            .all(|e| e["state"] == "sent"),
        "{:?}",
        outbox_entries(pharmacy)
    );
    let again = pharmacy.run(&["outbox", "sync", "--json"], "");
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.json()["report"]["sent"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(dispense_events(service, &id), 1);
}

#[test]
fn a_pharmacy_killed_mid_dispense_loses_nothing_and_duplicates_nothing() {
    let service = Service::start(prescrypt_bin!());
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    for round in 0..6 {
        let hold = if round % 2 == 0 {
            Hold::Request
        } else {
            Hold::Answer
        };
        kill_mid_dispense(&service, &pharmacy, hold);
    }
    let entries = outbox_entries(&pharmacy);
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert!(entries.iter().all(|e| e["state"] == "sent"), "{entries:?}");
}
