//! Property: any valid ID's Code 128 and any token's Data Matrix decode back to exactly the same
//! value. Few cases, since each renders and decodes real images.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use ed25519_dalek::SigningKey;
use prescrypt_barcode::decode::Payload;
use prescrypt_barcode::render::{self, Dpi, Orientation};
use prescrypt_barcode::{PrescriptionId, Token};
use proptest::prelude::*;

fn dpi() -> impl Strategy<Value = Dpi> {
    prop_oneof![
        Just(Dpi::THERMAL_203),
        Just(Dpi::LASER_300),
        Just(Dpi::LASER_600)
    ]
}

fn id() -> impl Strategy<Value = PrescriptionId> {
    (0u32..=0xFF_FFFF, "[0-9A-Z]{1,6}", 0u32..=0xF_FFFF).prop_map(|(random, ods, sequence)| {
        PrescriptionId::new(random, &ods, sequence).expect("in range")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_id_code128_round_trips(id in id(), dpi in dpi()) {
        let image = render::code128_image(&id, dpi, Orientation::Vertical).unwrap();
        let codes = common::decoder().decode_luma(&image);
        prop_assert_eq!(codes.len(), 1);
        prop_assert_eq!(codes[0].payload, Payload::PrescriptionId(id));
    }

    #[test]
    fn random_token_datamatrix_round_trips(id in id(), seed in any::<[u8; 32]>(), dpi in dpi()) {
        let key = SigningKey::from_bytes(&seed);
        let token = Token::sign(id, &key);
        let image = render::datamatrix_image(&token.text(), dpi).unwrap();
        let codes = common::decoder().decode_luma(&image);
        prop_assert_eq!(codes.len(), 1);
        prop_assert_eq!(codes[0].payload, Payload::Token(token));
        let parsed = Token::parse(&codes[0].text).unwrap();
        prop_assert!(parsed.verify(&key.verifying_key()).is_ok());
    }
}
