//! Scanning sources — image files, keyboard wedge, the counter scanner over serial — all producing
//! the same [`ScannedCode`], and what the counter accepts of it: a token or a bare prescription ID.

use std::fmt;

use prescrypt_barcode::scanned::{self, Scanned, Unrecognised};
use prescrypt_barcode::{PrescriptionId, Token, TokenError};
use serde::Serialize;

use crate::error::{Error, Result};

/// Where a code came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "detail")]
pub enum Source {
    Image(String),
    Wedge,
    Serial(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image(path) => write!(f, "image {path}"),
            Self::Wedge => f.write_str("keyboard wedge"),
            Self::Serial(device) => write!(f, "scanner on {device}"),
        }
    }
}

/// One scan: the decoded text and, when the reader reports it, the AIM symbology id (`]d1`, `]C0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScannedCode {
    pub source: Source,
    pub aim: Option<String>,
    pub text: String,
}

/// A scanned code the counter acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A signed dispensing token (Data Matrix): verify it before anything else.
    Token(Token),
    /// A bare prescription ID (the Code 128): the centre releases it only to the nominated pharmacy.
    Id(PrescriptionId),
}

/// Which kind of code was scanned (`"token"` or `"id"` in JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    Token,
    Id,
}

impl Accepted {
    pub fn prescription_id(&self) -> PrescriptionId {
        match self {
            Self::Token(token) => token.prescription_id(),
            Self::Id(id) => *id,
        }
    }

    pub fn kind(&self) -> ScanKind {
        match self {
            Self::Token(_) => ScanKind::Token,
            Self::Id(_) => ScanKind::Id,
        }
    }

    /// The text the centre's release call takes.
    pub fn release_text(&self) -> String {
        match self {
            Self::Token(token) => token.text().as_str().to_owned(),
            Self::Id(id) => id.to_string(),
        }
    }
}

/// Accepts a token or an ID (the rule is `prescrypt_barcode::scanned`, given the reader's AIM
/// identifier when it reports one); anything else is rejected with the reason.
pub fn classify(code: &ScannedCode) -> Result<Accepted> {
    let text = code.text.trim();
    let scanned = match &code.aim {
        Some(aim) => scanned::classify_symbol(aim.as_bytes(), text.as_bytes()),
        None => scanned::classify(text),
    };
    match scanned {
        Scanned::Token(token) => Ok(Accepted::Token(token)),
        Scanned::PrescriptionId(id) => Ok(Accepted::Id(id)),
        Scanned::Other(Unrecognised::TokenShaped(
            e @ (TokenError::Length { .. } | TokenError::Character { .. }),
        )) => Err(Error::Rejected(format!("damaged token ({e}) — rescan it"))),
        Scanned::Other(Unrecognised::TokenShaped(e)) => {
            Err(Error::Rejected(format!("invalid token ({e})")))
        }
        Scanned::Other(reason) => Err(Error::Rejected(format!(
            "`{}` is neither a prescription token nor a prescription ID{}",
            crate::terminal::safe(&text.chars().take(40).collect::<String>()),
            match reason {
                Unrecognised::IdShaped(e) => format!(" ({e})"),
                _ => String::new(),
            }
        ))),
    }
}

/// Cleans one line typed by a keyboard-wedge scanner: drops whitespace, CR and other control
/// characters (none belong to a token or ID), and upper-cases (a scanner typing with Caps Lock on
/// produces lower case; tokens and IDs are upper-case only). `None` for a blank line.
pub fn wedge_line(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Reads wedge scans from a line-oriented reader (stdin), one code per non-blank line.
pub fn wedge_codes<R: std::io::BufRead>(reader: R) -> impl Iterator<Item = Result<ScannedCode>> {
    reader.lines().filter_map(|line| match line {
        Ok(line) => wedge_line(&line).map(|text| {
            Ok(ScannedCode {
                source: Source::Wedge,
                aim: None,
                text,
            })
        }),
        Err(e) => Some(Err(Error::io("stdin", e))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn wedge(text: &str) -> ScannedCode {
        ScannedCode {
            source: Source::Wedge,
            aim: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn wedge_lines_lose_stray_whitespace_and_carriage_returns() {
        assert_eq!(
            wedge_line("  D7AC09-A99968-4BA59C\r").as_deref(),
            Some("D7AC09-A99968-4BA59C")
        );
        assert_eq!(wedge_line("\tRX1AB C\r\n").as_deref(), Some("RX1ABC"));
        assert_eq!(
            wedge_line("d7ac09a999684ba59c").as_deref(),
            Some("D7AC09A999684BA59C")
        );
        assert_eq!(wedge_line(" \r"), None);
        assert_eq!(wedge_line(""), None);
    }

    #[test]
    fn wedge_reader_skips_blank_lines() {
        let input = b"\r\n  D7AC09-A99968-4BA59C \r\n\n 83C40E-A23856-00123W\n" as &[u8];
        let codes: Vec<String> = wedge_codes(input).map(|c| c.unwrap().text).collect();
        assert_eq!(codes, ["D7AC09-A99968-4BA59C", "83C40E-A23856-00123W"]);
    }

    #[test]
    fn classification() {
        let id = PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap();
        assert_eq!(
            classify(&wedge("D7AC09A999684BA59C")).unwrap(),
            Accepted::Id(id)
        );
        let token = Token::sign(id, &SigningKey::from_bytes(&[4; 32]));
        let text = token.text().as_str().to_owned();
        assert_eq!(classify(&wedge(&text)).unwrap(), Accepted::Token(token));
        let short = &text[..100];
        assert!(
            matches!(classify(&wedge(short)), Err(Error::Rejected(m)) if m.contains("damaged"))
        );
        // A bad check character is not an ID.
        assert!(matches!(
            classify(&wedge("D7AC09-A99968-4BA59D")),
            Err(Error::Rejected(_))
        ));
        assert!(classify(&wedge("hello")).is_err());
    }

    #[test]
    fn the_readers_symbology_identifier_is_heeded() {
        let id = PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap();
        let read = |aim: &str| {
            classify(&ScannedCode {
                source: Source::Serial("/dev/ttyACM0".to_owned()),
                aim: Some(aim.to_owned()),
                text: id.to_string(),
            })
        };
        assert_eq!(read("]C0").unwrap(), Accepted::Id(id));
        // The same characters from a GS1-128 label are GS1 data, not a prescription ID.
        assert!(
            matches!(read("]C1"), Err(Error::Rejected(m)) if m.contains("neither a prescription token"))
        );
    }
}
