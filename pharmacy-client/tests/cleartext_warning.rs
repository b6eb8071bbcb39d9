//! `http://` to a host other than loopback sends the bearer token and patient data in clear text:
//! every command says so on stderr, once.

use std::process::Command;

fn stderr_of(server: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_pharmacy"))
        .args(["--server", server, "--config-dir"])
        .arg(dir.path().join("config"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["outbox", "list"])
        .env_remove("PHARMACY_TOKEN")
        .env_remove("PHARMACY_TOKEN_FILE")
        .output()
        .expect("run pharmacy");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).expect("utf-8")
}

#[test]
fn plain_http_to_another_host_is_warned_about_once() {
    for server in [
        "http://rx.example:8080",
        "http://192.0.2.7",
        "HTTP://Pharmacy-Gateway.local/",
    ] {
        let stderr = stderr_of(server);
        assert_eq!(stderr.matches("warning:").count(), 1, "{server}: {stderr}");
        assert!(stderr.contains("not encrypted"), "{server}: {stderr}");
    }
}

#[test]
fn loopback_and_https_are_not_warned_about() {
    for server in [
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://rx.example",
    ] {
        assert_eq!(stderr_of(server), "", "{server}");
    }
}
