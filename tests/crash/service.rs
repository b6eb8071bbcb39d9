//! `prescrypt serve` SIGKILLed at random moments under the lifecycle load generator
//! (`examples/loadgen.rs --journal`), restarted on the same port and database each time; then
//! every acknowledged request is checked through the API and in the database file.
//!
//! `PRESCRYPT_CRASH_KILLS` (default 20) sets the number of kills, `PRESCRYPT_CRASH_SEED` the seed
//! of the kill delays (printed either way, so a failing run can be repeated).

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use prescrypt::auth::Role;
use prescrypt::store::schema::{dispense_notifications, idempotency_keys, prescriptions};
use prescrypt_pharmacy::api::Api;
use prescrypt_testkit::service::audit_verify;
use prescrypt_testkit::{PRESCRIBER, PRESCRIBER_ORG, Service, prescrypt_bin};
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest pause between a restart and the next kill.
const MAX_KILL_DELAY_MS: u64 = 700;
/// Concurrent load-generator clients.
const CLIENTS: &str = "6";

fn loadgen_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        escargot::CargoBuild::new()
            .package("prescrypt")
            .example("loadgen")
            .run()
            .unwrap_or_else(|e| panic!("building the loadgen example: {e}"))
            .path()
            .to_path_buf()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// One line of the load generator's journal.
#[derive(Debug, Clone, Deserialize)]
struct Outcome {
    org: String,
    key: String,
    op: String,
    replay: bool,
    id: Option<String>,
    status: Option<u16>,
    digest: Option<String>,
    replayed: bool,
    error: Option<String>,
}

impl Outcome {
    fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && self.digest.is_some()
    }
}

fn read_journal(path: &Path) -> Vec<Outcome> {
    let text = std::fs::read_to_string(path).expect("journal");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(n, line)| match serde_json::from_str(line) {
            Ok(outcome) => Some(outcome),
            // Only a cut last line is tolerable (the load generator exits cleanly here anyway).
            Err(e) if n + 1 == lines.len() => {
                eprintln!("ignoring a cut last journal line: {e}");
                None
            }
            Err(e) => panic!("journal line {n} unreadable ({e}): {line}"),
        })
        .collect()
}

fn sha256_hex(text: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()))
}

/// What the journal says was acknowledged, by operation: prescription id → (org, key, digest).
#[derive(Debug, Default)]
struct Acknowledged {
    creates: BTreeMap<String, (String, String)>,
    releases: BTreeMap<String, (String, String)>,
    dispenses: BTreeMap<String, (String, String)>,
    /// (org, key) → (status, digest) of every acknowledged key.
    keys: BTreeMap<(String, String), (u16, String)>,
}

/// The journal-only invariants: no refusals, no server errors, one answer per key.
fn check_journal(journal: &[Outcome]) -> Acknowledged {
    let mut acknowledged = Acknowledged::default();
    for outcome in journal {
        if let Some(status) = outcome.status {
            assert!(
                (200..300).contains(&status) || matches!(status, 408 | 429 | 503),
                "a well-formed request got {status}: {outcome:?}"
            );
        }
        if !outcome.acknowledged() {
            continue;
        }
        let status = outcome.status.expect("status");
        let digest = outcome.digest.clone().expect("digest");
        let slot = (outcome.org.clone(), outcome.key.clone());
        match acknowledged.keys.get(&slot) {
            Some(first) => assert_eq!(
                first,
                &(status, digest.clone()),
                "two different 2xx answers for one idempotency key: {outcome:?}"
            ),
            None => {
                acknowledged.keys.insert(slot, (status, digest));
            }
        }
        let id = outcome
            .id
            .clone()
            .expect("an acknowledged request names its prescription");
        let by_op = match outcome.op.as_str() {
            "create" => &mut acknowledged.creates,
            "release" => &mut acknowledged.releases,
            "dispense" => &mut acknowledged.dispenses,
            other => panic!("unknown operation {other}"),
        };
        let entry = by_op
            .entry(id)
            .or_insert_with(|| (outcome.org.clone(), outcome.key.clone()));
        assert_eq!(
            entry.1, outcome.key,
            "one prescription acknowledged under two keys for one operation: {outcome:?}"
        );
    }
    for id in acknowledged.dispenses.keys() {
        assert!(
            acknowledged.releases.contains_key(id),
            "dispensed unreleased {id}"
        );
    }
    for id in acknowledged.releases.keys() {
        assert!(
            acknowledged.creates.contains_key(id),
            "released uncreated {id}"
        );
    }
    acknowledged
}

fn count(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

/// Checks one acknowledged prescription through the API; returns its uuid.
fn check_through_api(api: &Api, acknowledged: &Acknowledged, id: &str) -> String {
    let view: Value = serde_json::from_str(
        &api.get(&format!("/prescriptions/{id}"))
            .unwrap_or_else(|e| panic!("acknowledged prescription {id} is not readable: {e}")),
    )
    .expect("json");
    let history: Value = serde_json::from_str(
        &api.get(&format!("/prescriptions/{id}/history"))
            .unwrap_or_else(|e| panic!("history of {id}: {e}")),
    )
    .expect("json");
    let events = history["events"].as_array().expect("events");
    let codes: Vec<&str> = view["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["39720311000001101", "39113611000001102"], "{view}");
    assert_eq!(view["prescriber"]["org"], "A83008", "{view}");
    assert_eq!(count(events, "created"), 1, "{id}: {events:?}");
    let status = view["status"]["code"].as_str().expect("status");
    if let Some((org, _)) = acknowledged.releases.get(id) {
        assert!(matches!(status, "0002" | "0006"), "{id} released: {view}");
        assert_eq!(view["dispenser"].as_str(), Some(org.as_str()), "{view}");
        assert_eq!(count(events, "released"), 1, "{id}: {events:?}");
    }
    if acknowledged.dispenses.contains_key(id) {
        assert_eq!(status, "0006", "{id} dispensed: {view}");
        for item in view["items"].as_array().expect("items") {
            assert_eq!(item["status"]["code"], "0001", "{view}");
            assert_eq!(item["dispensed_quantity"], item["quantity"], "{view}");
        }
        assert_eq!(count(events, "dispensed"), 1, "{id}: {events:?}");
    } else {
        assert!(count(events, "dispensed") <= 1, "{id}: {events:?}");
    }
    view["uuid"].as_str().expect("uuid").to_owned()
}

#[derive(QueryableByName)]
struct PragmaText {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// A row of `PRAGMA foreign_key_check`: a row of `table` whose key names no row of `parent`.
#[derive(QueryableByName)]
struct ForeignKeyViolation {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    rowid: Option<i64>,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = BigInt)]
    fkid: i64,
}

/// Checks the database file with the service stopped.
fn check_database(path: &Path, acknowledged: &Acknowledged, uuids: &HashMap<String, String>) {
    let mut conn =
        SqliteConnection::establish(&path.display().to_string()).expect("open the database");
    let integrity: Vec<PragmaText> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .expect("integrity_check");
    let integrity: Vec<&str> = integrity
        .iter()
        .map(|r| r.integrity_check.as_str())
        .collect();
    assert_eq!(integrity, ["ok"]);
    let violations: Vec<String> = diesel::sql_query("PRAGMA foreign_key_check")
        .load::<ForeignKeyViolation>(&mut conn)
        .expect("foreign_key_check")
        .iter()
        .map(|v| {
            format!(
                "{} row {:?} names no {} row (foreign key {})",
                v.table, v.rowid, v.parent, v.fkid
            )
        })
        .collect();
    assert!(
        violations.is_empty(),
        "foreign key violations: {violations:#?}"
    );

    let stored: HashMap<(String, String), (i32, String)> = idempotency_keys::table
        .select((
            idempotency_keys::org,
            idempotency_keys::key,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .load::<(String, String, i32, String)>(&mut conn)
        .expect("idempotency keys")
        .into_iter()
        .map(|(org, key, status, body)| ((org, key), (status, body)))
        .collect();
    for ((org, key), (status, digest)) in &acknowledged.keys {
        let (stored_status, body) = stored
            .get(&(org.clone(), key.clone()))
            .unwrap_or_else(|| panic!("acknowledged key {org}/{key} is not stored"));
        assert_eq!(i32::from(*status), *stored_status, "{org}/{key}");
        assert_eq!(
            &sha256_hex(body),
            digest,
            "{org}/{key}: stored answer differs"
        );
    }

    let per_prescription: Vec<(String, i64)> = dispense_notifications::table
        .group_by(dispense_notifications::prescription_uuid)
        .select((
            dispense_notifications::prescription_uuid,
            diesel::dsl::count_star(),
        ))
        .load(&mut conn)
        .expect("dispense notifications");
    let per_prescription: HashMap<String, i64> = per_prescription.into_iter().collect();
    assert!(
        per_prescription.values().all(|&n| n == 1),
        "a prescription with two dispense notifications"
    );
    for id in acknowledged.dispenses.keys() {
        assert_eq!(per_prescription.get(&uuids[id]), Some(&1), "{id}");
    }
    let stored_prescriptions: i64 = prescriptions::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert!(usize::try_from(stored_prescriptions).expect("count") >= acknowledged.creates.len());
}

fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

struct Load {
    child: Child,
    stdin: Option<ChildStdin>,
    journal: PathBuf,
}

impl Load {
    fn start(server: &Service) -> Self {
        let journal = server.dir.join("journal.jsonl");
        let mut child = Command::new(loadgen_bin())
            .args([
                "--clients",
                CLIENTS,
                "--seconds",
                "3600",
                "--until-eof",
                "--url",
            ])
            .arg(&server.url)
            .arg("--keys-dir")
            .arg(server.keys_dir())
            .arg("--journal")
            .arg(&journal)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(server.dir.join("loadgen.log")).expect("loadgen log"))
            .spawn()
            .expect("start the load generator");
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            journal,
        }
    }

    fn lines(&self) -> usize {
        std::fs::read_to_string(&self.journal)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "the load generator died"
        );
    }

    /// Closes its stdin (its stop signal) and waits for it to finish.
    fn stop(mut self) -> PathBuf {
        drop(self.stdin.take());
        if !wait_for(&mut self.child, Duration::from_secs(30)) {
            let _ = self.child.kill();
            panic!("the load generator did not stop");
        }
        self.journal
    }
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_request() {
    let kills = env_number("PRESCRYPT_CRASH_KILLS").unwrap_or(20);
    let seed = env_number("PRESCRYPT_CRASH_SEED").unwrap_or_else(|| rand::thread_rng().r#gen());
    println!("crash test: {kills} kills, seed {seed} (PRESCRYPT_CRASH_SEED={seed} repeats it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let loadgen = loadgen_bin();
    assert!(loadgen.exists());
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut server = Service::builder(prescrypt_bin!())
        .dir(dir.path())
        .port(free_port())
        .start();
    let mut load = Load::start(&server);
    let until = Instant::now() + Duration::from_secs(60);
    while load.lines() == 0 {
        assert!(Instant::now() < until, "no load reached the service");
        load.assert_running();
        thread::sleep(Duration::from_millis(20));
    }
    let mut lines_at_kill = Vec::new();
    for _ in 0..kills {
        thread::sleep(Duration::from_millis(rng.gen_range(0..=MAX_KILL_DELAY_MS)));
        load.assert_running();
        lines_at_kill.push(load.lines());
        server.restart();
    }
    // Some quiet load after the last restart, then stop it.
    thread::sleep(Duration::from_millis(1000));
    load.assert_running();
    let journal = read_journal(&load.stop());
    let load_done = started.elapsed();

    let acknowledged = check_journal(&journal);
    let recovered_by_replay = journal
        .iter()
        .filter(|o| !o.replay && o.replayed && o.acknowledged())
        .count();
    let errors = journal.iter().filter(|o| o.error.is_some()).count();
    println!(
        "{} requests journaled ({errors} without an answer), acknowledged: {} creates, {} releases, \
         {} dispenses; {} retries after a failure were answered by an idempotent replay; \
         {} deliberate replays",
        journal.len(),
        acknowledged.creates.len(),
        acknowledged.releases.len(),
        acknowledged.dispenses.len(),
        recovered_by_replay,
        journal
            .iter()
            .filter(|o| o.replay && o.acknowledged())
            .count(),
    );
    assert!(
        !acknowledged.dispenses.is_empty(),
        "no lifecycle completed: {}",
        server.log()
    );
    assert_eq!(server.starts, u32::try_from(kills).expect("kills") + 1);

    // Through the API, with the service up (4 readers in parallel).
    let api = server.api(server.token(Role::Prescriber, PRESCRIBER_ORG, PRESCRIBER));
    let ids: Vec<&String> = acknowledged.creates.keys().collect();
    let uuids = Mutex::new(HashMap::new());
    thread::scope(|scope| {
        for chunk in ids.chunks(ids.len().div_ceil(4).max(1)) {
            let (api, acknowledged, uuids) = (&api, &acknowledged, &uuids);
            scope.spawn(move || {
                for id in chunk {
                    let uuid = check_through_api(api, acknowledged, id);
                    uuids.lock().expect("lock").insert((*id).clone(), uuid);
                }
            });
        }
    });
    let uuids = uuids.into_inner().expect("lock");

    // The file itself, with the service stopped.
    server.kill();
    check_database(Path::new(server.database_url()), &acknowledged, &uuids);
    let verify = audit_verify(prescrypt_bin!(), server.database_url());
    assert!(verify.success(), "audit verify: {verify:?}");
    let kills_under_load = kills_under_load(&journal, &lines_at_kill);
    println!(
        "{kills} kills ({kills_under_load} with requests answered since the previous one), \
         load {:.1} s, total {:.1} s; {}",
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        verify.stdout.trim()
    );
    // A kill of an idle service proves nothing: most kills must hit it while it answers.
    assert!(
        kills_under_load * 2 >= usize::try_from(kills).expect("kills"),
        "only {kills_under_load} of {kills} kills came while the service was answering requests"
    );
}

/// How many kills came after the service had answered at least one request since it was
/// (re)started: the journal lines written between the previous kill and this one
/// (`lines_at_kill` holds the journal's length at each kill) include an HTTP answer.
fn kills_under_load(journal: &[Outcome], lines_at_kill: &[usize]) -> usize {
    let mut since = 0;
    let mut under_load = 0;
    for &until in lines_at_kill {
        let window = &journal[since.min(journal.len())..until.min(journal.len())];
        if window.iter().any(|outcome| outcome.status.is_some()) {
            under_load += 1;
        }
        since = until;
    }
    under_load
}
