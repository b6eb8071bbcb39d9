//! The prescription-ID and NHS-number vectors from the EPS reference, including the invalid
//! examples printed in official documentation, through the core and through the decoder's
//! classification rule.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

use prescrypt_barcode::decode::{Payload, Rejection};
use prescrypt_barcode::{IdError, NhsNumber, PrescriptionId};

const VALID: [&str; 6] = [
    "7D9625-Z72BF2-11E3AC",
    "E7ZG38-ZBACYU-V38SR+",
    "6FOCBU-E776BJ-CMPMT3",
    "D7AC09-A99968-4BA59C",
    "83C40E-A23856-00123W",
    "04F4C2-A99968-7F717P",
];
/// `6FOCBU-…-CMPMTX` has a wrong check character; the other two are examples printed in
/// official docs that fail MOD 37-2.
const INVALID: [&str; 3] = [
    "6FOCBU-E776BJ-CMPMTX",
    "83C40E-A23856-00123C",
    "DC2C66-A1B2C3-23407B",
];

#[test]
fn valid_ids_parse_in_every_form_and_are_accepted_by_the_decoder_rule() {
    for text in VALID {
        let id = PrescriptionId::parse(text).unwrap();
        assert_eq!(id.to_string(), text);
        let compact = text.replace('-', "");
        assert_eq!(PrescriptionId::parse(&compact).unwrap(), id);
        assert_eq!(PrescriptionId::parse(&text.to_lowercase()).unwrap(), id);
        assert_eq!(Payload::classify(&compact), Ok(Payload::PrescriptionId(id)));
    }
}

#[test]
fn invalid_ids_fail_the_check_and_are_dropped_by_the_decoder_rule() {
    for text in INVALID {
        assert_eq!(PrescriptionId::parse(text), Err(IdError::CheckCharacter));
        assert_eq!(
            Payload::classify(text),
            Err(Rejection::Id(IdError::CheckCharacter))
        );
        assert_eq!(
            Payload::classify(&text.replace('-', "")),
            Err(Rejection::Id(IdError::CheckCharacter))
        );
    }
}

#[test]
fn worked_check_character_example() {
    let data: &[u8; 17] = b"D7AC09A999684BA59";
    assert_eq!(prescrypt_barcode::id::check_character(data), b'C');
}

#[test]
fn nhs_numbers_display_3_3_4() {
    for (digits, spaced) in [
        ("9434765919", "943 476 5919"),
        ("9990548609", "999 054 8609"),
        ("9449305552", "944 930 5552"),
        ("9449304130", "944 930 4130"),
    ] {
        assert_eq!(NhsNumber::parse(digits).unwrap().to_string(), spaced);
    }
}
