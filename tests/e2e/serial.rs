//! The counter scanner: `scanner-sim` runs the firmware core on a pty; `pharmacy scan --serial`
//! reads it through the host link (ACK/NAK, retransmit) and releases the prescriptions.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use prescrypt_testkit::pharmacy::scanner_sim_bin;
use prescrypt_testkit::{PHARMACY, Pharmacy, Service, prescrypt_bin};

#[test]
fn scanner_on_a_pty_releases_token_and_nominated_id() {
    let service = Service::start(prescrypt_bin!());
    let by_token = service.create(None);
    let nominated = service.create(Some(PHARMACY));
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    let token = by_token["token"].as_str().expect("token");
    let nominated_id = nominated["id"].as_str().expect("id");

    let mut sim = Command::new(scanner_sim_bin())
        .args([
            "--pty",
            "--token",
            token,
            "--id",
            nominated_id,
            "--linger-ms",
            "2000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scanner-sim");
    let mut first = String::new();
    BufReader::new(sim.stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("pty line");
    let pty = first
        .trim()
        .strip_prefix("pty: ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();

    let run = pharmacy.run(&["scan", "--serial", &pty, "--count", "2", "--json"], "");
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(run.code, 0, "{run:?}");
    let results: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(results.len(), 2, "{run:?}");
    assert_eq!(results[0]["result"]["scanned"], "token");
    assert_eq!(results[0]["result"]["scan"]["aim"], "]d1");
    assert_eq!(results[1]["result"]["scanned"], "id");
    assert_eq!(results[1]["result"]["scan"]["aim"], "]C0");
    assert_eq!(
        service.central(by_token["id"].as_str().expect("id"))["status"]["code"],
        "0002"
    );
    assert_eq!(service.central(nominated_id)["status"]["code"], "0002");
}
