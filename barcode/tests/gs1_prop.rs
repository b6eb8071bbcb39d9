//! Properties of the GS1 element-string parser: any valid generated string parses back to the
//! elements it was built from (raw with or without AIM, and bracketed); arbitrary text never
//! panics and, when accepted, survives its own canonical rendering; overlong values are refused.
#![allow(clippy::unwrap_used)] // tests panic on broken fixtures

use prescrypt_barcode::gs1::{self, ElementString, GS, Gs1Error};
use proptest::prelude::*;

const CSET82: &str =
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn digits(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, len)
        .prop_map(|d| d.into_iter().map(|d| char::from(b'0' + d)).collect())
}

/// Set 82 without `(`, which the bracketed form cannot carry inside a value.
fn cset82(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = CSET82.chars().filter(|&c| c != '(').collect();
    prop::collection::vec(prop::sample::select(alphabet), len)
        .prop_map(|chars| chars.into_iter().collect())
}

fn gtin() -> impl Strategy<Value = String> {
    digits(13..=13).prop_map(|body| {
        let check = gs1::check_digit(&body).unwrap();
        format!("{body}{check}")
    })
}

fn date() -> impl Strategy<Value = String> {
    (0u8..100, 1u8..13, 0u8..29).prop_map(|(y, m, d)| format!("{y:02}{m:02}{d:02}"))
}

/// One valid element: (AI, value, whether a GS must follow when another element comes after).
fn element() -> impl Strategy<Value = (String, String, bool)> {
    prop_oneof![
        gtin().prop_map(|v| ("01".into(), v, false)),
        date().prop_map(|v| ("17".into(), v, false)),
        date().prop_map(|v| ("11".into(), v, false)),
        date().prop_map(|v| ("15".into(), v, false)),
        cset82(1..=20).prop_map(|v| ("10".into(), v, true)),
        cset82(1..=20).prop_map(|v| ("21".into(), v, true)),
        cset82(1..=30).prop_map(|v| ("240".into(), v, true)),
        digits(1..=8).prop_map(|v| ("30".into(), v, true)),
        digits(1..=8).prop_map(|v| ("37".into(), v, true)),
        (0u8..6, cset82(1..=20)).prop_map(|(n, v)| (format!("71{n}"), v, true)),
        digits(6..=6).prop_map(|v| ("3103".into(), v, false)),
        digits(2..=2).prop_map(|v| ("20".into(), v, false)),
    ]
}

/// Distinct AIs (a repeated AI with a different value is an error of its own).
fn elements() -> impl Strategy<Value = Vec<(String, String, bool)>> {
    prop::collection::vec(element(), 1..8).prop_map(|mut list| {
        let mut seen = std::collections::HashSet::new();
        list.retain(|(ai, _, _)| seen.insert(ai.clone()));
        list
    })
}

fn raw(list: &[(String, String, bool)]) -> String {
    let mut text = String::new();
    for (i, (ai, value, needs_gs)) in list.iter().enumerate() {
        text.push_str(ai);
        text.push_str(value);
        if *needs_gs && i + 1 < list.len() {
            text.push(GS);
        }
    }
    text
}

fn pairs(parsed: &ElementString<'_>) -> Vec<(String, String)> {
    parsed
        .elements()
        .map(|e| (e.ai.to_string(), e.value.to_owned()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_strings_parse_back_to_their_elements(
        list in elements(),
        aim in prop::sample::select(vec!["", "]d2", "]C1", "]Q3", "]e0", "\u{1d}"]),
    ) {
        let expected: Vec<_> = list.iter().map(|(a, v, _)| (a.clone(), v.clone())).collect();
        let body = raw(&list);
        let text = format!("{aim}{body}");
        let parsed = ElementString::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(pairs(&parsed), expected.as_slice());
        prop_assert_eq!(parsed.canonical().to_string(), body);

        let bracketed: String = list.iter().map(|(a, v, _)| format!("({a}){v}")).collect();
        let from_brackets = ElementString::parse_bracketed(&bracketed)
            .map_err(|e| TestCaseError::fail(format!("{bracketed:?}: {e}")))?;
        prop_assert_eq!(pairs(&from_brackets), expected);
        prop_assert_eq!(parsed.bracketed().to_string(), bracketed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        check_arbitrary(&text)?;
    }

    #[test]
    fn gs1_looking_text_never_panics(
        chars in prop::collection::vec(
            prop::sample::select(b"0123456789017102(])dC\x1dAB- x".to_vec()), 0..120)
    ) {
        let text: String = chars.into_iter().map(char::from).collect();
        check_arbitrary(&text)?;
    }

    #[test]
    fn overlong_values_are_refused(
        (ai, max) in prop::sample::select(vec![("10", 20usize), ("21", 20), ("240", 30), ("714", 20), ("91", 90)]),
        extra in 1usize..40,
        letter in prop::sample::select(b"ABCXYZabc-/".to_vec()),
        aim in prop::sample::select(vec!["", "]d2"]),
    ) {
        // Letters only, so no position inside can start an element (which would be a missing FNC1).
        let value = char::from(letter).to_string().repeat(max + extra);
        let expected = Gs1Error::Overlong { ai: gs1::Ai::new(ai).unwrap(), max };
        let raw = format!("{aim}{ai}{value}");
        prop_assert_eq!(ElementString::parse(&raw).err(), Some(expected));
        let bracketed = format!("({ai}){value}");
        prop_assert_eq!(ElementString::parse_bracketed(&bracketed).err(), Some(expected));
    }
}

/// Whatever the parser accepts must render to a canonical text that parses to the same elements.
fn check_arbitrary(text: &str) -> Result<(), TestCaseError> {
    for parsed in [
        ElementString::parse(text),
        ElementString::parse_bracketed(text),
    ]
    .into_iter()
    .flatten()
    {
        let canonical = parsed.canonical().to_string();
        let again = ElementString::parse(&canonical)
            .map_err(|e| TestCaseError::fail(format!("{text:?} → {canonical:?}: {e}")))?;
        prop_assert_eq!(pairs(&again), pairs(&parsed));
    }
    Ok(())
}
