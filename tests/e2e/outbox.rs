//! The outbox across an outage and a crash: nothing lost, exactly one effect centrally.

use std::process::Stdio;
use std::time::Duration;

use prescrypt_testkit::{Hold, PHARMACY, Pharmacy, Proxy, Service, actions, prescrypt_bin};

fn dispense_events(service: &Service, id: &str) -> usize {
    actions(&service.history(id))
        .iter()
        .filter(|a| a.contains("dispense") && !a.contains("withdraw"))
        .count()
}

#[test]
fn outage_then_crash_mid_send_then_sync_gives_exactly_one_dispense() {
    let mut service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{token}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");

    // The centre goes down: the dispense is committed locally and queued (exit 5).
    service.kill();
    let queued = pharmacy.run(
        &[
            "dispense",
            &id,
            "--item",
            "1=complete",
            "--item",
            "2=partial:10",
        ],
        "",
    );
    assert_eq!(queued.code, 5, "{queued:?}");
    assert!(queued.stderr.contains("queued in the outbox"), "{queued:?}");
    let list = pharmacy.run(&["outbox", "list", "--json"], "");
    let entries = list.json()["entries"].as_array().cloned().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["state"], "queued");
    let key = entries[0]["idempotency_key"]
        .as_str()
        .expect("key")
        .to_owned();
    // Still down: a sync keeps it queued.
    let still = pharmacy.run(&["outbox", "sync"], "");
    assert_eq!(still.code, 5, "{still:?}");

    // The centre is back, but the client is killed after the centre applied the dispense and
    // before the answer reached it (a relay withholds the answer).
    service.restart();
    let relay = Proxy::start(&service.url, Hold::Answer);
    let mut client = pharmacy
        .command()
        .env("PHARMACY_SERVER", &relay.url)
        .args(["outbox", "sync"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sync");
    relay
        .held
        .recv_timeout(Duration::from_secs(30))
        .expect("the centre answered the relayed dispense");
    client.kill().expect("kill the client mid-send");
    let _ = client.wait();
    assert_eq!(service.central(&id)["status"]["code"], "0003");
    assert_eq!(dispense_events(&service, &id), 1);

    // After the crash the entry is still queued with the same key…
    let list = pharmacy.run(&["outbox", "list", "--json"], "");
    let entries = list.json()["entries"].as_array().cloned().expect("entries");
    assert_eq!(entries[0]["state"], "queued", "{entries:?}");
    assert_eq!(entries[0]["idempotency_key"], key.as_str());

    // …and the sync replays it safely: delivered, and still exactly one dispense centrally.
    service.restart();
    let pharmacy = Pharmacy {
        server: service.url.clone(),
        ..pharmacy
    };
    let sync = pharmacy.run(&["outbox", "sync", "--json"], "");
    assert_eq!(sync.code, 0, "{sync:?}");
    let report = sync.json()["report"].clone();
    assert_eq!(report["sent"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["sent"][0]["response"]["status"]["code"], "0003");
    assert_eq!(
        dispense_events(&service, &id),
        1,
        "{:?}",
        service.history(&id)
    );
    let central = service.central(&id);
    assert_eq!(
        central["items"][1]["dispensed_quantity"].as_f64(),
        Some(10.0),
        "{central}"
    );
}
