//! The printable token sheet: one A5 page (the FP10 size class) written with `pdf-writer`.
//!
//! Barcodes are vector rectangles whose sizes are whole printer dots at the sheet's resolution,
//! so a printer at that resolution reproduces every module exactly. Text uses the standard
//! Helvetica fonts (no embedding), so it is limited to the WinAnsi character set; other
//! characters print as `?`.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

use super::{
    Code128Symbol, Dpi, RenderError, TokenSheet, datamatrix_modules, matrix_dots_per_module, runs,
};

const PT_PER_MM: f32 = 72.0 / 25.4;
const A5_WIDTH_MM: f32 = 148.0;
const A5_HEIGHT_MM: f32 = 210.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// The EPS asks for the human-readable ID in bold, at least 7.5 pt.
const ID_FONT_PT: f32 = 9.0;
const BODY_FONT_PT: f32 = 9.0;
/// Average advance of Helvetica-Bold capitals and digits, in em (for centring the ID).
const BOLD_ADVANCE_EM: f32 = 0.68;
const MAX_ITEM_LINES: usize = 20;
const MAX_LINE_CHARS: usize = 70;

fn mm(v: f32) -> f32 {
    v * PT_PER_MM
}

/// Length of `dots` printer dots in points.
fn dots_pt(dpi: Dpi, dots: u32) -> f32 {
    dots as f32 * 72.0 / dpi.get() as f32
}

/// The full token sheet as a PDF document.
pub fn token_sheet_pdf(sheet: &TokenSheet) -> Result<Vec<u8>, RenderError> {
    let code128 = Code128Symbol::for_id(&sheet.id, sheet.dpi)?;
    let matrix = datamatrix_modules(&sheet.token)?;
    let page_height = mm(A5_HEIGHT_MM);
    let mut content = Content::new();

    // Title.
    text(
        &mut content,
        BOLD,
        12.0,
        mm(12.0),
        page_height - mm(14.0),
        "Prescription token",
    );
    text(
        &mut content,
        REGULAR,
        7.0,
        mm(12.0),
        page_height - mm(18.5),
        "Any pharmacy can scan the barcode or the 2-D code to find this prescription.",
    );

    // Code 128, vertical, read top to bottom; its quiet zones lie inside the white page margin.
    let module = dots_pt(sheet.dpi, code128.layout.dots_per_module);
    let bars_width = dots_pt(sheet.dpi, code128.layout.bar_height_dots);
    let bars_left = mm(14.0);
    let bars_top = page_height - mm(26.0);
    content.set_fill_gray(0.0);
    for (start, len) in runs(&code128.modules) {
        let top = bars_top - start as f32 * module;
        let height = len as f32 * module;
        content.rect(bars_left, top - height, bars_width, height);
    }
    content.fill_nonzero();
    let bars_length = code128.modules.len() as f32 * module;
    let id = sheet.id.to_string();
    let id_length = id.len() as f32 * BOLD_ADVANCE_EM * ID_FONT_PT;
    content
        .begin_text()
        .set_font(BOLD, ID_FONT_PT)
        .set_text_matrix([
            0.0,
            -1.0,
            1.0,
            0.0,
            bars_left + bars_width + mm(1.5),
            bars_top - (bars_length - id_length) / 2.0,
        ])
        .show(Str(&win_ansi(&id)))
        .end_text();

    // Data Matrix with the ID under it.
    let dots = matrix_dots_per_module(sheet.dpi);
    let cell = dots_pt(sheet.dpi, dots);
    let matrix_left = mm(36.0);
    let matrix_top = page_height - mm(26.0);
    for (y, x, len) in matrix.dark_runs() {
        content.rect(
            matrix_left + x as f32 * cell,
            matrix_top - (y + 1) as f32 * cell,
            len as f32 * cell,
            cell,
        );
    }
    content.fill_nonzero();
    let matrix_side = matrix.width() as f32 * cell;
    text(
        &mut content,
        BOLD,
        ID_FONT_PT,
        matrix_left + (matrix_side - id_length) / 2.0,
        matrix_top - matrix_side - mm(4.0),
        &id,
    );

    // Patient, prescriber and date beside the Data Matrix.
    let details_left = matrix_left + matrix_side + mm(6.0);
    let mut y = matrix_top - mm(3.0);
    let line = BODY_FONT_PT * 1.45;
    let mut field = |content: &mut Content, label: &str, value: &str| {
        text(content, BOLD, BODY_FONT_PT, details_left, y, label);
        text(
            content,
            REGULAR,
            BODY_FONT_PT,
            details_left + mm(22.0),
            y,
            &clip(value, 34),
        );
        y -= line;
    };
    if let Some(name) = &sheet.patient_name {
        field(&mut content, "Patient", name);
    }
    if let Some(nhs) = &sheet.nhs_number {
        field(&mut content, "NHS number", &nhs.to_string());
    }
    if let Some(prescriber) = &sheet.prescriber {
        field(&mut content, "Prescriber", prescriber);
    }
    if let Some(date) = &sheet.date {
        field(&mut content, "Date", date);
    }
    field(&mut content, "Prescription", &id);

    // Items under the Data Matrix.
    let mut y = matrix_top - matrix_side - mm(14.0);
    if !sheet.items.is_empty() {
        text(&mut content, BOLD, BODY_FONT_PT, matrix_left, y, "Items");
        y -= line;
        for (number, item) in sheet.items.iter().take(MAX_ITEM_LINES).enumerate() {
            let entry = format!("{}. {}", number + 1, clip(item, MAX_LINE_CHARS));
            text(&mut content, REGULAR, BODY_FONT_PT, matrix_left, y, &entry);
            y -= line;
        }
        if sheet.items.len() > MAX_ITEM_LINES {
            let more = format!("… and {} more", sheet.items.len() - MAX_ITEM_LINES);
            text(&mut content, REGULAR, BODY_FONT_PT, matrix_left, y, &more);
        }
    }

    let mut pdf = Pdf::new();
    let (catalog, pages, page, regular, bold, contents, info) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
        Ref::new(7),
    );
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut page_writer = pdf.page(page);
        page_writer
            .media_box(Rect::new(0.0, 0.0, mm(A5_WIDTH_MM), page_height))
            .parent(pages)
            .contents(contents);
        let mut resources = page_writer.resources();
        let mut fonts = resources.fonts();
        fonts.pair(REGULAR, regular).pair(BOLD, bold);
    }
    for (id, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(id)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.stream(contents, &content.finish());
    pdf.document_info(info)
        .title(TextStr(&format!("Prescription token {id}")))
        .creator(TextStr("prescrypt-barcode"));
    Ok(pdf.finish())
}

fn text(content: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, value: &str) {
    content
        .begin_text()
        .set_font(font, size)
        .next_line(x, y)
        .show(Str(&win_ansi(value)))
        .end_text();
}

fn clip(value: &str, max_chars: usize) -> String {
    if value.chars().count() <= max_chars {
        value.to_owned()
    } else {
        let mut clipped: String = value.chars().take(max_chars - 1).collect();
        clipped.push('…');
        clipped
    }
}

/// Text in the standard fonts' WinAnsi encoding; control and unsupported characters become `?`.
fn win_ansi(value: &str) -> Vec<u8> {
    value
        .chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_maps_latin1_and_replaces_the_rest() {
        assert_eq!(win_ansi("Zoë – 5 mg"), b"Zo\xeb \x96 5 mg");
        assert_eq!(win_ansi("中\n"), b"??");
    }
}
