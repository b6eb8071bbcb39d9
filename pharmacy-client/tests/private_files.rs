//! The client's files on disk are owner-only from the first byte: data directory, outbox database
//! (and SQLite's -wal/-shm beside it), key cache, prescription cache, config directory and token.

#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use prescrypt_barcode::PrescriptionId;
use prescrypt_pharmacy::config::{ConfigFile, Overrides, Settings, store_token};
use prescrypt_pharmacy::outbox::{Kind, Outbox};
use serde_json::json;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("the file exists")
        .permissions()
        .mode()
        & 0o777
}

fn settings(root: &Path) -> Settings {
    Settings::resolve(Overrides {
        config_dir: Some(root.join("config")),
        data_dir: Some(root.join("share/pharmacy")),
        server: Some("http://127.0.0.1:9".into()),
        ..Overrides::default()
    })
    .expect("settings")
}

#[test]
fn login_stores_the_token_owner_only_in_an_owner_only_directory() {
    let root = tempfile::tempdir().unwrap();
    let config_dir = root.path().join("config");
    let token_path = store_token(&config_dir, "abc.def.ghi", ConfigFile::default()).unwrap();
    assert_eq!(mode(&config_dir), 0o700);
    assert_eq!(mode(&token_path), 0o600);
    assert_eq!(mode(&config_dir.join("config.toml")), 0o600);
    // No temporary file left behind, readable or not.
    let names: Vec<_> = fs::read_dir(&config_dir)
        .expect("settings")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // A token file made world-readable by hand is replaced by an owner-only one on the next login.
    fs::set_permissions(&token_path, fs::Permissions::from_mode(0o644)).unwrap();
    store_token(&config_dir, "new.token.x", ConfigFile::default()).unwrap();
    assert_eq!(mode(&token_path), 0o600);

    // Left readable by an older client: tightened as soon as the client starts.
    fs::set_permissions(&config_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&token_path, fs::Permissions::from_mode(0o644)).unwrap();
    let started = settings(root.path());
    assert_eq!(started.token.as_deref(), Some("new.token.x"));
    assert_eq!(mode(&config_dir), 0o700);
    assert_eq!(mode(&token_path), 0o600);
}

#[test]
fn the_outbox_database_and_its_wal_and_shm_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let settings = settings(root.path());
    settings.ensure_data_dir().unwrap();
    assert_eq!(mode(&settings.data_dir), 0o700);
    // Missing parents are created owner-only too.
    assert_eq!(mode(&root.path().join("share")), 0o700);

    let path = settings.outbox_path();
    let mut outbox = Outbox::open(&path).unwrap();
    let id = PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap();
    outbox.enqueue(Kind::Claim, &id, &json!({})).unwrap();
    for file in [
        path.clone(),
        path.with_extension("sqlite-wal"),
        path.with_extension("sqlite-shm"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn world_readable_files_left_in_the_data_directory_are_tightened() {
    let root = tempfile::tempdir().unwrap();
    let settings = settings(root.path());
    let cache = settings.prescription_cache_dir();
    fs::create_dir_all(&cache).unwrap();
    fs::set_permissions(&settings.data_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = cache.join("D7AC09-A99968-4BA59C.json");
    fs::write(&copy, "{}").unwrap();
    fs::write(settings.jwks_path(), r#"{"keys":[]}"#).unwrap();
    for file in [&copy, &settings.jwks_path()] {
        fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
    }

    settings.ensure_data_dir().unwrap();
    assert_eq!(mode(&settings.data_dir), 0o700);
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(mode(&settings.jwks_path()), 0o600);
}
