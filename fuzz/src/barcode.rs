//! Checks for `prescrypt-barcode`: the token, ID and GS1 element-string parsers (no_std core)
//! and the image decoding pipeline (`decode` feature).

use std::time::Duration;

use image::GrayImage;
use prescrypt_barcode::decode::{DecodeOptions, Decoder, Payload, Want};
use prescrypt_barcode::gs1::{self, ElementString};
use prescrypt_barcode::token::{TOKEN_LEN, Token};
use prescrypt_barcode::{NhsNumber, PrescriptionId};

/// Token parser: never panics; whatever it accepts is exactly its own canonical text.
pub fn token_parse(data: &[u8]) {
    let parsed = Token::parse_bytes(data);
    if let Ok(text) = core::str::from_utf8(data) {
        assert_eq!(Token::parse(text), parsed, "parse and parse_bytes disagree");
    }
    let Ok(token) = parsed else { return };
    assert_eq!(data.len(), TOKEN_LEN);
    let text = token.text();
    assert_eq!(
        text.as_bytes().as_slice(),
        data,
        "accepted a non-canonical text"
    );
    assert_eq!(text.as_str().as_bytes(), data);
    assert_eq!(Token::parse(text.as_str()), Ok(token));
    let id = token.prescription_id();
    assert_eq!(&data[3..20], id.data().as_slice());
    assert_eq!(PrescriptionId::parse(id.compact()), Ok(id));
    assert_eq!(token.key_id().as_str().as_bytes(), &data[20..28]);
}

/// GS1 element strings, as scanned (AIM + GS) and bracketed: never panic; every accepted string
/// has elements, renders to a canonical text that parses to the same elements (and to the same
/// canonical text), and its bracketed rendering parses back when no value contains `(`.
pub fn gs1_parse(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let elements = |parsed: &ElementString<'_>| -> Vec<(gs1::Ai, String)> {
        parsed
            .elements()
            .map(|e| (e.ai, e.value.to_owned()))
            .collect()
    };
    for parsed in [
        ElementString::parse(text),
        ElementString::parse_bracketed(text),
    ]
    .into_iter()
    .flatten()
    {
        let expected = elements(&parsed);
        assert!(!expected.is_empty(), "accepted without elements");
        let canonical = parsed.canonical().to_string();
        let again = ElementString::parse(&canonical).expect("the canonical text parses");
        assert_eq!(
            elements(&again),
            expected,
            "canonical text changes the elements"
        );
        assert_eq!(again.canonical().to_string(), canonical);
        if expected.iter().all(|(_, value)| !value.contains('(')) {
            let bracketed = parsed.bracketed().to_string();
            let again = ElementString::parse_bracketed(&bracketed).expect("bracketed text parses");
            assert_eq!(
                elements(&again),
                expected,
                "bracketed text changes the elements"
            );
        }
        if let Some(pack) = parsed.pack() {
            assert!(gs1::has_valid_check_digit(pack.gtin));
        }
    }
}

/// Prescription ID and NHS number parsers: never panic; accepted input round-trips through
/// both printed forms; the ID is case-insensitive.
pub fn prescription_id_parse(data: &[u8]) {
    let parsed = PrescriptionId::parse_bytes(data);
    if let Ok(text) = core::str::from_utf8(data) {
        assert_eq!(PrescriptionId::parse(text), parsed);
        nhs_number_parse(text);
    }
    let Ok(id) = parsed else { return };
    let compact = id.compact();
    assert_eq!(compact.len(), 18);
    assert_eq!(PrescriptionId::parse(compact), Ok(id));
    let hyphenated = id.to_string();
    assert_eq!(hyphenated.len(), 20);
    assert_eq!(PrescriptionId::parse(&hyphenated), Ok(id));
    assert_eq!(PrescriptionId::parse(&compact.to_ascii_lowercase()), Ok(id));
    let upper: Vec<u8> = data
        .iter()
        .filter(|b| **b != b'-')
        .map(u8::to_ascii_uppercase)
        .collect();
    assert_eq!(
        upper,
        compact.as_bytes(),
        "the ID is not the input's characters"
    );
}

fn nhs_number_parse(text: &str) {
    let Ok(number) = NhsNumber::parse(text) else {
        return;
    };
    let digits = number.digits();
    assert_eq!(digits.len(), 10);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(NhsNumber::parse(digits), Ok(number));
    assert_eq!(NhsNumber::parse(&number.to_string()), Ok(number));
    let input_digits: String = text.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(input_digits, digits);
}

/// Largest image the image target lets through (the pipeline must reject larger ones itself).
pub const IMAGE_MAX_PIXELS: u64 = 96 * 96;
/// Side of the largest raw luma buffer the image target builds.
pub const LUMA_MAX_SIDE: usize = 96;

/// Wall-clock budget per input. An image without a code runs the pipeline until the budget is
/// spent, so this caps the target at 1 / budget executions per second: 5 ms keeps 200,000
/// executions to about 20 minutes; the stages the budget cuts off on a loaded machine are
/// reached by the inputs that decode early.
pub const IMAGE_TIME_BUDGET: Duration = Duration::from_millis(5);

/// The decoder under test: a tiny pixel limit and time budget keep one input to milliseconds.
pub fn image_decoder() -> Decoder {
    Decoder::new(DecodeOptions {
        max_pixels: IMAGE_MAX_PIXELS,
        max_file_bytes: 64 * 1024,
        time_budget: IMAGE_TIME_BUDGET,
        // Look for both codes: every stage of the pipeline stays reachable.
        want: Want::All,
        ..DecodeOptions::default()
    })
}

/// The decoding pipeline: the first byte picks the input kind — even: the rest is an encoded
/// image file (PNG/JPEG/BMP, sniffed); odd: the second byte is a width and the rest a grey
/// buffer. Never panics (an error is fine), never reports one of our codes that fails its own
/// check, never more than one 1-D and one 2-D code.
pub fn image_decode(decoder: &Decoder, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codes = if mode % 2 == 0 {
        match decoder.decode_bytes(rest) {
            Ok(codes) => codes,
            Err(_) => return,
        }
    } else {
        let Some((&width, pixels)) = rest.split_first() else {
            return;
        };
        let width = usize::from(width) % LUMA_MAX_SIDE + 1;
        let height = (pixels.len() / width).min(LUMA_MAX_SIDE);
        if height == 0 {
            return;
        }
        let buffer = pixels[..width * height].to_vec();
        let Some(image) = GrayImage::from_raw(width as u32, height as u32, buffer) else {
            return;
        };
        decoder.decode_luma(&image)
    };
    assert!(codes.len() <= 2, "more than one code per group: {codes:?}");
    for code in &codes {
        assert_eq!(
            Payload::classify_symbol(&code.aim, &code.text),
            Ok(code.payload),
            "{code:?}"
        );
        assert_eq!(code.aim.len(), 3, "{code:?}");
    }
}
