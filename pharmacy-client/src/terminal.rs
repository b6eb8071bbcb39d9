//! Text from outside (the centre's answers, scanned codes, tokens' claims) never reaches a terminal
//! raw: [`safe`] is the one place that decides what may be printed.

use std::borrow::Cow;
use std::fmt::Write as _;

use prescrypt_contract::text::is_hidden_or_control as is_unsafe;

/// Outside text as it may be printed: every hidden or control character (the contract's set,
/// line breaks included) escaped as `\u{…}`, so it shows as itself and does nothing. Printable
/// text is unchanged.
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`safe`] for text of several lines, keeping its line breaks (`\n`) as they are.
pub fn safe_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(safe).collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_escapes_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(safe("Jane Smith"), "Jane Smith");
        assert!(matches!(safe("Jane Smith"), Cow::Borrowed(_)));
        assert_eq!(
            safe("\u{1b}[2J\u{1b}[31mG1234567"),
            "\\u{1b}[2J\\u{1b}[31mG1234567"
        );
        // C1 CSI, BEL, DEL and a carriage return that would overwrite the line.
        assert_eq!(
            safe("a\u{9b}31mb\u{7}c\u{7f}\rd"),
            "a\\u{9b}31mb\\u{7}c\\u{7f}\\u{d}d"
        );
        // "Jane \u{202E}htimS" would display as "Jane Smith".
        assert_eq!(safe("Jane \u{202E}htimS"), "Jane \\u{202e}htimS");
        for hidden in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}',
            '\u{FEFF}', '\u{2028}', '\u{2029}', '\n', '\t',
        ] {
            let shown = safe(&format!("x{hidden}y")).into_owned();
            assert!(shown.is_ascii(), "{hidden:?} -> {shown}");
            assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        }
        // Names in other scripts are left alone.
        assert_eq!(safe("Zoë Ōtani — محمد"), "Zoë Ōtani — محمد");
    }

    #[test]
    fn our_own_line_breaks_survive_but_nothing_else() {
        assert_eq!(
            safe_lines("Patient \u{1b}]0;x\u{7}\nItems\n"),
            "Patient \\u{1b}]0;x\\u{7}\nItems\n"
        );
        // Idempotent: escaping escaped text changes nothing.
        let once = safe("\u{1b}[31m\u{202E}").into_owned();
        assert_eq!(safe(&once), once);
    }
}
