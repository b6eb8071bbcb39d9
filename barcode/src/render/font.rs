//! The token sheet's typeface: DejaVu Sans and DejaVu Sans Bold, the unmodified 2.37 release as
//! shipped by the `dejavu` crate (Bitstream Vera / Arev licence, which allows embedding). They
//! cover Latin, Greek and Cyrillic, so patient and prescriber names print as written.
//!
//! Text is measured with the fonts' own advance widths (no kerning, no shaping: the scripts we
//! cover need neither for legible names), and the same glyph choice is used for measuring and
//! for writing the PDF, so the layout's boxes are the printed text's boxes.

use std::sync::LazyLock;

use ttf_parser::{Face, GlyphId, name_id};

/// A weight of the sheet's typeface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weight {
    Regular,
    Bold,
}

impl Weight {
    pub const ALL: [Self; 2] = [Self::Regular, Self::Bold];

    /// The parsed font of this weight.
    pub fn font(self) -> &'static SheetFont {
        static REGULAR: LazyLock<SheetFont> =
            LazyLock::new(|| SheetFont::new(dejavu::sans::regular()));
        static BOLD: LazyLock<SheetFont> = LazyLock::new(|| SheetFont::new(dejavu::sans::bold()));
        match self {
            Self::Regular => &REGULAR,
            Self::Bold => &BOLD,
        }
    }
}

/// One embedded font with the metrics the layout and the PDF writer need.
pub struct SheetFont {
    data: &'static [u8],
    face: Face<'static>,
    units_per_em: f32,
    /// Drawn for characters the font lacks (U+FFFD, else `.notdef`).
    replacement: GlyphId,
}

impl std::fmt::Debug for SheetFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SheetFont")
            .field("postscript_name", &self.postscript_name())
            .finish_non_exhaustive()
    }
}

impl SheetFont {
    #[allow(clippy::expect_used)] // the font is compiled in: a parse failure is a build defect
    fn new(data: &'static [u8]) -> Self {
        let face = Face::parse(data, 0).expect("the embedded DejaVu font parses");
        let replacement = face.glyph_index('\u{FFFD}').unwrap_or(GlyphId(0));
        Self {
            data,
            units_per_em: f32::from(face.units_per_em()),
            face,
            replacement,
        }
    }

    /// The font file as compiled in.
    pub fn data(&self) -> &'static [u8] {
        self.data
    }

    pub fn face(&self) -> &Face<'static> {
        &self.face
    }

    /// PostScript name, e.g. `DejaVuSans-Bold`.
    pub fn postscript_name(&self) -> String {
        self.face
            .names()
            .into_iter()
            .filter(|name| name.name_id == name_id::POST_SCRIPT_NAME)
            .find_map(|name| name.to_string())
            .unwrap_or_else(|| "DejaVuSans".to_owned())
    }

    /// Whether the font has a glyph of its own for `c`.
    pub fn covers(&self, c: char) -> bool {
        self.face.glyph_index(c).is_some()
    }

    /// The glyph drawn for `c`.
    pub fn glyph(&self, c: char) -> GlyphId {
        self.face.glyph_index(c).unwrap_or(self.replacement)
    }

    /// Advance width of a glyph in em.
    pub fn glyph_advance_em(&self, glyph: GlyphId) -> f32 {
        f32::from(self.face.glyph_hor_advance(glyph).unwrap_or(0)) / self.units_per_em
    }

    /// Width of `text` set at `size` (any unit; the result is in the same unit).
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars()
            .map(|c| self.glyph_advance_em(self.glyph(c)))
            .sum::<f32>()
            * size
    }

    /// Height above the baseline that the font's glyphs reach (hhea ascender), in em.
    pub fn ascent_em(&self) -> f32 {
        f32::from(self.face.ascender()) / self.units_per_em
    }

    /// Depth below the baseline (hhea descender, positive), in em.
    pub fn descent_em(&self) -> f32 {
        -f32::from(self.face.descender()) / self.units_per_em
    }

    /// Converts font units to the PDF's thousandths of an em.
    pub fn to_pdf_units(&self, units: f32) -> f32 {
        units * 1000.0 / self.units_per_em
    }
}

/// `text` with control and other invisible format characters turned into spaces, so what is
/// measured is what prints.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_weights_cover_latin_greek_and_cyrillic() {
        for weight in Weight::ALL {
            let font = weight.font();
            for c in ('A'..='Z')
                .chain('a'..='z')
                .chain('\u{c0}'..='\u{17f}') // Latin-1 Supplement letters and Latin Extended-A
                .chain(('Α'..='Ω').filter(|&c| c != '\u{3a2}')) // U+03A2 is unassigned
                .chain('α'..='ω')
                .chain('Ѐ'..='џ') // basic Cyrillic with Ukrainian, Belarusian, Serbian letters
                .chain("ΆΈΉΊΌΎΏάέήίόύώ".chars())
                .chain("—–…’".chars())
            {
                assert!(font.covers(c), "{weight:?} lacks {c:?}");
            }
        }
    }

    #[test]
    fn bold_is_wider_than_regular_and_widths_add_up() {
        let (regular, bold) = (Weight::Regular.font(), Weight::Bold.font());
        assert!(bold.width("Ivanova", 10.0) > regular.width("Ivanova", 10.0));
        let whole = regular.width("Παπαδόπουλος", 9.0);
        let parts = regular.width("Παπα", 9.0) + regular.width("δόπουλος", 9.0);
        assert!((whole - parts).abs() < 1e-3);
        assert_eq!(bold.postscript_name(), "DejaVuSans-Bold");
    }

    #[test]
    fn unknown_characters_draw_the_replacement_glyph() {
        let font = Weight::Regular.font();
        assert!(!font.covers('中'));
        assert_eq!(font.glyph('中'), font.glyph('\u{FFFD}'));
        assert_ne!(font.glyph('中'), GlyphId(0));
        assert_eq!(printable("a\nb\tc"), "a b c");
    }
}
