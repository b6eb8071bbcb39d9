//! What was handed over, recorded from the counter: a scanned medicine pack fills the line's
//! GTIN, batch, expiry and serial; an expired pack is refused before anything is queued; an owed
//! item is supplied later with another product (a substitution); `pharmacy show` lists it all.

use prescrypt_testkit::{PHARMACY, Pharmacy, Service, prescrypt_bin};

/// A pack's GS1 DataMatrix as the scanner sends it: AIM `]d2`, GTIN, expiry 2030-12-31, batch,
/// FNC1 (GS), serial.
const PACK: &str = "]d201095011015300031730123110AB-12\u{1d}21SN0001";
/// The same product, expired at the end of January 2020.
const EXPIRED_PACK: &str = "]d201095011015300031720010010OLD";

#[test]
fn packs_owings_and_substitutions_are_recorded_and_shown() {
    let service = Service::start(prescrypt_bin!());
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token");
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{token}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");

    let expired = pharmacy.run(
        &[
            "dispense",
            &id,
            "--item",
            "1=complete",
            "--pack",
            &format!("1={EXPIRED_PACK}"),
        ],
        "",
    );
    assert_ne!(expired.code, 0, "{expired:?}");
    assert!(expired.stderr.contains("EXPIRED PACK"), "{expired:?}");
    let outbox = pharmacy.run(&["outbox", "--json"], "");
    assert_eq!(
        outbox.json()["entries"],
        serde_json::json!([]),
        "{outbox:?}"
    );

    let dispense = pharmacy.run(
        &[
            "dispense",
            &id,
            "--item",
            "1=complete",
            "--pack",
            &format!("1={PACK}"),
            "--item",
            "2=owing",
        ],
        "",
    );
    assert_eq!(dispense.code, 0, "{dispense:?}");
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0003", "{central}");
    assert_eq!(central["items"][1]["status"]["code"], "0004", "{central}");
    let supply = &central["items"][0]["supplies"][0];
    assert_eq!(supply["gtin"], "09501101530003", "{central}");
    assert_eq!(supply["batch"], "AB-12");
    assert_eq!(supply["expiry"], "2030-12-31");
    assert_eq!(supply["serial"], "SN0001");

    let owed = pharmacy.run(
        &[
            "dispense",
            &id,
            "--item",
            "2=complete",
            "--substitute",
            "2=42222111000001100:Amoxicillin 500mg capsules (Brand X)",
        ],
        "",
    );
    assert_eq!(owed.code, 0, "{owed:?}");
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0006", "{central}");
    assert_eq!(central["items"][1]["supplies"][0]["substitution"], true);

    let show = pharmacy.run(&["show", &id], "");
    assert_eq!(show.code, 0, "{show:?}");
    for expected in [
        "batch AB-12",
        "expires 2030-12-31",
        "serial SN0001",
        "Amoxicillin 500mg capsules (Brand X) (42222111000001100) SUBSTITUTED",
    ] {
        assert!(
            show.stdout.contains(expected),
            "{expected:?} in {}",
            show.stdout
        );
    }

    // The claim: the patient paid both charges; the substituted item was a broken bulk.
    let unknown = pharmacy.run(
        &[
            "claim",
            &id,
            "--exemption",
            "0001",
            "--charges-paid",
            "2",
            "--endorse",
            "2=QQ",
        ],
        "",
    );
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(unknown.stderr.contains("endorsement"), "{unknown:?}");
    let claim = pharmacy.run(
        &[
            "claim",
            &id,
            "--exemption",
            "0001",
            "--charges-paid",
            "2",
            "--endorse",
            "2=BB:21 of a pack of 28",
        ],
        "",
    );
    assert_eq!(claim.code, 0, "{claim:?}");
    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0008", "{central}");
    let claimed = &central["claim"];
    assert_eq!(claimed["charges_paid"], 2, "{central}");
    assert_eq!(
        claimed["items"][0]["endorsements"][0]["code"]["code"],
        "NDEC"
    );
    assert_eq!(claimed["items"][1]["endorsements"][0]["code"]["code"], "BB");
    assert_eq!(
        claimed["items"][1]["endorsements"][0]["text"],
        "21 of a pack of 28"
    );

    // The signed receipt, verified at the counter, kept, and printed for the patient.
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = dir.path().join("receipt.pdf");
    let receipt = pharmacy.run(&["receipt", &id, "--pdf", pdf.to_str().expect("path")], "");
    assert_eq!(receipt.code, 0, "{receipt:?}");
    for expected in [
        "signature verified",
        "batch AB-12",
        "SUBSTITUTED",
        "Broken Bulk (BB) (21 of a pack of 28)",
        "2 charge(s) paid",
    ] {
        assert!(
            receipt.stdout.contains(expected),
            "{expected:?} in {}",
            receipt.stdout
        );
    }
    let bytes = std::fs::read(&pdf).expect("the receipt PDF");
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&pdf).expect("pdf").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the patient's receipt is private");
    let json = pharmacy.run(&["--json", "receipt", &id], "");
    assert_eq!(json.code, 0, "{json:?}");
    let kept = json.json()["kept"].as_str().expect("kept").to_owned();
    let jws = std::fs::read_to_string(&kept).expect("the kept receipt");
    assert_eq!(jws.split('.').count(), 3, "a compact JWS: {jws}");
    assert_eq!(
        json.json()["receipt"]["items"][0]["supplies"][0]["batch"],
        "AB-12"
    );
}
