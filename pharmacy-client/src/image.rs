//! Barcodes in image files (scanner images, phone photos), read with the barcode crate's decoder.
//!
//! A printed token carries both the Data Matrix (signed token) and the Code 128 (bare ID) of the
//! same prescription: the token wins, the ID of the same prescription is dropped.

use std::path::Path;

use prescrypt_barcode::decode::{DecodeOptions, DecodedCode, Decoder, Payload};

use crate::error::{Error, Result};
use crate::scan::{ScannedCode, Source};

/// Every prescription code in the image, one per prescription (token preferred over ID).
pub fn decode_file(path: &Path) -> Result<Vec<ScannedCode>> {
    let decoded = Decoder::new(DecodeOptions::default())
        .decode_file(path)
        .map_err(|e| Error::Rejected(format!("{}: {e}", path.display())))?;
    let codes = choose(&decoded, &path.display().to_string());
    if codes.is_empty() {
        return Err(Error::Rejected(format!(
            "{}: no prescription token or ID found in the image{}",
            path.display(),
            if decoded.is_empty() {
                " — retake the photo closer, flat and in focus"
            } else {
                " (other barcodes only)"
            }
        )));
    }
    Ok(codes)
}

fn choose(decoded: &[DecodedCode], label: &str) -> Vec<ScannedCode> {
    let token_ids: Vec<_> = decoded
        .iter()
        .filter_map(|code| match code.payload {
            Payload::Token(token) => Some(token.prescription_id()),
            _ => None,
        })
        .collect();
    let mut seen = Vec::new();
    decoded
        .iter()
        .filter(|code| match code.payload {
            Payload::Token(_) => true,
            Payload::PrescriptionId(id) => !token_ids.contains(&id),
            Payload::Other => false,
        })
        .filter(|code| {
            let fresh = !seen.contains(&code.text);
            seen.push(code.text.clone());
            fresh
        })
        .map(|code| ScannedCode {
            source: Source::Image(label.to_owned()),
            aim: Some(code.aim.clone()),
            text: code.text.clone(),
        })
        .collect()
}
