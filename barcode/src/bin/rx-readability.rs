//! `rx-readability`: the readability benchmark.
//!
//! Generates a seeded corpus from our own rendered tokens, one set per degradation class, writes
//! it to a directory, decodes every file with our pipeline and with zxing-cpp (Python package
//! `zxing-cpp`, run once over the same files in the same run), and prints a Markdown table of
//! decode counts, misreads and times per class, plus a module-size sweep for phone photos.
//!
//! Run: `cargo run --release -p prescrypt-barcode --features bench --bin rx-readability`
//! (see `barcode/BENCHMARKS.md`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use ed25519_dalek::SigningKey;
use image::GrayImage;
use prescrypt_barcode::decode::{DecodeOptions, Decoder};
use prescrypt_barcode::render::Dpi;
use prescrypt_barcode::synth::{self, Label};
use prescrypt_barcode::{PrescriptionId, Token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "rx-readability",
    about = "Readability benchmark: our decoder vs zxing-cpp"
)]
struct Args {
    /// Corpus seed.
    #[arg(long, default_value_t = 20261121)]
    seed: u64,
    /// Images per degradation class.
    #[arg(long, default_value_t = 16)]
    per_class: usize,
    /// Images per module size in the phone-photo module-size sweep (0 skips it).
    #[arg(long, default_value_t = 10)]
    sweep: usize,
    /// Where to write the corpus (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Python interpreter with `zxing-cpp` installed (empty: skip the comparison).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Our decoder's time budget per image, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    budget_ms: u64,
}

/// One corpus image and what it should decode to.
#[derive(Debug, Clone)]
struct Sample {
    class: &'static str,
    file: PathBuf,
    /// Expected texts (empty for negatives).
    expected: Vec<String>,
    is_photo: bool,
}

#[derive(Debug, Default, Clone)]
struct Outcome {
    found: usize,
    misreads: usize,
    ms: f64,
}

#[derive(Debug, Deserialize)]
struct ZxingLine {
    file: String,
    texts: Vec<String>,
    ms: f64,
}

const ZXING_SCRIPT: &str = r#"
import json, sys, time
import zxingcpp
from PIL import Image
formats = [zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.DataMatrix, zxingcpp.BarcodeFormat.QRCode]
for path in open(sys.argv[1]).read().split("\n"):
    if not path:
        continue
    image = Image.open(path)
    image.load()
    image = image.convert("L")
    start = time.perf_counter()
    results = zxingcpp.read_barcodes(image, formats=formats)
    ms = (time.perf_counter() - start) * 1000.0
    print(json.dumps({"file": path, "texts": [r.text for r in results if r.valid], "ms": ms}), flush=True)
"#;

fn main() -> Result<(), String> {
    let args = Args::parse();
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            dir.clone()
        }
        None => {
            let dir = std::env::temp_dir().join(format!("rx-readability-{}", args.seed));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            dir
        }
    };
    let started = Instant::now();
    let samples = generate(&args, &dir)?;
    eprintln!(
        "generated {} images in {} in {:.1} s",
        samples.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );

    let decoder = Decoder::new(DecodeOptions {
        time_budget: Duration::from_millis(args.budget_ms),
        ..DecodeOptions::default()
    });
    let ours: Vec<Outcome> = samples
        .iter()
        .map(|sample| {
            let image = image::open(&sample.file).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let codes = decoder.decode_image(&image).map_err(|e| e.to_string())?;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let texts: Vec<String> = codes.into_iter().map(|c| c.text).collect();
            Ok(score(sample, &texts, ms))
        })
        .collect::<Result<_, String>>()?;
    let zxing = if args.python.is_empty() {
        None
    } else {
        Some(run_zxing(&args.python, &dir, &samples)?)
    };
    report(&samples, &ours, zxing.as_deref());
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn score(sample: &Sample, texts: &[String], ms: f64) -> Outcome {
    let found = sample
        .expected
        .iter()
        .filter(|e| texts.iter().any(|t| t == *e))
        .count();
    let misreads = texts
        .iter()
        .filter(|t| !sample.expected.iter().any(|e| e == *t))
        .count();
    Outcome {
        found,
        misreads,
        ms,
    }
}

fn run_zxing(python: &str, dir: &Path, samples: &[Sample]) -> Result<Vec<Outcome>, String> {
    let script = dir.join("zxing_read.py");
    std::fs::write(&script, ZXING_SCRIPT).map_err(|e| e.to_string())?;
    let manifest = dir.join("manifest.txt");
    let list: Vec<String> = samples
        .iter()
        .map(|s| s.file.to_string_lossy().into_owned())
        .collect();
    std::fs::write(&manifest, list.join("\n")).map_err(|e| e.to_string())?;
    let output = Command::new(python)
        .arg(&script)
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "zxing-cpp run failed (pip install zxing-cpp==3.1.1 pillow): {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let by_file: BTreeMap<String, ZxingLine> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<ZxingLine>(line).ok())
        .map(|line| (line.file.clone(), line))
        .collect();
    samples
        .iter()
        .map(|sample| {
            let line = by_file
                .get(sample.file.to_string_lossy().as_ref())
                .ok_or_else(|| format!("zxing-cpp skipped {}", sample.file.display()))?;
            let _ = &line.file;
            Ok(score(sample, &line.texts, line.ms))
        })
        .collect()
}

fn key(seed: u64) -> SigningKey {
    let mut bytes = [0u8; 32];
    StdRng::seed_from_u64(seed).fill(&mut bytes);
    SigningKey::from_bytes(&bytes)
}

fn random_token<R: Rng>(rng: &mut R, key: &SigningKey) -> Token {
    const ODS: [&str; 5] = ["FCG71", "A99968", "Y12345", "B81002", "RWF"];
    let id = PrescriptionId::new(
        rng.gen_range(0..=0xFF_FFFF),
        ODS[rng.gen_range(0..ODS.len())],
        rng.gen_range(0..=0xF_FFFF),
    )
    .expect("random part, ODS code and sequence are in range");
    Token::sign(id, key)
}

fn save(image: &GrayImage, path: &Path, jpeg_quality: Option<u8>) -> Result<(), String> {
    match jpeg_quality {
        Some(quality) => {
            let bytes = synth::jpeg_bytes(image, quality).map_err(|e| e.to_string())?;
            std::fs::write(path, bytes).map_err(|e| e.to_string())
        }
        None => image.save(path).map_err(|e| e.to_string()),
    }
}

/// Phone photos are 1600×1200 at about 9 px/mm of paper (a whole A5 token in frame).
const PHOTO_PX_PER_MM: f32 = 9.0;

fn phone_photo<R: Rng>(page: &GrayImage, dpi: Dpi, rng: &mut R) -> GrayImage {
    let scale = PHOTO_PX_PER_MM * 25.4 / dpi.get() as f32 * rng.gen_range(0.9..1.15);
    let quarter = 90.0 * rng.gen_range(0..4) as f32;
    let rotation = quarter + rng.gen_range(-15.0..15.0);
    let tilt = rng.gen_range(0.0..25.0);
    let view = synth::camera_view(page, tilt, rotation, 1600, 1200, scale, 70, rng);
    let view = if rng.gen_bool(0.5) {
        synth::defocus(&view, rng.gen_range(0.5..1.6))
    } else {
        synth::motion_blur(&view, rng.gen_range(3..7), rng.gen_range(0.0..180.0))
    };
    let view = synth::uneven_light(&view, rng.gen_range(0.5..0.9), rng);
    synth::noise(&view, rng.gen_range(3.0..8.0), rng)
}

fn print_scan<R: Rng>(label: &Label, rng: &mut R) -> GrayImage {
    let printed = synth::ink_spread(&label.image, rng.gen_range(-0.4..0.4));
    let skewed = synth::rotate(&printed, rng.gen_range(-3.0..3.0), 255);
    let scanned = synth::defocus(&skewed, rng.gen_range(0.4..0.9));
    synth::noise(&scanned, rng.gen_range(2.0..6.0), rng)
}

fn generate(args: &Args, dir: &Path) -> Result<Vec<Sample>, String> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let key = key(args.seed);
    let mut samples = Vec::new();
    let mut push = |class: &'static str,
                    index: usize,
                    image: &GrayImage,
                    token: Option<&Token>,
                    jpeg: Option<u8>,
                    is_photo: bool|
     -> Result<(), String> {
        let extension = if jpeg.is_some() { "jpg" } else { "png" };
        let file = dir.join(format!("{class}-{index:03}.{extension}"));
        save(image, &file, jpeg)?;
        let expected = token
            .map(|t| {
                vec![
                    t.prescription_id().compact().to_owned(),
                    t.text().as_str().to_owned(),
                ]
            })
            .unwrap_or_default();
        samples.push(Sample {
            class,
            file,
            expected,
            is_photo,
        });
        Ok(())
    };
    let label_for = |token: &Token, dpi: Dpi| {
        synth::label(&token.prescription_id(), &token.text(), dpi, None, None)
            .map_err(|e| e.to_string())
    };

    for i in 0..args.per_class {
        // Print → scan at the printer's own resolution.
        for (class, dpi) in [
            ("print-scan-300", Dpi::LASER_300),
            ("print-scan-600", Dpi::LASER_600),
        ] {
            let token = random_token(&mut rng, &key);
            let label = label_for(&token, dpi)?;
            let scan = print_scan(&label, &mut rng);
            push(class, i, &scan, Some(&token), Some(85), false)?;
        }
        // Thermal 203 dpi with dead print-head elements, scanned at 300 dpi.
        {
            let token = random_token(&mut rng, &key);
            let label = label_for(&token, Dpi::THERMAL_203)?;
            let dead = synth::missing_dot_columns(&label.image, rng.gen_range(1..=3), &mut rng);
            let printed = synth::ink_spread(&dead, rng.gen_range(-0.4..0.4));
            let scanned = synth::resample(&printed, Dpi::THERMAL_203, Dpi::LASER_300);
            let scanned = synth::rotate(&scanned, rng.gen_range(-3.0..3.0), 255);
            let scanned = synth::defocus(&scanned, 0.6);
            let scanned = synth::noise(&scanned, rng.gen_range(2.0..6.0), &mut rng);
            push("thermal-203", i, &scanned, Some(&token), Some(85), false)?;
        }
        // Phone photo of a 300 dpi print.
        {
            let token = random_token(&mut rng, &key);
            let label = label_for(&token, Dpi::LASER_300)?;
            let page = synth::sheet_image(&label, &mut rng);
            let photo = phone_photo(&page, Dpi::LASER_300, &mut rng);
            let quality = rng.gen_range(60..=80);
            push("phone-photo", i, &photo, Some(&token), Some(quality), true)?;
        }
        // Worn paper: creases, stains, ≤ 15 % occlusion of one symbol, faded, then photographed.
        {
            let token = random_token(&mut rng, &key);
            let label = label_for(&token, Dpi::LASER_300)?;
            let area = if rng.gen_bool(0.5) {
                label.matrix
            } else {
                label.code128
            };
            let mut worn = label.clone();
            worn.image = synth::occlude(&label.image, area, rng.gen_range(0.05..0.15), &mut rng);
            let page = synth::sheet_image(&worn, &mut rng);
            let page = synth::fade(&page, rng.gen_range(0.20..0.35), rng.gen_range(225..250));
            let mut page = synth::crease(&page, &mut rng);
            if rng.gen_bool(0.5) {
                page = synth::crease(&page, &mut rng);
            }
            let page = synth::stains(&page, rng.gen_range(2..5), &mut rng);
            let photo = phone_photo(&page, Dpi::LASER_300, &mut rng);
            let quality = rng.gen_range(60..=80);
            push("worn-paper", i, &photo, Some(&token), Some(quality), true)?;
        }
        // Negatives: a sheet with text and no code, photographed; or plain sensor noise.
        {
            let blank = Label {
                image: GrayImage::from_pixel(900, 1000, image::Luma([255])),
                code128: (0, 0, 0, 0),
                matrix: (0, 0, 0, 0),
                dpi: Dpi::LASER_300,
            };
            let mut page = synth::sheet_image(&blank, &mut rng);
            synth::draw_text_lines(&mut page, 60, 60, 800, 900, 30, &mut rng);
            let image = if i % 2 == 0 {
                phone_photo(&page, Dpi::LASER_300, &mut rng)
            } else {
                let grey = GrayImage::from_pixel(1600, 1200, image::Luma([128]));
                synth::noise(&grey, 40.0, &mut rng)
            };
            push("negative", i, &image, None, Some(75), true)?;
        }
    }
    // Module-size sweep: the same phone-photo degradations at fixed camera distance, with the
    // Data Matrix and Code 128 printed at different whole-dot module sizes (300 dpi).
    for (class, code128_dots, matrix_dots) in [
        ("sweep-dm3-c2", 2, 3),
        ("sweep-dm4-c3", 3, 4),
        ("sweep-dm5-c3", 3, 5),
        ("sweep-dm6-c3", 3, 6),
    ] {
        for i in 0..args.sweep {
            let token = random_token(&mut rng, &key);
            let label = synth::label(
                &token.prescription_id(),
                &token.text(),
                Dpi::LASER_300,
                Some(code128_dots),
                Some(matrix_dots),
            )
            .map_err(|e| e.to_string())?;
            let page = synth::sheet_image(&label, &mut rng);
            let photo = phone_photo(&page, Dpi::LASER_300, &mut rng);
            let quality = rng.gen_range(60..=80);
            push(class, i, &photo, Some(&token), Some(quality), true)?;
        }
    }
    Ok(samples)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(samples: &[Sample], ours: &[Outcome], zxing: Option<&[Outcome]>) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(
        out,
        "| class | images | codes expected | ours found | zxing-cpp found | ours misreads / false pos. | zxing-cpp misreads / false pos. | ours median ms | zxing-cpp median ms | ours max ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let mut classes: Vec<&str> = Vec::new();
    for sample in samples {
        if !classes.contains(&sample.class) {
            classes.push(sample.class);
        }
    }
    let mut totals = [0usize; 6];
    let row = |out: &mut std::io::StdoutLock<'_>,
               name: &str,
               picked: &dyn Fn(&Sample) -> bool,
               totals: Option<&mut [usize; 6]>| {
        let indices: Vec<usize> = (0..samples.len())
            .filter(|&i| picked(&samples[i]))
            .collect();
        let expected: usize = indices.iter().map(|&i| samples[i].expected.len()).sum();
        let sum = |outcomes: &[Outcome], f: fn(&Outcome) -> usize| -> usize {
            indices.iter().map(|&i| f(&outcomes[i])).sum()
        };
        let ours_found = sum(ours, |o| o.found);
        let ours_bad = sum(ours, |o| o.misreads);
        let mut ours_ms: Vec<f64> = indices.iter().map(|&i| ours[i].ms).collect();
        let ours_max = ours_ms.iter().copied().fold(0.0, f64::max);
        let ours_median = median(&mut ours_ms);
        let (z_found, z_bad, z_median) = match zxing {
            Some(z) => {
                let mut ms: Vec<f64> = indices.iter().map(|&i| z[i].ms).collect();
                (
                    sum(z, |o| o.found).to_string(),
                    sum(z, |o| o.misreads).to_string(),
                    format!("{:.1}", median(&mut ms)),
                )
            }
            None => ("–".into(), "–".into(), "–".into()),
        };
        if let Some(totals) = totals {
            totals[0] += indices.len();
            totals[1] += expected;
            totals[2] += ours_found;
            totals[3] += zxing.map_or(0, |z| sum(z, |o| o.found));
            totals[4] += ours_bad;
            totals[5] += zxing.map_or(0, |z| sum(z, |o| o.misreads));
        }
        let _ = writeln!(
            out,
            "| {name} | {} | {expected} | {ours_found} | {z_found} | {ours_bad} | {z_bad} | {ours_median:.1} | {z_median} | {ours_max:.0} |",
            indices.len()
        );
    };
    for class in &classes {
        let is_sweep = class.starts_with("sweep-");
        row(
            &mut out,
            class,
            &|s: &Sample| s.class == *class,
            (!is_sweep).then_some(&mut totals),
        );
    }
    let _ = writeln!(
        out,
        "| **all classes (no sweep)** | {} | {} | {} | {} | {} | {} | | | |",
        totals[0],
        totals[1],
        totals[2],
        if zxing.is_some() {
            totals[3].to_string()
        } else {
            "–".into()
        },
        totals[4],
        if zxing.is_some() {
            totals[5].to_string()
        } else {
            "–".into()
        },
    );
    row(
        &mut out,
        "1600×1200 photos with both codes (phone + worn)",
        &|s: &Sample| s.is_photo && !s.expected.is_empty() && !s.class.starts_with("sweep-"),
        None,
    );
}
