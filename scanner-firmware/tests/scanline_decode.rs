//! Decoding Code 128 from simulated scanlines of real Code 128 bitmaps (rxing's writer):
//! magnification, blur, noise, gain, direction, quiet zone and check character.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead};
use prescrypt_scanner_firmware::scanline::{EdgeConfig, Edges, Exposure, find_edges};
use prescrypt_scanner_firmware::sim::optics::{
    Optics, code128_modules, code128_modules_from_values,
};

const ID: &str = "D7AC09A999684BA59C";
const HYPHENATED: &str = "D7AC09-A99968-4BA59C";

fn read(line: &[u8]) -> Option<code128::Decoded> {
    let mut edges = Edges::new();
    match code128::read_line_adaptive(line, &mut edges, &Code128Config::default()) {
        LineRead::Symbol(decoded) => Some(decoded),
        LineRead::NoRead | LineRead::Exposure(_) => None,
    }
}

fn read_text(line: &[u8]) -> Option<String> {
    read(line).map(|d| String::from_utf8(d.data.to_vec()).unwrap())
}

/// Optics blur in proportion to the module (0.25 module), light sensor noise.
fn optics(module_samples: f64, samples: usize) -> Optics {
    Optics {
        module_samples,
        samples,
        blur: 0.25 * module_samples,
        noise: 2.0,
        ..Optics::default()
    }
}

#[test]
fn reads_ids_across_module_widths_from_1_5_to_8_samples() {
    for text in [ID, HYPHENATED] {
        let modules = code128_modules(text).unwrap();
        for tenths in [15, 18, 20, 25, 30, 40, 55, 70, 80] {
            let m = f64::from(tenths) / 10.0;
            let samples = ((modules.len() as f64 + 30.0) * m) as usize + 64;
            let samples = samples.clamp(512, 4096);
            let line = optics(m, samples).scanline(&modules);
            assert_eq!(
                read_text(&line).as_deref(),
                Some(text),
                "{text} at {m} samples/module"
            );
        }
    }
}

#[test]
fn reads_through_blur_noise_and_gain_changes() {
    let modules = code128_modules(ID).unwrap();
    for (m, blur, noise, gain, offset) in [
        // (samples/module, blur σ in samples, noise σ in grey levels, gain, offset)
        (1.5, 0.3, 3.0, 0.8, 0.0),
        (2.0, 0.5, 3.0, 1.0, 0.0),
        (3.0, 0.9, 4.0, 0.8, 10.0),
        (3.0, 0.9, 6.0, 1.2, -20.0),
        (4.0, 1.4, 5.0, 0.8, 0.0),
        (6.0, 2.4, 6.0, 1.2, 0.0),
        (8.0, 3.2, 6.0, 1.0, 5.0),
    ] {
        for seed in 1..=5 {
            let line = Optics {
                module_samples: m,
                blur,
                noise,
                gain,
                offset,
                samples: 3694,
                seed,
                ..Optics::default()
            }
            .scanline(&modules);
            assert_eq!(
                read_text(&line).as_deref(),
                Some(ID),
                "m={m} blur={blur} noise={noise} gain={gain} offset={offset} seed={seed}"
            );
        }
    }
}

#[test]
fn reads_other_texts_and_code_sets() {
    for text in [
        "PJJ123C",
        "0123456789012345",
        "Hello, World!",
        "a",
        "RX1ABCDEFGHIJKLMNOPQ",
    ] {
        let modules = code128_modules(text).unwrap();
        let line = optics(2.5, 2048).scanline(&modules);
        assert_eq!(read_text(&line).as_deref(), Some(text));
    }
}

#[test]
fn reads_a_reversed_scan() {
    let modules = code128_modules(ID).unwrap();
    for m in [1.5, 3.0, 7.0] {
        let samples = ((modules.len() as f64 + 30.0) * m) as usize + 64;
        let line = Optics {
            reversed: true,
            ..optics(m, samples.max(512))
        }
        .scanline(&modules);
        let decoded = read(&line).unwrap();
        assert!(decoded.reversed);
        assert_eq!(&decoded.data[..], ID.as_bytes());
    }
}

#[test]
fn no_read_without_a_quiet_zone() {
    let modules = code128_modules(ID).unwrap();
    for quiet in [0.0, 1.0, 2.0, 3.0] {
        let line = Optics {
            quiet_modules: quiet,
            dark_surround: true,
            ..optics(3.0, 2048)
        }
        .scanline(&modules);
        assert_eq!(read(&line), None, "quiet zone of {quiet} modules");
    }
    // The same print with a proper margin reads.
    let line = Optics {
        quiet_modules: 10.0,
        dark_surround: true,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    assert_eq!(read_text(&line).as_deref(), Some(ID));
}

#[test]
fn no_read_with_a_wrong_check_character() {
    // Start B, "PJJ123C" as code set B values.
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    let good = code128_modules_from_values(&values, 0);
    assert_eq!(
        read_text(&optics(3.0, 2048).scanline(&good)).as_deref(),
        Some("PJJ123C")
    );
    for offset in [1, 7, 50] {
        let bad = code128_modules_from_values(&values, offset);
        assert_eq!(read(&optics(3.0, 2048).scanline(&bad)), None);
    }
}

#[test]
fn check_value_of_the_reference_example_is_55() {
    // scanners.md: "PJJ123C" in code set B has check value 55.
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    let modules = code128_modules_from_values(&values, 0);
    let check_start = 11 * values.len();
    let check_modules = &modules[check_start..check_start + 11];
    let expected = code128::pattern(55).unwrap();
    let mut runs = Vec::new();
    let mut run = 1u8;
    for pair in check_modules.windows(2) {
        if pair[0] == pair[1] {
            run += 1;
        } else {
            runs.push(run);
            run = 1;
        }
    }
    runs.push(run);
    assert_eq!(&runs[..], &expected[..]);
}

#[test]
fn fnc3_marks_a_programming_symbol() {
    let values = [104, 96, 33, 34];
    let modules = code128_modules_from_values(&values, 0);
    let decoded = read(&optics(3.0, 2048).scanline(&modules)).unwrap();
    assert!(decoded.programming);
}

#[test]
fn low_contrast_lines_ask_for_more_or_less_exposure() {
    let modules = code128_modules(ID).unwrap();
    let dim = Optics {
        gain: 0.1,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    let mut edges = Edges::new();
    let contrast = find_edges(&dim, &EdgeConfig::default(), &mut edges);
    assert_eq!(
        contrast.exposure(EdgeConfig::default().min_contrast),
        Exposure::TooDark
    );
    assert_eq!(edges.edge_count(), 0);
    let glare = Optics {
        gain: 0.1,
        offset: 235.0,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    let contrast = find_edges(&glare, &EdgeConfig::default(), &mut edges);
    assert_eq!(
        contrast.exposure(EdgeConfig::default().min_contrast),
        Exposure::TooBright
    );
}

#[test]
fn blank_and_random_lines_do_not_read() {
    assert_eq!(read(&[200u8; 2048]), None);
    let mut state = 0x1234_5678u32;
    for _ in 0..50 {
        let line: Vec<u8> = (0..2048)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(read(&line), None);
    }
}
