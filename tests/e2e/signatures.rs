//! Prescriber signatures across the parts (issue 12): a GP system issues with
//! `prescrypt prescriber sign`, the counter verifies the prescriber's signature and the centre's
//! countersignature — again with the centre down — and refuses a prescription altered in the
//! database after it was accepted, or signed with a key revoked before.

use diesel::prelude::*;
use prescrypt_testkit::{PHARMACY, PRESCRIBER, PRESCRIBER_ORG, Pharmacy, Service, prescrypt_bin};
use serde_json::Value;

use crate::prescriber::{Workstation, enrolled};

/// `prescrypt prescriber sign` of the kit's prescription body: the created prescription.
fn signed_issue(gp: &Workstation) -> Value {
    gp.write(
        "rx-body.json",
        &prescrypt_testkit::new_prescription().to_string(),
    );
    let run = gp.run(
        &[
            "sign",
            "rx-body.json",
            "--key",
            "gp-key.pk8",
            "--token-file",
            "gp.jwt",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(run.stdout.trim()).expect("the created prescription")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// Runs SQL on the service's database behind its back (an insider with write access).
fn tamper(service: &Service, sql: &str) {
    let mut conn = prescrypt::store::connect(service.database_url()).expect("the database");
    let changed = diesel::sql_query(sql).execute(&mut conn).expect(sql);
    assert_eq!(changed, 1, "{sql}");
}

#[test]
fn a_prescription_the_gp_signed_verifies_at_the_counter_even_with_the_centre_down() {
    let mut service = Service::start(prescrypt_bin!());
    let (gp, kid) = enrolled(&service);
    let created = signed_issue(&gp);
    let id = text(&created, "id");
    let signed_by = format!("Signed by {PRESCRIBER} ({PRESCRIBER_ORG}), key {kid}");

    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(
        &["scan", "--stdin"],
        &format!("{}\n", text(&created, "token")),
    );
    assert_eq!(scan.code, 0, "{scan:?}");
    assert!(scan.stdout.contains(&signed_by), "{scan:?}");

    service.kill();
    let offline = pharmacy.run(&["show", id, "--offline"], "");
    assert_eq!(offline.code, 0, "{offline:?}");
    assert!(offline.stdout.contains(&signed_by), "{offline:?}");
    let json = pharmacy.run(&["--json", "show", id, "--offline"], "");
    assert_eq!(json.code, 0, "{json:?}");
    let signature = &json.json()["prescriber_signature"];
    assert_eq!(signature["sub"], PRESCRIBER, "{}", json.stdout);
    assert_eq!(signature["org"], PRESCRIBER_ORG, "{}", json.stdout);
    assert_eq!(signature["kid"], kid.as_str(), "{}", json.stdout);
}

#[test]
fn a_prescription_altered_in_the_database_after_acceptance_is_refused_at_the_counter() {
    let service = Service::start(prescrypt_bin!());
    let (gp, _) = enrolled(&service);
    let created = signed_issue(&gp);
    let uuid = text(&created, "uuid");
    // An insider raises the quantity of the first item; the centre serves it as stored.
    tamper(
        &service,
        &format!(
            "UPDATE items SET quantity_milli = quantity_milli * 10 \
             WHERE prescription_uuid = '{uuid}' AND line = 1"
        ),
    );
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(
        &["scan", "--stdin"],
        &format!("{}\n", text(&created, "token")),
    );
    assert_eq!(scan.code, 7, "{scan:?}");
    assert!(!scan.stdout.contains("Signed by"), "{scan:?}");
}

#[test]
fn a_prescription_signed_with_a_key_revoked_before_is_refused_at_the_counter() {
    let service = Service::start(prescrypt_bin!());
    let (gp, kid) = enrolled(&service);
    let created = signed_issue(&gp);
    // A centre that accepted the signature although the key had been revoked a minute before
    // (an insider, or a bug): the published key set says so, and the counter believes it.
    tamper(
        &service,
        &format!("UPDATE prescriber_keys SET revoked_at = created_at WHERE kid = '{kid}'"),
    );
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(
        &["scan", "--stdin"],
        &format!("{}\n", text(&created, "token")),
    );
    assert_eq!(scan.code, 7, "{scan:?}");
    assert!(scan.stderr.contains("revoked"), "{scan:?}");
}
