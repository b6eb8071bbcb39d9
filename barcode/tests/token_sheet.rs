//! The A5 token sheet: its layout never overlaps whatever the names and IDs, its text is real
//! embedded-font text (Latin, Greek, Cyrillic) that extraction gives back, and the PDF itself —
//! rasterized, printed and scanned through the print simulation — still scans at 203 and 300 dpi.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};
use image::GrayImage;
use prescrypt_barcode::decode::{CodeFormat, Payload};
use prescrypt_barcode::render::layout::{Direction, MIN_ID_FONT_PT, Rect};
use prescrypt_barcode::render::{
    self, Dpi, SheetItem, SheetLayout, TokenFormat, TokenSheet, layout_sheet,
};
use prescrypt_barcode::{NhsNumber, PrescriptionId, Token, synth};
use rand::SeedableRng;
use rand::rngs::StdRng;

const GREEK: &str = "Αικατερίνη Παπαδοπούλου-Κωνσταντινοπούλου";
const CYRILLIC: &str = "Анна-Мария Александровна Константинопольская-Щербакова";

/// Names a sheet must take: short, accented Latin, Greek, Cyrillic, very long with spaces, one
/// huge word, and hostile control characters.
fn names() -> Vec<String> {
    vec![
        "Li Wu".to_owned(),
        "Zoë Ó Súilleabháin-Łukasiewicz-Nørgaard".to_owned(),
        GREEK.to_owned(),
        CYRILLIC.to_owned(),
        "Maximilian Alexander Bartholomew Christopher Montgomery-Fitzwilliam ".repeat(12),
        "W".repeat(400),
        "Tab\tand\nnew\u{7}line".to_owned(),
    ]
}

fn ids() -> Vec<PrescriptionId> {
    vec![
        common::id(),
        // The widest characters the ID alphabet has, and the narrowest.
        PrescriptionId::new(0xFF_FFFF, "WMWMWM", 0xF_FFFF).unwrap(),
        PrescriptionId::new(0x11_1111, "I1I1I1", 0x1_1111).unwrap(),
    ]
}

fn item(medication: &str, quantity: &str, dosage: &str) -> SheetItem {
    SheetItem::new(medication, quantity, dosage)
}

fn sheet(id: &PrescriptionId, name: &str, items: Vec<SheetItem>, dpi: Dpi) -> TokenSheet {
    let token = Token::sign(*id, &common::key());
    let mut sheet = TokenSheet::new(&token, dpi);
    sheet.patient_name = Some(name.to_owned());
    sheet.nhs_number = Some(NhsNumber::parse("9434765919").unwrap());
    sheet.prescriber = Some(format!("Dr {name} (FCG71)"));
    sheet.date = Some("2026-11-21".to_owned());
    sheet.items = items;
    sheet
}

fn usual_items() -> Vec<SheetItem> {
    vec![
        item(
            "Amoxicillin 500mg capsules",
            "21 capsule",
            "One capsule three times a day",
        ),
        item(
            "Παρακεταμόλη 500mg δισκία",
            "32 tablet",
            "Δύο δισκία έως τέσσερις φορές την ημέρα",
        ),
        item(
            "Ибупрофен 200 мг таблетки",
            "24 tablet",
            "По одной таблетке каждые 6 часов после еды, не более 4 таблеток в сутки",
        ),
    ]
}

fn many_long_items(count: usize) -> Vec<SheetItem> {
    (0..count)
        .map(|i| {
            item(
                &format!("Medication number {i} with a very long descriptive name ").repeat(5),
                "1000 mL",
                &"Apply a thin layer to the affected area twice daily ".repeat(6),
            )
        })
        .collect()
}

fn mm(v: f32) -> f32 {
    v * 72.0 / 25.4
}

fn assert_no_overlap(layout: &SheetLayout, what: &str) {
    let boxes = layout.boxes();
    for (name, bounds) in &boxes {
        assert!(
            layout.printable.contains(bounds),
            "{what}: {name} {bounds:?} leaves the printable area {:?}",
            layout.printable
        );
        assert!(
            bounds.width() > 0.0 && bounds.height() > 0.0,
            "{what}: {name}"
        );
    }
    for (i, (a, a_box)) in boxes.iter().enumerate() {
        for (b, b_box) in &boxes[i + 1..] {
            assert!(
                !a_box.intersects(b_box),
                "{what}: {a} {a_box:?} overlaps {b} {b_box:?}"
            );
        }
    }
}

#[test]
fn nothing_overlaps_at_any_name_id_or_item_count() {
    let mut checked = 0;
    // The three tested printers and the extremes the service accepts.
    let dpis = [Dpi::new(150).unwrap(), Dpi::new(2400).unwrap()];
    for dpi in Dpi::ALL.into_iter().chain(dpis) {
        for id in ids() {
            for name in names() {
                for items in [Vec::new(), usual_items(), many_long_items(40)] {
                    let sheet = sheet(&id, &name, items, dpi);
                    let layout = layout_sheet(&sheet).unwrap();
                    assert_no_overlap(&layout, &format!("{dpi:?} {id} {name:.20}"));
                    // The ID beside the Code 128 stays at the EPS minimum size or above.
                    let beside = layout
                        .texts
                        .iter()
                        .find(|run| run.direction == Direction::Down)
                        .unwrap();
                    assert_eq!(beside.text, id.to_string());
                    assert!(beside.size >= MIN_ID_FONT_PT);
                    assert!(beside.bounds.left >= layout.code128_bounds.right);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 3 * 7 * 3);
}

#[test]
fn long_text_wraps_and_is_cut_instead_of_overflowing() {
    let long_name = names()[4].clone();
    let mut sheet = sheet(
        &common::id(),
        &long_name,
        many_long_items(40),
        Dpi::LASER_300,
    );
    sheet.prescriber = Some("Dr A Clinician (FCG71)".to_owned());
    let layout = layout_sheet(&sheet).unwrap();
    let name_lines: Vec<_> = layout
        .texts
        .iter()
        .filter(|run| long_name.contains(run.text.trim_end_matches('…')))
        .collect();
    assert_eq!(name_lines.len(), 3, "the patient name wraps to 3 lines");
    assert!(name_lines[2].text.ends_with('…'));
    assert!(
        layout.omitted_items > 0 && layout.omitted_items < 40,
        "{}",
        layout.omitted_items
    );
    let more = format!("… and {} more items (not shown)", layout.omitted_items);
    assert!(layout.texts.iter().any(|run| run.text == more));
    // Every item shown has its dosage under it.
    let shown = 40 - layout.omitted_items;
    let dosages = layout
        .texts
        .iter()
        .filter(|run| run.text.starts_with("Dosage: "))
        .count();
    assert_eq!(dosages, shown);
}

#[test]
fn pdf_text_is_embedded_dejavu_that_extracts_back() {
    let mut sheet = sheet(&common::id(), GREEK, usual_items(), Dpi::LASER_600);
    sheet.prescriber = Some(CYRILLIC.to_owned());
    let pdf = render::render_token(&sheet, TokenFormat::Pdf).unwrap();
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/MediaBox [0 0 419.52"), "A5 width in points");
    for needle in [
        "/Subtype /Type0",
        "/Identity-H",
        "/CIDFontType2",
        "/FontFile2",
        "/ToUnicode",
        "+DejaVuSans-Bold",
        "+DejaVuSans",
    ] {
        assert!(raw.contains(needle), "missing {needle}");
    }
    assert!(!raw.contains("Helvetica"));
    // Subsets: a few dozen glyphs, not the 700 KB fonts.
    assert!(pdf.len() < 200_000, "{} bytes", pdf.len());

    let text = pdf_extract::extract_text_from_mem(&pdf).unwrap();
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = words(&text);
    for needle in [
        "Prescription token",
        "E7ZG38-ZBACYU-V38SR+",
        "943 476 5919",
        "2026-11-21",
        GREEK,
        CYRILLIC,
        "Amoxicillin 500mg capsules — 21 capsule",
        "Dosage: One capsule three times a day",
        "Παρακεταμόλη 500mg δισκία — 32 tablet",
        "Dosage: Δύο δισκία έως τέσσερις φορές την ημέρα",
        "Ибупрофен 200 мг таблетки — 24 tablet",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

/// The PDF's page at `dpi`, black and white like a printer's dots (anti-aliasing off).
fn rasterize(pdf: &[u8], dpi: Dpi, aliased: bool) -> GrayImage {
    let document = Pdf::new(pdf.to_vec()).unwrap();
    let page = document.pages().iter().next().unwrap();
    let scale = dpi.get() as f32 / 72.0;
    let pixmap = hayro::render(
        page,
        &RenderCache::new(),
        &InterpreterSettings::default(),
        &RenderSettings {
            aliasing_threshold: aliased.then_some(128),
            hinting: false,
            ..RenderSettings::default()
        },
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    let rgba = pixmap.data_as_u8_slice();
    GrayImage::from_fn(
        u32::from(pixmap.width()),
        u32::from(pixmap.height()),
        |x, y| {
            let i = 4 * (y as usize * usize::from(pixmap.width()) + x as usize);
            image::Luma([rgba[i]])
        },
    )
}

#[test]
fn the_pdf_itself_scans_at_203_and_300_dpi_after_print_and_scan() {
    let mut rng = StdRng::seed_from_u64(19);
    for dpi in [Dpi::THERMAL_203, Dpi::LASER_300] {
        for (id, name) in [(ids()[1], GREEK), (common::id(), CYRILLIC)] {
            let sheet = sheet(&id, name, usual_items(), dpi);
            let pdf = render::render_token(&sheet, TokenFormat::Pdf).unwrap();
            let page = rasterize(&pdf, dpi, true);
            // What a counter scanner images: both codes and the text around them (the
            // simulation runs unoptimised in tests, so not the whole page).
            let layout = layout_sheet(&sheet).unwrap();
            let around = layout
                .code128_bounds
                .union(&layout.matrix_bounds)
                .grown(mm(8.0));
            let px = dpi.get() as f32 / 72.0;
            let printed = image::imageops::crop_imm(
                &page,
                (around.left * px) as u32,
                (around.top * px) as u32,
                (around.width() * px) as u32,
                (around.height() * px) as u32,
            )
            .to_image();
            // The print simulation of the readability benchmark: dead head elements on the
            // thermal printer, ink spread or erosion, a slightly skewed, defocused, noisy scan.
            let printed = if dpi == Dpi::THERMAL_203 {
                synth::missing_dot_columns(&printed, 2, &mut rng)
            } else {
                printed
            };
            let printed =
                synth::ink_spread(&printed, if dpi == Dpi::THERMAL_203 { 0.3 } else { -0.3 });
            let scanned = synth::resample(&printed, dpi, Dpi::LASER_300);
            let scanned = synth::rotate(&scanned, 1.5, 255);
            let scanned = synth::defocus(&scanned, 0.6);
            let scanned = synth::noise(&scanned, 4.0, &mut rng);
            let codes = common::decoder()
                .decode_image(&image::DynamicImage::ImageLuma8(scanned))
                .unwrap();
            let token = Token::sign(id, &common::key());
            let found: Vec<_> = codes.iter().map(|c| (c.format, c.payload)).collect();
            assert!(
                found.contains(&(CodeFormat::Code128, Payload::PrescriptionId(id))),
                "{dpi:?} {id}: {codes:?}"
            );
            assert!(
                found.contains(&(CodeFormat::DataMatrix, Payload::Token(token))),
                "{dpi:?} {id}: {codes:?}"
            );
        }
    }
}

/// The layout's boxes are what the PDF draws: every inked pixel of the rendered page lies in one
/// of them, and every box has ink.
#[test]
fn every_inked_pixel_lies_in_a_layout_box() {
    let dpi = Dpi::LASER_300;
    let sheet = sheet(&ids()[1], CYRILLIC, usual_items(), dpi);
    let layout = layout_sheet(&sheet).unwrap();
    let page = rasterize(
        &render::render_token(&sheet, TokenFormat::Pdf).unwrap(),
        dpi,
        false,
    );
    let px = dpi.get() as f32 / 72.0;
    // One pixel of slack for anti-aliased edges.
    let to_pixels = |r: &Rect| {
        (
            r.left * px - 1.0,
            r.top * px - 1.0,
            r.right * px + 1.0,
            r.bottom * px + 1.0,
        )
    };
    let boxes: Vec<_> = layout
        .boxes()
        .into_iter()
        .map(|(name, r)| (name, to_pixels(&r)))
        .collect();
    let mut inked = vec![0usize; boxes.len()];
    for (x, y, pixel) in page.enumerate_pixels() {
        if pixel.0[0] > 200 {
            continue;
        }
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        let inside = boxes
            .iter()
            .position(|(_, (l, t, r, b))| (*l..=*r).contains(&fx) && (*t..=*b).contains(&fy));
        match inside {
            Some(i) => inked[i] += 1,
            None => panic!("ink at pixel ({x}, {y}) outside every layout box"),
        }
    }
    for ((name, _), count) in boxes.iter().zip(inked) {
        assert!(count > 0, "{name} drew nothing");
    }
}
