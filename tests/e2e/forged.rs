//! Forged and damaged tokens are rejected at the counter with the centre down (no network needed);
//! a genuine token is recognised offline but its release waits for the centre.

use ed25519_dalek::SigningKey;
use prescrypt_barcode::{KeyId, Token};

use prescrypt_testkit::{PHARMACY, Pharmacy, Service, prescrypt_bin};

/// Replaces the character at `position` with a different one from the token alphabet.
fn flip(text: &str, position: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

#[test]
fn forged_tokens_are_rejected_offline() {
    let mut service = Service::start(prescrypt_bin!());
    let genuine = service.create(None);
    let other = service.create(None);
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    // First contact while online: caches the centre's keys (and releases the genuine one).
    let text = genuine["token"].as_str().expect("token").to_owned();
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{text}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");
    service.kill();

    let token = Token::parse(&text).expect("token");
    let wrong_key = SigningKey::from_bytes(&[9; 32]);
    let signed_by_stranger = Token::sign(token.prescription_id(), &wrong_key);
    // The stranger's signature, relabelled with the centre's key id.
    let relabelled = {
        let stranger = signed_by_stranger.text().as_str().to_owned();
        let kid_at = 3 + 17;
        format!(
            "{}{}{}",
            &stranger[..kid_at],
            token.key_id(),
            &stranger[kid_at + 8..]
        )
    };
    assert_ne!(KeyId::of(&wrong_key.verifying_key()), token.key_id());
    let cases = [
        ("one flipped signature character", flip(&text, 100)),
        ("one flipped ID character", flip(&text, 5)),
        (
            "signed by a wrong key",
            signed_by_stranger.text().as_str().to_owned(),
        ),
        ("wrong key, relabelled", relabelled),
        ("truncated", text[..120].to_owned()),
    ];
    for (what, forged) in cases {
        let run = pharmacy.run(&["scan", "--stdin", "--json"], &format!("{forged}\n"));
        assert_eq!(run.code, 3, "{what}: {run:?}");
        let error = &run.json()["error"];
        assert_eq!(error["code"], "rejected", "{what}: {run:?}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("rejected"),
            "{what}: {run:?}"
        );
    }

    // A genuine token still verifies offline; the release must wait (exit 5), clearly said.
    let other_text = other["token"].as_str().expect("token");
    let run = pharmacy.run(&["scan", "--stdin"], &format!("{other_text}\n"));
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("genuine (verified offline)"), "{run:?}");
    assert!(
        run.stderr.contains("must wait until the centre is back"),
        "{run:?}"
    );
}
