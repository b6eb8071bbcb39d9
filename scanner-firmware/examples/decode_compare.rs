//! Read-rate benchmark on synthetic-but-realistic scanlines, written out so that another decoder
//! (zxing-cpp, run by `bench/compare_zxing.py`) reads exactly the same lines.
//!
//! `decode_compare <out-dir> [labels-per-class]` renders, from fixed seeds, the Code 128 of random
//! valid prescription IDs as a linear sensor sees them (`sim::optics`), 5 lines per label (one
//! trigger: the same print, fresh sensor noise and a slightly different position per line), in
//! these classes:
//!
//! - `captured`: 11–14 samples per module on a 3,694-sample line, contrast 30–190 grey levels,
//!   noise σ 2–5, blur 0.1–0.35 module, some thermal prints with dead elements and faint bars;
//! - `harder`: the same prints over 1,847 samples (half the samples per module), blur σ 1.5
//!   samples added, noise σ 6 (the second pass);
//! - `faded`: contrast 30–60 grey levels, noise σ 2–8, 2–14 samples per module;
//! - `dead`: 203 dpi thermal prints (2 dots per module) with 1–3 dead heating elements, whose white
//!   streaks split or thin the bars they cross;
//! - `faint`: one or two one-module bars printed at 35–65 % of full ink;
//! - `noread`: no valid symbol at all (random bars, pure noise, IDs with a wrong check character,
//!   blank paper) — every read here is a misread.
//!
//! Files: `lines.bin` (all samples, line after line), `lines.tsv` (class, label, line, offset,
//! length, expected text or `-`), and on stdout the firmware's own reads per class: lines read by
//! `read_line_adaptive` (both edge settings on a line that does not read), labels with any line
//! read that way, labels with any line read by one `read_line` pass per line alternating the
//! settings, and labels read by `read_lines` voting over the 5 lines (one pass per line, the
//! setting picked by `TriggerVotes::next_edge_config`: what the scanner core does).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use prescrypt_barcode::PrescriptionId;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::code128::{
    Code128Config, LineRead, MAX_LINES, read_line, read_line_adaptive, read_lines,
};
use prescrypt_scanner_firmware::scanline::{EdgeConfig, Edges};
use prescrypt_scanner_firmware::sim::optics::{
    Optics, code128_modules_from_values, id_code128_modules, printed_with_dead_dots,
};
use prescrypt_scanner_firmware::validate;
use rand::{Rng, SeedableRng, rngs::StdRng};

const LINE_SAMPLES: usize = 3694;
const LINES_PER_LABEL: usize = 5;
const CLASSES: [&str; 6] = ["captured", "harder", "faded", "dead", "faint", "noread"];

/// One printed label: its modules as printed (dots), and what the reader must return.
struct Print {
    modules: Vec<bool>,
    /// Printer dots per module (1, or 2 for a 203 dpi thermal print).
    dots: usize,
    faint_bars: Vec<(usize, f64)>,
    expected: Option<String>,
}

fn random_id(rng: &mut StdRng) -> Result<PrescriptionId, String> {
    const ODS: [&str; 4] = ["A99968", "Y12345", "FA123", "B86016"];
    PrescriptionId::new(
        rng.gen_range(0..=0xFF_FFFF),
        ODS[rng.gen_range(0..ODS.len())],
        rng.gen_range(0..=0xF_FFFF),
    )
    .map_err(|e| format!("ID parts: {e}"))
}

/// Dead dot columns that fall inside bars (where they show).
fn dead_dots_in_bars(rng: &mut StdRng, printed: &[bool], count: usize) -> Vec<usize> {
    let mut dead = Vec::new();
    while dead.len() < count {
        let d = rng.gen_range(0..printed.len());
        if printed[d] && !dead.contains(&d) {
            dead.push(d);
        }
    }
    dead
}

/// Indices (among the symbol's bars) of one-module bars, to print faint.
fn one_module_bars(modules: &[bool]) -> Vec<usize> {
    let mut bars = Vec::new();
    let mut bar = 0;
    let mut i = 0;
    while i < modules.len() {
        if modules[i] {
            let start = i;
            while i < modules.len() && modules[i] {
                i += 1;
            }
            if i - start == 1 {
                bars.push(bar);
            }
            bar += 1;
        } else {
            i += 1;
        }
    }
    bars
}

fn id_print(
    rng: &mut StdRng,
    thermal: bool,
    dead: usize,
    faint: usize,
    ink: (f64, f64),
) -> Result<Print, String> {
    let id = random_id(rng)?;
    let modules = id_code128_modules(&id)?;
    let dots = if thermal { 2 } else { 1 };
    let mut printed = printed_with_dead_dots(&modules, dots, &[]);
    if dead > 0 {
        let columns = dead_dots_in_bars(rng, &printed, dead);
        printed = printed_with_dead_dots(&modules, dots, &columns);
    }
    let candidates = one_module_bars(&modules);
    let mut faint_bars = Vec::new();
    while faint_bars.len() < faint {
        let bar = candidates[rng.gen_range(0..candidates.len())];
        if !faint_bars.iter().any(|&(b, _)| b == bar) {
            faint_bars.push((bar, rng.gen_range(ink.0..ink.1)));
        }
    }
    Ok(Print {
        modules: printed,
        dots,
        // A dead dot inside a bar before a faint one shifts the bar count; the renderer counts
        // the bars as printed, so only unsplit prints get faint bars.
        faint_bars: if dead > 0 { Vec::new() } else { faint_bars },
        expected: Some(id.compact().to_owned()),
    })
}

/// Scene parameters of one label (shared by its 5 lines).
#[derive(Clone)]
struct Scene {
    module_samples: f64,
    blur_modules: f64,
    noise: f64,
    contrast: f64,
    paper: f64,
    samples: usize,
}

impl Scene {
    fn random(rng: &mut StdRng, m: (f64, f64), contrast: (f64, f64), noise: (f64, f64)) -> Self {
        Self {
            module_samples: rng.gen_range(m.0..=m.1),
            blur_modules: rng.gen_range(0.1..0.35),
            noise: rng.gen_range(noise.0..=noise.1),
            contrast: rng.gen_range(contrast.0..=contrast.1),
            paper: rng.gen_range(150.0..230.0),
            samples: LINE_SAMPLES,
        }
    }

    /// The harder pass: the same span over half the samples, blur σ 1.5 samples, noise σ 6.
    fn harder(&self) -> Self {
        let module_samples = self.module_samples / 2.0;
        let optical = self.blur_modules * module_samples;
        Self {
            module_samples,
            blur_modules: (optical * optical + 1.5 * 1.5).sqrt() / module_samples,
            noise: 6.0,
            samples: LINE_SAMPLES / 2,
            ..self.clone()
        }
    }

    fn lines(&self, print: &Print, seed: u64, reversed: bool) -> Vec<Vec<u8>> {
        let sample_per_dot = self.module_samples / print.dots as f64;
        (0..LINES_PER_LABEL)
            .map(|line| {
                Optics {
                    module_samples: sample_per_dot,
                    blur: self.blur_modules * self.module_samples,
                    noise: self.noise,
                    samples: self.samples,
                    quiet_modules: 10.0 * print.dots as f64,
                    centre: 0.5 + 0.002 * line as f64,
                    reversed,
                    bar_level: self.paper - self.contrast,
                    paper_level: self.paper,
                    seed: seed * 16 + line as u64,
                    faint_bars: print.faint_bars.clone(),
                    ..Optics::default()
                }
                .scanline(&print.modules)
            })
            .collect()
    }
}

/// Lines of one label in a class, with the expected text.
fn label(
    class: &str,
    index: u64,
    base: &mut Vec<(Print, Scene)>,
) -> Result<(Vec<Vec<u8>>, Option<String>), String> {
    let mut rng = StdRng::seed_from_u64(0x5CA7_0000 + index * 131 + class.len() as u64 * 7919);
    let seed = index + 1000 * CLASSES.iter().position(|&c| c == class).unwrap_or(0) as u64;
    let reversed = rng.gen_bool(0.3);
    Ok(match class {
        "captured" => {
            let thermal = rng.gen_bool(0.4);
            let dead = if thermal { rng.gen_range(0..=2) } else { 0 };
            let faint = if rng.gen_bool(0.2) { 1 } else { 0 };
            let print = id_print(&mut rng, thermal, dead, faint, (0.45, 0.7))?;
            let scene = Scene::random(&mut rng, (11.0, 14.0), (30.0, 190.0), (2.0, 5.0));
            let lines = scene.lines(&print, seed, reversed);
            let expected = print.expected.clone();
            base.push((print, scene));
            (lines, expected)
        }
        "harder" => {
            let (print, scene) = &base[index as usize];
            (
                scene.harder().lines(print, seed, reversed),
                print.expected.clone(),
            )
        }
        "faded" => {
            let print = id_print(&mut rng, false, 0, 0, (1.0, 1.0))?;
            let scene = Scene::random(&mut rng, (2.0, 14.0), (30.0, 60.0), (2.0, 8.0));
            (scene.lines(&print, seed, reversed), print.expected.clone())
        }
        "dead" => {
            let dead = rng.gen_range(1..=3);
            let print = id_print(&mut rng, true, dead, 0, (1.0, 1.0))?;
            let scene = Scene::random(&mut rng, (2.0, 14.0), (60.0, 190.0), (2.0, 6.0));
            (scene.lines(&print, seed, reversed), print.expected.clone())
        }
        "faint" => {
            let faint = rng.gen_range(1..=2);
            let print = id_print(&mut rng, false, 0, faint, (0.35, 0.65))?;
            let scene = Scene::random(&mut rng, (2.0, 14.0), (60.0, 190.0), (2.0, 6.0));
            (scene.lines(&print, seed, reversed), print.expected.clone())
        }
        _ => (noread_lines(&mut rng, seed, index)?, None),
    })
}

/// Lines with no valid prescription ID on them.
fn noread_lines(rng: &mut StdRng, seed: u64, index: u64) -> Result<Vec<Vec<u8>>, String> {
    let scene = Scene::random(rng, (2.0, 14.0), (30.0, 190.0), (2.0, 8.0));
    Ok(match index % 4 {
        0 => {
            // Random bars of 1–4 modules with quiet zones: edges everywhere, start-like patterns.
            let modules: Vec<bool> = (0..240)
                .flat_map(|i| std::iter::repeat_n(i % 2 == 0, rng.gen_range(1..=4)))
                .collect();
            let print = Print {
                modules,
                dots: 1,
                faint_bars: Vec::new(),
                expected: None,
            };
            scene.lines(&print, seed, false)
        }
        1 => (0..LINES_PER_LABEL)
            .map(|_| (0..LINE_SAMPLES).map(|_| rng.r#gen::<u8>()).collect())
            .collect(),
        2 => {
            // A well-formed Code 128 of an ID-shaped text with a wrong MOD 37-2 check character.
            let id = random_id(rng)?;
            let mut text = id.compact().as_bytes().to_vec();
            text[17] = if text[17] == b'0' { b'1' } else { b'0' };
            let values: Vec<u8> = std::iter::once(104)
                .chain(text.iter().map(|b| b - 32))
                .collect();
            let print = Print {
                modules: code128_modules_from_values(&values, 0),
                dots: 1,
                faint_bars: Vec::new(),
                expected: None,
            };
            scene.lines(&print, seed, false)
        }
        _ => {
            let print = Print {
                modules: vec![false; 10],
                dots: 1,
                faint_bars: Vec::new(),
                expected: None,
            };
            scene.lines(&print, seed, false)
        }
    })
}

/// What the scanner would send for a line read: only symbols `validate::check` passes.
fn sent(read: &LineRead) -> Option<String> {
    match read {
        LineRead::Symbol(decoded) => {
            let aim = if decoded.gs1 {
                AimId::GS1_128
            } else {
                AimId::CODE128
            };
            validate::check(aim, &decoded.data, decoded.programming).ok()?;
            Some(String::from_utf8_lossy(&decoded.data).into_owned())
        }
        LineRead::NoRead | LineRead::Exposure(_) => None,
    }
}

#[derive(Default)]
struct Tally {
    labels: usize,
    lines: usize,
    line_reads: usize,
    any_line: usize,
    any_line_one_pass: usize,
    voted: usize,
    misreads: usize,
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: decode_compare <out-dir> [labels]")?,
    );
    let per_class: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut bin = std::io::BufWriter::new(
        std::fs::File::create(out.join("lines.bin")).map_err(|e| e.to_string())?,
    );
    let mut tsv = String::from("class\tlabel\tline\toffset\tlength\texpected\n");
    let mut offset = 0usize;
    let config = Code128Config::default();
    let mut edges = Edges::new();
    let mut base = Vec::new();
    println!(
        "class     labels  lines | line reads | label: any line | any line, 1 pass | 5 lines voted | misreads"
    );
    for class in CLASSES {
        let mut tally = Tally::default();
        for index in 0..per_class {
            let (lines, expected) = label(class, index, &mut base)?;
            tally.labels += 1;
            let mut any = false;
            let mut any_one_pass = false;
            for (n, line) in lines.iter().enumerate() {
                bin.write_all(line).map_err(|e| e.to_string())?;
                let _ = writeln!(
                    tsv,
                    "{class}\t{index}\t{n}\t{offset}\t{}\t{}",
                    line.len(),
                    expected.as_deref().unwrap_or("-")
                );
                offset += line.len();
                tally.lines += 1;
                // As the scanner reads a stream of lines: one pass each, alternating settings.
                let edge_config = if n % 2 == 0 {
                    EdgeConfig::SHARP
                } else {
                    EdgeConfig::SMOOTH
                };
                let one_pass = sent(&read_line(line, &mut edges, &edge_config, &config));
                any_one_pass |= one_pass.is_some() && one_pass == expected;
                if let Some(text) = sent(&read_line_adaptive(line, &mut edges, &config)) {
                    if Some(&text) == expected.as_ref() {
                        tally.line_reads += 1;
                        any = true;
                    } else {
                        eprintln!("MISREAD {class} label {index} line {n}: {text}");
                        tally.misreads += 1;
                    }
                }
            }
            tally.any_line += usize::from(any);
            tally.any_line_one_pass += usize::from(any_one_pass);
            let refs: Vec<&[u8]> = lines.iter().take(MAX_LINES).map(Vec::as_slice).collect();
            if let Some(text) = sent(&read_lines(&refs, &mut edges, &config)) {
                if Some(&text) == expected.as_ref() {
                    tally.voted += 1;
                } else {
                    eprintln!("MISREAD {class} label {index} (voted): {text}");
                    tally.misreads += 1;
                }
            }
        }
        println!(
            "{class:<9} {:>6} {:>6} | {:>10} | {:>15} | {:>16} | {:>13} | {:>8}",
            tally.labels,
            tally.lines,
            tally.line_reads,
            tally.any_line,
            tally.any_line_one_pass,
            tally.voted,
            tally.misreads
        );
    }
    bin.flush().map_err(|e| e.to_string())?;
    std::fs::write(out.join("lines.tsv"), tsv).map_err(|e| e.to_string())?;
    Ok(())
}
