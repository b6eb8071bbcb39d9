//! Reading the printed codes back from scanner images and phone photos.
//!
//! rxing does the symbol decoding; this module decides what to try, in which order and for how
//! long. Only the formats Prescrypt prints or shows are enabled (Code 128, Data Matrix, QR). The
//! first pass is cheap; while a code is still missing and the time budget lasts, the pipeline
//! escalates: a second binarizer, the inverted image, a scale pyramid, crops around
//! high-contrast regions (rxing's Data Matrix detector returns one candidate per image, so a
//! code next to another can hide), and a rotation sweep for the 1-D code.
//!
//! The pipeline stops as soon as it has what the caller asked for ([`Want`]): a token that parses
//! is enough for the pharmacy counter. An escalation runs only when a cheap structure test says
//! there is something for it to find (stripes for the Code 128, a high-contrast region for the
//! 2-D codes), and a 2-D symbol read but refused (a malformed token) ends the 2-D search, so an
//! image with nothing of ours in it is given up quickly.
//!
//! Bounds: images above the pixel limit, of extreme proportions or needing more decoded memory
//! than the limit allows are errors, checked on the header before any pixel is decoded. Inside
//! the pipeline every canvas is bounded: larger images are box-averaged down to a working canvas
//! of at most [`WORK_MAX_PIXELS`], and the rotation step scales its input so the turned canvas
//! stays within the same bound. Every stage checks the time budget, and an rxing call is only
//! started when its estimated cost fits the time left. Every decode call runs under
//! `catch_unwind`. A decoded text that claims to be ours but fails our own check is dropped,
//! never reported (see [`Payload::classify_symbol`]).
//!
//! GS1 symbols (medicine packs) are reported like any other code, with their AIM identifier
//! (`]C1`, `]d2`) and FNC1 as GS; [`DecodedCode::gs1`] parses their element strings.

mod pipeline;

use std::fmt;
use std::io::{Cursor, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits};

use crate::gs1::{ElementString, Gs1Error, Symbology};
use crate::{PrescriptionId, Scanned, Token, Unrecognised};

pub use pipeline::{
    CANDIDATE_STEPS, Decoder, Group, STEP_ORDER, Stage, Step, StepTrace, WORK_MAX_PIXELS,
};

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

    /// Which of the two kinds of code on a token this format is.
    pub fn group(self) -> Group {
        match self {
            Self::Code128 => Group::Linear,
            Self::DataMatrix | Self::Qr => Group::Matrix,
        }
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
        Self::from_scanned(crate::scanned::classify(text))
    }

    /// [`classify`](Self::classify) for a symbol read with its AIM symbology identifier: the
    /// decoder's rule. Data of a GS1 (`]C1`, `]d2`, `]Q3`) or any other symbol Prescrypt never
    /// prints is [`Payload::Other`] whatever its shape ([`crate::scanned::classify_symbol`]), so
    /// a pack's element string that happens to look like an ID is neither taken nor dropped.
    pub fn classify_symbol(aim: &str, text: &str) -> Result<Self, Rejection> {
        Self::from_scanned(crate::scanned::classify_symbol(
            aim.as_bytes(),
            text.as_bytes(),
        ))
    }

    fn from_scanned(scanned: Scanned) -> Result<Self, Rejection> {
        match scanned {
            Scanned::Token(token) => Ok(Self::Token(token)),
            Scanned::PrescriptionId(id) => Ok(Self::PrescriptionId(id)),
            Scanned::Other(Unrecognised::TokenShaped(error)) => Err(Rejection::Token(error)),
            Scanned::Other(Unrecognised::IdShaped(error)) => Err(Rejection::Id(error)),
            Scanned::Other(Unrecognised::Foreign) => Ok(Self::Other),
        }
    }
}

/// What the caller needs from an image: the pipeline stops as soon as it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Want {
    /// A well-formed token (the pharmacy counter). Code 128 attempts come after every 2-D
    /// attempt, so an image with only the ID still yields it if the budget lasts.
    #[default]
    Token,
    /// A valid prescription ID; 2-D attempts come after every 1-D attempt.
    Id,
    /// The first token or ID, whichever is found first (one code per image).
    Any,
    /// One code of each kind: the 1-D ID and the 2-D token (a whole token label).
    All,
}

impl Want {
    /// The name used by the CLI (`token`, `id`, `any`, `all`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Id => "id",
            Self::Any => "any",
            Self::All => "all",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Token, Self::Id, Self::Any, Self::All]
            .into_iter()
            .find(|want| want.name() == name)
    }

    /// Whether `found` already answers the caller.
    pub fn is_met(self, found: &[DecodedCode]) -> bool {
        let has = |group: Group| found.iter().any(|code| code.format.group() == group);
        let has_token = found.iter().any(|c| is_token(&c.payload));
        let has_id = found
            .iter()
            .any(|c| matches!(c.payload, Payload::PrescriptionId(_)));
        match self {
            Self::Token => has_token,
            Self::Id => has_id,
            Self::Any => has_token || has_id,
            Self::All => has(Group::Linear) && has(Group::Matrix),
        }
    }

    /// The formats whose codes can answer the caller; the others are only a fallback once
    /// these are exhausted.
    pub fn goals(self) -> &'static [CodeFormat] {
        match self {
            Self::Token => &[CodeFormat::DataMatrix, CodeFormat::Qr],
            Self::Id => &[CodeFormat::Code128],
            Self::Any | Self::All => &[CodeFormat::DataMatrix, CodeFormat::Qr, CodeFormat::Code128],
        }
    }
}

/// The "token or ID?" decision in one place (to be replaced by the core's shared classifier).
fn is_token(payload: &Payload) -> bool {
    matches!(payload, Payload::Token(_))
}

/// One code found in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCode {
    pub format: CodeFormat,
    /// The data as a scanner transmits it after the AIM identifier: a GS1 symbol's FNC1 in
    /// first position is said by the identifier, every later FNC1 is GS (0x1D).
    pub text: String,
    /// AIM symbology identifier, e.g. `]C0`, `]d1`, `]Q1`; `]C1` GS1-128, `]d2` GS1 Data Matrix,
    /// `]Q3` GS1 QR.
    pub aim: String,
    /// What the text is to Prescrypt, judged with the AIM identifier
    /// ([`Payload::classify_symbol`]).
    pub payload: Payload,
}

impl DecodedCode {
    /// The GS1 element strings of a GS1 symbol (its AIM identifier marks GS1 data), parsed by
    /// [`crate::gs1`]; `None` for any other code. Error positions count bytes of [`Self::text`].
    pub fn gs1(&self) -> Option<Result<ElementString<'_>, Gs1Error>> {
        Symbology::from_aim(&self.aim)?;
        Some(ElementString::parse(&self.text))
    }
}

/// Limits and budget of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Images with more pixels are rejected before decoding.
    pub max_pixels: u64,
    /// Files larger than this are rejected before decoding.
    pub max_file_bytes: u64,
    /// Escalation stops when this is spent; a decode call is started only when its estimated
    /// cost fits in what is left.
    pub time_budget: Duration,
    /// Images whose longer side exceeds the shorter one by more than this factor are rejected.
    pub max_aspect_ratio: u32,
    /// What to look for; the pipeline stops as soon as it has it.
    pub want: Want,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_file_bytes: 64 * 1024 * 1024,
            time_budget: Duration::from_millis(1500),
            max_aspect_ratio: 20,
            want: Want::Token,
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
    #[error(
        "the image is {width}×{height} pixels, longer than {max} times its width: not processed"
    )]
    AspectRatio { width: u32, height: u32, max: u32 },
    #[error("the decoded image would need more than {max_bytes} bytes of memory: not processed")]
    TooMuchMemory { max_bytes: u64 },
    #[error("not a readable image: {0}")]
    Image(String),
}

impl Decoder {
    /// Reads and decodes an image file.
    /// The time budget counts from the call: reading and decoding the file come out of it.
    pub fn decode_file(&self, path: impl AsRef<Path>) -> Result<Vec<DecodedCode>, DecodeError> {
        Ok(self.decode_file_traced(path)?.0)
    }

    /// [`decode_file`](Self::decode_file) plus the time and outcome of every pipeline step.
    pub fn decode_file_traced(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<(Vec<DecodedCode>, Vec<StepTrace>), DecodeError> {
        let deadline = Instant::now() + self.options().time_budget;
        let file = std::fs::File::open(path)?;
        let max = self.options().max_file_bytes;
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(DecodeError::FileTooLarge { max });
        }
        let luma = to_luma_on_white(&self.load(&bytes)?);
        drop(bytes);
        Ok(self.decode_luma_until(&luma, deadline))
    }

    /// Decodes an encoded image (PNG, JPEG, BMP). The header's dimensions are checked against
    /// the pixel and proportion limits before any pixel is decoded. The time budget counts from
    /// the call.
    pub fn decode_bytes(&self, bytes: &[u8]) -> Result<Vec<DecodedCode>, DecodeError> {
        let deadline = Instant::now() + self.options().time_budget;
        let luma = to_luma_on_white(&self.load(bytes)?);
        Ok(self.decode_luma_until(&luma, deadline).0)
    }

    /// Decodes a decoded image. Transparent pixels count as white paper.
    pub fn decode_image(&self, image: &DynamicImage) -> Result<Vec<DecodedCode>, DecodeError> {
        self.check_shape(image.width(), image.height())?;
        Ok(self.decode_luma(&to_luma_on_white(image)))
    }

    /// Loads an encoded image (PNG, JPEG or BMP only) under the pixel, proportion and memory
    /// limits.
    pub fn load(&self, bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
        let reader = || {
            let reader = ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .map_err(DecodeError::Io)?;
            match reader.format() {
                Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp) => Ok(reader),
                Some(other) => Err(DecodeError::Image(format!(
                    "{other:?} images are not read (PNG, JPEG or BMP only)"
                ))),
                None => Err(DecodeError::Image("not a PNG, JPEG or BMP file".to_owned())),
            }
        };
        let (width, height) = reader()?
            .into_dimensions()
            .map_err(|e| DecodeError::Image(e.to_string()))?;
        self.check_shape(width, height)?;
        let max_bytes = self.max_decoded_bytes();
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        limits.max_alloc = Some(max_bytes);
        let mut reader = reader()?;
        reader.limits(limits);
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()))
            .map_err(|_| DecodeError::Image("the image decoder crashed".to_owned()))?;
        decoded.map_err(|e| match e {
            image::ImageError::Limits(_) => DecodeError::TooMuchMemory { max_bytes },
            other => DecodeError::Image(other.to_string()),
        })
    }

    /// The decoded-pixel memory allowed: four bytes per allowed pixel (8-bit RGBA at the pixel
    /// limit; a 16-bit image must be correspondingly smaller).
    fn max_decoded_bytes(&self) -> u64 {
        self.options().max_pixels.saturating_mul(4)
    }

    fn check_shape(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        let options = self.options();
        let max = options.max_pixels;
        if u64::from(width) * u64::from(height) > max {
            return Err(DecodeError::TooManyPixels { width, height, max });
        }
        if width == 0 || height == 0 {
            return Err(DecodeError::Image("the image has no pixels".to_owned()));
        }
        let (short, long) = (width.min(height), width.max(height));
        if u64::from(long) > u64::from(short) * u64::from(options.max_aspect_ratio) {
            return Err(DecodeError::AspectRatio {
                width,
                height,
                max: options.max_aspect_ratio,
            });
        }
        Ok(())
    }
}

/// Grey levels with transparency composited over white paper.
/// One grey byte per pixel is allocated; 8-bit images are converted without an intermediate copy.
pub fn to_luma_on_white(image: &DynamicImage) -> GrayImage {
    let on_white = |luma: u32, alpha: u32| ((luma * alpha + 255 * (255 - alpha)) / 255) as u8;
    // ITU-R BT.709 weights, as `image`'s own conversion.
    let luma_of = |r: u8, g: u8, b: u8| {
        ((2126 * u32::from(r) + 7152 * u32::from(g) + 722 * u32::from(b)) / 10000) as u8
    };
    let (width, height) = (image.width(), image.height());
    let pixels: Vec<u8> = match image {
        DynamicImage::ImageLuma8(grey) => return grey.clone(),
        DynamicImage::ImageLumaA8(grey) => grey
            .as_raw()
            .chunks_exact(2)
            .map(|p| on_white(u32::from(p[0]), u32::from(p[1])))
            .collect(),
        DynamicImage::ImageRgb8(rgb) => rgb
            .as_raw()
            .chunks_exact(3)
            .map(|p| luma_of(p[0], p[1], p[2]))
            .collect(),
        DynamicImage::ImageRgba8(rgba) => rgba
            .as_raw()
            .chunks_exact(4)
            .map(|p| on_white(u32::from(luma_of(p[0], p[1], p[2])), u32::from(p[3])))
            .collect(),
        other if !other.color().has_alpha() => return other.to_luma8(),
        other => {
            let with_alpha = other.to_luma_alpha8();
            with_alpha
                .as_raw()
                .chunks_exact(2)
                .map(|p| on_white(u32::from(p[0]), u32::from(p[1])))
                .collect()
        }
    };
    GrayImage::from_raw(width, height, pixels).unwrap_or_else(|| GrayImage::new(width, height))
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
