//! Plain printed documents (a dispense receipt for the patient): lines of text on A5 pages in the
//! token sheet's embedded typeface, wrapped to the page and continued on further pages, so any
//! Latin, Greek or Cyrillic name prints as written.

use pdf_writer::{Content, Filter, Finish, Pdf, Rect, Ref, Str, TextStr};

use super::RenderError;
use super::font::{Weight, printable};
use super::layout::{A5_HEIGHT_MM, A5_WIDTH_MM};
use super::pdf::{UsedGlyphs, deflate, write_font};

/// One line of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub weight: Weight,
    /// Font size in points.
    pub size: f32,
}

impl Line {
    pub fn heading(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            weight: Weight::Bold,
            size: 13.0,
        }
    }

    pub fn body(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            weight: Weight::Regular,
            size: 9.0,
        }
    }

    pub fn strong(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            weight: Weight::Bold,
            size: 9.0,
        }
    }
}

/// Most pages one document may have (a receipt needs one or two).
pub const MAX_PAGES: usize = 20;
const MARGIN_PT: f32 = 36.0;
const LEADING: f32 = 1.35;

fn mm_to_pt(mm: f32) -> f32 {
    mm * 72.0 / 25.4
}

/// Breaks `line` into lines no wider than `width` points, at spaces where it can.
fn wrap(line: &Line, width: f32) -> Vec<Line> {
    let font = line.weight.font();
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in printable(&line.text).split(' ') {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if font.width(&candidate, line.size) <= width || current.is_empty() {
            current = candidate;
        } else {
            lines.push(Line {
                text: std::mem::take(&mut current),
                ..line.clone()
            });
            current = format!("  {word}");
        }
    }
    lines.push(Line {
        text: current,
        ..line.clone()
    });
    lines
}

/// The lines as an A5 PDF titled `title`.
pub fn document_pdf(title: &str, lines: &[Line]) -> Result<Vec<u8>, RenderError> {
    let (page_width, page_height) = (mm_to_pt(A5_WIDTH_MM), mm_to_pt(A5_HEIGHT_MM));
    let usable = page_width - 2.0 * MARGIN_PT;
    let mut fonts = [
        UsedGlyphs::new(Weight::Regular),
        UsedGlyphs::new(Weight::Bold),
    ];
    let mut pages = vec![Content::new()];
    let mut y = page_height - MARGIN_PT;
    for line in lines.iter().flat_map(|line| wrap(line, usable)) {
        let advance = line.size * LEADING;
        if y - advance < MARGIN_PT {
            if pages.len() == MAX_PAGES {
                return Err(RenderError::TooLong);
            }
            pages.push(Content::new());
            y = page_height - MARGIN_PT;
        }
        y -= advance;
        let used = &mut fonts[usize::from(line.weight == Weight::Bold)];
        let glyphs = used.encode(&line.text);
        let content = pages.last_mut().ok_or(RenderError::TooLong)?;
        content
            .begin_text()
            .set_font(used.resource_name(), line.size)
            .set_text_matrix([1.0, 0.0, 0.0, 1.0, MARGIN_PT, y])
            .show(Str(&glyphs))
            .end_text();
    }

    let mut pdf = Pdf::new();
    let mut next = Ref::new(1);
    let mut alloc = || next.bump();
    let (catalog, tree, info) = (alloc(), alloc(), alloc());
    let page_refs: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc(), alloc())).collect();
    let font_refs: Vec<Ref> = fonts.iter().map(|_| alloc()).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(i32::try_from(page_refs.len()).unwrap_or(i32::MAX));
    for (content, (page, contents)) in pages.into_iter().zip(&page_refs) {
        let mut page_writer = pdf.page(*page);
        page_writer
            .media_box(Rect::new(0.0, 0.0, page_width, page_height))
            .parent(tree)
            .contents(*contents);
        let mut resources = page_writer.resources();
        let mut font_dict = resources.fonts();
        for (used, id) in fonts.iter().zip(&font_refs) {
            font_dict.pair(used.resource_name(), *id);
        }
        font_dict.finish();
        resources.finish();
        page_writer.finish();
        pdf.stream(*contents, &deflate(&content.finish()))
            .filter(Filter::FlateDecode);
    }
    for (used, id) in fonts.iter().zip(font_refs) {
        write_font(&mut pdf, used, id, &mut alloc)?;
    }
    pdf.document_info(info)
        .title(TextStr(title))
        .creator(TextStr("prescrypt-barcode"));
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_in_the_document_with_its_own_letters() {
        let mut lines = vec![
            Line::heading("Dispense receipt D7AC09-A99968-4BA59C"),
            Line::body("Patient Ζωή Παπαδοπούλου / Жанна Смирнова"),
        ];
        lines.extend((0..120).map(|i| Line::body(format!("line {i} of a long receipt"))));
        let pdf = document_pdf("Receipt", &lines).unwrap();
        let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
        assert!(
            text.contains("Dispense receipt D7AC09-A99968-4BA59C"),
            "{text}"
        );
        assert!(text.contains("Ζωή Παπαδοπούλου"), "{text}");
        assert!(text.contains("Жанна Смирнова"), "{text}");
        assert!(text.contains("line 119 of a long receipt"), "{text}");
    }

    #[test]
    fn a_document_beyond_the_page_limit_is_refused() {
        let lines: Vec<Line> = (0..5_000)
            .map(|i| Line::body(format!("line {i}")))
            .collect();
        assert!(matches!(
            document_pdf("Too long", &lines),
            Err(RenderError::TooLong)
        ));
    }
}
