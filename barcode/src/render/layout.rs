//! Where everything goes on the A5 token sheet, computed once from the fonts' real metrics; the
//! PDF writer only draws what this module placed, and the tests check these same boxes.
//!
//! ```text
//!  Prescription token (title)
//!  Any pharmacy can scan … (wrapped)
//!
//!  ║ E │ ▛▀▀▀▜   Prescription ID
//!  ║ 7 │ ▌DM ▐   E7ZG38-ZBACYU-V38SR+
//!  ║ Z │ ▙▄▄▄▟
//!  ║ G │ Patient     name, wrapped (≤ 3 lines)
//!  ║ … │ NHS number  943 476 5919
//!  ║   │ Items
//!  ║   │ 1. medication — quantity (wrapped)
//!        Dosage: … (wrapped)
//! ```
//!
//! The vertical Code 128 (quiet zones included in its box) runs down the left, the ID beside it
//! reading top to bottom; everything else sits in a column right of that. Long text wraps at
//! word boundaries (and inside words longer than a line), is cut with `…` after a few lines, and
//! items that no longer fit the page are counted in a last line instead of overflowing.

use super::font::{Weight, printable};
use super::{
    Code128Symbol, Dpi, ModuleMatrix, RenderError, TokenSheet, datamatrix_modules,
    matrix_dots_per_module,
};

pub const PT_PER_MM: f32 = 72.0 / 25.4;
pub const A5_WIDTH_MM: f32 = 148.0;
pub const A5_HEIGHT_MM: f32 = 210.0;
const MARGIN_MM: f32 = 12.0;
/// The EPS asks for the human-readable ID beside the Code 128 in bold, at least 7.5 pt.
pub const MIN_ID_FONT_PT: f32 = 7.5;
const ID_FONT_PT: f32 = 9.0;
const TITLE_FONT_PT: f32 = 13.0;
const NOTE_FONT_PT: f32 = 7.5;
const BODY_FONT_PT: f32 = 9.0;
const ID_BESIDE_MATRIX_PT: f32 = 11.0;
/// Extra space between lines, in em.
const LEADING_EM: f32 = 0.2;
const MAX_FIELD_LINES: usize = 3;
const MAX_MEDICATION_LINES: usize = 4;
const MAX_DOSAGE_LINES: usize = 4;
const ELLIPSIS: char = '…';

fn mm(v: f32) -> f32 {
    v * PT_PER_MM
}

/// An axis-aligned box in points, `y` growing down from the top of the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl Rect {
    pub fn width(&self) -> f32 {
        self.right - self.left
    }

    pub fn height(&self) -> f32 {
        self.bottom - self.top
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        Rect {
            left: self.left.min(other.left),
            top: self.top.min(other.top),
            right: self.right.max(other.right),
            bottom: self.bottom.max(other.bottom),
        }
    }

    /// The box with `by` added on every side.
    pub fn grown(&self, by: f32) -> Rect {
        Rect {
            left: self.left - by,
            top: self.top - by,
            right: self.right + by,
            bottom: self.bottom + by,
        }
    }

    /// Whether the two boxes share any area (touching edges do not count).
    pub fn intersects(&self, other: &Rect) -> bool {
        self.left < other.right
            && other.left < self.right
            && self.top < other.bottom
            && other.top < self.bottom
    }

    /// Whether `other` lies inside this box (edges included).
    pub fn contains(&self, other: &Rect) -> bool {
        self.left <= other.left
            && other.right <= self.right
            && self.top <= other.top
            && other.bottom <= self.bottom
    }
}

/// How a line of text runs on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Left to right, upright.
    Across,
    /// Top to bottom, the glyphs' tops facing right: beside the vertical Code 128, read by
    /// turning the sheet a quarter turn anticlockwise, like the barcode.
    Down,
}

/// One line of text, placed.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRun {
    pub text: String,
    pub weight: Weight,
    pub size: f32,
    pub direction: Direction,
    /// Start of the baseline: its left end (across) or top end (down).
    pub x: f32,
    pub y: f32,
    /// Advance width to the font's ascender and descender: every glyph stays inside.
    pub bounds: Rect,
}

impl TextRun {
    fn across(weight: Weight, size: f32, left: f32, top: f32, text: String) -> Self {
        let font = weight.font();
        let baseline = top + font.ascent_em() * size;
        let bounds = Rect {
            left,
            top,
            right: left + font.width(&text, size),
            bottom: baseline + font.descent_em() * size,
        };
        Self {
            text,
            weight,
            size,
            direction: Direction::Across,
            x: left,
            y: baseline,
            bounds,
        }
    }

    fn down(weight: Weight, size: f32, left: f32, top: f32, text: String) -> Self {
        let font = weight.font();
        let baseline = left + font.descent_em() * size;
        let bounds = Rect {
            left,
            top,
            right: baseline + font.ascent_em() * size,
            bottom: top + font.width(&text, size),
        };
        Self {
            text,
            weight,
            size,
            direction: Direction::Down,
            x: baseline,
            y: top,
            bounds,
        }
    }
}

/// Everything on the sheet, placed.
#[derive(Debug, Clone)]
pub struct SheetLayout {
    pub dpi: Dpi,
    /// The A5 page.
    pub page: Rect,
    /// The page less its margins: everything lies inside.
    pub printable: Rect,
    pub code128: Code128Symbol,
    /// The Code 128 with its quiet zones.
    pub code128_bounds: Rect,
    pub matrix: ModuleMatrix,
    /// The Data Matrix with its quiet zone.
    pub matrix_bounds: Rect,
    pub texts: Vec<TextRun>,
    /// Items that did not fit on the page (a last line says how many).
    pub omitted_items: usize,
}

impl SheetLayout {
    /// Side of one printer dot, in points.
    pub fn dot_pt(&self) -> f32 {
        72.0 / self.dpi.get() as f32
    }

    /// Every box on the sheet, barcodes first, each with a short name (for test messages).
    pub fn boxes(&self) -> Vec<(String, Rect)> {
        let mut boxes = vec![
            ("Code 128".to_owned(), self.code128_bounds),
            ("Data Matrix".to_owned(), self.matrix_bounds),
        ];
        boxes.extend(
            self.texts
                .iter()
                .map(|run| (format!("text {:?}", run.text), run.bounds)),
        );
        boxes
    }
}

/// Places everything on the sheet.
pub fn layout_sheet(sheet: &TokenSheet) -> Result<SheetLayout, RenderError> {
    let dpi = sheet.dpi;
    let dot = 72.0 / dpi.get() as f32;
    // Barcodes start on whole printer dots, so every module edge falls between two dots.
    let snap = |v: f32| (v / dot).ceil() * dot;
    let page = Rect {
        left: 0.0,
        top: 0.0,
        right: mm(A5_WIDTH_MM),
        bottom: mm(A5_HEIGHT_MM),
    };
    let printable_area = Rect {
        left: mm(MARGIN_MM),
        top: mm(MARGIN_MM),
        right: page.right - mm(MARGIN_MM),
        bottom: page.bottom - mm(MARGIN_MM),
    };
    let mut texts = Vec::new();
    let left = printable_area.left;
    let full_width = printable_area.width();

    let title = TextRun::across(
        Weight::Bold,
        TITLE_FONT_PT,
        left,
        printable_area.top,
        "Prescription token".to_owned(),
    );
    let mut cursor = title.bounds.bottom + mm(1.0);
    texts.push(title);
    cursor = paragraph(
        &mut texts,
        Weight::Regular,
        NOTE_FONT_PT,
        left,
        cursor,
        full_width,
        "Any pharmacy can scan the barcode or the square code to find this prescription.",
        MAX_FIELD_LINES,
    );
    let codes_top = snap(cursor + mm(4.0));

    // The Code 128, vertical, and the ID beside it.
    let code128 = Code128Symbol::for_id(&sheet.id, dpi)?;
    let module = dot * code128.layout.dots_per_module as f32;
    let code128_bounds = Rect {
        left: snap(left),
        top: codes_top,
        right: snap(left) + dot * code128.layout.bar_height_dots as f32,
        bottom: codes_top + module * code128.modules.len() as f32,
    };
    let id = sheet.id.to_string();
    let id_size = fitting_size(
        Weight::Bold,
        ID_FONT_PT,
        MIN_ID_FONT_PT,
        &id,
        code128_bounds.height(),
    );
    let id_length = Weight::Bold.font().width(&id, id_size);
    let id_beside_bars = TextRun::down(
        Weight::Bold,
        id_size,
        code128_bounds.right + mm(1.5),
        code128_bounds.top + (code128_bounds.height() - id_length).max(0.0) / 2.0,
        id.clone(),
    );
    let column_left = snap(id_beside_bars.bounds.right + mm(5.0));
    let column_width = printable_area.right - column_left;
    texts.push(id_beside_bars);

    // The Data Matrix, with the ID again beside it.
    let matrix = datamatrix_modules(&sheet.token)?;
    let cell = dot * matrix_dots_per_module(dpi) as f32;
    let matrix_bounds = Rect {
        left: column_left,
        top: codes_top,
        right: column_left + cell * matrix.width() as f32,
        bottom: codes_top + cell * matrix.height() as f32,
    };
    let beside_matrix = matrix_bounds.right + mm(3.0);
    let caption = TextRun::across(
        Weight::Regular,
        NOTE_FONT_PT,
        beside_matrix,
        matrix_bounds.top + mm(4.0),
        "Prescription ID".to_owned(),
    );
    let id_width = printable_area.right - beside_matrix;
    let id_beside_matrix = TextRun::across(
        Weight::Bold,
        fitting_size(
            Weight::Bold,
            ID_BESIDE_MATRIX_PT,
            MIN_ID_FONT_PT,
            &id,
            id_width,
        ),
        beside_matrix,
        caption.bounds.bottom + mm(0.5),
        id,
    );
    let mut cursor = matrix_bounds.bottom.max(id_beside_matrix.bounds.bottom) + mm(3.0);
    texts.push(caption);
    texts.push(id_beside_matrix);

    // Patient, prescriber and date: labels in bold, values wrapped beside them.
    let nhs = sheet.nhs_number.map(|n| n.to_string());
    let fields: Vec<(&str, &str)> = [
        ("Patient", sheet.patient_name.as_deref()),
        ("NHS number", nhs.as_deref()),
        ("Prescriber", sheet.prescriber.as_deref()),
        ("Date", sheet.date.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|value| (label, value)))
    .collect();
    let label_width = fields
        .iter()
        .map(|(label, _)| Weight::Bold.font().width(label, BODY_FONT_PT))
        .fold(0.0, f32::max);
    let value_left = column_left + label_width + mm(3.0);
    let value_width = printable_area.right - value_left;
    for (label, value) in fields {
        texts.push(TextRun::across(
            Weight::Bold,
            BODY_FONT_PT,
            column_left,
            cursor,
            label.to_owned(),
        ));
        cursor = paragraph(
            &mut texts,
            Weight::Regular,
            BODY_FONT_PT,
            value_left,
            cursor,
            value_width,
            value,
            MAX_FIELD_LINES,
        );
    }

    // Items: number, medication and quantity, then the dosage, as many as the page holds.
    let mut omitted_items = 0;
    if !sheet.items.is_empty() {
        cursor += mm(2.0);
        let heading = TextRun::across(
            Weight::Bold,
            BODY_FONT_PT,
            column_left,
            cursor,
            "Items".to_owned(),
        );
        cursor = heading.bounds.bottom + leading(BODY_FONT_PT);
        texts.push(heading);
        let number_width = Weight::Regular
            .font()
            .width(&format!("{}.", sheet.items.len()), BODY_FONT_PT);
        let text_left = column_left + number_width + mm(1.5);
        let text_width = printable_area.right - text_left;
        let more_line = line_height(BODY_FONT_PT);
        for (index, item) in sheet.items.iter().enumerate() {
            let mut block = Vec::new();
            block.push(TextRun::across(
                Weight::Regular,
                BODY_FONT_PT,
                column_left,
                cursor,
                format!("{}.", index + 1),
            ));
            let described = if item.quantity.trim().is_empty() {
                item.medication.clone()
            } else {
                format!("{} — {}", item.medication, item.quantity)
            };
            let mut end = paragraph(
                &mut block,
                Weight::Regular,
                BODY_FONT_PT,
                text_left,
                cursor,
                text_width,
                &described,
                MAX_MEDICATION_LINES,
            );
            if !item.dosage.trim().is_empty() {
                end = paragraph(
                    &mut block,
                    Weight::Regular,
                    BODY_FONT_PT,
                    text_left,
                    end,
                    text_width,
                    &format!("Dosage: {}", item.dosage),
                    MAX_DOSAGE_LINES,
                );
            }
            let is_last = index + 1 == sheet.items.len();
            // Unless this is the last item, the next one may not fit: keep room to say so.
            let room_needed = if is_last { 0.0 } else { mm(1.0) + more_line };
            if end + room_needed > printable_area.bottom {
                omitted_items = sheet.items.len() - index;
                texts.push(TextRun::across(
                    Weight::Bold,
                    BODY_FONT_PT,
                    column_left,
                    cursor,
                    format!(
                        "… and {omitted_items} more item{} (not shown)",
                        if omitted_items == 1 { "" } else { "s" }
                    ),
                ));
                break;
            }
            texts.append(&mut block);
            cursor = end + mm(1.0);
        }
    }
    debug_assert!(column_width > 0.0);

    Ok(SheetLayout {
        dpi,
        page,
        printable: printable_area,
        code128,
        code128_bounds,
        matrix,
        matrix_bounds,
        texts,
        omitted_items,
    })
}

fn leading(size: f32) -> f32 {
    LEADING_EM * size
}

/// Distance from one line's top to the next's (the lines' boxes do not overlap).
fn line_height(size: f32) -> f32 {
    let extent = Weight::ALL
        .iter()
        .map(|weight| weight.font().ascent_em() + weight.font().descent_em())
        .fold(0.0, f32::max);
    extent * size + leading(size)
}

/// The largest size from `preferred` down to `minimum` (in quarter points) at which `text` fits
/// `width`; `minimum` if none does.
fn fitting_size(weight: Weight, preferred: f32, minimum: f32, text: &str, width: f32) -> f32 {
    let font = weight.font();
    let mut size = preferred;
    while size > minimum && font.width(text, size) > width {
        size -= 0.25;
    }
    size.max(minimum)
}

/// Sets `text` in lines of at most `width` starting at `top`; returns the top of the next line.
#[allow(clippy::too_many_arguments)] // one call per paragraph; a struct would only rename them
fn paragraph(
    texts: &mut Vec<TextRun>,
    weight: Weight,
    size: f32,
    left: f32,
    top: f32,
    width: f32,
    text: &str,
    max_lines: usize,
) -> f32 {
    let mut top = top;
    for line in wrap(weight, size, text, width, max_lines) {
        texts.push(TextRun::across(weight, size, left, top, line));
        top += line_height(size);
    }
    top
}

/// Greedy line breaking at spaces; a word longer than a line is broken between characters. After
/// `max_lines` lines the rest is dropped and the last line ends in `…`. Stops reading the text as
/// soon as the lines are full, so the work is bounded by the page, not by the input.
pub fn wrap(weight: Weight, size: f32, text: &str, width: f32, max_lines: usize) -> Vec<String> {
    let font = weight.font();
    let advance = |c: char| font.glyph_advance_em(font.glyph(c)) * size;
    let space = advance(' ');
    let text = printable(text);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_width = 0.0;
    let mut truncated = false;
    'words: for word in text.split_whitespace() {
        let word_width: f32 = word.chars().map(advance).sum();
        let gap = if line.is_empty() { 0.0 } else { space };
        if line_width + gap + word_width <= width {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            line_width += gap + word_width;
            continue;
        }
        if !line.is_empty() {
            if lines.len() + 1 == max_lines {
                truncated = true;
                break 'words;
            }
            lines.push(std::mem::take(&mut line));
            line_width = 0.0;
        }
        for c in word.chars() {
            let w = advance(c);
            if line_width + w > width && !line.is_empty() {
                if lines.len() + 1 == max_lines {
                    truncated = true;
                    break 'words;
                }
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            line.push(c);
            line_width += w;
        }
    }
    if truncated {
        let ellipsis = advance(ELLIPSIS);
        while line_width + ellipsis > width {
            match line.pop() {
                Some(c) => line_width -= advance(c),
                None => break,
            }
        }
        let kept = line.trim_end().len();
        line.truncate(kept);
        line.push(ELLIPSIS);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_inside_long_words() {
        let font = Weight::Regular.font();
        let width = font.width("Alexandra Konstantinopoulou", 9.0);
        let lines = wrap(
            Weight::Regular,
            9.0,
            "Alexandra Konstantinopoulou Papadopoulou",
            width,
            3,
        );
        assert_eq!(lines, ["Alexandra Konstantinopoulou", "Papadopoulou"]);
        let long_word = "Ж".repeat(60);
        let lines = wrap(Weight::Regular, 9.0, &long_word, width, 10);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), long_word);
        for line in &lines {
            assert!(font.width(line, 9.0) <= width, "{line}");
        }
    }

    #[test]
    fn wrap_cuts_after_the_last_line_with_an_ellipsis() {
        let font = Weight::Regular.font();
        let text = "Μαρία ".repeat(10_000);
        let lines = wrap(Weight::Regular, 9.0, &text, 100.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'), "{lines:?}");
        for line in &lines {
            assert!(font.width(line, 9.0) <= 100.0, "{line}");
        }
    }

    #[test]
    fn fitting_size_shrinks_to_fit_but_not_below_the_minimum() {
        let wide = "WWWWWW-WWWWWW-WWWWWW";
        let size = fitting_size(Weight::Bold, 11.0, 7.5, wide, 120.0);
        assert!((7.5..11.0).contains(&size));
        assert!(Weight::Bold.font().width(wide, size) <= 120.0 || size == 7.5);
        assert_eq!(fitting_size(Weight::Bold, 11.0, 7.5, "ID", 120.0), 11.0);
    }
}
