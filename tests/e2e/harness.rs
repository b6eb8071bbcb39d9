//! Real processes for the end-to-end tests: the `prescrypt` service on port 0 with a temp
//! database and keys dir, the `pharmacy` client with temp config/data dirs, and helpers.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use prescrypt_pharmacy::api::Api;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PHARMACY: &str = "FA565";
pub const OTHER_PHARMACY: &str = "FQ123";
pub const PRESCRIBER_ORG: &str = "A83008";

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

pub fn prescrypt_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_prescrypt"))
}

/// A running central service. Stopped (killed) on drop; [`Service::restart`] keeps its data.
pub struct Service {
    pub dir: TempDir,
    pub url: String,
    child: Option<Child>,
}

impl Service {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut service = Self {
            dir,
            url: String::new(),
            child: None,
        };
        service.launch();
        service
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("service.log"))
            .expect("log file");
        let mut child = Command::new(prescrypt_bin())
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url"])
            .arg(self.dir.path().join("prescrypt.db"))
            .arg("--keys-dir")
            .arg(self.keys_dir())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start prescrypt serve");
        let stdout = child.stdout.take().expect("stdout");
        let rx = first_line(stdout);
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("service did not start: {}", self.log()));
        self.url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .to_owned();
        self.child = Some(child);
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same database and keys (on a new port).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// A bearer token from `prescrypt token`.
    pub fn token(&self, role: &str, org: &str, sub: &str) -> String {
        let out = Command::new(prescrypt_bin())
            .args([
                "token",
                "--role",
                role,
                "--org",
                org,
                "--sub",
                sub,
                "--keys-dir",
            ])
            .arg(self.keys_dir())
            .output()
            .expect("prescrypt token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    pub fn api(&self, token: String) -> Api {
        Api::new(&self.url, Some(token), Duration::from_secs(10)).expect("api")
    }

    pub fn prescriber(&self) -> Api {
        self.api(self.token("prescriber", PRESCRIBER_ORG, "G1234567"))
    }

    /// Creates a prescription as the prescriber; returns the service's answer.
    pub fn create(&self, nominated: Option<&str>) -> Value {
        let mut body = json!({
            "patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
            "items": [
                {"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32,
                 "unit": "tablet", "dosage": "2 four times a day"},
                {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21,
                 "unit": "capsule", "dosage": "1 three times a day"}
            ]
        });
        if let Some(ods) = nominated {
            body["nominated_pharmacy"] = json!(ods);
        }
        let text = self
            .prescriber()
            .post("/prescriptions", &body, None)
            .expect("create prescription");
        serde_json::from_str(&text).expect("json")
    }

    /// The central view of a prescription (as the prescriber).
    pub fn central(&self, id: &str) -> Value {
        serde_json::from_str(
            &self
                .prescriber()
                .get(&format!("/prescriptions/{id}"))
                .expect("get"),
        )
        .expect("json")
    }

    pub fn history(&self, id: &str) -> Vec<Value> {
        let text = self
            .prescriber()
            .get(&format!("/prescriptions/{id}/history"))
            .expect("history");
        let value: Value = serde_json::from_str(&text).expect("json");
        value["events"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn actions(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A pharmacy workstation: its own config and data directories.
pub struct Pharmacy {
    pub dir: TempDir,
    pub server: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: &Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
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
            service.token("pharmacist", ods, "P7654321") + "\n",
        )
        .expect("write token");
        let run = pharmacy.run(
            &["login", "--token-file", token_file.to_str().expect("utf8")],
            "",
        );
        assert_eq!(run.code, 0, "{run:?}");
        pharmacy
    }

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

/// What the proxy holds back of a dispense request; every other request passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Accepts the request and never forwards it: the service never sees it.
    Request,
    /// Forwards the request and withholds the service's answer.
    Answer,
}

/// A loopback TCP proxy in front of the service, run on its own tokio runtime: it passes every
/// request through but holds back a dispense (`POST …/dispense`) as `Hold` says, so a test can
/// kill the client while its dispense is unsent or applied but unacknowledged.
pub struct Proxy {
    pub url: String,
    /// Receives once the held request arrived (`Hold::Request`) or the service answered it
    /// (`Hold::Answer`).
    pub held: mpsc::Receiver<()>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(upstream: &str, hold: Hold) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("http url")
            .to_owned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, held) = mpsc::channel();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), hold, tx.clone()));
            }
        });
        Self {
            url,
            held,
            _runtime: runtime,
        }
    }
}

async fn relay(mut client: TcpStream, upstream: String, hold: Hold, held: mpsc::Sender<()>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let targeted = request_line.starts_with("POST ") && request_line.contains("/dispense ");
    if targeted && hold == Hold::Request {
        let _ = held.send(());
        // Keep the connection open and forward nothing until the client is gone.
        let _ = tokio::io::copy(&mut client, &mut tokio::io::sink()).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    if targeted {
        let mut first = [0u8; 1];
        if matches!(server_read.read(&mut first).await, Ok(1)) {
            let _ = held.send(());
        }
        // Swallow the answer; hold the client's side open until it goes away.
        let _ = tokio::io::copy(&mut server_read, &mut tokio::io::sink()).await;
        let _ = upload.await;
        drop(client_write);
    } else {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        upload.abort();
    }
}

/// The first line a child prints on stdout (`serve` prints `listening on …` once bound); the
/// rest is drained so the child never blocks on a full pipe.
pub fn first_line(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    rx
}
