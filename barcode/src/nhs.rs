//! The NHS number: ten digits, the last a Modulus 11 check digit, not ten identical digits;
//! shown as 3-3-4.

use core::fmt;

/// Why a text is not an NHS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NhsNumberError {
    /// Not ten digits (spaces and hyphens in the 3-3-4 layout are allowed).
    Format,
    /// The check digit does not match, or the weighted sum gives the impossible check value 10.
    CheckDigit,
    /// Ten identical digits (`0000000000`, `1111111111`, ...): their check digits work out, but
    /// they are placeholders systems use for "unknown", never a patient's number.
    Placeholder,
}

impl fmt::Display for NhsNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format => f.write_str("an NHS number is 10 digits"),
            Self::CheckDigit => {
                f.write_str("the NHS number check digit does not match (Modulus 11)")
            }
            Self::Placeholder => {
                f.write_str("ten identical digits are a placeholder, not an NHS number")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NhsNumberError {}

/// A validated NHS number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

impl NhsNumber {
    /// Parses ten digits, optionally grouped 3-3-4 with single spaces or hyphens.
    pub fn parse(text: &str) -> Result<Self, NhsNumberError> {
        let bytes = text.as_bytes();
        let digits_only = match bytes.len() {
            10 => bytes.iter().all(u8::is_ascii_digit),
            12 => {
                let sep = bytes[3];
                (sep == b' ' || sep == b'-') && bytes[7] == sep
            }
            _ => false,
        };
        if !digits_only {
            return Err(NhsNumberError::Format);
        }
        let mut digits = [0u8; 10];
        let mut count = 0;
        for &b in bytes {
            if b.is_ascii_digit() {
                if count == 10 {
                    return Err(NhsNumberError::Format);
                }
                digits[count] = b;
                count += 1;
            } else if b != b' ' && b != b'-' {
                return Err(NhsNumberError::Format);
            }
        }
        if count != 10 {
            return Err(NhsNumberError::Format);
        }
        let sum: u32 = digits[..9]
            .iter()
            .zip((2..=10).rev())
            .map(|(d, weight)| u32::from(d - b'0') * weight)
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(NhsNumberError::CheckDigit),
            c => c,
        };
        if u32::from(digits[9] - b'0') != check {
            return Err(NhsNumberError::CheckDigit);
        }
        if digits.iter().all(|&d| d == digits[0]) {
            return Err(NhsNumberError::Placeholder);
        }
        Ok(Self(digits))
    }

    /// The ten digits without spaces.
    pub fn digits(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 3-3-4 display form, e.g. `943 476 5919`.
    pub fn spaced(&self) -> [u8; 12] {
        let mut out = [b' '; 12];
        out[..3].copy_from_slice(&self.0[..3]);
        out[4..7].copy_from_slice(&self.0[3..6]);
        out[8..].copy_from_slice(&self.0[6..]);
        out
    }
}

impl fmt::Display for NhsNumber {
    /// Shows the number grouped 3-3-4, as the NHS style guide asks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.spaced()).unwrap_or_default())
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(***)")
    }
}

impl core::str::FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn verified_vectors() {
        for n in ["9434765919", "9990548609", "9449305552", "9449304130"] {
            let parsed = NhsNumber::parse(n).expect(n);
            assert_eq!(parsed.digits(), n);
        }
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().to_string(),
            "943 476 5919"
        );
        assert!(NhsNumber::parse("943 476 5919").is_ok());
        assert!(NhsNumber::parse("943-476-5919").is_ok());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigit)
        );
        assert_eq!(NhsNumber::parse("943476591"), Err(NhsNumberError::Format));
        assert_eq!(NhsNumber::parse("943 4765919"), Err(NhsNumberError::Format));
        assert_eq!(
            NhsNumber::parse("943-476 5919"),
            Err(NhsNumberError::Format)
        );
        assert_eq!(NhsNumber::parse("94347659a9"), Err(NhsNumberError::Format));
        // Weighted sum 12 ≡ 1 (mod 11) gives check value 10: never a valid number.
        assert_eq!(
            NhsNumber::parse("0000000400"),
            Err(NhsNumberError::CheckDigit)
        );
    }

    #[test]
    fn refuses_placeholders() {
        // All of these pass Modulus 11 (or fail it); none is a patient's number.
        for d in b'0'..=b'9' {
            let text: String = core::iter::repeat_n(char::from(d), 10).collect();
            assert!(NhsNumber::parse(&text).is_err(), "{text}");
        }
        assert_eq!(
            NhsNumber::parse("0000000000"),
            Err(NhsNumberError::Placeholder)
        );
        assert_eq!(
            NhsNumber::parse("000 000 0000"),
            Err(NhsNumberError::Placeholder)
        );
        assert_eq!(
            NhsNumber::parse("1111111111"),
            Err(NhsNumberError::Placeholder)
        );
    }

    fn check_digit(first9: &[u8]) -> Option<u8> {
        let sum: u32 = first9
            .iter()
            .zip((2..=10).rev())
            .map(|(d, w)| u32::from(*d) * w)
            .sum();
        match 11 - sum % 11 {
            11 => Some(0),
            10 => None,
            c => Some(c as u8),
        }
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_is_accepted(first9 in proptest::collection::vec(0u8..10, 9)) {
            let expected = check_digit(&first9);
            for last in 0u8..10 {
                let text: String = first9.iter().chain(core::iter::once(&last)).map(|d| char::from(b'0' + d)).collect();
                let placeholder = first9.iter().all(|&d| d == last);
                prop_assert_eq!(NhsNumber::parse(&text).is_ok(), Some(last) == expected && !placeholder);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,20}") {
            let _ = NhsNumber::parse(&text);
        }
    }
}
