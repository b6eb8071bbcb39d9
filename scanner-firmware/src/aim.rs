//! AIM symbology identifiers (ISO/IEC 15424): `]` + code character + modifier.

use core::fmt;

/// A three-byte AIM symbology identifier such as `]C0` or `]d1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId([u8; 3]);

impl AimId {
    /// Code 128, no FNC1.
    pub const CODE128: Self = Self(*b"]C0");
    /// GS1-128 (FNC1 in the first position).
    pub const GS1_128: Self = Self(*b"]C1");
    /// Data Matrix ECC 200.
    pub const DATA_MATRIX: Self = Self(*b"]d1");
    /// GS1 Data Matrix.
    pub const GS1_DATA_MATRIX: Self = Self(*b"]d2");
    /// QR Code model 2.
    pub const QR: Self = Self(*b"]Q1");
    /// GS1 QR Code.
    pub const GS1_QR: Self = Self(*b"]Q3");

    /// Reads `]` + a letter + a digit or letter.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b']', code, modifier]
                if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
            {
                Some(Self([b']', *code, *modifier]))
            }
            _ => None,
        }
    }

    /// The three bytes.
    pub fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }

    /// The three characters.
    pub fn as_str(&self) -> &str {
        // Always ASCII: built from constants or checked by `parse`.
        core::str::from_utf8(&self.0).unwrap_or("]X0")
    }

    /// The symbology code character (`C`, `d`, `Q`, …).
    pub fn code(&self) -> u8 {
        self.0[1]
    }
}

impl fmt::Display for AimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AimId({})", self.as_str())
    }
}
