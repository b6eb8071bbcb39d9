//! End to end over a real pty: `scanner-sim` runs the firmware core, the crate's host client
//! reads the scans, ACKs them and sends commands.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use nix::fcntl::OFlag;
use prescrypt_barcode::{PrescriptionId, Token};
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::host_client::HostClient;

const ID: &str = "D7AC09-A99968-4BA59C";

fn spawn(args: &[&str]) -> (Child, std::fs::File) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanner-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let path = first
        .trim()
        .strip_prefix("pty: ")
        .expect("first line names the pty")
        .to_owned();
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits() | OFlag::O_NOCTTY.bits())
        .open(&path)
        .unwrap();
    (child, port)
}

#[test]
fn sim_delivers_an_id_and_a_token_over_a_pty() {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let token = Token::sign(PrescriptionId::parse(ID).unwrap(), &key).text();
    let (mut child, port) = spawn(&[
        "--pty",
        "--id",
        ID,
        "--token",
        token.as_str(),
        "--linger-ms",
        "300",
    ]);
    let mut client = HostClient::new(port);
    let first = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a scan");
    assert_eq!(first.aim, AimId::CODE128);
    // The printed Code 128 carries the compact ID.
    assert_eq!(
        PrescriptionId::parse(first.text().unwrap()).unwrap(),
        PrescriptionId::parse(ID).unwrap()
    );
    let second = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a second scan");
    assert_eq!(second.aim, AimId::DATA_MATRIX);
    assert_eq!(second.text().unwrap(), token.as_str());
    let version = client.version().unwrap();
    assert!(version.starts_with("prescrypt-scanner-firmware"));
    drop(client);
    let status = child.wait().unwrap();
    assert!(status.success(), "sim exit: {status:?}");
}

#[test]
fn host_triggered_sim_waits_for_the_trigger_command() {
    let (mut child, port) = spawn(&["--pty", "--mode", "host", "--id", ID, "--linger-ms", "200"]);
    let mut client = HostClient::new(port);
    assert!(
        client
            .next_scan(Duration::from_millis(400))
            .unwrap()
            .is_none()
    );
    client.trigger().unwrap();
    let scan = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a scan after the trigger");
    assert_eq!(scan.aim, AimId::CODE128);
    drop(client);
    assert!(child.wait().unwrap().success());
}

#[test]
fn serialport_opens_the_sim_pty_like_the_pharmacy_client() {
    let (mut child, raw) = spawn(&["--pty", "--id", ID, "--linger-ms", "200"]);
    // Reopen the same path through the serialport crate, as `pharmacy scan --serial` does.
    let path = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&raw)
    ))
    .unwrap();
    let port = serialport::new(path.to_string_lossy(), 115_200)
        .timeout(Duration::from_millis(20))
        .open()
        .unwrap();
    drop(raw);
    let mut client = HostClient::new(port);
    let scan = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a scan");
    assert_eq!(scan.aim, AimId::CODE128);
    drop(client);
    assert!(child.wait().unwrap().success());
}

#[test]
fn sim_delivers_a_gs1_128_pack_label_with_its_aim_id_and_gs() {
    let (mut child, port) = spawn(&[
        "--pty",
        "--gs1",
        "(01)09501101530003(17)270131(10)AB12(21)SN1",
        "--linger-ms",
        "200",
    ]);
    let mut client = HostClient::new(port);
    let scan = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a scan");
    assert_eq!(scan.aim, AimId::GS1_128);
    assert_eq!(
        scan.text().unwrap(),
        "01095011015300031727013110AB12\u{1d}21SN1"
    );
    drop(client);
    assert!(child.wait().unwrap().success());
}

#[test]
fn sim_refuses_to_print_a_gs1_string_that_does_not_parse() {
    let output = Command::new(env!("CARGO_BIN_EXE_scanner-sim"))
        .args(["--stdout", "--gs1", "(01)09501101530004"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--gs1"));
}

#[test]
fn sim_delivers_a_gs1_datamatrix_pack_as_d2_with_gs_after_the_engine() {
    let (mut child, port) = spawn(&[
        "--pty",
        "--gs1-datamatrix",
        "(01)09501101530003(21)SN0001XYZ(17)270131(10)AB12345",
        "--linger-ms",
        "200",
    ]);
    let mut client = HostClient::new(port);
    let scan = client
        .next_scan(Duration::from_secs(20))
        .unwrap()
        .expect("a scan");
    assert_eq!(scan.aim, AimId::GS1_DATA_MATRIX);
    let text = scan.text().unwrap();
    assert_eq!(text, "010950110153000321SN0001XYZ\u{1d}1727013110AB12345");
    let wire = format!("]d2{text}");
    let pack = prescrypt_barcode::ElementString::parse(&wire)
        .unwrap()
        .pack()
        .unwrap();
    assert_eq!(
        (pack.gtin, pack.serial, pack.batch),
        ("09501101530003", Some("SN0001XYZ"), Some("AB12345"))
    );
    drop(client);
    assert!(child.wait().unwrap().success());
}
