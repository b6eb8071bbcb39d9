//! SVG output: one `<path>` of axis-aligned rectangles per symbol, in printer-dot units, with the
//! physical size in millimetres so a browser or print dialog keeps the module size exact.

use std::fmt::Write as _;

use super::font::Weight;
use super::{
    Code128Symbol, Dpi, ModuleMatrix, RenderError, TokenSheet, datamatrix_modules,
    matrix_dots_per_module,
};

/// A module matrix as a standalone SVG with `dots` units per module at `dpi`.
pub fn matrix_svg(matrix: &ModuleMatrix, dots: u32, dpi: Dpi) -> String {
    let (w, h) = (matrix.width() as u32 * dots, matrix.height() as u32 * dots);
    let mut svg = header(w, h, dpi);
    push_matrix(&mut svg, matrix, dots, 0, 0);
    svg.push_str("</svg>\n");
    svg
}

/// Both codes of a token with the human-readable ID: the vertical Code 128 with the ID in bold
/// beside it, the Data Matrix to the right with the ID under it, left-aligned. Widths come from
/// the sheet's bold font and are pinned with `textLength`, so whatever font the viewer picks
/// the text keeps the measured extent and the two IDs cannot meet.
pub fn token_label_svg(sheet: &TokenSheet) -> Result<String, RenderError> {
    let dpi = sheet.dpi;
    let code128 = Code128Symbol::for_id(&sheet.id, dpi)?;
    let matrix = datamatrix_modules(&sheet.token)?;
    let matrix_dots = matrix_dots_per_module(dpi);
    let mm = |v: f64| (v * f64::from(dpi.get()) / 25.4).round() as u32;
    let gap = mm(8.0);
    let bold = Weight::Bold.font();
    let font = mm(3.2); // ≈ 9 pt, bold: the EPS asks for ≥ 7.5 pt beside the barcode
    let id = sheet.id.to_string();
    let id_length = bold.width(&id, font as f32).ceil() as u32;
    let ascent = (bold.ascent_em() * font as f32).ceil() as u32;
    let descent = (bold.descent_em() * font as f32).ceil() as u32;
    let bars_w = code128.layout.bar_height_dots;
    let bars_h = code128.modules.len() as u32 * code128.layout.dots_per_module;
    let matrix_side = matrix.width() as u32 * matrix_dots;
    // Rotated ID: baseline `descent` right of a 1 mm gap, glyph tops facing right.
    let text_x = gap + bars_w + mm(1.0) + descent;
    let matrix_x = text_x + ascent + gap;
    let width = matrix_x + matrix_side.max(id_length) + gap;
    let under_matrix = gap + matrix_side + mm(1.0) + ascent;
    let height = gap + bars_h.max(under_matrix + descent - gap) + gap;

    let mut svg = header(width, height, dpi);
    svg.push_str(r##"<path fill="#000" d=""##);
    for (start, len) in super::runs(&code128.modules) {
        let y = gap + start as u32 * code128.layout.dots_per_module;
        let h = len as u32 * code128.layout.dots_per_module;
        let _ = write!(svg, "M{gap} {y}h{bars_w}v{h}h-{bars_w}z");
    }
    svg.push_str("\"/>\n");
    push_matrix(&mut svg, &matrix, matrix_dots, matrix_x, gap);
    let text_y = gap + bars_h / 2;
    let attributes = format!(
        r#"font-family="DejaVu Sans, Verdana, Helvetica, Arial, sans-serif" font-weight="bold" font-size="{font}" textLength="{id_length}" lengthAdjust="spacingAndGlyphs""#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{text_x}" y="{text_y}" {attributes} text-anchor="middle" transform="rotate(90 {text_x} {text_y})">{id}</text>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{matrix_x}" y="{under_matrix}" {attributes}>{id}</text>"#
    );
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn header(width: u32, height: u32, dpi: Dpi) -> String {
    let mm = |dots: u32| dpi.dots_to_mm(dots as usize);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.3}mm" height="{:.3}mm" viewBox="0 0 {} {}" shape-rendering="crispEdges">"#,
            "\n",
            r##"<rect width="100%" height="100%" fill="#fff"/>"##,
            "\n"
        ),
        mm(width),
        mm(height),
        width,
        height
    )
}

fn push_matrix(svg: &mut String, matrix: &ModuleMatrix, dots: u32, left: u32, top: u32) {
    svg.push_str(r##"<path fill="#000" d=""##);
    for (y, x, len) in matrix.dark_runs() {
        let _ = write!(
            svg,
            "M{} {}h{}v{dots}h-{}z",
            left + x as u32 * dots,
            top + y as u32 * dots,
            len as u32 * dots,
            len as u32 * dots
        );
    }
    svg.push_str("\"/>\n");
}
