//! Reading the printed codes back from scanner images and phone photos.
//!
//! rxing does the symbol decoding; this module decides what to try, in which order and for how
//! long. Only the formats Prescrypt prints or shows are enabled (Code 128, Data Matrix, QR). The
//! first pass is cheap; while a code is still missing and the time budget lasts, the pipeline
//! escalates: a second binarizer, the inverted image, a scale pyramid, crops around
//! high-contrast regions (rxing's Data Matrix detector returns one candidate per image, so a
//! code next to another can hide), and a rotation sweep for the 1-D code.
//!
//! Every decode call runs under `catch_unwind`; images above the pixel limit and unreadable files
//! are errors. A decoded text that claims to be ours but fails our own check is dropped, never
//! reported (see [`Payload::classify`]).

mod pipeline;

use std::fmt;
use std::io::{Cursor, Read};
use std::path::Path;
use std::time::Duration;

use image::{DynamicImage, GrayImage, ImageReader, Limits};

use crate::{PrescriptionId, Scanned, Token, Unrecognised};

pub use pipeline::Decoder;

/// The symbologies the decoder looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeFormat {
    Code128,
    DataMatrix,
    Qr,
}

impl CodeFormat {
    /// The name used in the CLI's JSON (`code128`, `datamatrix`, `qr`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Code128 => "code128",
            Self::DataMatrix => "datamatrix",
            Self::Qr => "qr",
        }
    }

    /// The AIM symbology identifier of a plain symbol of this format (ISO/IEC 15424).
    pub fn default_aim(self) -> &'static str {
        match self {
            Self::Code128 => "]C0",
            Self::DataMatrix => "]d1",
            Self::Qr => "]Q1",
        }
    }

    fn is_linear(self) -> bool {
        matches!(self, Self::Code128)
    }
}

impl fmt::Display for CodeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a decoded text means to Prescrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A valid short-form prescription ID (with or without hyphens).
    PrescriptionId(PrescriptionId),
    /// A token in valid format (its signature is the caller's to verify).
    Token(Token),
    /// Anything else: neither ID-shaped nor starting with `RX`.
    Other,
}

/// Why a decoded text was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// ID-shaped but not a valid ID (e.g. the MOD 37-2 check fails).
    Id(crate::IdError),
    /// Starts with `RX` but is not a well-formed token.
    Token(crate::TokenError),
}

impl Payload {
    /// The rule that keeps misreads out: a text that *looks like* one of ours must *be* one
    /// (the classification is [`crate::scanned::classify`]; a text it finds token- or ID-shaped
    /// but not valid is a misread and rejected). Everything else is [`Payload::Other`], for the
    /// caller to judge. The rule is the same for all formats.
    pub fn classify(text: &str) -> Result<Self, Rejection> {
        match crate::scanned::classify(text) {
            Scanned::Token(token) => Ok(Self::Token(token)),
            Scanned::PrescriptionId(id) => Ok(Self::PrescriptionId(id)),
            Scanned::Other(Unrecognised::TokenShaped(error)) => Err(Rejection::Token(error)),
            Scanned::Other(Unrecognised::IdShaped(error)) => Err(Rejection::Id(error)),
            Scanned::Other(Unrecognised::Foreign) => Ok(Self::Other),
        }
    }
}

/// One code found in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCode {
    pub format: CodeFormat,
    pub text: String,
    /// AIM symbology identifier, e.g. `]C0`, `]d1`, `]Q1`.
    pub aim: String,
    pub payload: Payload,
}

/// Limits and budget of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Images with more pixels are rejected before decoding.
    pub max_pixels: u64,
    /// Files larger than this are rejected before decoding.
    pub max_file_bytes: u64,
    /// Escalation stops when this is spent (a decode call already running finishes).
    pub time_budget: Duration,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_file_bytes: 64 * 1024 * 1024,
            time_budget: Duration::from_millis(1500),
        }
    }
}

/// Why an image could not be examined (finding no code is not an error).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file has more than {max} bytes")]
    FileTooLarge { max: u64 },
    #[error("the image is {width}×{height} pixels, more than the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("not a readable image: {0}")]
    Image(String),
}

impl Decoder {
    /// Reads and decodes an image file.
    pub fn decode_file(&self, path: impl AsRef<Path>) -> Result<Vec<DecodedCode>, DecodeError> {
        let file = std::fs::File::open(path)?;
        let max = self.options().max_file_bytes;
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(DecodeError::FileTooLarge { max });
        }
        self.decode_bytes(&bytes)
    }

    /// Decodes an encoded image (PNG, JPEG, BMP). The header's dimensions are checked against
    /// the pixel limit before any pixel is decoded.
    pub fn decode_bytes(&self, bytes: &[u8]) -> Result<Vec<DecodedCode>, DecodeError> {
        let image = self.load(bytes)?;
        self.decode_image(&image)
    }

    /// Decodes a decoded image. Transparent pixels count as white paper.
    pub fn decode_image(&self, image: &DynamicImage) -> Result<Vec<DecodedCode>, DecodeError> {
        self.check_pixels(image.width(), image.height())?;
        Ok(self.decode_luma(&to_luma_on_white(image)))
    }

    /// Loads an encoded image under the pixel and allocation limits.
    pub fn load(&self, bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
        let reader = || {
            ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .map_err(DecodeError::Io)
        };
        let (width, height) = reader()?
            .into_dimensions()
            .map_err(|e| DecodeError::Image(e.to_string()))?;
        self.check_pixels(width, height)?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        limits.max_alloc = Some(self.options().max_pixels.saturating_mul(16));
        let mut reader = reader()?;
        reader.limits(limits);
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()))
            .map_err(|_| DecodeError::Image("the image decoder crashed".to_owned()))?;
        decoded.map_err(|e| DecodeError::Image(e.to_string()))
    }

    fn check_pixels(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        let max = self.options().max_pixels;
        if u64::from(width) * u64::from(height) > max {
            return Err(DecodeError::TooManyPixels { width, height, max });
        }
        if width == 0 || height == 0 {
            return Err(DecodeError::Image("the image has no pixels".to_owned()));
        }
        Ok(())
    }
}

/// Grey levels with transparency composited over white paper.
pub fn to_luma_on_white(image: &DynamicImage) -> GrayImage {
    if !image.color().has_alpha() {
        return image.to_luma8();
    }
    let with_alpha = image.to_luma_alpha8();
    GrayImage::from_fn(with_alpha.width(), with_alpha.height(), |x, y| {
        let [luma, alpha] = with_alpha.get_pixel(x, y).0;
        let (luma, alpha) = (u32::from(luma), u32::from(alpha));
        image::Luma([((luma * alpha + 255 * (255 - alpha)) / 255) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_applies_our_checks_to_our_shapes() {
        assert!(matches!(
            Payload::classify("D7AC09A999684BA59C"),
            Ok(Payload::PrescriptionId(_))
        ));
        assert!(matches!(
            Payload::classify("d7ac09-a99968-4ba59c"),
            Ok(Payload::PrescriptionId(_))
        ));
        assert!(matches!(
            Payload::classify("83C40E-A23856-00123C"),
            Err(Rejection::Id(crate::IdError::CheckCharacter))
        ));
        assert!(matches!(
            Payload::classify("RX1HELLO"),
            Err(Rejection::Token(crate::TokenError::Length { found: 8 }))
        ));
        assert_eq!(Payload::classify("hello world"), Ok(Payload::Other));
        assert_eq!(
            Payload::classify("ABCDEFGHIJKLMNOPQRST"),
            Ok(Payload::Other)
        );
    }
}
