//! Inputs meant to break the decoder: unreadable files are errors, never panics, and texts that
//! pose as ours without passing our checks are never reported.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use std::time::Duration;

use prescrypt_barcode::decode::{DecodeError, DecodeOptions, Decoder, Payload, Want};
use prescrypt_barcode::render::{self, Dpi, matrix_dots_per_module};
use prescrypt_barcode::{Token, TokenError};
use rand::{Rng, SeedableRng};

fn decoder() -> Decoder {
    common::decoder()
}

#[test]
fn empty_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.png");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        decoder().decode_file(&path),
        Err(DecodeError::Image(_))
    ));
}

#[test]
fn missing_file_is_an_io_error() {
    assert!(matches!(
        decoder().decode_file("/nonexistent/token.png"),
        Err(DecodeError::Io(_))
    ));
}

#[test]
fn one_pixel_image_decodes_to_nothing() {
    let png = render::png_bytes(&image::GrayImage::new(1, 1)).unwrap();
    assert_eq!(decoder().decode_bytes(&png).unwrap(), vec![]);
}

/// A well-formed PNG whose IHDR claims 100000×100000 pixels, with a few bytes of image data.
fn huge_png_header() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend_from_slice(&body);
    png.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// CRC-32 (PNG chunk checksum), bitwise; only for building the hostile header above.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn header_claiming_huge_dimensions_is_rejected_before_decoding() {
    match decoder().decode_bytes(&huge_png_header()) {
        Err(DecodeError::TooManyPixels { width, height, max }) => {
            assert_eq!((width, height), (100_000, 100_000));
            assert_eq!(max, DecodeOptions::default().max_pixels);
        }
        other => panic!("expected the pixel limit, got {other:?}"),
    }
}

#[test]
fn configured_pixel_limit_applies_to_real_images() {
    let image = render::datamatrix_image(&common::token().text(), Dpi::LASER_300).unwrap();
    let png = render::png_bytes(&image).unwrap();
    let strict = Decoder::new(DecodeOptions {
        max_pixels: 1000,
        ..DecodeOptions::default()
    });
    let error = strict.decode_bytes(&png).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("more than the limit of 1000 pixels")
    );
}

#[test]
fn truncated_png_is_an_error() {
    let image = render::datamatrix_image(&common::token().text(), Dpi::LASER_300).unwrap();
    let png = render::png_bytes(&image).unwrap();
    let truncated = &png[..png.len() / 2];
    assert!(matches!(
        decoder().decode_bytes(truncated),
        Err(DecodeError::Image(_))
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for length in [0usize, 1, 8, 100, 5000] {
        let mut bytes = vec![0u8; length];
        rng.fill(&mut bytes[..]);
        assert!(decoder().decode_bytes(&bytes).is_err());
        // Random bytes behind a real PNG signature, too.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&bytes);
        assert!(decoder().decode_bytes(&png).is_err());
    }
}

#[test]
fn random_noise_image_reports_no_code() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let noise = image::GrayImage::from_fn(400, 300, |_, _| image::Luma([rng.r#gen::<u8>()]));
    assert_eq!(decoder().decode_luma(&noise), vec![]);
}

/// The E-Rezept docs' malicious-sample ideas (script injection, padding, whitespace, oversize,
/// look-alike tokens), each printed as a Data Matrix: the decoder reads the symbol, but nothing
/// that poses as a token or an ID is ever reported, and nothing reported parses as a token.
#[test]
fn malicious_payloads_in_a_data_matrix_are_never_tokens() {
    let valid = common::token().text();
    let valid = valid.as_str();
    let payloads: Vec<(String, Option<TokenError>)> =
        vec![
        ("<script>alert(1)</script>".to_owned(), None),
        (
            r#"{"urls":["Task/160.123.456.789.123.58/$accept?ac=<img src=x onerror=alert(1)>"]}"#
                .to_owned(),
            None,
        ),
        (format!("{valid}    "), Some(TokenError::Length { found: 135 })),
        (format!("  {valid}"), None),
        (format!("{valid}\n"), Some(TokenError::Length { found: 132 })),
        (format!("{valid}{valid}"), Some(TokenError::Length { found: 262 })),
        (
            format!("{}'; DROP TABLE prescriptions;--", &valid[..100]),
            Some(TokenError::Length { found: 131 }),
        ),
        (valid.to_lowercase(), None),
        (
            format!("RX1{}", "0".repeat(128)),
            Some(TokenError::SignatureEncoding),
        ),
        (
            format!("RX9{}", &valid[3..]),
            Some(TokenError::Version),
        ),
        ("A".repeat(500), None),
        ("83C40E-A23856-00123C".to_owned(), None),
    ];
    for (payload, expected) in payloads {
        let matrix = render::datamatrix_modules_of_text(&payload).unwrap();
        let image = matrix.to_image(matrix_dots_per_module(Dpi::LASER_600));
        let codes = decoder().decode_luma(&image);
        if let Some(error) = expected {
            // Starts with RX: the classification rule drops it, so it is not reported at all.
            assert!(codes.is_empty(), "{payload:?} reported as {codes:?}");
            let parsed = Token::parse(&payload);
            // The parser names the first problem (the length check comes first).
            assert!(parsed.is_err(), "{payload:?}");
            if let Err(actual) = parsed {
                if matches!(error, TokenError::Length { .. }) {
                    assert!(matches!(
                        actual,
                        TokenError::Length { .. } | TokenError::Character { .. }
                    ));
                } else {
                    assert_eq!(actual, error, "{payload:?}");
                }
            }
        } else if payload == "83C40E-A23856-00123C" {
            assert!(
                codes.is_empty(),
                "an ID that fails MOD 37-2 is never reported"
            );
        } else {
            // Not posing as ours: reported verbatim as "other", and the token parser refuses it.
            assert_eq!(codes.len(), 1, "{payload:?}");
            assert_eq!(codes[0].text, payload);
            assert_eq!(codes[0].payload, Payload::Other);
            assert!(Token::parse(&codes[0].text).is_err());
        }
    }
}

/// Issue 21's table: all-zero greyscale PNGs of a few hundred bytes to 78 KB whose proportions
/// once made the rotation step allocate about width² × sin θ cos θ pixels (2.5 GB for
/// 100000×1, an abort for 500000×1). They are rejected on the header, before any pixel is
/// decoded, with an error that says why.
#[test]
fn images_of_extreme_proportions_are_rejected_on_the_header() {
    for (width, height) in [
        (100_000u32, 1u32),
        (500_000, 1),
        (40_000_000, 1),
        (1, 40_000_000),
    ] {
        let png = render::png_bytes(&image::GrayImage::new(width, height)).unwrap();
        match decoder().decode_bytes(&png) {
            Err(error @ DecodeError::AspectRatio { .. }) => {
                assert!(
                    error
                        .to_string()
                        .contains(&format!("{width}×{height} pixels")),
                    "{error}"
                );
            }
            other => panic!("{width}×{height}: expected the proportion limit, got {other:?}"),
        }
    }
}

/// The same shapes handed to the pipeline directly (no header check): every canvas it builds is
/// bounded, so it returns nothing, within its budget, instead of allocating gigabytes.
#[test]
fn the_pipeline_bounds_its_canvases_on_any_shape() {
    let budget = Duration::from_millis(300);
    let decoder = Decoder::new(DecodeOptions {
        time_budget: budget,
        want: Want::All,
        ..DecodeOptions::default()
    });
    for (width, height) in [
        (100_000u32, 1u32),
        (500_000, 1),
        (40_000_000, 1),
        (1, 40_000_000),
        (6000, 3),
    ] {
        let image = image::GrayImage::new(width, height);
        let (codes, steps) = decoder.decode_luma_traced(&image);
        assert_eq!(codes, vec![], "{width}×{height}");
        // Every step started before the deadline (the last may overrun it by one bounded call).
        let started: f64 = steps.iter().rev().skip(1).map(|step| step.ms).sum();
        assert!(
            started <= budget.as_secs_f64() * 1000.0,
            "{width}×{height}: {steps:?}"
        );
    }
}

#[test]
fn only_png_jpeg_and_bmp_are_read() {
    // A GIF header: the format is recognised but not decoded.
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    let error = decoder().decode_bytes(gif).unwrap_err();
    assert!(error.to_string().contains("PNG, JPEG or BMP"), "{error}");
}

/// A 16-bit RGBA image needs eight bytes per pixel: within the pixel limit but above the
/// decoded-memory limit (four bytes per allowed pixel), it is refused before decoding.
#[test]
fn decoded_memory_is_bounded_by_the_pixel_limit() {
    let image = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::new(100, 100);
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba16(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let strict = Decoder::new(DecodeOptions {
        max_pixels: 100 * 100,
        ..DecodeOptions::default()
    });
    match strict.decode_bytes(&png) {
        Err(error @ DecodeError::TooMuchMemory { max_bytes: 40_000 }) => {
            assert!(error.to_string().contains("40000 bytes"), "{error}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    // Twice the pixel allowance is enough for it.
    let roomy = Decoder::new(DecodeOptions {
        max_pixels: 2 * 100 * 100,
        ..DecodeOptions::default()
    });
    assert_eq!(roomy.decode_bytes(&png).unwrap(), vec![]);
}
