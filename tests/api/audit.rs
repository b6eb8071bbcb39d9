//! The audit log against an insider with write access to the database (issue 17): every chain
//! must have a head and nothing beyond it, and signed checkpoints kept outside the database catch
//! a rollback or a rewrite that recomputes every hash.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use data_encoding::BASE64URL_NOPAD;
use diesel::prelude::*;
use ed25519_dalek::Signer;
use prescrypt::audit::checkpoint::{Checkpoint, SignedCheckpoint};
use prescrypt::audit::{self, AuditEntry, Verification};
use prescrypt::keys::KeyRing;
use prescrypt::store::DbConnection;
use prescrypt::store::schema::{audit_head, audit_log};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// An app whose log has entries on several chains: `count` prescriptions created, each read once.
async fn app_with_entries(count: usize) -> TestApp {
    let app = spawn_app().await;
    for _ in 0..count {
        let created = app.create_default().await;
        let id = created["id"].as_str().unwrap();
        app.get(&format!("/api/v1/prescriptions/{id}"), &app.prescriber())
            .await;
    }
    app
}

/// The chain with the most entries and its length.
fn longest_chain(conn: &mut DbConnection) -> (i32, i64) {
    audit_head::table
        .select((audit_head::id, audit_head::seq))
        .order((audit_head::seq.desc(), audit_head::id.asc()))
        .first(conn)
        .unwrap()
}

fn entry(conn: &mut DbConnection, chain: i32, seq: i64) -> AuditEntry {
    audit_log::table
        .filter(audit_log::chain.eq(chain))
        .filter(audit_log::seq.eq(seq))
        .select(AuditEntry::as_select())
        .first(conn)
        .unwrap()
}

fn is_broken(outcome: &Verification, expected_chain: i32) -> bool {
    matches!(outcome, Verification::Broken { chain, .. } if *chain == expected_chain)
}

#[tokio::test]
async fn a_chain_whose_head_was_deleted_is_broken_even_if_an_entry_was_edited() {
    let app = app_with_entries(3).await;
    let mut conn = app.store.connection().unwrap();
    let (chain, _) = longest_chain(&mut conn);
    diesel::delete(audit_head::table.filter(audit_head::id.eq(chain)))
        .execute(&mut conn)
        .unwrap();
    diesel::update(
        audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::seq.eq(1)),
    )
    .set(audit_log::actor.eq("someone-else"))
    .execute(&mut conn)
    .unwrap();
    let outcome = audit::verify(&mut conn).unwrap();
    assert!(is_broken(&outcome, chain), "{outcome:?}");
    let Verification::Broken { reason, .. } = outcome else {
        unreachable!()
    };
    assert!(reason.contains("no head"), "{reason}");
}

#[tokio::test]
async fn a_deleted_head_of_an_empty_chain_is_broken_too() {
    let app = spawn_app().await;
    let mut conn = app.store.connection().unwrap();
    diesel::delete(audit_head::table.filter(audit_head::id.eq(audit::CHAINS)))
        .execute(&mut conn)
        .unwrap();
    let outcome = audit::verify(&mut conn).unwrap();
    assert!(is_broken(&outcome, audit::CHAINS), "{outcome:?}");
}

#[tokio::test]
async fn entries_beyond_the_head_are_broken() {
    let app = app_with_entries(3).await;
    let mut conn = app.store.connection().unwrap();
    let (chain, length) = longest_chain(&mut conn);
    assert!(length >= 2, "{length}");
    // The head moved back one entry; the last entry stays, now beyond the head.
    let previous = entry(&mut conn, chain, length - 1);
    diesel::update(audit_head::table.filter(audit_head::id.eq(chain)))
        .set((
            audit_head::seq.eq(length - 1),
            audit_head::hash.eq(&previous.hash),
        ))
        .execute(&mut conn)
        .unwrap();
    let outcome = audit::verify(&mut conn).unwrap();
    assert!(is_broken(&outcome, chain), "{outcome:?}");
    let Verification::Broken { seq, reason, .. } = outcome else {
        unreachable!()
    };
    assert_eq!(seq, length, "{reason}");
    assert!(reason.contains("beyond"), "{reason}");
}

#[tokio::test]
async fn a_truncated_chain_with_its_head_moved_back_is_consistent_on_its_own() {
    // Without an anchor outside the database this rollback cannot be told from a shorter log:
    // the checkpoint tests below catch it.
    let app = app_with_entries(3).await;
    let mut conn = app.store.connection().unwrap();
    let (chain, length) = longest_chain(&mut conn);
    truncate(&mut conn, chain, length - 1);
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { .. }
    ));
}

/// Cuts `chain` back to `keep` entries and moves its head back to match, as an insider would.
fn truncate(conn: &mut DbConnection, chain: i32, keep: i64) {
    let hash = if keep == 0 {
        "0".repeat(64)
    } else {
        entry(conn, chain, keep).hash
    };
    diesel::delete(
        audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::seq.gt(keep)),
    )
    .execute(conn)
    .unwrap();
    diesel::update(audit_head::table.filter(audit_head::id.eq(chain)))
        .set((audit_head::seq.eq(keep), audit_head::hash.eq(hash)))
        .execute(conn)
        .unwrap();
}

/// `prescrypt audit …` on the app's database and keys.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prescrypt"))
        .arg("audit")
        .args(args)
        .arg("--database-url")
        .arg(&app.database_url)
        .arg("--keys-dir")
        .arg(app.keys_dir())
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_cli_reports_a_missing_head() {
    let app = app_with_entries(1).await;
    let ok = cli(&app, &["verify"]);
    assert!(ok.status.success(), "{ok:?}");
    let mut conn = app.store.connection().unwrap();
    diesel::delete(audit_head::table.filter(audit_head::id.eq(1)))
        .execute(&mut conn)
        .unwrap();
    let broken = cli(&app, &["verify"]);
    assert!(!broken.status.success(), "{broken:?}");
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("BROKEN at chain 1"), "{stdout}");
}

/// Rewrites entry 1 of `chain` and recomputes every hash after it and the head, as an insider
/// who knows the hashing (it is no secret) would: the chain alone verifies again.
fn rewrite_and_rehash(conn: &mut DbConnection, chain: i32) {
    let entries: Vec<AuditEntry> = audit_log::table
        .filter(audit_log::chain.eq(chain))
        .order(audit_log::seq.asc())
        .select(AuditEntry::as_select())
        .load(conn)
        .unwrap();
    let mut prev = audit::genesis_hash();
    for mut entry in entries {
        if entry.seq == 1 {
            entry.actor = "someone-else".into();
        }
        entry.prev_hash = prev;
        entry.hash = entry.compute_hash().unwrap();
        diesel::update(
            audit_log::table
                .filter(audit_log::chain.eq(chain))
                .filter(audit_log::seq.eq(entry.seq)),
        )
        .set((
            audit_log::actor.eq(&entry.actor),
            audit_log::prev_hash.eq(&entry.prev_hash),
            audit_log::hash.eq(&entry.hash),
        ))
        .execute(conn)
        .unwrap();
        diesel::update(audit_head::table.filter(audit_head::id.eq(chain)))
            .set((
                audit_head::seq.eq(entry.seq),
                audit_head::hash.eq(&entry.hash),
            ))
            .execute(conn)
            .unwrap();
        prev = entry.hash;
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `prescrypt audit checkpoint` into `file`; returns the printed line.
fn take_checkpoint(app: &TestApp, file: &Path) -> String {
    let output = cli(
        app,
        &[
            "checkpoint",
            "--audit-checkpoint-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    stdout(&output).trim().to_owned()
}

fn verify_against(app: &TestApp, file: &Path) -> std::process::Output {
    cli(app, &["verify", "--checkpoints", file.to_str().unwrap()])
}

#[tokio::test]
async fn a_rollback_is_caught_against_a_checkpoint() {
    let app = app_with_entries(3).await;
    let file = app.dir.path().join("kept-elsewhere.jsonl");
    take_checkpoint(&app, &file);
    let ok = verify_against(&app, &file);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).contains("extends all 1 checkpoints"), "{ok:?}");

    let mut conn = app.store.connection().unwrap();
    let (chain, length) = longest_chain(&mut conn);
    truncate(&mut conn, chain, length - 1);
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { .. }
    ));
    let broken = verify_against(&app, &file);
    assert!(!broken.status.success(), "{broken:?}");
    let text = stdout(&broken);
    assert!(
        text.contains(&format!("BROKEN at chain {chain} entry {length}:")),
        "{text}"
    );
    assert!(text.contains("truncated or rolled back"), "{text}");
}

#[tokio::test]
async fn a_log_rewritten_with_every_hash_recomputed_is_caught_by_the_checkpoints() {
    let app = app_with_entries(3).await;
    let file = app.dir.path().join("kept-elsewhere.jsonl");
    take_checkpoint(&app, &file);
    // The log grows after the checkpoint and is checkpointed again: still extends both.
    app.create_default().await;
    take_checkpoint(&app, &file);
    let ok = verify_against(&app, &file);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout(&ok).contains("extends all 2 checkpoints"), "{ok:?}");

    let mut conn = app.store.connection().unwrap();
    let (chain, _) = longest_chain(&mut conn);
    rewrite_and_rehash(&mut conn, chain);
    assert!(matches!(
        audit::verify(&mut conn).unwrap(),
        Verification::Intact { .. }
    ));
    let broken = verify_against(&app, &file);
    assert!(!broken.status.success(), "{broken:?}");
    let text = stdout(&broken);
    assert!(
        text.contains(&format!("BROKEN at chain {chain} entry ")),
        "{text}"
    );
    assert!(text.contains("rewritten"), "{text}");
}

#[tokio::test]
async fn a_checkpoint_with_a_forged_signature_is_refused() {
    let app = app_with_entries(1).await;
    let file = app.dir.path().join("kept-elsewhere.jsonl");
    let genuine: Value = serde_json::from_str(&take_checkpoint(&app, &file)).unwrap();
    let forged_file = app.dir.path().join("forged.jsonl");
    let refused = |line: &Value| {
        std::fs::write(&forged_file, format!("{line}\n")).unwrap();
        let output = verify_against(&app, &forged_file);
        assert!(!output.status.success(), "{output:?}");
        let text = stdout(&output);
        assert!(text.contains("checkpoint REFUSED"), "{text}");
        text
    };

    // A head changed after signing (e.g. to match a rolled-back chain).
    let mut altered = genuine.clone();
    altered["chains"][0]["seq"] = json!(0);
    altered["chains"][0]["hash"] = json!(audit::genesis_hash());
    altered["chains"][1]["hash"] = json!("f".repeat(64));
    assert!(refused(&altered).contains("does not verify"));

    // Signed by another Ed25519 key under the service's key id, over the exact signed bytes.
    let signature = genuine["signature"].as_str().unwrap();
    let header = signature.split('.').next().unwrap();
    let mut content = genuine.clone();
    content.as_object_mut().unwrap().remove("signature");
    let message = format!(
        "{header}.{}",
        BASE64URL_NOPAD.encode(serde_jcs::to_string(&content).unwrap().as_bytes())
    );
    let attacker = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let forged_signature = BASE64URL_NOPAD.encode(&attacker.sign(message.as_bytes()).to_bytes());
    let mut forged = genuine.clone();
    forged["signature"] = json!(format!("{header}..{forged_signature}"));
    assert!(refused(&forged).contains("does not verify"));

    // Signed by a key the service never had.
    let stranger = tempfile::tempdir().unwrap();
    let ring = KeyRing::load_or_create(stranger.path()).unwrap();
    let checkpoint: Checkpoint = serde_json::from_value(content).unwrap();
    let foreign = SignedCheckpoint::sign(checkpoint, ring.active()).unwrap();
    assert!(refused(&foreign.to_json()).contains("not one of the service's keys"));

    // The genuine one still verifies, also with the published JWKS instead of the keys dir.
    let jwks = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks_file = app.dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks).unwrap();
    let ok = cli(
        &app,
        &[
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--jwks",
            jwks_file.to_str().unwrap(),
        ],
    );
    assert!(ok.status.success(), "{ok:?}");
}

#[tokio::test]
async fn the_service_checkpoints_periodically_to_a_private_file_and_publishes_them() {
    let mut builder = TestApp::builder().flags(["--audit-checkpoint-interval", "1s"]);
    let config = builder.config();
    let file = config.audit_checkpoints.file.resolve(&config.keys.keys_dir);
    let app = builder.spawn().await;
    app.create_default().await;

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<Value> = text
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        // At least four (so the first three are published: a line is written to the file
        // before it is stored), the last one after the prescription was created.
        let grown = lines.last().is_some_and(|last: &Value| {
            last["chains"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["seq"] != 0)
        });
        if lines.len() >= 4 && grown {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for line in &lines {
        assert_eq!(line["chains"].as_array().unwrap().len(), 16, "{line}");
    }

    // Published to every authenticated role, page by page, exactly as in the file.
    let (status, first) = app
        .get("/api/v1/audit/checkpoints?limit=2", &app.pharmacist())
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["checkpoints"].as_array().unwrap()[..], lines[..2]);
    let next = first["next_after"].as_i64().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/audit/checkpoints?after={next}&limit=1"),
            &app.prescriber(),
        )
        .await;
    assert_eq!(second["checkpoints"][0], lines[2]);
    let (status, problem) = app
        .get("/api/v1/audit/checkpoints?limit=0", &app.prescriber())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem.to_string().contains("limit"), "{problem}");
    let anonymous = app
        .client
        .get(app.url("/api/v1/audit/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let ok = verify_against(&app, &file);
    assert!(ok.status.success(), "{ok:?}");
}

/// The audit commands work on the database `serve` made, never on one they would create: a
/// mistyped path is refused (and no empty database appears there), as is a schema that needs
/// `prescrypt migrate`.
#[test]
fn the_audit_commands_refuse_a_missing_or_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    for args in [&["verify"][..], &["checkpoint"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
            .arg("audit")
            .args(args)
            .arg("--database-url")
            .arg(&missing)
            .arg("--keys-dir")
            .arg(dir.path().join("keys"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no such database"), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    let empty = dir.path().join("empty.db");
    std::fs::File::create(&empty).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_prescrypt"))
        .args(["audit", "checkpoint", "--database-url"])
        .arg(&empty)
        .arg("--keys-dir")
        .arg(dir.path().join("keys"))
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prescrypt migrate"), "{stderr}");
}
