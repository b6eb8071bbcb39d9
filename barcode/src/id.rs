//! The EPS short-form prescription ID: `XXXXXX-XXXXXX-XXXXXC`.
//!
//! Part 1 is random hex, part 2 the prescriber's ODS code left-padded with `0`, part 3 a
//! per-organisation hex sequence, and `C` an ISO/IEC 7064 MOD 37-2 check character in the EPS
//! variant (`+` stands for the value 36).

use core::fmt;

/// The MOD 37-2 alphabet, EPS variant.
const CHECK_ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+";

/// Number of data characters (without the check character and hyphens).
pub const DATA_LEN: usize = 17;
/// Length without hyphens.
pub const COMPACT_LEN: usize = 18;
/// Length with hyphens.
pub const HYPHENATED_LEN: usize = 20;
/// Largest value of the per-organisation sequence (five hex digits); it wraps to 0 after this.
pub const MAX_SEQUENCE: u32 = 0xF_FFFF;
/// Largest value of the random part (six hex digits).
pub const MAX_RANDOM: u32 = 0xFF_FFFF;

/// Why a text is not a prescription ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Neither 18 characters, nor 20 with hyphens after the 6th and 12th character.
    Length,
    /// A hyphen somewhere other than positions 7 and 14, or only one of the two.
    Hyphen,
    /// A character outside `0-9A-Z` (or `+` as the check character).
    Character { position: usize },
    /// Every character is allowed, but the check character does not match.
    CheckCharacter,
    /// An ODS code must be 1 to 6 characters of `0-9A-Z`.
    OdsCode,
    /// The random part or the sequence is out of range.
    OutOfRange,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => f.write_str("a prescription ID has 18 characters (20 with hyphens)"),
            Self::Hyphen => f.write_str("hyphens belong after the 6th and 12th character"),
            Self::Character { position } => {
                write!(
                    f,
                    "character {} is not allowed in a prescription ID",
                    position + 1
                )
            }
            Self::CheckCharacter => f.write_str("the check character does not match (MOD 37-2)"),
            Self::OdsCode => f.write_str("an ODS code is 1 to 6 letters or digits"),
            Self::OutOfRange => f.write_str("random part or sequence out of range"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdError {}

/// A validated short-form prescription ID, stored upper-case without hyphens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrescriptionId([u8; COMPACT_LEN]);

fn check_value(byte: u8) -> Option<u32> {
    let upper = byte.to_ascii_uppercase();
    CHECK_ALPHABET
        .iter()
        .position(|&c| c == upper)
        .map(|v| v as u32)
}

fn is_data_char(byte: u8) -> bool {
    byte.is_ascii_digit() || byte.is_ascii_uppercase()
}

/// The running MOD 37-2 sum over the data characters.
fn mod37_2_sum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0, |t, &c| ((t + check_value(c).unwrap_or(0)) * 2) % 37)
}

/// The MOD 37-2 check character for 17 upper-case data characters.
pub fn check_character(data: &[u8; DATA_LEN]) -> u8 {
    let t = mod37_2_sum(data);
    CHECK_ALPHABET[((38 - t) % 37) as usize]
}

fn hex_digit(value: u32) -> u8 {
    b"0123456789ABCDEF"[(value & 0xF) as usize]
}

impl PrescriptionId {
    /// Parses an ID with or without hyphens, in any letter case.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Like [`parse`](Self::parse), for raw scanner bytes.
    pub fn parse_bytes(text: &[u8]) -> Result<Self, IdError> {
        let mut compact = [0u8; COMPACT_LEN];
        match text.len() {
            COMPACT_LEN => {
                compact.copy_from_slice(text);
            }
            HYPHENATED_LEN => {
                if text[6] != b'-' || text[13] != b'-' {
                    return Err(IdError::Hyphen);
                }
                compact[..6].copy_from_slice(&text[..6]);
                compact[6..12].copy_from_slice(&text[7..13]);
                compact[12..].copy_from_slice(&text[14..]);
            }
            _ => return Err(IdError::Length),
        }
        for (position, byte) in compact.iter_mut().enumerate() {
            *byte = byte.to_ascii_uppercase();
            let allowed = is_data_char(*byte) || (position == DATA_LEN && *byte == b'+');
            if !allowed {
                let original_position = if text.len() == HYPHENATED_LEN {
                    position + position / 6
                } else {
                    position
                };
                return Err(if *byte == b'-' {
                    IdError::Hyphen
                } else {
                    IdError::Character {
                        position: original_position,
                    }
                });
            }
        }
        let total = mod37_2_sum(&compact[..DATA_LEN]) + check_value(compact[DATA_LEN]).unwrap_or(0);
        if total % 37 != 1 {
            return Err(IdError::CheckCharacter);
        }
        Ok(Self(compact))
    }

    /// Builds a new ID from its parts: a 24-bit random value, the prescriber's ODS code and the
    /// organisation's 20-bit sequence number.
    pub fn new(random: u32, ods_code: &str, sequence: u32) -> Result<Self, IdError> {
        if random > MAX_RANDOM || sequence > MAX_SEQUENCE {
            return Err(IdError::OutOfRange);
        }
        let ods = ods_code.as_bytes();
        if ods.is_empty() || ods.len() > 6 || !ods.iter().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError::OdsCode);
        }
        let mut data = [b'0'; DATA_LEN];
        for (i, slot) in data[..6].iter_mut().enumerate() {
            *slot = hex_digit(random >> (4 * (5 - i)));
        }
        for (slot, byte) in data[12 - ods.len()..12].iter_mut().zip(ods) {
            *slot = byte.to_ascii_uppercase();
        }
        for (i, slot) in data[12..].iter_mut().enumerate() {
            *slot = hex_digit(sequence >> (4 * (4 - i)));
        }
        Ok(Self::from_data(&data))
    }

    /// Completes 17 upper-case data characters with their check character.
    pub(crate) fn from_data(data: &[u8; DATA_LEN]) -> Self {
        let mut compact = [0u8; COMPACT_LEN];
        compact[..DATA_LEN].copy_from_slice(data);
        compact[DATA_LEN] = check_character(data);
        Self(compact)
    }

    /// The 18-character form without hyphens, e.g. `D7AC09A999684BA59C`.
    pub fn compact(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 17 data characters (everything but the check character).
    pub fn data(&self) -> &[u8; DATA_LEN] {
        self.0[..DATA_LEN].try_into().unwrap_or(&[b'0'; DATA_LEN])
    }

    /// The 20-character form with hyphens, e.g. `D7AC09-A99968-4BA59C`.
    pub fn hyphenated(&self) -> [u8; HYPHENATED_LEN] {
        let mut out = [b'-'; HYPHENATED_LEN];
        out[..6].copy_from_slice(&self.0[..6]);
        out[7..13].copy_from_slice(&self.0[6..12]);
        out[14..].copy_from_slice(&self.0[12..]);
        out
    }

    /// The prescriber's ODS code as printed in the ID, left-padded with `0`.
    pub fn padded_ods_code(&self) -> &str {
        core::str::from_utf8(&self.0[6..12]).unwrap_or_default()
    }
}

impl fmt::Display for PrescriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hyphenated = self.hyphenated();
        f.write_str(core::str::from_utf8(&hyphenated).unwrap_or_default())
    }
}

impl fmt::Debug for PrescriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrescriptionId({self})")
    }
}

impl core::str::FromStr for PrescriptionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: [&str; 6] = [
        "7D9625-Z72BF2-11E3AC",
        "E7ZG38-ZBACYU-V38SR+",
        "6FOCBU-E776BJ-CMPMT3",
        "D7AC09-A99968-4BA59C",
        "83C40E-A23856-00123W",
        "04F4C2-A99968-7F717P",
    ];

    #[test]
    fn verified_vectors_parse_in_every_form() {
        for text in VALID {
            let id = PrescriptionId::parse(text).expect(text);
            assert_eq!(id.to_string(), text);
            assert_eq!(PrescriptionId::parse(&text.replace('-', "")), Ok(id));
            assert_eq!(PrescriptionId::parse(&text.to_ascii_lowercase()), Ok(id));
        }
    }

    #[test]
    fn invalid_vectors_fail_the_check() {
        for text in [
            "6FOCBU-E776BJ-CMPMTX",
            "83C40E-A23856-00123C",
            "DC2C66-A1B2C3-23407B",
        ] {
            assert_eq!(
                PrescriptionId::parse(text),
                Err(IdError::CheckCharacter),
                "{text}"
            );
        }
    }

    #[test]
    fn worked_example_check_character() {
        assert_eq!(check_character(b"D7AC09A999684BA59"), b'C');
    }

    #[test]
    fn malformed_inputs_have_specific_errors() {
        assert_eq!(PrescriptionId::parse(""), Err(IdError::Length));
        assert_eq!(
            PrescriptionId::parse("D7AC09-A99968-4BA59"),
            Err(IdError::Length)
        );
        assert_eq!(
            PrescriptionId::parse("D7AC09A-99968-4BA59C"),
            Err(IdError::Hyphen)
        );
        assert_eq!(
            PrescriptionId::parse("D7AC09-A99968-4BA+9C"),
            Err(IdError::Character { position: 17 })
        );
        assert_eq!(
            PrescriptionId::parse("D7AC09A99968-4BA59C-"),
            Err(IdError::Hyphen)
        );
        assert_eq!(
            PrescriptionId::parse("D7AC09-A99968-4BA5é"),
            Err(IdError::Character { position: 18 })
        );
    }

    #[test]
    fn new_pads_the_ods_code_and_uses_hex() {
        let id = PrescriptionId::new(0xD7AC09, "A99968", 0x4BA59).unwrap();
        assert_eq!(id.to_string(), "D7AC09-A99968-4BA59C");
        let short = PrescriptionId::new(0x000001, "fcg71", 0x00001).unwrap();
        assert!(short.to_string().starts_with("000001-0FCG71-00001"));
        assert_eq!(short.padded_ods_code(), "0FCG71");
        assert_eq!(PrescriptionId::new(0, "", 0), Err(IdError::OdsCode));
        assert_eq!(PrescriptionId::new(0, "ABCDEFG", 0), Err(IdError::OdsCode));
        assert_eq!(PrescriptionId::new(0, "A1-", 0), Err(IdError::OdsCode));
        assert_eq!(
            PrescriptionId::new(MAX_RANDOM + 1, "A1", 0),
            Err(IdError::OutOfRange)
        );
        assert_eq!(
            PrescriptionId::new(0, "A1", MAX_SEQUENCE + 1),
            Err(IdError::OutOfRange)
        );
    }

    proptest! {
        #[test]
        fn every_generated_id_round_trips(random in 0..=MAX_RANDOM, ods in "[0-9A-Za-z]{1,6}", seq in 0..=MAX_SEQUENCE) {
            let id = PrescriptionId::new(random, &ods, seq).unwrap();
            prop_assert_eq!(PrescriptionId::parse(&id.to_string()), Ok(id));
            prop_assert_eq!(PrescriptionId::parse(id.compact()), Ok(id));
        }

        #[test]
        fn any_single_substitution_is_detected(random in 0..=MAX_RANDOM, seq in 0..=MAX_SEQUENCE, pos in 0usize..18, replacement in 0usize..37) {
            let id = PrescriptionId::new(random, "A83008", seq).unwrap();
            let mut bytes = *id.0.as_ref().first_chunk::<18>().unwrap();
            let new = CHECK_ALPHABET[replacement];
            prop_assume!(bytes[pos] != new);
            bytes[pos] = new;
            let text = core::str::from_utf8(&bytes).unwrap();
            prop_assert!(PrescriptionId::parse(text).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = PrescriptionId::parse(&text);
        }
    }
}
