//! Property tests: whatever the decoder makes of a line, the scanner never sends a wrong ID.
//! Random lines (noise, random bars) never send anything; real prescription IDs rendered
//! through the optics and then corrupted (modules flipped, a character blotted, bars split by
//! dead print elements, one-module bars faded, low contrast, heavy noise, few samples per module)
//! send either nothing or exactly the printed ID — one line alone and the lines of one trigger
//! voted together.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use prescrypt_barcode::PrescriptionId;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead};
use prescrypt_scanner_firmware::scanline::Edges;
use prescrypt_scanner_firmware::sim::optics::{
    Optics, id_code128_modules, printed_with_dead_dots, with_blotted_character,
};
use prescrypt_scanner_firmware::validate;
use proptest::prelude::*;

/// What the scanner would send (the decoder, then the ID/token check).
fn sent(read: LineRead) -> Option<Vec<u8>> {
    match read {
        LineRead::Symbol(d) => {
            let aim = if d.gs1 {
                AimId::GS1_128
            } else {
                AimId::CODE128
            };
            validate::check(aim, &d.data, d.programming)
                .ok()
                .map(|()| d.data.to_vec())
        }
        LineRead::NoRead | LineRead::Exposure(_) => None,
    }
}

/// How a printed ID is damaged before it is scanned.
#[derive(Debug, Clone)]
enum Damage {
    /// Modules flipped (bar ↔ space) at these fractions of the symbol's width.
    Flips(Vec<f64>),
    /// This character (0 = start) made unreadable.
    Blot(usize),
    /// 203 dpi thermal print (2 dots per module) with dead heating elements at these fractions.
    DeadDots(Vec<f64>),
    /// A smear: this span (start fraction, length in modules) printed solid bar.
    Smear(f64, usize),
    /// One-module bars printed at this fraction of full ink.
    Faint(Vec<(usize, f64)>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        prop::collection::vec(0.0..1.0f64, 1..4).prop_map(Damage::Flips),
        (0usize..20).prop_map(Damage::Blot),
        prop::collection::vec(0.0..1.0f64, 1..4).prop_map(Damage::DeadDots),
        (0.0..1.0f64, 1usize..4).prop_map(|(at, len)| Damage::Smear(at, len)),
        prop::collection::vec((0usize..60, 0.2..0.7f64), 1..3).prop_map(Damage::Faint),
    ]
}

/// The printed modules, the printer's dots per module and the faint bars.
fn damaged(modules: &[bool], damage: &Damage) -> (Vec<bool>, usize, Vec<(usize, f64)>) {
    let at = |fraction: f64, len: usize| ((fraction * len as f64) as usize).min(len - 1);
    match damage {
        Damage::Flips(positions) => {
            let mut printed = modules.to_vec();
            for &p in positions {
                let i = at(p, printed.len());
                printed[i] = !printed[i];
            }
            (printed, 1, Vec::new())
        }
        Damage::Blot(character) => (with_blotted_character(modules, *character), 1, Vec::new()),
        Damage::DeadDots(positions) => {
            let dots: Vec<usize> = positions
                .iter()
                .map(|&p| at(p, modules.len() * 2))
                .collect();
            (printed_with_dead_dots(modules, 2, &dots), 2, Vec::new())
        }
        Damage::Smear(start, len) => {
            let mut printed = modules.to_vec();
            let first = at(*start, printed.len());
            for module in printed.iter_mut().skip(first).take(*len) {
                *module = true;
            }
            (printed, 1, Vec::new())
        }
        Damage::Faint(bars) => (modules.to_vec(), 1, bars.clone()),
    }
}

#[derive(Debug, Clone)]
struct Scene {
    module_samples: f64,
    blur_modules: f64,
    noise: f64,
    contrast: f64,
    paper: f64,
    reversed: bool,
    seed: u64,
}

fn scene() -> impl Strategy<Value = Scene> {
    (
        2.0..14.0f64,
        0.1..0.45f64,
        0.0..9.0f64,
        25.0..190.0f64,
        120.0..240.0f64,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(module_samples, blur_modules, noise, contrast, paper, reversed, seed)| Scene {
                module_samples,
                blur_modules,
                noise,
                contrast: contrast.min(paper - 5.0),
                paper,
                reversed,
                seed,
            },
        )
}

impl Scene {
    fn lines(&self, printed: &[bool], dots: usize, faint: &[(usize, f64)]) -> Vec<Vec<u8>> {
        (0..5u64)
            .map(|line| {
                Optics {
                    module_samples: self.module_samples / dots as f64,
                    blur: self.blur_modules * self.module_samples,
                    noise: self.noise,
                    samples: 3694,
                    quiet_modules: 10.0 * dots as f64,
                    centre: 0.5 + 0.002 * line as f64,
                    reversed: self.reversed,
                    bar_level: self.paper - self.contrast,
                    paper_level: self.paper,
                    seed: self.seed.wrapping_add(line),
                    faint_bars: faint.to_vec(),
                    ..Optics::default()
                }
                .scanline(printed)
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_id_reads_as_itself_or_not_at_all(
        counter in 0u32..=0xFF_FFFF,
        serial in 0u32..=0xF_FFFF,
        damage in damage(),
        scene in scene(),
    ) {
        let id = PrescriptionId::new(counter, "A99968", serial).unwrap();
        let modules = id_code128_modules(&id).unwrap();
        let (printed, dots, faint) = damaged(&modules, &damage);
        let lines = scene.lines(&printed, dots, &faint);
        let config = Code128Config::default();
        let mut edges = Edges::new();
        let expected = id.compact().as_bytes();
        for line in &lines {
            if let Some(data) = sent(code128::read_line_adaptive(line, &mut edges, &config)) {
                prop_assert_eq!(&data[..], expected);
            }
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        if let Some(data) = sent(code128::read_lines(&refs, &mut edges, &config)) {
            prop_assert_eq!(&data[..], expected);
        }
    }

    #[test]
    fn random_bars_and_noise_never_send_anything(
        widths in prop::collection::vec(1usize..=4, 40..400),
        scene in scene(),
        raw in prop::collection::vec(any::<u8>(), 0..4200),
    ) {
        let bars: Vec<bool> = widths
            .iter()
            .enumerate()
            .flat_map(|(i, &w)| std::iter::repeat_n(i % 2 == 0, w))
            .collect();
        let mut lines = scene.lines(&bars, 1, &[]);
        lines.push(raw);
        let config = Code128Config::default();
        let mut edges = Edges::new();
        for line in &lines {
            prop_assert_eq!(sent(code128::read_line_adaptive(line, &mut edges, &config)), None);
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(sent(code128::read_lines(&refs, &mut edges, &config)), None);
    }
}
