//! What the scanner may send: the checks made before any symbol leaves the device.
//!
//! The rules themselves (MOD 37-2, token format, GS1 element strings) live in
//! `prescrypt-barcode`; this module only decides which rule applies to which symbol.

use prescrypt_barcode::gs1::{ElementString, Symbology};
use prescrypt_barcode::id::{COMPACT_LEN, HYPHENATED_LEN};
use prescrypt_barcode::{PrescriptionId, Token};

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

/// Whether `data` has the shape of a prescription ID (18 characters, or 20 with hyphens at
/// positions 7 and 14, of `0-9A-Za-z` and `+`), whatever its check character.
pub fn looks_like_id(data: &[u8]) -> bool {
    let id_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+';
    match data.len() {
        COMPACT_LEN => data.iter().all(id_char),
        HYPHENATED_LEN => data.iter().enumerate().all(|(i, b)| {
            if i == 6 || i == 13 {
                *b == b'-'
            } else {
                id_char(b)
            }
        }),
        _ => false,
    }
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
    match aim.code() {
        b'C' => {
            if looks_like_id(data) && PrescriptionId::parse_bytes(data).is_err() {
                return Err(Reject::BadCheckCharacter);
            }
            Ok(())
        }
        b'd' | b'Q' => {
            if data[0] == DATA_MATRIX_READER_PROGRAMMING {
                return Err(Reject::ProgrammingSymbol);
            }
            Token::parse_bytes(data)
                .map(drop)
                .map_err(|_| Reject::NotAToken)
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
