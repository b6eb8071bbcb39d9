//! Throwaway PostgreSQL clusters in temp dirs: initdb + pg_ctl, streaming standbys made with
//! pg_basebackup -R, promotion. As root the server runs as the `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Where the server binaries are: `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else
/// `pg_config --bindir`, else PATH. `None` when PostgreSQL is not installed.
pub fn server_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some(bin) = versions.pop() {
        return Some(bin);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(bin) = from_pg_config.filter(|bin| bin.join("initdb").is_file()) {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

/// The binaries, or — outside CI — `None` after saying why the test is skipped. In CI
/// (`CI=true`) a missing PostgreSQL fails the test: it must never pass by not running.
pub fn require_postgres(test: &str) -> Option<PathBuf> {
    match server_bin() {
        Some(bin) => Some(bin),
        None if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => {
            panic!(
                "{test}: PostgreSQL server binaries not found (CI=true; install postgresql-15 or set PG_BIN)"
            )
        }
        None => {
            eprintln!(
                "SKIPPED {test}: no PostgreSQL server binaries (install postgresql-15 or set PG_BIN)"
            );
            None
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// One running cluster; stopped (immediate) when dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    root: TempDir,
    pub port: u16,
    running: bool,
}

impl Cluster {
    /// initdb + start a primary on a free loopback port (trust auth, fsync off: test data).
    pub fn start_primary(bin: &Path) -> Self {
        let cluster = Self::prepare(bin);
        cluster.run_owned(
            &cluster.bin.join("initdb"),
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        cluster.start()
    }

    /// A hot standby of `primary`, streaming from it (pg_basebackup -R writes the settings).
    pub fn start_standby_of(primary: &Cluster) -> Self {
        let cluster = Self::prepare(&primary.bin);
        cluster.run_owned(
            &cluster.bin.join("pg_basebackup"),
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--checkpoint=fast",
            ],
        );
        cluster.start()
    }

    fn prepare(bin: &Path) -> Self {
        let root = tempfile::Builder::new()
            .prefix("prescrypt-pg-")
            .tempdir()
            .expect("temp dir");
        let cluster = Self {
            bin: bin.to_owned(),
            root,
            port: free_port(),
            running: false,
        };
        if is_root() {
            ensure_postgres_user();
            run(Command::new("chown")
                .arg("postgres")
                .arg(cluster.root.path()));
        }
        cluster
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    fn start(mut self) -> Self {
        self.launch();
        self
    }

    /// Starts a stopped cluster again on the same port and data.
    pub fn restart(&mut self) {
        if !self.running {
            self.launch();
        }
    }

    fn launch(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 \
             -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on",
            self.port,
            self.root.path().display()
        );
        let out = self.pg_ctl(&[
            "-l",
            &self.log().display().to_string(),
            "-o",
            &options,
            "-w",
            "-t",
            "60",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
        self.running = true;
    }

    /// Ends recovery: the standby becomes a primary that accepts writes.
    pub fn promote(&self) {
        let out = self.pg_ctl(&["-w", "-t", "60", "promote"]);
        assert!(
            out.status.success(),
            "promote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (as a crash would, minus the data loss: WAL is on disk).
    pub fn stop(&mut self) {
        if self.running {
            let _best_effort = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
            self.running = false;
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data().display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        owned_command(&self.bin.join("pg_ctl"), &all)
            .output()
            .expect("run pg_ctl")
    }

    fn run_owned(&self, program: &Path, args: &[&str]) {
        let out = owned_command(program, args).output().expect("run");
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        prescrypt_testkit::database::create_pg_database(&self.url("postgres"), name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn owned_command(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn ensure_postgres_user() {
    let exists = Command::new("id")
        .arg("postgres")
        .output()
        .is_ok_and(|out| out.status.success());
    if !exists {
        run(Command::new("useradd").args([
            "--system",
            "--home-dir",
            "/var/lib/postgresql",
            "--shell",
            "/bin/bash",
            "postgres",
        ]));
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
