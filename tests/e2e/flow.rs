//! Token photo → verified offline → released → dispensed → claimed, checked centrally.

use prescrypt_barcode::Token;
use prescrypt_barcode::render::{Dpi, TokenSheet, token_label_png};

use prescrypt_testkit::{PHARMACY, Pharmacy, Service, actions, prescrypt_bin};

#[test]
fn token_photo_to_dispensed() {
    let service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = Token::parse(created["token"].as_str().expect("token")).expect("token parses");
    let png = token_label_png(&TokenSheet::new(&token, Dpi::new(300).expect("dpi"))).expect("png");
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let photo = pharmacy.dir.path().join("token.png");
    std::fs::write(&photo, png).expect("write png");

    // Human output: the patient, NHS number 3-3-4, items, and the verification steps.
    let scan = pharmacy.run(&["scan", "--image", photo.to_str().expect("utf8")], "");
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(
        scan.stdout.contains("token signature verified offline"),
        "{scan:?}"
    );
    assert!(scan.stdout.contains("Jane Smith"), "{scan:?}");
    assert!(scan.stdout.contains("943 476 5919"), "{scan:?}");
    assert!(
        scan.stdout.contains("Paracetamol 500mg tablets"),
        "{scan:?}"
    );
    assert!(
        scan.stdout.contains("Prescription signature verified"),
        "{scan:?}"
    );
    assert_eq!(service.central(&id)["status"]["code"], "0002");
    assert_eq!(service.central(&id)["dispenser"], PHARMACY);

    // Scanning the same photo again (same pharmacy) is harmless.
    let again = pharmacy.run(
        &["scan", "--image", photo.to_str().expect("utf8"), "--json"],
        "",
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.json()["result"]["released"]["prescription"]["id"],
        id.as_str()
    );

    let dispense = pharmacy.run(&["dispense", &id, "--all-complete", "--json"], "");
    assert_eq!(dispense.code, 0, "{dispense:?}");
    assert_eq!(dispense.json()["entry"]["state"], "sent");
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0006", "{central}");

    let claim = pharmacy.run(
        &["claim", &id, "--exemption", "0004", "--evidence-seen"],
        "",
    );
    assert_eq!(claim.code, 0, "{claim:?}");
    assert_eq!(service.central(&id)["status"]["code"], "0008");

    let show = pharmacy.run(&["show", &id, "--json"], "");
    assert_eq!(show.code, 0, "{show:?}");
    assert_eq!(show.json()["prescription"]["status"]["code"], "0008");

    let history = pharmacy.run(&["history", &id, "--json"], "");
    assert_eq!(history.code, 0, "{history:?}");
    let events = history.json()["events"]
        .as_array()
        .cloned()
        .expect("events");
    let central_actions = actions(&service.history(&id));
    assert_eq!(actions(&events), central_actions);
    assert_eq!(
        central_actions
            .iter()
            .filter(|a| a.contains("dispens"))
            .count(),
        1,
        "{central_actions:?}"
    );

    // Every request went through the outbox and was delivered.
    let outbox = pharmacy.run(&["outbox", "list", "--json"], "");
    let entries = outbox.json()["entries"]
        .as_array()
        .cloned()
        .expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["state"] == "sent"), "{entries:?}");
}

#[test]
fn refusals_are_final_and_shown() {
    let service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    // Not released to this pharmacy: the centre refuses, the outbox marks it failed (exit 4).
    let dispense = pharmacy.run(&["dispense", &id, "--item", "1=complete"], "");
    assert_eq!(dispense.code, 4, "{dispense:?}");
    let list = pharmacy.run(&["outbox", "--json"], "");
    let entries = list.json()["entries"].as_array().cloned().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["state"], "failed");
    // A failed entry is never retried.
    let sync = pharmacy.run(&["outbox", "sync"], "");
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(
        sync.stdout.contains("Sent 0, refused 0, still queued 0"),
        "{sync:?}"
    );
}

#[test]
fn nominated_download_takes_every_batch() {
    let service = Service::start(prescrypt_bin!());
    let mut ids: Vec<String> = (0..27)
        .map(|_| {
            service.create(Some(PHARMACY))["id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let run = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(run.code, 0, "{run:?}");
    let result = run.json();
    let mut released: Vec<String> = result["released"]
        .as_array()
        .expect("released")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    released.sort();
    ids.sort();
    assert_eq!(released, ids);
    for id in &ids {
        assert_eq!(service.central(id)["status"]["code"], "0002");
    }
    // Nothing left: a second run releases none.
    let again = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["released"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_nominated_batch_whose_answer_was_lost_is_recovered_by_the_next_download() {
    let service = Service::start(prescrypt_bin!());
    let lost = service.create(Some(PHARMACY));
    let lost_id = lost["id"].as_str().expect("id");
    // The centre released it to this pharmacy, but the answer never reached the counter.
    let pharmacist = service.token(prescrypt::auth::Role::Pharmacist, PHARMACY, "P7654321");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (status, batch) = runtime.block_on(service.endpoint().post(
        "/api/v1/release/nominated",
        &pharmacist,
        &serde_json::json!({}),
    ));
    assert_eq!(status, reqwest::StatusCode::OK, "{batch}");
    assert_eq!(service.central(lost_id)["status"]["code"], "0002");
    let fresh = service.create(Some(PHARMACY));

    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let run = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(run.code, 0, "{run:?}");
    let result = run.json();
    assert_eq!(result["recovered"], 1, "{result}");
    let mut released: Vec<&str> = result["released"]
        .as_array()
        .expect("released")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    released.sort_unstable();
    let mut expected = vec![lost_id, fresh["id"].as_str().expect("id")];
    expected.sort_unstable();
    assert_eq!(released, expected);
    // Both are now copies at this counter: the next download recovers nothing.
    let again = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["recovered"], 0);
}

#[test]
fn withdraw_and_return_go_through_the_outbox() {
    let service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token");
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{token}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");
    let dispense = pharmacy.run(
        &[
            "dispense",
            &id,
            "--item",
            "1=partial:10",
            "--item",
            "2=not-dispensed:0002",
        ],
        "",
    );
    assert_eq!(dispense.code, 0, "{dispense:?}");
    assert_eq!(service.central(&id)["status"]["code"], "0003");
    let withdraw = pharmacy.run(&["withdraw", &id], "");
    assert_eq!(withdraw.code, 0, "{withdraw:?}");
    assert_eq!(service.central(&id)["status"]["code"], "0002");
    let back = pharmacy.run(&["return", &id, "--reason", "0002", "--json"], "");
    assert_eq!(back.code, 0, "{back:?}");
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0001", "{central}");
    assert!(central["dispenser"].is_null(), "{central}");
    let list = pharmacy.run(&["outbox", "--json"], "");
    let kinds: Vec<(String, String)> = list.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let sent = |k: &str| (k.to_owned(), "sent".to_owned());
    assert_eq!(kinds, [sent("dispense"), sent("withdraw"), sent("return")]);
}

/// `pharmacy find`: the patient's prescriptions this pharmacy holds or held, not the others.
#[test]
fn pharmacy_find_lists_what_the_pharmacy_holds_or_held() {
    let service = Service::start(prescrypt_bin!());
    let nominated = service.create(Some(PHARMACY));
    let elsewhere = service.create(None);
    let pharmacy = Pharmacy::login(&service, PHARMACY);

    let none = pharmacy.run(&["find", "--nhs-number", "943 476 5919", "--json"], "");
    assert_eq!(none.code, 0, "{none:?}");
    assert_eq!(none.json()["prescriptions"], serde_json::json!([]));

    let downloaded = pharmacy.run(&["nominated"], "");
    assert_eq!(downloaded.code, 0, "{downloaded:?}");
    let found = pharmacy.run(&["find", "--nhs-number", "9434765919", "--json"], "");
    assert_eq!(found.code, 0, "{found:?}");
    let found = found.json();
    let ids: Vec<&str> = found["prescriptions"]
        .as_array()
        .expect("prescriptions")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [nominated["id"].as_str().expect("id")]);
    assert_ne!(ids[0], elsewhere["id"].as_str().expect("id"));

    let human = pharmacy.run(
        &["find", "--nhs-number", "9434765919", "--status", "0002"],
        "",
    );
    assert_eq!(human.code, 0, "{human:?}");
    assert!(human.stdout.contains("1 prescription(s)"), "{human:?}");
    assert!(human.stdout.contains("With Dispenser"), "{human:?}");
    let filtered = pharmacy.run(
        &[
            "find",
            "--nhs-number",
            "9434765919",
            "--status",
            "0006",
            "--json",
        ],
        "",
    );
    assert_eq!(filtered.json()["prescriptions"], serde_json::json!([]));

    let bad = pharmacy.run(&["find", "--nhs-number", "1234567890"], "");
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(bad.stderr.contains("nhs_number"), "{bad:?}");
}

/// A GP system issues through the EPS FHIR API; the pharmacy client downloads it as nominated,
/// dispenses and claims it (issue 15).
#[test]
fn a_prescription_sent_as_fhir_is_dispensed_and_claimed_by_the_pharmacy_client() {
    let service = Service::start(prescrypt_bin!());
    let prescriber = service.token(
        prescrypt::auth::Role::Prescriber,
        prescrypt_testkit::PRESCRIBER_ORG,
        prescrypt_testkit::PRESCRIBER,
    );
    let signer = prescrypt_testkit::PrescriberSigner::generate();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let id = runtime.block_on(async {
        signer.enrol(&service.endpoint(), &prescriber).await;
        prescrypt_testkit::fhir::issue(&service.endpoint(), &prescriber, &signer).await
    });

    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let run = pharmacy.run(&["nominated", "--json"], "");
    assert_eq!(run.code, 0, "{run:?}");
    let released = run.json()["released"].clone();
    assert_eq!(released[0]["id"], id.as_str(), "{released}");
    assert_eq!(released[0]["patient"]["nhs_number"], "9449304130");
    let dispense = pharmacy.run(&["dispense", &id, "--all-complete", "--json"], "");
    assert_eq!(dispense.code, 0, "{dispense:?}");
    assert_eq!(service.central(&id)["status"]["code"], "0006");
    let claim = pharmacy.run(&["claim", &id, "--exemption", "0015"], "");
    assert_eq!(claim.code, 0, "{claim:?}");
    assert_eq!(service.central(&id)["status"]["code"], "0008");
}
