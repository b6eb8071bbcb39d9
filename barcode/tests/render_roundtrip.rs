//! Every symbol we print, at every resolution, rendered and decoded back by our own pipeline.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use image::DynamicImage;
use prescrypt_barcode::decode::{CodeFormat, Payload};
use prescrypt_barcode::render::{
    self, Code128Symbol, Dpi, Orientation, SheetItem, TokenFormat, TokenSheet,
    matrix_dots_per_module,
};
use prescrypt_barcode::{NhsNumber, PrescriptionId};

fn decode_png(png: &[u8]) -> Vec<prescrypt_barcode::decode::DecodedCode> {
    common::decoder()
        .decode_bytes(png)
        .expect("our own PNG loads")
}

#[test]
fn code128_of_the_id_round_trips_at_every_dpi_and_orientation() {
    for dpi in Dpi::ALL {
        for orientation in [Orientation::Horizontal, Orientation::Vertical] {
            let image = render::code128_image(&common::id(), dpi, orientation).unwrap();
            let codes = decode_png(&render::png_bytes(&image).unwrap());
            assert_eq!(codes.len(), 1, "{dpi:?} {orientation:?}: {codes:?}");
            assert_eq!(codes[0].format, CodeFormat::Code128);
            assert_eq!(codes[0].text, common::id().compact());
            assert_eq!(codes[0].aim, "]C0");
            assert_eq!(codes[0].payload, Payload::PrescriptionId(common::id()));
        }
    }
}

/// rxing runs the check character through its code-set switch, so an ID whose Code 128 check
/// value is 97 (FNC2 in code sets A and B) came back as `]C4` and was taken for foreign data.
/// Found by the console's tests on this ID; a sweep of IDs catches the others.
#[test]
fn an_id_whose_check_value_reads_as_fnc2_is_still_our_id() {
    let mut ids = vec![PrescriptionId::parse("1D2039-A83008-00000C").unwrap()];
    ids.extend((0..24u32).map(|n| PrescriptionId::new(n * 7919 + 13, "A83008", n + 1).unwrap()));
    for id in ids {
        let image =
            render::code128_image(&id, Dpi::new(300).unwrap(), Orientation::Horizontal).unwrap();
        let codes = decode_png(&render::png_bytes(&image).unwrap());
        assert_eq!(codes.len(), 1, "{id}: {codes:?}");
        assert_eq!(codes[0].aim, "]C0", "{id}");
        assert_eq!(codes[0].payload, Payload::PrescriptionId(id), "{id}");
    }
}

/// The same pass-through for a check value of 102 (FNC1 in every code set): told to assume GS1,
/// rxing turned it into a GS after the ID, and the decoder reported foreign text where the ID
/// was (a misread, found by the readability benchmark on a thermal label of this ID).
#[test]
fn an_id_whose_check_value_reads_as_fnc1_is_still_our_id() {
    let mut ids = vec![PrescriptionId::parse("CCBE1F-A99968-FD81D0").unwrap()];
    ids.extend(
        (0..150u32).map(|n| PrescriptionId::new(n * 104_729 + 7, "FCG71", n * 31 + 5).unwrap()),
    );
    for id in ids {
        let image =
            render::code128_image(&id, Dpi::new(300).unwrap(), Orientation::Horizontal).unwrap();
        let codes = decode_png(&render::png_bytes(&image).unwrap());
        assert_eq!(codes.len(), 1, "{id}: {codes:?}");
        assert_eq!(codes[0].text, id.compact(), "{id}");
        assert_eq!(codes[0].payload, Payload::PrescriptionId(id), "{id}");
    }
}

#[test]
fn datamatrix_of_the_token_round_trips_at_every_dpi() {
    let token = common::token();
    for dpi in Dpi::ALL {
        let image = render::datamatrix_image(&token.text(), dpi).unwrap();
        assert_eq!(
            image.width(),
            (40 + 2 * render::DATAMATRIX_QUIET_ZONE as u32) * matrix_dots_per_module(dpi)
        );
        let codes = decode_png(&render::png_bytes(&image).unwrap());
        assert_eq!(codes.len(), 1, "{dpi:?}: {codes:?}");
        assert_eq!(codes[0].format, CodeFormat::DataMatrix);
        assert_eq!(codes[0].text, token.text().as_str());
        assert_eq!(codes[0].aim, "]d1");
        assert_eq!(codes[0].payload, Payload::Token(token));
    }
}

#[test]
fn the_token_needs_exactly_a_40_by_40_data_matrix() {
    let matrix = render::datamatrix_modules(&common::token().text()).unwrap();
    assert_eq!(matrix.width(), 40 + 2 * render::DATAMATRIX_QUIET_ZONE);
    assert_eq!(matrix.height(), matrix.width());
    // Quiet zone all light.
    let q = render::DATAMATRIX_QUIET_ZONE;
    for i in 0..matrix.width() {
        for j in 0..q {
            assert!(!matrix.get(i, j) && !matrix.get(j, i));
        }
    }
    // The L-shaped finder: left column and bottom row of the symbol all dark.
    for i in q..matrix.width() - q {
        assert!(matrix.get(q, i));
        assert!(matrix.get(i, matrix.height() - q - 1));
    }
}

#[test]
fn qr_of_the_token_round_trips_at_every_dpi() {
    let text = common::token().text();
    for dpi in Dpi::ALL {
        let matrix = render::qr_modules(text.as_str()).unwrap();
        let image = matrix.to_image(matrix_dots_per_module(dpi));
        let codes = decode_png(&render::png_bytes(&image).unwrap());
        assert_eq!(codes.len(), 1, "{dpi:?}: {codes:?}");
        assert_eq!(codes[0].format, CodeFormat::Qr);
        assert_eq!(codes[0].text, text.as_str());
        assert_eq!(codes[0].aim, "]Q1");
    }
}

#[test]
fn token_label_png_carries_both_codes_at_every_dpi() {
    for dpi in Dpi::ALL {
        let sheet = TokenSheet::new(&common::token(), dpi);
        let png = render::render_token(&sheet, TokenFormat::Png).unwrap();
        let codes = decode_png(&png);
        let formats: Vec<_> = codes.iter().map(|c| c.format).collect();
        assert_eq!(
            formats,
            vec![CodeFormat::Code128, CodeFormat::DataMatrix],
            "{dpi:?}"
        );
    }
}

#[test]
fn code128_layout_uses_whole_dots_and_fits_the_eps_size() {
    let id = common::id();
    for dpi in Dpi::ALL {
        let symbol = Code128Symbol::for_id(&id, dpi).unwrap();
        let image = symbol.to_image(Orientation::Vertical);
        assert_eq!(
            image.height() as usize,
            symbol.modules.len() * symbol.layout.dots_per_module as usize
        );
        let length = symbol.layout.symbol_length_mm();
        assert!((55.0..=68.0).contains(&length), "{dpi:?}: {length}");
    }
}

#[test]
fn svg_has_physical_size_and_both_symbols() {
    let sheet = TokenSheet::new(&common::token(), Dpi::LASER_300);
    let svg = String::from_utf8(render::render_token(&sheet, TokenFormat::Svg).unwrap()).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""));
    assert!(svg.contains("mm\" height=\""));
    assert_eq!(svg.matches("<path fill=\"#000\"").count(), 2);
    assert!(svg.contains(&common::id().to_string()));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn pdf_sheet_is_an_a5_page_with_the_human_readable_parts() {
    let mut sheet = TokenSheet::new(&common::token(), Dpi::LASER_600);
    sheet.patient_name = Some("Zoë Example".to_owned());
    sheet.nhs_number = Some(NhsNumber::parse("9434765919").unwrap());
    sheet.items = vec![
        SheetItem::new(
            "Amoxicillin 500mg capsules",
            "21 capsule",
            "One capsule three times a day",
        ),
        "Paracetamol 500mg tablets, 32".into(),
    ];
    sheet.prescriber = Some("Dr A Clinician (FCG71)".to_owned());
    sheet.date = Some("2026-11-21".to_owned());
    let pdf = render::render_token(&sheet, TokenFormat::Pdf).unwrap();
    let raw = String::from_utf8_lossy(&pdf);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(raw.trim_end().ends_with("%%EOF"));
    assert!(raw.contains("/MediaBox [0 0 419.52"), "A5 width in points");
    // Text is glyph IDs of the embedded font: read it back the way a PDF reader does.
    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    for needle in [
        "E7ZG38-ZBACYU-V38SR+",
        "Zoë Example",
        "943 476 5919",
        "Amoxicillin 500mg capsules — 21 capsule",
        "Dosage: One capsule three times a day",
        "Paracetamol 500mg tablets, 32",
        "Dr A Clinician (FCG71)",
        "2026-11-21",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text:?}");
    }
}

#[test]
fn format_names_map_to_content_types() {
    assert_eq!(
        TokenFormat::from_extension("PDF").unwrap().content_type(),
        "application/pdf"
    );
    assert!(TokenFormat::from_extension("gif").is_err());
    assert!(Dpi::new(72).is_err());
    // The decoder also reads a DynamicImage directly.
    let image = render::code128_image(
        &PrescriptionId::parse("D7AC09-A99968-4BA59C").unwrap(),
        Dpi::THERMAL_203,
        Orientation::Horizontal,
    )
    .unwrap();
    let codes = common::decoder()
        .decode_image(&DynamicImage::ImageLuma8(image))
        .unwrap();
    assert_eq!(codes[0].text, "D7AC09A999684BA59C");
}
