//! THE set of characters that hide, reorder or break what a person reads: the service refuses
//! them in free text a prescriber writes, and the pharmacy client escapes them in anything it
//! prints that came from outside.

/// C0 and C1 controls and DEL (ANSI escapes start with ESC or CSI), bidirectional marks,
/// embeddings, overrides and isolates (a U+202E reverses what follows), zero-width characters
/// and invisible operators, the byte-order mark, and the Unicode line and paragraph separators.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' // Arabic letter mark
                | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
                | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings, overrides
                | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, bidi isolates
                | '\u{FEFF}' // zero-width no-break space (BOM)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_control_characters_are_caught_and_scripts_are_not() {
        for c in [
            '\u{0}', '\u{7}', '\u{1b}', '\n', '\t', '\u{7f}', '\u{85}', '\u{9b}', '\u{61c}',
            '\u{200b}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{202a}',
            '\u{202e}', '\u{2060}', '\u{2066}', '\u{2069}', '\u{feff}',
        ] {
            assert!(is_hidden_or_control(c), "{c:?}");
        }
        for c in "Zoë Ōtani — محمد Ελένη Наталья 32 tablets".chars() {
            assert!(!is_hidden_or_control(c), "{c:?}");
        }
    }
}
