//! Checks every test vector in `TOKEN.md` against the token code, so the document cannot drift.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use prescrypt_barcode::token::{TOKEN_LEN, TokenError};
use prescrypt_barcode::{KeyId, Token};

const DOC: &str = include_str!("../TOKEN.md");

fn section<'a>(name: &str) -> &'a str {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = DOC.find(&begin).expect("begin marker") + begin.len();
    let stop = DOC.find(&end).expect("end marker");
    &DOC[start..stop]
}

/// The backticked cells of a Markdown table row.
fn cells(line: &str) -> Vec<&str> {
    line.split('|')
        .map(str::trim)
        .filter(|cell| cell.starts_with('`'))
        .map(|cell| cell.trim_matches('`'))
        .collect()
}

/// One name per variant; the match makes a new variant a compile error here until it is
/// documented and given a vector.
fn variant(error: &TokenError) -> &'static str {
    match error {
        TokenError::Length { .. } => "Length",
        TokenError::Character { .. } => "Character",
        TokenError::Magic => "Magic",
        TokenError::Version => "Version",
        TokenError::PrescriptionId => "PrescriptionId",
        TokenError::SignatureEncoding => "SignatureEncoding",
        TokenError::KeyMismatch => "KeyMismatch",
        TokenError::Signature => "Signature",
    }
}

#[test]
fn documented_key_matches_the_seed() {
    let key = common::key().verifying_key();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let block = section("token-key");
    assert!(
        block.contains(&format!("public key (hex): `{hex}`")),
        "{hex}"
    );
    assert!(block.contains(&format!("- kid: `{}`", KeyId::of(&key))));
    let other = SigningKey::from_bytes(&[2; 32]).verifying_key();
    assert!(block.contains(&format!("other key's kid: `{}`", KeyId::of(&other))));
}

#[test]
fn every_vector_in_token_md_holds() {
    let key = common::key().verifying_key();
    let mut covered = BTreeSet::new();
    let mut rows = 0;
    for line in section("token-vectors").lines() {
        let cells = cells(line);
        if cells.len() != 4 {
            continue;
        }
        rows += 1;
        let [case, parse, verify, text] = [cells[0], cells[1], cells[2], cells[3]];
        let parsed = Token::parse(text);
        match &parsed {
            Ok(_) => assert_eq!(parse, "ok", "{case}: parses but the doc says {parse}"),
            Err(error) => {
                assert_eq!(format!("{error:?}"), parse, "{case}");
                covered.insert(variant(error));
            }
        }
        match parsed {
            Ok(token) => match token.verify(&key) {
                Ok(()) => assert_eq!(verify, "ok", "{case}"),
                Err(error) => {
                    assert_eq!(format!("{error:?}"), verify, "{case}");
                    covered.insert(variant(&error));
                }
            },
            Err(_) => assert_eq!(verify, "-", "{case}"),
        }
        if case == "valid" {
            assert_eq!(text.len(), TOKEN_LEN);
            assert_eq!(
                text,
                common::token().text().as_str(),
                "signing is deterministic"
            );
        }
    }
    assert!(rows >= 12, "found only {rows} vectors");
    // Every variant has a vector, except the one the doc explains cannot occur in version 1.
    let all = [
        "Length",
        "Character",
        "Magic",
        "Version",
        "SignatureEncoding",
        "KeyMismatch",
        "Signature",
    ];
    assert_eq!(covered, all.into_iter().collect::<BTreeSet<_>>());
    assert!(DOC.contains("| `PrescriptionId` | parse | reserved; unreachable in version 1"));
}

#[test]
fn documented_capacity_arithmetic_matches_the_renderer() {
    assert!(DOC.contains("**89 data codewords**"));
    assert!(DOC.contains("**40×40 holds 114**"));
    let matrix = prescrypt_barcode::render::datamatrix_modules(&common::token().text()).unwrap();
    assert_eq!(
        matrix.width() - 2 * prescrypt_barcode::render::DATAMATRIX_QUIET_ZONE,
        40
    );
}
