//! What the scanner may send: the checks made before any symbol leaves the device.
//!
//! What a symbol's text is (token, prescription ID or other) is decided by
//! `prescrypt_barcode::scanned`, GS1 element strings by `prescrypt_barcode::gs1`; this module
//! only decides which rule applies to which symbol and what the scanner does with each answer.

use prescrypt_barcode::gs1::{ElementString, Symbology};
use prescrypt_barcode::scanned::{Scanned, Unrecognised, classify_symbol};

use crate::aim::AimId;
use crate::host_link::MAX_SCAN_DATA;

/// Data Matrix codeword 234 (reader programming), as an engine passes it through.
pub const DATA_MATRIX_READER_PROGRAMMING: u8 = 234;

/// Why a symbol is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// A reader-programming symbol (Code 128 FNC3, Data Matrix codeword 234).
    ProgrammingSymbol,
    /// A Code 128 shaped like a prescription ID whose MOD 37-2 check character is wrong.
    BadCheckCharacter,
    /// A 2-D symbol that is not a well-formed dispensing token.
    NotAToken,
    /// A symbology the scanner does not forward.
    UnsupportedSymbology,
    /// No data, or more than one host-link frame holds.
    BadLength,
    /// Keyboard-wedge output, but the data has characters outside `[0-9A-Z]` or is GS1 data
    /// (the wedge cannot carry the AIM id that marks it).
    NotLayoutSafe,
    /// A GS1 symbol (AIM `]C1`, `]d2`, `]Q3`, `]e0`) whose element strings do not parse
    /// (`prescrypt_barcode::gs1`: unknown AI, wrong check digit, bad date, missing FNC1…).
    NotGs1,
}

/// Decides whether a decoded symbol may be sent to the host.
///
/// `programming` is set by the decoder when the symbol carried a reader-programming marker
/// (Code 128 FNC3).
pub fn check(aim: AimId, data: &[u8], programming: bool) -> Result<(), Reject> {
    if programming {
        return Err(Reject::ProgrammingSymbol);
    }
    if data.is_empty() || data.len() > MAX_SCAN_DATA {
        return Err(Reject::BadLength);
    }
    if is_gs1(aim) {
        return check_gs1(data);
    }
    let scanned = classify_symbol(aim.as_bytes(), data);
    match aim.code() {
        // Other Code 128 data (GS1-128 included) goes through for the host to judge.
        b'C' => match scanned {
            Scanned::Other(Unrecognised::IdShaped(_)) => Err(Reject::BadCheckCharacter),
            _ => Ok(()),
        },
        b'd' | b'Q' => {
            if data[0] == DATA_MATRIX_READER_PROGRAMMING {
                return Err(Reject::ProgrammingSymbol);
            }
            match scanned {
                Scanned::Token(_) => Ok(()),
                _ => Err(Reject::NotAToken),
            }
        }
        _ => Err(Reject::UnsupportedSymbology),
    }
}

/// Whether the AIM id marks GS1 element strings (FNC1 in the first position): `]C1`, `]d2`,
/// `]Q3`, `]e0`, as `prescrypt_barcode::gs1` lists them.
pub fn is_gs1(aim: AimId) -> bool {
    Symbology::from_aim(aim.as_str()).is_some()
}

/// GS1 data (FNC1 after the first position as GS, 0x1D) is sent only if its element strings
/// parse; it is never checked as a prescription ID or a token.
fn check_gs1(data: &[u8]) -> Result<(), Reject> {
    let text = core::str::from_utf8(data).map_err(|_| Reject::NotGs1)?;
    ElementString::parse(text)
        .map(drop)
        .map_err(|_| Reject::NotGs1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 18 characters of GS1 element strings (AI 11 production date, AI 10 batch) whose last
    /// character fails MOD 37-2: ID-shaped, but not an ID.
    const GS1_DATA: &[u8] = b"1126010110ABC1234X";

    #[test]
    fn an_id_shaped_code128_with_a_wrong_check_character_is_not_sent() {
        assert!(prescrypt_barcode::PrescriptionId::parse_bytes(GS1_DATA).is_err());
        assert_eq!(
            check(AimId::CODE128, GS1_DATA, false),
            Err(Reject::BadCheckCharacter)
        );
        assert_eq!(
            check(AimId::CODE128, b"D7AC09-A99968-4BA59C", false),
            Ok(())
        );
        assert_eq!(check(AimId::CODE128, b"PJJ123C", false), Ok(()));
    }

    #[test]
    fn gs1_128_data_is_forwarded_whatever_its_shape() {
        assert_eq!(check(AimId::GS1_128, GS1_DATA, false), Ok(()));
    }

    #[test]
    fn a_2d_symbol_must_be_a_token_or_gs1_that_parses() {
        assert_eq!(
            check(AimId::DATA_MATRIX, b"RX1NOTATOKEN", false),
            Err(Reject::NotAToken)
        );
        assert_eq!(
            check(AimId::GS1_DATA_MATRIX, b"0109501101530004", false),
            Err(Reject::NotGs1)
        );
    }
}
