//! `prescrypt serve` as a real process, and the `prescrypt` command's other subcommands.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use prescrypt::auth::Role;
use prescrypt_pharmacy::api::Api;
use serde_json::Value;
use tempfile::TempDir;

use crate::http::Endpoint;
use crate::pharmacy::Run;

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds a [`Service`]: by default in a temp dir of its own (SQLite file and keys there), on
/// port 0, two workers, `RUST_LOG=warn`, stderr appended to `service.log` in the dir.
#[derive(Debug)]
pub struct ServiceBuilder {
    bin: PathBuf,
    dir: Option<PathBuf>,
    name: String,
    database_url: Option<String>,
    keys_dir: Option<PathBuf>,
    port: u16,
    global_flags: Vec<OsString>,
    flags: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl ServiceBuilder {
    /// Keep the database, keys and log in `dir` (which outlives the service) instead of a temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Names the log file (`NAME.log`).
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    pub fn keys_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keys_dir = Some(dir.into());
        self
    }

    /// Listen on this loopback port, and on it again after every restart (port 0: a free port
    /// each start).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Flags of `prescrypt` itself, before `serve` (e.g. `["--log-format", "json"]`).
    pub fn global_flags<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.global_flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// Without `--dev` (the kit's default): the development issuer is not trusted and every
    /// prescription must carry its prescriber's signature, as in production.
    pub fn production(mut self) -> Self {
        self.flags.retain(|flag| flag != crate::app::DEV_FLAG);
        self
    }

    /// More `prescrypt serve` flags (not `--bind`, `--database-url`, `--keys-dir`).
    pub fn flags<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// An environment variable of the process (e.g. `RUST_LOG`, `warn` by default).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts the service and waits for its `listening on` line.
    pub fn start(self) -> Service {
        let (temp, dir) = match self.dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().to_owned();
                (Some(temp), dir)
            }
        };
        let database_url = self
            .database_url
            .unwrap_or_else(|| dir.join("prescrypt.db").display().to_string());
        let keys_dir = self.keys_dir.unwrap_or_else(|| dir.join("keys"));
        let mut service = Service {
            log: dir.join(format!("{}.log", self.name)),
            _temp: temp,
            dir,
            bin: self.bin,
            database_url,
            keys_dir,
            port: self.port,
            global_flags: self.global_flags,
            flags: self.flags,
            env: self.env,
            url: String::new(),
            metrics_url: None,
            child: None,
            stdout: Arc::default(),
            reader: None,
            starts: 0,
            client: reqwest::Client::builder()
                // A fresh connection per request: a pooled keep-alive connection the server is
                // closing (or that a killed server left behind) would fail the request with a
                // reset, not an answer.
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
        };
        service.launch();
        service
    }
}

/// A running `prescrypt serve`; SIGKILLed when dropped. [`Service::restart`] keeps its data.
#[derive(Debug)]
pub struct Service {
    /// Where its database, keys and log are (unless given elsewhere).
    pub dir: PathBuf,
    _temp: Option<TempDir>,
    /// `http://127.0.0.1:PORT`, as the service printed it.
    pub url: String,
    /// `http://127.0.0.1:PORT` of its metrics listener (the kit starts one on port 0).
    pub metrics_url: Option<String>,
    /// How often it was started.
    pub starts: u32,
    bin: PathBuf,
    database_url: String,
    keys_dir: PathBuf,
    log: PathBuf,
    port: u16,
    global_flags: Vec<OsString>,
    flags: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    /// Reads the child's stdout into `stdout` until the child is gone.
    reader: Option<JoinHandle<()>>,
    client: reqwest::Client,
}

impl Service {
    /// A builder for the `prescrypt` binary at `bin` (see [`crate::prescrypt_bin!`]).
    pub fn builder(bin: &Path) -> ServiceBuilder {
        ServiceBuilder {
            bin: bin.to_owned(),
            dir: None,
            name: "service".into(),
            database_url: None,
            keys_dir: None,
            port: 0,
            global_flags: Vec::new(),
            flags: vec![crate::app::DEV_FLAG.into()],
            env: Vec::new(),
        }
    }

    /// The default service (see [`ServiceBuilder`]).
    pub fn start(bin: &Path) -> Self {
        Self::builder(bin).start()
    }

    /// Starts the process; on a fixed port, retries while the port is still taken.
    fn launch(&mut self) {
        let attempts = if self.port == 0 { 1 } else { 50 };
        for _ in 0..attempts {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .expect("log file");
            let mut command = Command::new(&self.bin);
            command
                .env("RUST_LOG", "warn")
                .args(&self.global_flags)
                .args(["serve", "--workers", "2", "--bind"])
                .arg(format!("127.0.0.1:{}", self.port))
                .args(["--metrics-listen", "127.0.0.1:0"])
                .arg("--database-url")
                .arg(&self.database_url)
                .arg("--keys-dir")
                .arg(&self.keys_dir)
                .args(&self.flags)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log);
            for (name, value) in &self.env {
                command.env(name, value);
            }
            let mut child = command.spawn().expect("start prescrypt serve");
            let (first, reader) =
                first_line(child.stdout.take().expect("stdout"), self.stdout.clone());
            self.reader = Some(reader);
            match first.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    let url = line
                        .strip_prefix("listening on ")
                        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                        .trim()
                        .to_owned();
                    if self.port != 0 {
                        assert_eq!(url, format!("http://127.0.0.1:{}", self.port));
                    }
                    self.url = url;
                    self.metrics_url = first.recv_timeout(START_TIMEOUT).ok().and_then(|line| {
                        line.strip_prefix("metrics on ")
                            .map(|u| u.trim().to_owned())
                    });
                    self.child = Some(child);
                    self.starts += 1;
                    return;
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!("prescrypt serve did not start: {}", self.log());
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the service");
            child.wait().expect("reap the service");
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stdout reader");
        }
    }

    /// Kills it and starts it again on the same database and keys (and on the same port when
    /// it was given one).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The process id of the running service.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn keys_dir(&self) -> &Path {
        &self.keys_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 30 lines of [`Service::log`] (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// What it printed on stdout so far, the `listening on` lines included.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Its HTTP endpoint, with a client that opens a fresh connection per request.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.url.clone(), self.client.clone()).with_metrics(self.metrics_url.clone())
    }

    /// A bearer token from its development issuer.
    pub fn token(&self, role: Role, org: &str, sub: &str) -> String {
        crate::dev_token(&self.keys_dir, role, org, sub)
    }

    /// The pharmacy client's API client (blocking) with `token`.
    pub fn api(&self, token: String) -> Api {
        Api::new(&self.url, Some(token), Duration::from_secs(30)).expect("api client")
    }

    pub fn prescriber(&self) -> Api {
        self.api(self.token(Role::Prescriber, crate::PRESCRIBER_ORG, crate::PRESCRIBER))
    }

    /// Creates a prescription as the prescriber (nominated to `nominated` if given); the answer.
    pub fn create(&self, nominated: Option<&str>) -> Value {
        let body = match nominated {
            Some(ods) => crate::nominated_prescription(ods),
            None => crate::new_prescription(),
        };
        let text = self
            .prescriber()
            .post("/prescriptions", &body, None)
            .expect("create prescription");
        serde_json::from_str(&text).expect("json")
    }

    /// The central view of a prescription (as the prescriber).
    pub fn central(&self, id: &str) -> Value {
        let text = self
            .prescriber()
            .get(&format!("/prescriptions/{id}"))
            .unwrap_or_else(|e| panic!("GET prescription {id}: {e}"));
        serde_json::from_str(&text).expect("json")
    }

    /// The history events of a prescription (as the prescriber).
    pub fn history(&self, id: &str) -> Vec<Value> {
        let text = self
            .prescriber()
            .get(&format!("/prescriptions/{id}/history"))
            .unwrap_or_else(|e| panic!("GET history of {id}: {e}"));
        let value: Value = serde_json::from_str(&text).expect("json");
        value["events"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _already_gone = child.kill();
            let _reaped = child.wait();
        }
    }
}

/// The `action` of each history event.
pub fn actions(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The first line a child prints on stdout (`serve` prints `listening on …` once bound); every
/// line is kept in `all`, so the child never blocks on a full pipe.
fn first_line(
    stdout: ChildStdout,
    all: Arc<Mutex<String>>,
) -> (mpsc::Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            {
                let mut all = all.lock().expect("stdout lock");
                all.push_str(&line);
                all.push('\n');
            }
            let _receiver_may_be_gone = tx.send(line);
        }
    });
    (rx, reader)
}

/// `prescrypt ARGS` to completion.
pub fn run_prescrypt<I, S>(bin: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run prescrypt");
    Run::from(&output)
}

/// `prescrypt audit verify --database-url URL`.
pub fn audit_verify(bin: &Path, database_url: &str) -> Run {
    run_prescrypt(bin, ["audit", "verify", "--database-url", database_url])
}
