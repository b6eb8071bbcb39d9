//! The pharmacy client and the scanner simulator as real processes, built with `escargot`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use prescrypt::auth::Role;
use serde_json::Value;
use tempfile::TempDir;

use crate::service::Service;

/// Builds (once) a binary of another workspace package and returns its path. No `--target`, so
/// the build shares the artifacts of the `cargo test` that runs us.
fn built(package: &str, bin: &str) -> PathBuf {
    escargot::CargoBuild::new()
        .package(package)
        .bin(bin)
        .run()
        .unwrap_or_else(|e| panic!("building {bin}: {e}"))
        .path()
        .to_path_buf()
}

pub fn pharmacy_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("prescrypt-pharmacy", "pharmacy"))
}

pub fn scanner_sim_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("prescrypt-scanner-firmware", "scanner-sim"))
}

/// A finished command: exit code and output.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: &Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The last JSON line printed (with `--json`).
    pub fn json(&self) -> Value {
        self.stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("no JSON in {:?} / {:?}", self.stdout, self.stderr))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A pharmacy workstation: its own config and data directories.
#[derive(Debug)]
pub struct Pharmacy {
    pub dir: TempDir,
    pub server: String,
}

impl Pharmacy {
    /// A workstation logged in as a pharmacist of `ods` with `pharmacy login`.
    pub fn login(service: &Service, ods: &str) -> Self {
        let pharmacy = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            server: service.url.clone(),
        };
        let token_file = pharmacy.dir.path().join("issued-token");
        std::fs::write(
            &token_file,
            service.token(Role::Pharmacist, ods, crate::PHARMACIST) + "\n",
        )
        .expect("write token");
        let run = pharmacy.run(
            &["login", "--token-file", token_file.to_str().expect("utf8")],
            "",
        );
        assert_eq!(run.code, 0, "{run:?}");
        pharmacy
    }

    /// `pharmacy` with this workstation's directories and server, no token from the environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(pharmacy_bin());
        command
            .env("PHARMACY_CONFIG_DIR", self.dir.path().join("config"))
            .env("PHARMACY_DATA_DIR", self.dir.path().join("data"))
            .env("PHARMACY_SERVER", &self.server)
            .env("PHARMACY_TIMEOUT", "10")
            .env_remove("PHARMACY_TOKEN")
            .env_remove("PHARMACY_TOKEN_FILE");
        command
    }

    /// `pharmacy ARGS` with `stdin` as its input, to completion.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pharmacy");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        Run::from(&child.wait_with_output().expect("pharmacy output"))
    }
}
