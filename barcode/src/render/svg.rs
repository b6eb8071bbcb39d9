//! SVG output: one `<path>` of axis-aligned rectangles per symbol, in printer-dot units, with the
//! physical size in millimetres so a browser or print dialog keeps the module size exact.

use std::fmt::Write as _;

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
/// beside it, the Data Matrix to the right.
pub fn token_label_svg(sheet: &TokenSheet) -> Result<String, RenderError> {
    let dpi = sheet.dpi;
    let code128 = Code128Symbol::for_id(&sheet.id, dpi)?;
    let matrix = datamatrix_modules(&sheet.token)?;
    let matrix_dots = matrix_dots_per_module(dpi);
    let mm = |v: f64| (v * f64::from(dpi.get()) / 25.4).round() as u32;
    let gap = mm(8.0);
    let text_band = mm(5.0);
    let bars_w = code128.layout.bar_height_dots;
    let bars_h = code128.modules.len() as u32 * code128.layout.dots_per_module;
    let matrix_side = matrix.width() as u32 * matrix_dots;
    let matrix_x = gap + bars_w + text_band + gap;
    let width = matrix_x + matrix_side + gap;
    let height = gap + bars_h.max(matrix_side + text_band) + gap;

    let mut svg = header(width, height, dpi);
    svg.push_str(r##"<path fill="#000" d=""##);
    for (start, len) in super::runs(&code128.modules) {
        let y = gap + start as u32 * code128.layout.dots_per_module;
        let h = len as u32 * code128.layout.dots_per_module;
        let _ = write!(svg, "M{gap} {y}h{bars_w}v{h}h-{bars_w}z");
    }
    svg.push_str("\"/>\n");
    push_matrix(&mut svg, &matrix, matrix_dots, matrix_x, gap);
    let font = mm(3.2); // ≈ 9 pt, bold: the EPS asks for ≥ 7.5 pt beside the barcode
    let id = sheet.id.to_string();
    let text_x = gap + bars_w + mm(1.0) + font;
    let text_y = gap + bars_h / 2;
    let _ = writeln!(
        svg,
        r#"<text x="{text_x}" y="{text_y}" font-family="Helvetica, Arial, sans-serif" font-weight="bold" font-size="{font}" text-anchor="middle" transform="rotate(90 {text_x} {text_y})">{id}</text>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-family="Helvetica, Arial, sans-serif" font-weight="bold" font-size="{font}" text-anchor="middle">{id}</text>"#,
        matrix_x + matrix_side / 2,
        gap + matrix_side + font
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
