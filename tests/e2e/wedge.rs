//! Keyboard-wedge input: stray whitespace and carriage returns, blank lines, bare IDs.

use prescrypt_testkit::{OTHER_PHARMACY, PHARMACY, Pharmacy, Service, prescrypt_bin};

#[test]
fn wedge_lines_with_stray_whitespace_release() {
    let service = Service::start(prescrypt_bin!());
    let by_token = service.create(None);
    let nominated = service.create(Some(PHARMACY));
    let elsewhere = service.create(Some(OTHER_PHARMACY));
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let token = by_token["token"].as_str().expect("token");
    let nominated_id = nominated["id"].as_str().expect("id");
    // A wedge typing with Caps Lock on, and without hyphens.
    let compact = nominated_id.replace('-', "").to_lowercase();
    let input = format!("\r\n   {token}  \r\n\t{compact}\r\n\n");
    let run = pharmacy.run(&["scan", "--stdin", "--json"], &input);
    assert_eq!(run.code, 0, "{run:?}");
    let results: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(results.len(), 2, "{run:?}");
    assert_eq!(results[0]["result"]["scanned"], "token");
    assert_eq!(results[1]["result"]["scanned"], "id");
    assert_eq!(
        service.central(by_token["id"].as_str().expect("id"))["status"]["code"],
        "0002"
    );
    assert_eq!(service.central(nominated_id)["status"]["code"], "0002");

    // A bare ID nominated elsewhere: the centre says 404 and the client explains the rule.
    let elsewhere_id = elsewhere["id"].as_str().expect("id");
    let run = pharmacy.run(&["scan", "--stdin"], &format!(" {elsewhere_id}\r\n"));
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains("only released to the pharmacy the patient"),
        "{run:?}"
    );
    assert_eq!(service.central(elsewhere_id)["status"]["code"], "0001");
}
