//! What a scanned text is to Prescrypt: a [`Token`], a [`PrescriptionId`], or something else.
//!
//! The one rule, used by the service, the pharmacy client, the image decoder and the scanner
//! firmware:
//!
//! - a text that parses as a [`Token`] is a token (the signature is the caller's to verify);
//! - a text that parses as a [`PrescriptionId`] (its MOD 37-2 check character is right) is an ID;
//! - everything else is [`Scanned::Other`]. The [`Unrecognised`] reason says whether it has the
//!   *shape* of one of ours (starts with the token magic `RX`; or 18 characters, 20 with hyphens at
//!   positions 7 and 14) — a damaged read or a forgery — or is foreign: another barcode, GS1 element
//!   strings, a text still carrying an AIM symbology prefix (`]C0…`), a blank line.
//!
//! The two parses cannot both succeed (131 characters against 18 or 20), so the order is free.
//! When the reader reports the AIM symbology identifier, [`classify_symbol`] also refuses symbols
//! Prescrypt never prints: GS1 or AIM application data (FNC1), ECI and other symbologies. Surrounding
//! whitespace is the caller's to strip; nothing is stripped or case-folded here beyond what the ID
//! parser accepts (any letter case).

use core::fmt;

use crate::id::{COMPACT_LEN, HYPHENATED_LEN, IdError, PrescriptionId};
use crate::token::{PREFIX, Token, TokenError};

/// What a scanned text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// A well-formed dispensing token; its signature is not checked yet.
    Token(Token),
    /// A prescription ID with a correct check character.
    PrescriptionId(PrescriptionId),
    /// Neither; the reason says what it resembled.
    Other(Unrecognised),
}

/// Why a text is neither a token nor a prescription ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecognised {
    /// Starts with the token magic `RX` but is not a well-formed token.
    TokenShaped(TokenError),
    /// Has the shape of a prescription ID but is not one (usually a wrong check character).
    IdShaped(IdError),
    /// Nothing of ours: another barcode, GS1 data, an AIM-prefixed or blank text.
    Foreign,
}

impl fmt::Display for Unrecognised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenShaped(error) => error.fmt(f),
            Self::IdShaped(error) => error.fmt(f),
            Self::Foreign => f.write_str("neither a Prescrypt token nor a prescription ID"),
        }
    }
}

impl Scanned {
    /// The prescription a token or ID names.
    pub fn prescription_id(&self) -> Option<PrescriptionId> {
        match self {
            Self::Token(token) => Some(token.prescription_id()),
            Self::PrescriptionId(id) => Some(*id),
            Self::Other(_) => None,
        }
    }
}

/// Classifies a scanned text (without any AIM symbology prefix).
pub fn classify(text: &str) -> Scanned {
    classify_bytes(text.as_bytes())
}

/// Like [`classify`], for raw scanner bytes.
pub fn classify_bytes(text: &[u8]) -> Scanned {
    if let Ok(token) = Token::parse_bytes(text) {
        return Scanned::Token(token);
    }
    if let Ok(id) = PrescriptionId::parse_bytes(text) {
        return Scanned::PrescriptionId(id);
    }
    Scanned::Other(unrecognised(text))
}

/// Classifies a symbol's data given the AIM symbology identifier the reader reported with it
/// (`]C0`, `]d1`, …). Prescrypt prints its codes as plain Code 128 (`]C0`), Data Matrix ECC 200
/// (`]d1`) and QR model 2 (`]Q1`); a phone app may add an ECI header to the QR or Data Matrix
/// (`]Q2`, `]d4`), which changes nothing for an ASCII token. Data from any other identifier —
/// FNC1 in first position (GS1-128 `]C1`, GS1 Data Matrix `]d2`, GS1 QR `]Q3`) or second, other
/// symbologies, or an identifier that is not three bytes — is [`Unrecognised::Foreign`] even when
/// it happens to pass a check, e.g. an 18-character GS1 element string whose last character
/// matches MOD 37-2 by chance.
pub fn classify_symbol(aim: &[u8], data: &[u8]) -> Scanned {
    if is_plain_symbology(aim) {
        classify_bytes(data)
    } else {
        Scanned::Other(Unrecognised::Foreign)
    }
}

/// The AIM identifiers that can carry a token or an ID: the symbols Prescrypt prints, without FNC1.
pub const PLAIN_SYMBOLOGIES: [&[u8; 3]; 5] = [b"]C0", b"]d1", b"]d4", b"]Q1", b"]Q2"];

fn is_plain_symbology(aim: &[u8]) -> bool {
    PLAIN_SYMBOLOGIES.iter().any(|plain| plain[..] == *aim)
}

fn unrecognised(text: &[u8]) -> Unrecognised {
    if text.starts_with(&PREFIX[..2])
        && let Err(error) = Token::parse_bytes(text)
    {
        return Unrecognised::TokenShaped(error);
    }
    if is_id_shaped(text)
        && let Err(error) = PrescriptionId::parse_bytes(text)
    {
        return Unrecognised::IdShaped(error);
    }
    Unrecognised::Foreign
}

/// 18 characters of `[0-9A-Za-z+]`, or 20 with `-` at positions 7 and 14, whatever the check.
fn is_id_shaped(text: &[u8]) -> bool {
    let id_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+';
    match text.len() {
        COMPACT_LEN => text.iter().all(id_char),
        HYPHENATED_LEN => text.iter().enumerate().all(|(i, b)| {
            if i == 6 || i == 13 {
                *b == b'-'
            } else {
                id_char(b)
            }
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    const ID: &str = "D7AC09-A99968-4BA59C";

    fn id() -> PrescriptionId {
        PrescriptionId::parse(ID).unwrap()
    }

    fn token() -> Token {
        Token::sign(id(), &SigningKey::from_bytes(&[9; 32]))
    }

    #[test]
    fn tokens_and_ids_in_every_accepted_spelling() {
        let text = token().text();
        assert_eq!(classify(text.as_str()), Scanned::Token(token()));
        for spelling in [ID, "D7AC09A999684BA59C", "d7ac09-a99968-4ba59c"] {
            assert_eq!(
                classify(spelling),
                Scanned::PrescriptionId(id()),
                "{spelling}"
            );
        }
        assert_eq!(classify(ID).prescription_id(), Some(id()));
        assert_eq!(classify(text.as_str()).prescription_id(), Some(id()));
        // The check character may be `+` (value 36).
        assert!(matches!(
            classify("E7ZG38-ZBACYU-V38SR+"),
            Scanned::PrescriptionId(_)
        ));
    }

    #[test]
    fn misreads_of_our_shapes_say_what_they_resembled() {
        assert_eq!(
            classify("83C40E-A23856-00123C"),
            Scanned::Other(Unrecognised::IdShaped(IdError::CheckCharacter))
        );
        assert_eq!(
            classify("83C40EA2385600123C"),
            Scanned::Other(Unrecognised::IdShaped(IdError::CheckCharacter))
        );
        assert_eq!(
            classify("RX1NOTATOKEN"),
            Scanned::Other(Unrecognised::TokenShaped(TokenError::Length { found: 12 }))
        );
        let text = token().text();
        assert_eq!(
            classify(&text.as_str()[..100]),
            Scanned::Other(Unrecognised::TokenShaped(TokenError::Length { found: 100 }))
        );
        let lower = text.as_str().to_ascii_lowercase();
        assert_eq!(
            classify(&lower),
            Scanned::Other(Unrecognised::Foreign),
            "a token is upper case only; `rx` is not the magic"
        );
        assert_eq!(classify(ID).prescription_id(), Some(id()));
        assert_eq!(classify("RX1").prescription_id(), None);
    }

    #[test]
    fn aim_prefixes_gs1_text_and_other_foreign_text_are_other() {
        let token = token().text();
        for foreign in [
            "",
            "hello world",
            "PJJ123C",
            // A wedge scanner set to transmit the AIM identifier in front of the data.
            "]C0D7AC09-A99968-4BA59C",
            "]C0D7AC09A999684BA59C",
            &format!("]d1{}", token.as_str()),
            &format!("]Q1{}", token.as_str()),
            // GS1 element strings: human-readable, FNC1 as GS, AIM-prefixed.
            "(01)09501101530003(17)261231(10)AB123",
            "0109501101530003\u{1d}17261231\u{1d}10AB123",
            "]C1010950110153000317261231",
            "]d201095011015300032112345678901\u{1d}17261231",
            "00095011015300000011",
            // 20 characters without hyphens, and an ID with hyphens in the wrong place.
            "ABCDEFGHIJKLMNOPQRST",
            "D7AC09A-99968-4BA59C-",
            // A token with a byte missing from its middle is not token-shaped if the magic is gone.
            &token.as_str()[2..],
        ] {
            assert_eq!(
                classify(foreign),
                Scanned::Other(Unrecognised::Foreign),
                "{foreign:?}"
            );
        }
    }

    /// An 18-character GS1 element string (AI 11 production date, AI 10 batch) whose last
    /// character happens to satisfy MOD 37-2.
    fn gs1_text_passing_the_id_check() -> [u8; 18] {
        let mut text = *b"1126010110ABC1234X";
        let data: &[u8; 17] = text[..17].try_into().unwrap();
        text[17] = crate::id::check_character(data);
        text
    }

    #[test]
    fn the_symbology_identifier_keeps_gs1_data_from_passing_as_an_id() {
        let gs1 = gs1_text_passing_the_id_check();
        assert!(PrescriptionId::parse_bytes(&gs1).is_ok(), "1 in 37 does");
        for aim in [
            &b"]C1"[..],
            b"]C2",
            b"]d2",
            b"]d5",
            b"]Q3",
            b"]Q4",
            b"]E0",
            b"",
            b"]C",
        ] {
            assert_eq!(
                classify_symbol(aim, &gs1),
                Scanned::Other(Unrecognised::Foreign),
                "{aim:?}"
            );
        }
        assert_eq!(
            classify_symbol(b"]C1", ID.as_bytes()),
            Scanned::Other(Unrecognised::Foreign)
        );
        assert_eq!(
            classify_symbol(b"]C0", ID.as_bytes()),
            Scanned::PrescriptionId(id())
        );
        let text = token().text();
        for aim in [b"]d1", b"]d4", b"]Q1", b"]Q2"] {
            assert_eq!(
                classify_symbol(aim, text.as_bytes()),
                Scanned::Token(token())
            );
        }
        assert_eq!(
            classify_symbol(b"]d2", text.as_bytes()),
            Scanned::Other(Unrecognised::Foreign)
        );
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Unrecognised::Foreign.to_string(),
            "neither a Prescrypt token nor a prescription ID"
        );
        assert_eq!(
            Unrecognised::IdShaped(IdError::CheckCharacter).to_string(),
            IdError::CheckCharacter.to_string()
        );
    }

    fn expected(text: &[u8]) -> Scanned {
        match (Token::parse_bytes(text), PrescriptionId::parse_bytes(text)) {
            (Ok(token), _) => Scanned::Token(token),
            (_, Ok(id)) => Scanned::PrescriptionId(id),
            _ => Scanned::Other(unrecognised(text)),
        }
    }

    proptest! {
        /// The rule in one line: a token iff it parses as one, an ID iff it parses as one, else other.
        #[test]
        fn a_token_iff_it_parses_an_id_iff_it_parses(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            prop_assert_eq!(classify_bytes(&bytes), expected(&bytes));
        }

        #[test]
        fn id_alphabet_texts_follow_the_rule(text in "[0-9A-Za-z+-]{16,22}|RX1[0-9A-Z]{10,140}") {
            let scanned = classify(&text);
            prop_assert_eq!(scanned, expected(text.as_bytes()));
            if let Scanned::Other(Unrecognised::IdShaped(_)) = scanned {
                prop_assert!(is_id_shaped(text.as_bytes()));
            }
        }

        #[test]
        fn every_issued_id_and_token_is_recognised(random in 0..=crate::id::MAX_RANDOM, ods in "[0-9A-Z]{1,6}", seq in 0..=crate::id::MAX_SEQUENCE, seed in any::<[u8; 32]>()) {
            let id = PrescriptionId::new(random, &ods, seq).unwrap();
            prop_assert_eq!(classify(id.compact()), Scanned::PrescriptionId(id));
            prop_assert_eq!(classify(&id.to_string()), Scanned::PrescriptionId(id));
            prop_assert_eq!(classify_symbol(b"]C0", id.compact().as_bytes()), Scanned::PrescriptionId(id));
            let token = Token::sign(id, &SigningKey::from_bytes(&seed));
            prop_assert_eq!(classify(token.text().as_str()), Scanned::Token(token));
            // With the AIM identifier still in front, or read from a GS1 symbol: never ours.
            let mut prefixed = b"]d1".to_vec();
            prefixed.extend_from_slice(token.text().as_bytes());
            prop_assert_eq!(classify_bytes(&prefixed), Scanned::Other(Unrecognised::Foreign));
            prop_assert_eq!(classify_symbol(b"]d2", token.text().as_bytes()), Scanned::Other(Unrecognised::Foreign));
        }
    }
}
