//! THE rule for free text a prescriber writes (patient name, item code, display, unit, dosage):
//! what is refused, and the one form (trimmed, NFC) in which accepted text is signed and stored.

use unicode_normalization::UnicodeNormalization;

/// Why a free-text value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    /// Control characters, bidi overrides and isolates, zero-width characters and line or
    /// paragraph separators: they hide, reorder or break what a pharmacist reads.
    #[error("must not contain the invisible or control character U+{code:04X}")]
    Forbidden { code: u32 },
}

/// A character that may not appear in free text: the contract's hidden-or-control set.
pub use prescrypt_contract::text::is_hidden_or_control as is_forbidden;

/// Checks free text and returns it trimmed and NFC-normalised, at most `max` characters.
pub fn free_text(value: &str, max: usize) -> Result<String, TextError> {
    if let Some(c) = value.chars().find(|&c| is_forbidden(c)) {
        return Err(TextError::Forbidden { code: u32::from(c) });
    }
    let normalised: String = value.trim().nfc().collect();
    if normalised.is_empty() {
        return Err(TextError::Empty);
    }
    if normalised.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_invisible_and_control_characters() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}',
            '\u{2028}', '\u{2029}', '\u{0000}', '\u{0007}', '\u{001B}', '\n', '\t', '\u{007F}',
            '\u{0085}', '\u{009B}',
        ] {
            let text = format!("Jane{c}Smith");
            assert_eq!(
                free_text(&text, 200),
                Err(TextError::Forbidden { code: u32::from(c) }),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn accepts_and_normalises_to_nfc() {
        // "Zoë" with a combining diaeresis becomes the precomposed ë.
        assert_eq!(
            free_text("  Zoe\u{0308} Brontë ", 200).unwrap(),
            "Zo\u{00EB} Brontë"
        );
        assert_eq!(
            free_text("Łukasz Żółć-O'Brien", 200).unwrap(),
            "Łukasz Żółć-O'Brien"
        );
        // Non-breaking spaces and right-to-left letters are ordinary text.
        assert_eq!(free_text("10\u{00A0}mg", 64).unwrap(), "10\u{00A0}mg");
        assert_eq!(free_text("مريم", 64).unwrap(), "مريم");
    }

    #[test]
    fn refuses_empty_and_long() {
        assert_eq!(free_text("   ", 10), Err(TextError::Empty));
        assert_eq!(free_text("", 10), Err(TextError::Empty));
        assert_eq!(
            free_text("abcdefghijk", 10),
            Err(TextError::TooLong { max: 10 })
        );
        // The limit counts characters after normalisation (e + U+0301 is one é).
        assert_eq!(
            free_text(&"e\u{0301}".repeat(10), 10)
                .unwrap()
                .chars()
                .count(),
            10
        );
    }
}
