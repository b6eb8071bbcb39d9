//! The printable token sheet: one A5 page (the FP10 size class) written with `pdf-writer`, drawing
//! exactly what [`layout_sheet`] placed.
//!
//! Barcodes are vector rectangles whose sizes are whole printer dots at the sheet's resolution,
//! so a printer at that resolution reproduces every module exactly. Text is set in DejaVu Sans,
//! embedded as a subset (`subsetter`) in Type 0 / CIDFontType2 fonts with a ToUnicode map, so
//! any Latin, Greek or Cyrillic name prints as written and can be selected, searched and copied.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;

use super::font::Weight;
use super::layout::{Direction, SheetLayout, layout_sheet};
use super::{RenderError, TokenSheet, runs};

/// The full token sheet as a PDF document.
pub fn token_sheet_pdf(sheet: &TokenSheet) -> Result<Vec<u8>, RenderError> {
    let layout = layout_sheet(sheet)?;
    sheet_pdf(&layout, &format!("Prescription token {}", sheet.id))
}

/// The glyphs one font uses on the sheet, renumbered for its subset.
pub(super) struct UsedGlyphs {
    weight: Weight,
    remapper: GlyphRemapper,
    /// Subset glyph → the character it was chosen for (for the ToUnicode map).
    chars: BTreeMap<u16, char>,
}

impl UsedGlyphs {
    pub(super) fn new(weight: Weight) -> Self {
        Self {
            weight,
            remapper: GlyphRemapper::new(),
            chars: BTreeMap::new(),
        }
    }

    /// The text as big-endian subset glyph IDs (Identity-H: CID = subset glyph ID).
    pub(super) fn encode(&mut self, text: &str) -> Vec<u8> {
        let font = self.weight.font();
        let mut encoded = Vec::with_capacity(2 * text.len());
        for c in text.chars() {
            let glyph = self.remapper.remap(font.glyph(c).0);
            self.chars.entry(glyph).or_insert(c);
            encoded.extend_from_slice(&glyph.to_be_bytes());
        }
        encoded
    }

    pub(super) fn resource_name(&self) -> Name<'static> {
        match self.weight {
            Weight::Regular => Name(b"F1"),
            Weight::Bold => Name(b"F2"),
        }
    }

    /// A six-letter subset tag derived from the glyph set (FNV-1a), as PDF readers expect.
    fn subset_tag(&self) -> String {
        let hash = self
            .remapper
            .remapped_gids()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, glyph| {
                (hash ^ u64::from(glyph)).wrapping_mul(0x0100_0000_01b3)
            });
        (0..6)
            .map(|i| char::from(b'A' + ((hash >> (i * 5)) % 26) as u8))
            .collect()
    }
}

fn sheet_pdf(layout: &SheetLayout, title: &str) -> Result<Vec<u8>, RenderError> {
    let page_height = layout.page.height();
    let mut content = Content::new();
    let mut fonts = [
        UsedGlyphs::new(Weight::Regular),
        UsedGlyphs::new(Weight::Bold),
    ];

    content.set_fill_gray(0.0);
    let module = layout.dot_pt() * layout.code128.layout.dots_per_module as f32;
    let bars = layout.code128_bounds;
    for (start, len) in runs(&layout.code128.modules) {
        let top = bars.top + start as f32 * module;
        let height = len as f32 * module;
        content.rect(bars.left, page_height - top - height, bars.width(), height);
    }
    let cell = layout.matrix_bounds.width() / layout.matrix.width() as f32;
    for (y, x, len) in layout.matrix.dark_runs() {
        content.rect(
            layout.matrix_bounds.left + x as f32 * cell,
            page_height - layout.matrix_bounds.top - (y + 1) as f32 * cell,
            len as f32 * cell,
            cell,
        );
    }
    content.fill_nonzero();

    for run in &layout.texts {
        let used = &mut fonts[match run.weight {
            Weight::Regular => 0,
            Weight::Bold => 1,
        }];
        let glyphs = used.encode(&run.text);
        let (x, y) = (run.x, page_height - run.y);
        let matrix = match run.direction {
            Direction::Across => [1.0, 0.0, 0.0, 1.0, x, y],
            Direction::Down => [0.0, -1.0, 1.0, 0.0, x, y],
        };
        content
            .begin_text()
            .set_font(used.resource_name(), run.size)
            .set_text_matrix(matrix)
            .show(Str(&glyphs))
            .end_text();
    }

    let mut pdf = Pdf::new();
    let mut next = Ref::new(1);
    let mut alloc = || next.bump();
    let (catalog, pages, page, contents, info) = (alloc(), alloc(), alloc(), alloc(), alloc());
    let font_refs: Vec<Ref> = fonts.iter().map(|_| alloc()).collect();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut page_writer = pdf.page(page);
        page_writer
            .media_box(Rect::new(0.0, 0.0, layout.page.width(), page_height))
            .parent(pages)
            .contents(contents);
        let mut resources = page_writer.resources();
        let mut font_dict = resources.fonts();
        for (used, id) in fonts.iter().zip(&font_refs) {
            font_dict.pair(used.resource_name(), *id);
        }
    }
    for (used, id) in fonts.iter().zip(font_refs) {
        write_font(&mut pdf, used, id, &mut alloc)?;
    }
    pdf.stream(contents, &deflate(&content.finish()))
        .filter(Filter::FlateDecode);
    pdf.document_info(info)
        .title(TextStr(title))
        .creator(TextStr("prescrypt-barcode"));
    Ok(pdf.finish())
}

/// One font as Type 0 → CIDFontType2 → descriptor → subset TrueType file, plus its ToUnicode
/// map (PDF 1.7, 9.7 and 9.10).
pub(super) fn write_font(
    pdf: &mut Pdf,
    used: &UsedGlyphs,
    type0: Ref,
    alloc: &mut impl FnMut() -> Ref,
) -> Result<(), RenderError> {
    let (cid, descriptor, file, cmap) = (alloc(), alloc(), alloc(), alloc());
    let font = used.weight.font();
    let face = font.face();
    let base_font = format!("{}+{}", used.subset_tag(), font.postscript_name());
    let base_font = Name(base_font.as_bytes());

    pdf.type0_font(type0)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);

    let widths: Vec<f32> = used
        .remapper
        .remapped_gids()
        .map(|glyph| {
            let advance = face.glyph_hor_advance(ttf_parser::GlyphId(glyph));
            font.to_pdf_units(f32::from(advance.unwrap_or(0)))
        })
        .collect();
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    let mut cid_font = pdf.cid_font(cid);
    cid_font
        .subtype(CidFontType::Type2)
        .base_font(base_font)
        .system_info(system_info)
        .font_descriptor(descriptor)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid_font.widths().consecutive(0, widths);
    cid_font.finish();

    let to_pdf = |v: i16| font.to_pdf_units(f32::from(v));
    let bbox = face.global_bounding_box();
    let cap_height = face.capital_height().unwrap_or(face.ascender());
    let stem_v = 10.0 + 0.244 * (f32::from(face.weight().to_number()) - 50.0);
    pdf.font_descriptor(descriptor)
        .name(base_font)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            to_pdf(bbox.x_min),
            to_pdf(bbox.y_min),
            to_pdf(bbox.x_max),
            to_pdf(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(to_pdf(face.ascender()))
        .descent(to_pdf(face.descender()))
        .cap_height(to_pdf(cap_height))
        .stem_v(stem_v)
        .font_file2(file);

    let subset = subsetter::subset(font.data(), 0, &used.remapper)
        .map_err(|e| RenderError::Font(e.to_string()))?;
    pdf.stream(file, &deflate(&subset))
        .filter(Filter::FlateDecode);

    let mut unicode = UnicodeCmap::new(
        Name(b"Custom"),
        SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"UCS"),
            supplement: 0,
        },
    );
    for (&glyph, &c) in &used.chars {
        unicode.pair(glyph, c);
    }
    pdf.cmap(cmap, &deflate(&unicode.finish()))
        .filter(Filter::FlateDecode);
    Ok(())
}

pub(super) fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}
