//! Shared fixtures for the integration tests.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use prescrypt_barcode::{PrescriptionId, Token};

/// The TOKEN.md test key.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

pub fn id() -> PrescriptionId {
    PrescriptionId::parse("E7ZG38-ZBACYU-V38SR+").expect("valid vector")
}

pub fn token() -> Token {
    Token::sign(id(), &key())
}

/// Tests run unoptimised (tens of times slower than release), so their decoder gets a generous
/// time budget: the tests check what the pipeline finds; `rx-readability` measures how fast.
pub fn decoder() -> prescrypt_barcode::decode::Decoder {
    prescrypt_barcode::decode::Decoder::new(prescrypt_barcode::decode::DecodeOptions {
        time_budget: std::time::Duration::from_secs(120),
        want: prescrypt_barcode::decode::Want::All,
        ..prescrypt_barcode::decode::DecodeOptions::default()
    })
}
