//! Drawing the printed codes: the Code 128 of the prescription ID, the Data Matrix of the token
//! (and QR for phone screens), as module patterns, raster images at whole printer dots per module,
//! SVG, and the full printable token sheet as PDF.
//!
//! rxing's writers produce the symbols at one pixel per module with no margin; this module adds the
//! quiet zones the standards ask for (10 modules for Code 128, [`DATAMATRIX_QUIET_ZONE`] for Data
//! Matrix) and scales by an integer, so every module is the same number of printer dots.
//!
//! - [`layout`]: where everything goes on the A5 sheet, from the fonts' real metrics.
//! - [`font`]: the embedded DejaVu Sans fonts (Latin, Greek, Cyrillic) and text measurement.
//! - `pdf`: writes a [`SheetLayout`] as PDF with subset, searchable fonts.
//! - `svg`: the two codes with the ID as SVG.

pub mod document;
pub mod font;
pub mod layout;
mod pdf;
mod svg;

use std::io::Cursor;

use image::{GrayImage, Luma};
use rxing::datamatrix::encoder::SymbolShapeHint;
use rxing::{BarcodeFormat, EncodeHints, MultiFormatWriter, Writer};

use crate::token::TokenText;
use crate::{NhsNumber, PrescriptionId, Token};

pub use layout::{SheetLayout, layout_sheet};
pub use pdf::token_sheet_pdf;
pub use svg::{matrix_svg, token_label_svg};

/// Quiet zone on each side of a Code 128 symbol, in modules (ISO/IEC 15417).
pub const CODE128_QUIET_ZONE: usize = 10;
/// Quiet zone around a Data Matrix or QR symbol, in modules (the standard asks for ≥ 1; two give
/// phone decoders room to find the finder pattern next to other print).
pub const DATAMATRIX_QUIET_ZONE: usize = 2;
/// Largest Data Matrix the token may need (`TOKEN.md`: 131 C40 characters → 40×40).
pub const MAX_DATAMATRIX_SIZE: usize = 40;

/// EPS token spec: the Code 128 is 55–68 mm long and 8–12 mm high.
pub const CODE128_MAX_LENGTH_MM: f64 = 68.0;
pub const CODE128_MIN_LENGTH_MM: f64 = 55.0;
pub const CODE128_BAR_HEIGHT_MM: f64 = 10.0;
/// Widest Code 128 module we print, however short the symbol.
pub const CODE128_MAX_MODULE_MM: f64 = 0.5;
/// Target Data Matrix module size (chosen from the readability benchmark, `BENCHMARKS.md`).
pub const DATAMATRIX_MODULE_MM: f64 = 0.5;

const MM_PER_INCH: f64 = 25.4;

/// Why a code or sheet could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the barcode writer refused the text: {0}")]
    Encode(String),
    #[error("the Data Matrix came out {0}×{0} modules, larger than the 40×40 the token allows")]
    TooLarge(usize),
    #[error("unsupported resolution {0} dpi (allowed: 150 to 2400)")]
    Dpi(u32),
    #[error("unsupported output format {0:?} (use .pdf, .png or .svg)")]
    Format(String),
    #[error("could not embed the font: {0}")]
    Font(String),
    #[error("could not encode the image: {0}")]
    Image(#[from] image::ImageError),
    #[error("the document is longer than {} pages", document::MAX_PAGES)]
    TooLong,
}

/// A printer resolution in dots per inch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dpi(u32);

impl Dpi {
    /// Thermal label printers.
    pub const THERMAL_203: Self = Self(203);
    /// Office laser printers.
    pub const LASER_300: Self = Self(300);
    /// The resolution GP-system vendors recommend.
    pub const LASER_600: Self = Self(600);
    /// The three resolutions we test and benchmark.
    pub const ALL: [Self; 3] = [Self::THERMAL_203, Self::LASER_300, Self::LASER_600];

    pub fn new(dpi: u32) -> Result<Self, RenderError> {
        if (150..=2400).contains(&dpi) {
            Ok(Self(dpi))
        } else {
            Err(RenderError::Dpi(dpi))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Length of `dots` printer dots in millimetres.
    pub fn dots_to_mm(self, dots: usize) -> f64 {
        dots as f64 * MM_PER_INCH / f64::from(self.0)
    }

    fn mm_to_dots(self, mm: f64) -> f64 {
        mm * f64::from(self.0) / MM_PER_INCH
    }
}

/// How the Code 128 is laid out on paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Orientation {
    /// Bars vertical, read left to right.
    Horizontal,
    /// Bars horizontal, read top to bottom (the EPS token layout).
    #[default]
    Vertical,
}

/// A 2-D grid of modules, quiet zone included; `true` is dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleMatrix {
    width: usize,
    height: usize,
    modules: Vec<bool>,
}

impl ModuleMatrix {
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Whether the module at column `x`, row `y` is dark (`false` outside the matrix).
    pub fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.modules[y * self.width + x]
    }

    /// Maximal horizontal runs of dark modules: `(row, first column, length)`. Drawing one
    /// rectangle per run keeps vector output small and free of hairline seams.
    pub fn dark_runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.height).flat_map(move |y| {
            let row = &self.modules[y * self.width..(y + 1) * self.width];
            runs(row).map(move |(x, len)| (y, x, len))
        })
    }

    /// Draws the matrix with `dots` pixels per module, black on white.
    pub fn to_image(&self, dots: u32) -> GrayImage {
        let dots = dots.max(1);
        GrayImage::from_fn(
            self.width as u32 * dots,
            self.height as u32 * dots,
            |x, y| {
                if self.get((x / dots) as usize, (y / dots) as usize) {
                    Luma([0])
                } else {
                    Luma([255])
                }
            },
        )
    }

    fn from_bit_matrix(bits: &rxing::common::BitMatrix, quiet: usize) -> Self {
        let (inner_w, inner_h) = (bits.getWidth() as usize, bits.getHeight() as usize);
        let (width, height) = (inner_w + 2 * quiet, inner_h + 2 * quiet);
        let mut modules = vec![false; width * height];
        for y in 0..inner_h {
            for x in 0..inner_w {
                modules[(y + quiet) * width + x + quiet] = bits.get(x as u32, y as u32);
            }
        }
        Self {
            width,
            height,
            modules,
        }
    }
}

/// Runs of `true` in a row: `(start, length)`.
fn runs(row: &[bool]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut x = 0;
    std::iter::from_fn(move || {
        while x < row.len() && !row[x] {
            x += 1;
        }
        if x >= row.len() {
            return None;
        }
        let start = x;
        while x < row.len() && row[x] {
            x += 1;
        }
        Some((start, x - start))
    })
}

fn encode(
    text: &str,
    format: BarcodeFormat,
    hints: &EncodeHints,
) -> Result<rxing::common::BitMatrix, RenderError> {
    MultiFormatWriter
        .encode_with_hints(text, &format, 0, 0, hints)
        .map_err(|e| RenderError::Encode(e.to_string()))
}

/// The Code 128 module pattern of `text`, one entry per module (`true` = bar), with the
/// 10-module quiet zone on both sides. rxing chooses the shortest code-set sequence.
pub fn code128_modules(text: &str) -> Result<Vec<bool>, RenderError> {
    let hints = EncodeHints {
        Margin: Some("0".to_owned()),
        Code128Compact: Some(true),
        ..EncodeHints::default()
    };
    let bits = encode(text, BarcodeFormat::CODE_128, &hints)?;
    let symbol = (0..bits.getWidth()).map(|x| bits.get(x, 0));
    let mut modules = vec![false; CODE128_QUIET_ZONE];
    modules.extend(symbol);
    modules.extend(std::iter::repeat_n(false, CODE128_QUIET_ZONE));
    Ok(modules)
}

/// The Code 128 printed for a prescription ID: its 18-character compact form (hyphens are not
/// encoded; readers accept both forms, and the shorter symbol fits the EPS 68 mm limit).
pub fn id_code128_modules(id: &PrescriptionId) -> Result<Vec<bool>, RenderError> {
    code128_modules(id.compact())
}

/// The square Data Matrix (ECC 200, C40) of a token's text, with the quiet zone.
pub fn datamatrix_modules(token: &TokenText) -> Result<ModuleMatrix, RenderError> {
    let matrix = datamatrix_modules_of_text(token.as_str())?;
    let symbol = matrix.width - 2 * DATAMATRIX_QUIET_ZONE;
    if symbol > MAX_DATAMATRIX_SIZE {
        return Err(RenderError::TooLarge(symbol));
    }
    Ok(matrix)
}

/// A square Data Matrix of any text (C40 when the text allows it, else rxing's default
/// encodation). Tests use it to print hostile payloads; printing tokens goes through
/// [`datamatrix_modules`].
pub fn datamatrix_modules_of_text(text: &str) -> Result<ModuleMatrix, RenderError> {
    let c40 = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b' ');
    let hints = EncodeHints {
        Margin: Some("0".to_owned()),
        DataMatrixShape: Some(SymbolShapeHint::FORCE_SQUARE),
        ForceC40: c40.then_some(true),
        ..EncodeHints::default()
    };
    let bits = encode(text, BarcodeFormat::DATA_MATRIX, &hints)?;
    Ok(ModuleMatrix::from_bit_matrix(&bits, DATAMATRIX_QUIET_ZONE))
}

/// A QR code (error correction M) of any text, with the quiet zone — for showing a token on a
/// phone screen.
pub fn qr_modules(text: &str) -> Result<ModuleMatrix, RenderError> {
    let hints = EncodeHints {
        Margin: Some("0".to_owned()),
        ErrorCorrection: Some("M".to_owned()),
        ..EncodeHints::default()
    };
    let bits = encode(text, BarcodeFormat::QR_CODE, &hints)?;
    Ok(ModuleMatrix::from_bit_matrix(&bits, DATAMATRIX_QUIET_ZONE))
}

/// Physical layout of the Code 128 of an ID at a given resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code128Layout {
    pub dpi: Dpi,
    /// Printer dots per module (the narrowest bar).
    pub dots_per_module: u32,
    /// Bar height in printer dots.
    pub bar_height_dots: u32,
    /// Modules including both quiet zones.
    pub modules: usize,
}

impl Code128Layout {
    /// The widest whole number of dots per module that keeps the bars (quiet zones excluded)
    /// within 68 mm and the module at most [`CODE128_MAX_MODULE_MM`]; bars 10 mm high.
    pub fn for_modules(modules: usize, dpi: Dpi) -> Self {
        let symbol = modules.saturating_sub(2 * CODE128_QUIET_ZONE).max(1) as f64;
        let by_length = dpi.mm_to_dots(CODE128_MAX_LENGTH_MM) / symbol;
        let by_width = dpi.mm_to_dots(CODE128_MAX_MODULE_MM);
        let dots_per_module = (by_length.min(by_width).floor() as u32).max(1);
        Self {
            dpi,
            dots_per_module,
            bar_height_dots: dpi.mm_to_dots(CODE128_BAR_HEIGHT_MM).round() as u32,
            modules,
        }
    }

    pub fn module_mm(&self) -> f64 {
        self.dpi.dots_to_mm(self.dots_per_module as usize)
    }

    /// Length of the bars from the first to the last (quiet zones excluded), in mm.
    pub fn symbol_length_mm(&self) -> f64 {
        self.module_mm() * (self.modules - 2 * CODE128_QUIET_ZONE) as f64
    }

    pub fn bar_height_mm(&self) -> f64 {
        self.dpi.dots_to_mm(self.bar_height_dots as usize)
    }
}

/// Printer dots per Data Matrix / QR module at `dpi`: the whole number closest to
/// [`DATAMATRIX_MODULE_MM`].
pub fn matrix_dots_per_module(dpi: Dpi) -> u32 {
    (dpi.mm_to_dots(DATAMATRIX_MODULE_MM).round() as u32).max(1)
}

/// A rendered Code 128 ready to print.
#[derive(Debug, Clone)]
pub struct Code128Symbol {
    pub modules: Vec<bool>,
    pub layout: Code128Layout,
}

impl Code128Symbol {
    pub fn for_id(id: &PrescriptionId, dpi: Dpi) -> Result<Self, RenderError> {
        let modules = id_code128_modules(id)?;
        let layout = Code128Layout::for_modules(modules.len(), dpi);
        Ok(Self { modules, layout })
    }

    /// Raster at the layout's dots per module; quiet zones included.
    pub fn to_image(&self, orientation: Orientation) -> GrayImage {
        let dots = self.layout.dots_per_module;
        let length = self.modules.len() as u32 * dots;
        let height = self.layout.bar_height_dots;
        let dark = |along: u32| self.modules[(along / dots) as usize];
        match orientation {
            Orientation::Horizontal => GrayImage::from_fn(length, height, |x, _| shade(dark(x))),
            Orientation::Vertical => GrayImage::from_fn(height, length, |_, y| shade(dark(y))),
        }
    }
}

fn shade(dark: bool) -> Luma<u8> {
    Luma([if dark { 0 } else { 255 }])
}

/// The Code 128 of an ID as a raster image at `dpi`.
pub fn code128_image(
    id: &PrescriptionId,
    dpi: Dpi,
    orientation: Orientation,
) -> Result<GrayImage, RenderError> {
    Ok(Code128Symbol::for_id(id, dpi)?.to_image(orientation))
}

/// The Data Matrix of a token as a raster image at `dpi`.
pub fn datamatrix_image(token: &TokenText, dpi: Dpi) -> Result<GrayImage, RenderError> {
    Ok(datamatrix_modules(token)?.to_image(matrix_dots_per_module(dpi)))
}

/// PNG bytes of a grey image.
pub fn png_bytes(image: &GrayImage) -> Result<Vec<u8>, RenderError> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// What goes on a printed dispensing token.
#[derive(Debug, Clone)]
pub struct TokenSheet {
    pub id: PrescriptionId,
    pub token: TokenText,
    pub patient_name: Option<String>,
    pub nhs_number: Option<NhsNumber>,
    /// The prescribed items, each printed with its quantity and dosage.
    pub items: Vec<SheetItem>,
    pub prescriber: Option<String>,
    /// As it should be printed, e.g. "2026-11-21".
    pub date: Option<String>,
    pub dpi: Dpi,
}

impl TokenSheet {
    /// A sheet with only the two codes and the ID.
    pub fn new(token: &Token, dpi: Dpi) -> Self {
        Self {
            id: token.prescription_id(),
            token: token.text(),
            patient_name: None,
            nhs_number: None,
            items: Vec::new(),
            prescriber: None,
            date: None,
            dpi,
        }
    }
}

/// One prescribed item as the sheet prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SheetItem {
    /// What is prescribed, e.g. "Amoxicillin 500mg capsules".
    pub medication: String,
    /// How much, e.g. "21 capsule".
    pub quantity: String,
    /// How to take it, e.g. "One capsule three times a day".
    pub dosage: String,
}

impl SheetItem {
    pub fn new(
        medication: impl Into<String>,
        quantity: impl Into<String>,
        dosage: impl Into<String>,
    ) -> Self {
        Self {
            medication: medication.into(),
            quantity: quantity.into(),
            dosage: dosage.into(),
        }
    }
}

/// An item known only by one line of text (no separate quantity or dosage).
impl From<&str> for SheetItem {
    fn from(medication: &str) -> Self {
        Self::new(medication, "", "")
    }
}

impl From<String> for SheetItem {
    fn from(medication: String) -> Self {
        Self::new(medication, "", "")
    }
}

/// Both codes side by side as one raster at the sheet's resolution: the vertical Code 128 on the
/// left, the Data Matrix on the right, white margins around. (Text needs fonts, so the PNG
/// carries only the codes; the SVG and PDF carry the human-readable parts too.)
pub fn token_label_image(sheet: &TokenSheet) -> Result<GrayImage, RenderError> {
    let code128 = code128_image(&sheet.id, sheet.dpi, Orientation::Vertical)?;
    let matrix = datamatrix_image(&sheet.token, sheet.dpi)?;
    let gap = sheet.dpi.mm_to_dots(8.0).round() as u32;
    let width = gap + code128.width() + gap + matrix.width() + gap;
    let height = gap + code128.height().max(matrix.height()) + gap;
    let mut label = GrayImage::from_pixel(width, height, Luma([255]));
    image::imageops::replace(&mut label, &code128, i64::from(gap), i64::from(gap));
    image::imageops::replace(
        &mut label,
        &matrix,
        i64::from(2 * gap + code128.width()),
        i64::from(gap),
    );
    Ok(label)
}

/// PNG of [`token_label_image`].
pub fn token_label_png(sheet: &TokenSheet) -> Result<Vec<u8>, RenderError> {
    png_bytes(&token_label_image(sheet)?)
}

/// The output formats the service and the CLI offer for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenFormat {
    Pdf,
    Png,
    Svg,
}

impl TokenFormat {
    /// From a file extension or URL suffix (`pdf`, `png`, `svg`, any case).
    pub fn from_extension(extension: &str) -> Result<Self, RenderError> {
        match extension.to_ascii_lowercase().as_str() {
            "pdf" => Ok(Self::Pdf),
            "png" => Ok(Self::Png),
            "svg" => Ok(Self::Svg),
            _ => Err(RenderError::Format(extension.to_owned())),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Svg => "image/svg+xml",
        }
    }
}

/// Renders a token in the requested format: PDF = the full A5 sheet, PNG = both codes,
/// SVG = both codes with the human-readable ID.
pub fn render_token(sheet: &TokenSheet, format: TokenFormat) -> Result<Vec<u8>, RenderError> {
    match format {
        TokenFormat::Pdf => token_sheet_pdf(sheet),
        TokenFormat::Png => token_label_png(sheet),
        TokenFormat::Svg => Ok(token_label_svg(sheet)?.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code128_has_quiet_zones_and_standard_structure() {
        let modules = code128_modules("D7AC09A999684BA59C").unwrap();
        assert!(modules[..CODE128_QUIET_ZONE].iter().all(|m| !m));
        assert!(
            modules[modules.len() - CODE128_QUIET_ZONE..]
                .iter()
                .all(|m| !m)
        );
        let symbol = modules.len() - 2 * CODE128_QUIET_ZONE;
        // 11 modules per character + 13 for the stop pattern.
        assert_eq!((symbol - 13) % 11, 0);
        assert!(modules[CODE128_QUIET_ZONE]);
    }

    #[test]
    fn id_layout_fits_the_eps_token_spec_at_every_dpi() {
        let id = PrescriptionId::parse("E7ZG38-ZBACYU-V38SR+").unwrap();
        for dpi in Dpi::ALL {
            let symbol = Code128Symbol::for_id(&id, dpi).unwrap();
            let length = symbol.layout.symbol_length_mm();
            assert!(
                (CODE128_MIN_LENGTH_MM..=CODE128_MAX_LENGTH_MM).contains(&length),
                "{dpi:?}: {length} mm"
            );
            let height = symbol.layout.bar_height_mm();
            assert!((8.0..=12.0).contains(&height), "{dpi:?}: {height} mm");
        }
    }

    #[test]
    fn runs_cover_exactly_the_dark_modules() {
        let row = [false, true, true, false, true, false, false, true];
        assert_eq!(runs(&row).collect::<Vec<_>>(), vec![(1, 2), (4, 1), (7, 1)]);
    }
}
