//! GS1 element strings: pack strings as scanners deliver them, the bracketed form, and every
//! reason a string is refused.
#![allow(clippy::unwrap_used, clippy::panic)] // tests panic on broken fixtures

use prescrypt_barcode::gs1::{
    self, Ai, ElementString, GS, Gs1Date, Gs1Error, MAX_INPUT_LEN, Pack, Symbology,
};

const GTIN: &str = "09501101530003";

fn ai(digits: &str) -> Ai {
    Ai::new(digits).unwrap()
}

fn pairs<'a>(parsed: &ElementString<'a>) -> Vec<(String, &'a str)> {
    parsed
        .elements()
        .map(|e| (e.ai.as_str().to_owned(), e.value))
        .collect()
}

fn err(text: &str) -> Gs1Error {
    ElementString::parse(text).unwrap_err()
}

#[test]
fn fmd_pack_in_the_usual_order_with_aim() {
    let text = format!("]d201{GTIN}1727013110AB12345{GS}21SN0001XYZ");
    let parsed = ElementString::parse(&text).unwrap();
    assert_eq!(parsed.symbology(), Some(Symbology::DataMatrix));
    assert_eq!(
        parsed.pack(),
        Some(Pack {
            gtin: GTIN,
            expiry: Some(Gs1Date {
                yy: 27,
                month: 1,
                day: 31
            }),
            batch: Some("AB12345"),
            serial: Some("SN0001XYZ"),
        })
    );
    assert_eq!(parsed.expiry().unwrap().resolve(2026), (2027, 1, 31));
    assert_eq!(
        parsed.canonical().to_string(),
        format!("01{GTIN}1727013110AB12345{GS}21SN0001XYZ")
    );
    assert_eq!(
        parsed.bracketed().to_string(),
        format!("(01){GTIN}(17)270131(10)AB12345(21)SN0001XYZ")
    );
}

#[test]
fn fmd_pack_in_other_orders_and_with_every_gs1_aim() {
    let orders = [
        format!("01{GTIN}21SN0001XYZ{GS}10AB12345{GS}17270131"),
        format!("21SN0001XYZ{GS}01{GTIN}17270131{GS}10AB12345"),
        format!("10AB12345{GS}17270131{GS}21SN0001XYZ{GS}01{GTIN}"),
        format!("17270131{GS}01{GTIN}{GS}21SN0001XYZ{GS}10AB12345{GS}"),
    ];
    for body in &orders {
        for prefix in ["", "]d2", "]C1", "]Q3", "]e0", "\u{1d}", "]d2\u{1d}"] {
            let text = format!("{prefix}{body}");
            let parsed = ElementString::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let pack = parsed.pack().unwrap();
            assert_eq!(pack.gtin, GTIN, "{text:?}");
            assert_eq!(pack.batch, Some("AB12345"), "{text:?}");
            assert_eq!(pack.serial, Some("SN0001XYZ"), "{text:?}");
            assert_eq!(pack.expiry.unwrap().resolve(2026), (2027, 1, 31));
        }
    }
    let symbologies: Vec<_> = ["]d2", "]C1", "]Q3", "]e0"]
        .iter()
        .map(|aim| {
            ElementString::parse(&format!("{aim}01{GTIN}"))
                .unwrap()
                .symbology()
        })
        .collect();
    assert_eq!(
        symbologies,
        [
            Some(Symbology::DataMatrix),
            Some(Symbology::Gs1_128),
            Some(Symbology::Qr),
            Some(Symbology::DataBar)
        ]
    );
    assert_eq!(
        ElementString::parse(&format!("01{GTIN}"))
            .unwrap()
            .symbology(),
        None
    );
}

#[test]
fn canonical_text_drops_separators_not_needed_and_keeps_needed_ones() {
    // A GS after a predefined-length value is tolerated but not needed; the last GS is not needed.
    let text = format!("17270131{GS}01{GTIN}{GS}21SN1{GS}10AB{GS}");
    let parsed = ElementString::parse(&text).unwrap();
    assert_eq!(
        parsed.canonical().to_string(),
        format!("1727013101{GTIN}21SN1{GS}10AB")
    );
}

#[test]
fn bracketed_form_parses_to_the_same_elements() {
    let bracketed = format!("(01){GTIN}(17)281200(10)L-88/2(21)7KQ2P9X4ZC(714)5440987");
    let raw = format!("01{GTIN}1728120010L-88/2{GS}217KQ2P9X4ZC{GS}7145440987");
    let from_brackets = ElementString::parse_bracketed(&bracketed).unwrap();
    let from_raw = ElementString::parse(&raw).unwrap();
    assert_eq!(pairs(&from_brackets), pairs(&from_raw));
    assert_eq!(from_brackets.canonical().to_string(), raw);
    assert_eq!(from_raw.bracketed().to_string(), bracketed);
    assert_eq!(from_brackets.get("714"), Some("5440987"));
}

#[test]
fn expiry_day_00_is_the_last_day_of_the_month() {
    let resolve = |yymmdd: &str| Gs1Date::parse(yymmdd).unwrap().resolve(2026);
    assert_eq!(resolve("281200"), (2028, 12, 31));
    assert_eq!(resolve("280200"), (2028, 2, 29));
    assert_eq!(resolve("270200"), (2027, 2, 28));
    assert_eq!(resolve("270400"), (2027, 4, 30));
    assert_eq!(resolve("280229"), (2028, 2, 29));
}

#[test]
fn century_rule() {
    let year = |yy: &str, current: u16| Gs1Date::parse(&format!("{yy}0101")).unwrap().year(current);
    assert_eq!(year("27", 2026), 2027);
    assert_eq!(year("76", 2026), 2076); // 50 ahead: still this century
    assert_eq!(year("77", 2026), 1977); // 51 ahead: last century
    assert_eq!(year("99", 2026), 1999);
    assert_eq!(year("00", 2026), 2000);
    assert_eq!(year("30", 2080), 2130); // 50 behind: next century
    assert_eq!(year("31", 2080), 2031);
}

#[test]
fn the_other_curated_ais() {
    let text = format!(
        "]d201{GTIN}11250101152701001626123117270131\
         30123{GS}3712{GS}240ADD-1{GS}241PART9{GS}7105440987{GS}711CIP34009{GS}712CN654321{GS}\
         713DRN1{GS}7143600000{GS}10B"
    );
    let parsed = ElementString::parse(&text).unwrap();
    let expected = [
        ("01", GTIN),
        ("11", "250101"),
        ("15", "270100"),
        ("16", "261231"),
        ("17", "270131"),
        ("30", "123"),
        ("37", "12"),
        ("240", "ADD-1"),
        ("241", "PART9"),
        ("710", "5440987"),
        ("711", "CIP34009"),
        ("712", "CN654321"),
        ("713", "DRN1"),
        ("714", "3600000"),
        ("10", "B"),
    ];
    let expected: Vec<_> = expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
    assert_eq!(pairs(&parsed), expected);
    let titles: Vec<_> = parsed.elements().map(|e| e.spec.title).collect();
    assert_eq!(titles[5], "VAR. COUNT");
    assert_eq!(titles[9], "NHRN PZN");
    assert_eq!(
        parsed.elements().nth(2).unwrap().date(),
        Some(Gs1Date {
            yy: 27,
            month: 1,
            day: 0
        })
    );
}

#[test]
fn predefined_length_ais_not_in_the_table_still_parse() {
    // 3103 (net weight, kg, 3 decimals) and 03 are not curated; their length is predefined.
    let text = format!("]C1310300052503{GTIN}10X");
    let parsed = ElementString::parse(&text).unwrap();
    assert_eq!(
        pairs(&parsed),
        [
            ("3103".to_owned(), "000525"),
            ("03".to_owned(), GTIN),
            ("10".to_owned(), "X")
        ]
    );
    assert_eq!(
        parsed.canonical().to_string(),
        format!("310300052503{GTIN}10X")
    );
}

#[test]
fn check_digit_for_every_gtin_length() {
    assert_eq!(gs1::check_digit("9638507"), Some(4)); // GTIN-8
    assert_eq!(gs1::check_digit("03600029145"), Some(2)); // GTIN-12
    assert_eq!(gs1::check_digit("400638133393"), Some(1)); // GTIN-13
    assert_eq!(gs1::check_digit("0950110153000"), Some(3)); // GTIN-14
    for valid in ["96385074", "036000291452", "4006381333931", GTIN] {
        assert!(gs1::has_valid_check_digit(valid), "{valid}");
    }
    for invalid in [
        "96385075",
        "036000291450",
        "4006381333932",
        "09501101530004",
    ] {
        assert!(!gs1::has_valid_check_digit(invalid), "{invalid}");
    }
    assert_eq!(gs1::check_digit(""), None);
    assert_eq!(gs1::check_digit("12a"), None);
    assert!(!gs1::has_valid_check_digit("7"));
    assert!(!gs1::has_valid_check_digit(""));
}

#[test]
fn wrong_gtin_check_digit() {
    assert_eq!(
        err("]d20109501101530004172701311012"),
        Gs1Error::CheckDigit { ai: ai("01") }
    );
    assert_eq!(
        ElementString::parse_bracketed("(01)09501101530004").unwrap_err(),
        Gs1Error::CheckDigit { ai: ai("01") }
    );
}

#[test]
fn missing_fnc1_after_a_variable_length_value() {
    // Batch (max 20) runs into the serial: no GS between them.
    let text = format!("]d201{GTIN}1727013110ABCDEFGHIJ1234521SERIAL0123456789");
    assert_eq!(
        err(&text),
        Gs1Error::MissingFnc1 {
            ai: ai("10"),
            at: text.find("21SERIAL").unwrap()
        }
    );
}

#[test]
fn missing_fnc1_after_a_fixed_length_value_not_predefined() {
    // 422 (country of origin, N3) is fixed-length but not predefined: FNC1 must follow.
    assert_eq!(
        err(&format!("42282601{GTIN}")),
        Gs1Error::MissingFnc1 {
            ai: ai("422"),
            at: 6
        }
    );
    let fine = format!("422826{GS}01{GTIN}");
    assert_eq!(ElementString::parse(&fine).unwrap().get("422"), Some("826"));
}

#[test]
fn a_missing_fnc1_within_the_maximum_is_read_as_a_longer_value() {
    // The format's own limit (documented in the module): a short batch followed by an expiry
    // without GS is indistinguishable from the batch "AB17270131".
    let parsed = ElementString::parse("10AB17270131").unwrap();
    assert_eq!(parsed.batch(), Some("AB17270131"));
    assert_eq!(parsed.expiry(), None);
}

#[test]
fn unknown_ai() {
    assert_eq!(
        err(&format!("]d201{GTIN}2312345")),
        Gs1Error::UnknownAi {
            ai: ai("2312"),
            at: 19
        }
    );
    let Gs1Error::UnknownAi { ai: shown, at: 3 } = err("]d2AB12") else {
        panic!("{:?}", err("]d2AB12"));
    };
    assert_eq!(shown.as_str(), "AB12");
    assert_eq!(
        ElementString::parse_bracketed("(23)12345").unwrap_err(),
        Gs1Error::UnknownAi {
            ai: ai("23"),
            at: 0
        }
    );
    // In brackets the AI must be exact: 710 exists, 7100 does not.
    assert_eq!(
        ElementString::parse_bracketed("(7100)12").unwrap_err(),
        Gs1Error::UnknownAi {
            ai: ai("7100"),
            at: 0
        }
    );
}

#[test]
fn overlong_value() {
    let batch21 = "ABCDEFGHIJKLMNOPQRSTU";
    assert_eq!(
        err(&format!("]d201{GTIN}10{batch21}")),
        Gs1Error::Overlong {
            ai: ai("10"),
            max: 20
        }
    );
    assert_eq!(
        err(&format!("21{batch21}{GS}01{GTIN}")),
        Gs1Error::Overlong {
            ai: ai("21"),
            max: 20
        }
    );
    assert_eq!(
        ElementString::parse_bracketed(&format!("(10){batch21}")).unwrap_err(),
        Gs1Error::Overlong {
            ai: ai("10"),
            max: 20
        }
    );
    assert_eq!(
        ElementString::parse_bracketed(&format!("(01){GTIN}0")).unwrap_err(),
        Gs1Error::Overlong {
            ai: ai("01"),
            max: 14
        }
    );
    // Exactly the maximum is fine.
    let twenty = &batch21[..20];
    assert_eq!(
        ElementString::parse(&format!("10{twenty}"))
            .unwrap()
            .batch(),
        Some(twenty)
    );
}

#[test]
fn bad_character_set() {
    assert_eq!(
        err("]d210AB#12"),
        Gs1Error::Charset {
            ai: ai("10"),
            at: 7
        }
    );
    assert_eq!(
        err("10AB 12"),
        Gs1Error::Charset {
            ai: ai("10"),
            at: 4
        }
    );
    assert_eq!(
        err("21ÄB"),
        Gs1Error::Charset {
            ai: ai("21"),
            at: 2
        }
    );
    assert_eq!(
        err("0109501101A30003"),
        Gs1Error::Charset {
            ai: ai("01"),
            at: 10
        }
    );
    assert_eq!(
        err("30A2"),
        Gs1Error::Charset {
            ai: ai("30"),
            at: 2
        }
    );
    // Every character of set 82 is accepted in a batch.
    let cset82 =
        "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    assert_eq!(cset82.len(), 82);
    for chunk in cset82.as_bytes().chunks(20) {
        let batch = std::str::from_utf8(chunk).unwrap();
        let text = format!("10{batch}");
        assert_eq!(ElementString::parse(&text).unwrap().batch(), Some(batch));
    }
}

#[test]
fn bad_date() {
    for bad in ["271331", "270230", "270229", "270132", "270001", "2701"] {
        let text = format!("01{GTIN}17{bad}");
        let expected = if bad.len() == 6 {
            Gs1Error::Date { ai: ai("17") }
        } else {
            Gs1Error::TooShort {
                ai: ai("17"),
                expected: 6,
            }
        };
        assert_eq!(err(&text), expected, "{bad}");
    }
    assert_eq!(err("11250431"), Gs1Error::Date { ai: ai("11") });
    assert!(ElementString::parse("17280229").is_ok()); // 2028 is a leap year
}

#[test]
fn empty_input() {
    for text in ["", "]d2", "]C1", "\u{1d}", "]d2\u{1d}"] {
        assert_eq!(err(text), Gs1Error::Empty, "{text:?}");
    }
    assert_eq!(
        ElementString::parse_bracketed("").unwrap_err(),
        Gs1Error::Empty
    );
    assert_eq!(err("10\u{1d}21X"), Gs1Error::EmptyValue { ai: ai("10") });
    assert_eq!(err("21"), Gs1Error::EmptyValue { ai: ai("21") });
    assert_eq!(
        ElementString::parse_bracketed("(10)(21)X").unwrap_err(),
        Gs1Error::EmptyValue { ai: ai("10") }
    );
}

#[test]
fn duplicate_ai_with_differing_values() {
    assert_eq!(
        err(&format!("01{GTIN}10A{GS}21S{GS}10B")),
        Gs1Error::DuplicateAi { ai: ai("10") }
    );
    assert_eq!(
        err(&format!("01{GTIN}01{}", "05012345678900")),
        Gs1Error::DuplicateAi { ai: ai("01") }
    );
    // Among many distinct AIs (3218 shares 10's bucket in the parser's duplicate filter).
    let many: String = (3100..3400).map(|ai| format!("{ai}000000")).collect();
    assert!(ElementString::parse(&format!("10A{GS}{many}")).is_ok());
    assert_eq!(
        err(&format!("10A{GS}{many}10B")),
        Gs1Error::DuplicateAi { ai: ai("10") }
    );
    assert_eq!(
        err(&format!("{many}3218000001")),
        Gs1Error::DuplicateAi { ai: ai("3218") }
    );
    // The same value twice is allowed.
    let text = format!("10A{GS}01{GTIN}10A");
    let same = ElementString::parse(&text).unwrap();
    assert_eq!(same.elements().count(), 3);
    assert_eq!(same.batch(), Some("A"));
}

#[test]
fn other_malformed_strings() {
    assert_eq!(err(&format!("]d101{GTIN}")), Gs1Error::NotGs1Symbology);
    assert_eq!(err(&format!("]C001{GTIN}")), Gs1Error::NotGs1Symbology);
    assert_eq!(err("]"), Gs1Error::NotGs1Symbology);
    assert_eq!(
        err("01095011015300"),
        Gs1Error::TooShort {
            ai: ai("01"),
            expected: 14
        }
    );
    assert_eq!(
        err(&format!("10A{GS}{GS}01{GTIN}")),
        Gs1Error::StraySeparator { at: 4 }
    );
    assert_eq!(err(&"9".repeat(MAX_INPUT_LEN + 1)), Gs1Error::TooLong);
    for bad in ["01)0950", "(01", "(1)2", "(01234)5", "x(01)"] {
        assert!(
            matches!(
                ElementString::parse_bracketed(bad).unwrap_err(),
                Gs1Error::Bracket { .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn errors_read_well() {
    assert_eq!(
        Gs1Error::CheckDigit { ai: ai("01") }.to_string(),
        "AI (01): wrong check digit"
    );
    assert_eq!(
        Gs1Error::MissingFnc1 {
            ai: ai("10"),
            at: 30
        }
        .to_string(),
        "AI (10): FNC1 (GS) missing after the value, before the element at 30"
    );
}
