//! A phone photo of a printed token: both codes must be found.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use prescrypt_barcode::decode::{CodeFormat, Payload};
use prescrypt_barcode::render::{Dpi, TokenSheet};
use prescrypt_barcode::synth;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn photo(seed: u64, tilt: f32, rotation: f32) -> image::GrayImage {
    let mut rng = StdRng::seed_from_u64(seed);
    let sheet = TokenSheet::new(&common::token(), Dpi::LASER_300);
    let page = synth::token_sheet_image(&sheet, &mut rng);
    let view = synth::camera_view(&page, tilt, rotation, 1600, 1200, 0.85, 90, &mut rng);
    let view = synth::defocus(&view, 1.0);
    let view = synth::uneven_light(&view, 0.7, &mut rng);
    let view = synth::noise(&view, 4.0, &mut rng);
    synth::jpeg(&view, 75)
}

#[test]
fn both_codes_are_found_on_a_tilted_rotated_blurred_photo() {
    let token = common::token();
    for (seed, tilt, rotation) in [(1, 20.0, 8.0), (2, 12.0, -12.0), (3, 5.0, 180.0)] {
        let image = photo(seed, tilt, rotation);
        let codes = common::decoder().decode_image(&image::DynamicImage::ImageLuma8(image));
        let codes = codes.expect("a photo loads");
        let formats: Vec<_> = codes.iter().map(|c| c.format).collect();
        assert_eq!(
            formats,
            vec![CodeFormat::Code128, CodeFormat::DataMatrix],
            "seed {seed}"
        );
        assert_eq!(codes[0].payload, Payload::PrescriptionId(common::id()));
        assert_eq!(codes[1].payload, Payload::Token(token));
        assert_eq!(codes[1].aim, "]d1");
    }
}
