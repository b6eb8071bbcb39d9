//! `rx-readability`: the readability benchmark.
//!
//! Generates a seeded corpus from our own rendered tokens, one set per degradation class, writes
//! it to a directory, decodes every file with our pipeline and with zxing-cpp (Python package
//! `zxing-cpp`, one long-lived process; the two decoders take turns image by image, so both see
//! the same machine load), and prints Markdown tables of decode counts, misreads and times per
//! class (wall-clock and the decoding thread's CPU time), plus a module-size sweep for phone
//! photos, and where our pipeline spends its time per step (stage × code group).
//!
//! Classes with both codes of a token ask the decoder for both (`Want::All`); classes with one
//! code per image and the negatives ask for the first of ours (`Want::Any`). Tokens "printed by
//! other encoders" come from libdmtx's `dmtxwrite` (C40 and ASCII encodation, Debian package
//! `dmtx-utils`) and zxing-cpp's writer, so they share no code with our renderer.
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
use prescrypt_barcode::decode::{
    CANDIDATE_STEPS, CodeFormat, DecodeOptions, Decoder, Stage, Step, StepTrace, Want,
    to_luma_on_white,
};
use prescrypt_barcode::render::{self, Dpi, Orientation};
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
    /// Instead of the comparison: run every pipeline step alone on every image and print the
    /// step order that finds the most codes per millisecond (greedy).
    #[arg(long)]
    step_order: bool,
    /// libdmtx's writer, for tokens printed by another encoder (Debian: `dmtx-utils`).
    #[arg(long, default_value = "dmtxwrite")]
    dmtxwrite: String,
    /// Also write one tab-separated line per image (class, file, codes expected, ours found /
    /// misreads / ms, zxing-cpp found / misreads / ms, our steps) to this file.
    #[arg(long)]
    per_image: Option<PathBuf>,
}

/// One corpus image and what it should decode to.
#[derive(Debug, Clone)]
struct Sample {
    class: &'static str,
    file: PathBuf,
    /// Expected texts (empty for negatives).
    expected: Vec<String>,
    is_photo: bool,
    /// What our decoder is asked for.
    want: Want,
}

#[derive(Debug, Default, Clone)]
struct Outcome {
    found: usize,
    misreads: usize,
    /// Wall-clock time of the decode call.
    ms: f64,
    /// CPU time of the decoding thread during the call: unlike wall-clock time it does not
    /// grow while other processes hold the cores (both decoders are single-threaded).
    cpu_ms: f64,
    steps: Vec<StepTrace>,
}

#[derive(Debug, Deserialize)]
struct ZxingLine {
    file: String,
    texts: Vec<String>,
    ms: f64,
    cpu_ms: f64,
}

const ZXING_SCRIPT: &str = r#"
import json, sys, time
import zxingcpp
from PIL import Image
formats = [zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.DataMatrix, zxingcpp.BarcodeFormat.QRCode]
for path in sys.stdin:
    path = path.rstrip("\n")
    if not path:
        continue
    image = Image.open(path)
    image.load()
    image = image.convert("L")
    start, start_cpu = time.perf_counter(), time.thread_time()
    results = zxingcpp.read_barcodes(image, formats=formats)
    ms = (time.perf_counter() - start) * 1000.0
    cpu_ms = (time.thread_time() - start_cpu) * 1000.0
    print(json.dumps({"file": path, "texts": [r.text for r in results if r.valid], "ms": ms, "cpu_ms": cpu_ms}), flush=True)
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

    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        eprintln!("load average before decoding: {}", load.trim());
    }
    if args.step_order {
        return step_order(&args, &samples);
    }
    // The two decoders take turns image by image, so both see the same machine load.
    let mut zxing = if args.python.is_empty() {
        None
    } else {
        Some(Zxing::start(&args.python, &dir)?)
    };
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for sample in &samples {
        ours.push(decode_ours(&args, sample)?);
        if let Some(zxing) = zxing.as_mut() {
            theirs.push(zxing.decode(sample)?);
        }
    }
    let zxing = zxing.map(|_| theirs);
    report(&samples, &ours, zxing.as_deref());
    if let Some(zxing) = zxing.as_deref() {
        cpu_report(&samples, &ours, zxing);
    }
    profile(&samples, &ours);
    if let Some(path) = &args.per_image {
        write_per_image(path, &samples, &ours, zxing.as_deref())?;
    }
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn write_per_image(
    path: &Path,
    samples: &[Sample],
    ours: &[Outcome],
    zxing: Option<&[Outcome]>,
) -> Result<(), String> {
    let mut lines = vec![
        "class\tfile\texpected\tours_found\tours_misreads\tours_ms\tzxing_found\tzxing_misreads\tzxing_ms\tsteps\tours_cpu_ms\tzxing_cpu_ms".to_owned(),
    ];
    for (i, (sample, outcome)) in samples.iter().zip(ours).enumerate() {
        let (z_found, z_bad, z_ms, z_cpu) = match zxing {
            Some(z) => (
                z[i].found.to_string(),
                z[i].misreads.to_string(),
                format!("{:.2}", z[i].ms),
                format!("{:.2}", z[i].cpu_ms),
            ),
            None => (String::new(), String::new(), String::new(), String::new()),
        };
        let steps: Vec<String> = outcome
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{}/{}:{:.1}{}",
                    s.stage.name(),
                    s.format.name(),
                    s.ms,
                    match (s.found, s.skipped) {
                        (true, _) => "+",
                        (false, true) => "-",
                        (false, false) => "",
                    }
                )
            })
            .collect();
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{:.2}\t{z_found}\t{z_bad}\t{z_ms}\t{}\t{:.2}\t{z_cpu}",
            sample.class,
            sample.file.display(),
            sample.expected.len(),
            outcome.found,
            outcome.misreads,
            outcome.ms,
            steps.join(" "),
            outcome.cpu_ms,
        ));
    }
    std::fs::write(path, lines.join("\n") + "\n").map_err(|e| e.to_string())
}

/// CPU time of the calling thread so far (`CLOCK_THREAD_CPUTIME_ID`, what Python's
/// `time.thread_time` reads for zxing-cpp); 0 where that clock is not available.
fn thread_cpu_ms() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0.0, |time| {
        time.tv_sec() as f64 * 1000.0 + time.tv_nsec() as f64 / 1e6
    })
}

fn score(sample: &Sample, texts: &[String], ms: f64, cpu_ms: f64) -> Outcome {
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
        cpu_ms,
        steps: Vec::new(),
    }
}

fn decode_ours(args: &Args, sample: &Sample) -> Result<Outcome, String> {
    let decoder = Decoder::new(DecodeOptions {
        time_budget: Duration::from_millis(args.budget_ms),
        want: sample.want,
        ..DecodeOptions::default()
    });
    let image = image::open(&sample.file).map_err(|e| e.to_string())?;
    let luma = to_luma_on_white(&image);
    let (start, start_cpu) = (Instant::now(), thread_cpu_ms());
    let (codes, steps) = decoder.decode_luma_traced(&luma);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let cpu_ms = thread_cpu_ms() - start_cpu;
    let texts: Vec<String> = codes.into_iter().map(|c| c.text).collect();
    let mut outcome = score(sample, &texts, ms, cpu_ms);
    outcome.steps = steps;
    Ok(outcome)
}

/// zxing-cpp through its Python binding, one file path per line in, one JSON line out.
struct Zxing {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Zxing {
    fn start(python: &str, dir: &Path) -> Result<Self, String> {
        let script = dir.join("zxing_read.py");
        std::fs::write(&script, ZXING_SCRIPT).map_err(|e| e.to_string())?;
        let mut child = Command::new(python)
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            child,
            input,
            output,
        })
    }

    fn decode(&mut self, sample: &Sample) -> Result<Outcome, String> {
        use std::io::BufRead as _;
        writeln!(self.input, "{}", sample.file.display()).map_err(|e| e.to_string())?;
        self.input.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let line: ZxingLine = serde_json::from_str(&line).map_err(|_| {
            format!(
                "zxing-cpp gave no answer for {} (pip install zxing-cpp==3.1.1 pillow)",
                sample.file.display()
            )
        })?;
        if Path::new(&line.file) != sample.file {
            return Err(format!("zxing-cpp answered for {}", line.file));
        }
        Ok(score(sample, &line.texts, line.ms, line.cpu_ms))
    }
}

impl Drop for Zxing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// One code of a token alone with a quiet margin: the Data Matrix (`matrix`) or the Code 128
/// (either orientation), and the text it must decode to.
fn single_code<R: Rng>(
    token: &Token,
    dpi: Dpi,
    matrix: bool,
    rng: &mut R,
) -> Result<(GrayImage, Vec<String>), String> {
    let (image, text) = if matrix {
        let image = render::datamatrix_image(&token.text(), dpi).map_err(|e| e.to_string())?;
        (image, token.text().as_str().to_owned())
    } else {
        let orientation = if rng.gen_bool(0.5) {
            Orientation::Horizontal
        } else {
            Orientation::Vertical
        };
        let id = token.prescription_id();
        let image = render::code128_image(&id, dpi, orientation).map_err(|e| e.to_string())?;
        (image, id.compact().to_owned())
    };
    Ok((pad(&image, 60), vec![text]))
}

/// The image on white with `margin` pixels on every side.
fn pad(image: &GrayImage, margin: u32) -> GrayImage {
    let mut out = GrayImage::from_pixel(
        image.width() + 2 * margin,
        image.height() + 2 * margin,
        image::Luma([255]),
    );
    image::imageops::replace(&mut out, image, i64::from(margin), i64::from(margin));
    out
}

/// A single printed code as a [`Label`] (for [`synth::sheet_image`]).
fn alone(image: GrayImage, dpi: Dpi) -> Label {
    Label {
        code128: (0, 0, 0, 0),
        matrix: (0, 0, 0, 0),
        image,
        dpi,
    }
}

/// Printed at `dpi` (toner spread or erosion) and scanned at the same resolution.
fn scan<R: Rng>(printed: &GrayImage, rng: &mut R) -> GrayImage {
    let printed = synth::ink_spread(printed, rng.gen_range(-0.4..0.4));
    let skewed = synth::rotate(&printed, rng.gen_range(-3.0..3.0), 255);
    let scanned = synth::defocus(&skewed, rng.gen_range(0.4..0.9));
    synth::noise(&scanned, rng.gen_range(2.0..6.0), rng)
}

/// A Data Matrix of `text` from libdmtx's `dmtxwrite` with encodation `scheme` (`a` ASCII,
/// `c` C40), 6 pixels per module (0.5 mm at 300 dpi), square.
fn dmtxwrite(program: &str, text: &str, scheme: char, dir: &Path) -> Result<GrayImage, String> {
    let out = dir.join("dmtxwrite-out.png");
    let mut child = Command::new(program)
        .args([
            "-e",
            &scheme.to_string(),
            "-d",
            "6",
            "-m",
            "12",
            "-s",
            "s",
            "-o",
        ])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program} (apt-get install dmtx-utils): {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{program} failed on {text:?}: {status}"));
    }
    Ok(image::open(&out).map_err(|e| e.to_string())?.to_luma8())
}

const ZXING_WRITE_SCRIPT: &str = r#"
import sys
import zxingcpp
from PIL import Image
barcode = zxingcpp.create_barcode(sys.argv[1], zxingcpp.BarcodeFormat.DataMatrix)
image = memoryview(zxingcpp.write_barcode_to_image(barcode, scale=6))
Image.frombytes("L", (image.shape[1], image.shape[0]), image.tobytes()).save(sys.argv[2])
"#;

/// A Data Matrix of `text` from zxing-cpp's writer (its own encodation choice), 6 pixels per
/// module.
fn zxing_write(python: &str, text: &str, dir: &Path) -> Result<GrayImage, String> {
    if python.is_empty() {
        return Err("other-encoder needs zxing-cpp's writer: --python must not be empty".into());
    }
    let script = dir.join("zxing_write.py");
    std::fs::write(&script, ZXING_WRITE_SCRIPT).map_err(|e| e.to_string())?;
    let out = dir.join("zxing-write-out.png");
    let output = Command::new(python)
        .arg(&script)
        .arg(text)
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "zxing-cpp writer failed (pip install zxing-cpp==3.1.1 pillow): {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(pad(
        &image::open(&out).map_err(|e| e.to_string())?.to_luma8(),
        12,
    ))
}

/// Both texts of a token label: the ID (compact) and the token.
fn both(token: &Token) -> Vec<String> {
    vec![
        token.prescription_id().compact().to_owned(),
        token.text().as_str().to_owned(),
    ]
}

fn generate(args: &Args, dir: &Path) -> Result<Vec<Sample>, String> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let key = key(args.seed);
    let mut samples = Vec::new();
    let mut push = |class: &'static str,
                    index: usize,
                    image: &GrayImage,
                    expected: Vec<String>,
                    want: Want,
                    jpeg: Option<u8>,
                    is_photo: bool|
     -> Result<(), String> {
        let extension = if jpeg.is_some() { "jpg" } else { "png" };
        let file = dir.join(format!("{class}-{index:03}.{extension}"));
        save(image, &file, jpeg)?;
        samples.push(Sample {
            class,
            file,
            expected,
            is_photo,
            want,
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
            let scan = scan(&label.image, &mut rng);
            push(class, i, &scan, both(&token), Want::All, Some(85), false)?;
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
            push(
                "thermal-203",
                i,
                &scanned,
                both(&token),
                Want::All,
                Some(85),
                false,
            )?;
        }
        // Phone photo of a 300 dpi print.
        {
            let token = random_token(&mut rng, &key);
            let label = label_for(&token, Dpi::LASER_300)?;
            let page = synth::sheet_image(&label, &mut rng);
            let photo = phone_photo(&page, Dpi::LASER_300, &mut rng);
            let quality = rng.gen_range(60..=80);
            push(
                "phone-photo",
                i,
                &photo,
                both(&token),
                Want::All,
                Some(quality),
                true,
            )?;
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
            push(
                "worn-paper",
                i,
                &photo,
                both(&token),
                Want::All,
                Some(quality),
                true,
            )?;
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
            push("negative", i, &image, Vec::new(), Want::Any, Some(75), true)?;
        }
    }
    // Issue 19's capture kinds, one code per image (their own RNG stream, so the classes above
    // stay the same images for the same seed).
    let mut rng19 = StdRng::seed_from_u64(args.seed ^ 19);
    for i in 0..args.per_class {
        let rng = &mut rng19;
        // One code alone, printed at 300 dpi and scanned: the Data Matrix or the Code 128.
        {
            let token = random_token(rng, &key);
            let (code, expected) = single_code(&token, Dpi::LASER_300, i % 2 == 0, rng)?;
            let scan = scan(&code, rng);
            push(
                "single-scan-300",
                i,
                &scan,
                expected,
                Want::Any,
                Some(85),
                false,
            )?;
        }
        // One code alone on a sheet with text, photographed.
        {
            let token = random_token(rng, &key);
            let (code, expected) = single_code(&token, Dpi::LASER_300, i % 2 == 1, rng)?;
            let page = synth::sheet_image(&alone(code, Dpi::LASER_300), rng);
            let photo = phone_photo(&page, Dpi::LASER_300, rng);
            let quality = rng.gen_range(60..=80);
            push(
                "single-photo",
                i,
                &photo,
                expected,
                Want::Any,
                Some(quality),
                true,
            )?;
        }
        // The token on a phone screen (QR or Data Matrix, light or dark mode), photographed:
        // the pixel grid aliases into moiré; half with a glare spot.
        {
            let token = random_token(rng, &key);
            let text = token.text();
            let matrix = if i % 2 == 0 {
                render::qr_modules(text.as_str())
            } else {
                render::datamatrix_modules(&text)
            }
            .map_err(|e| e.to_string())?;
            let shown = synth::screen(&matrix.to_image(4), 4, i % 3 == 0);
            let margin = 80;
            let mut display = GrayImage::from_pixel(
                shown.width() + 2 * margin,
                shown.height() + 2 * margin,
                image::Luma([if i % 3 == 0 { 25 } else { 245 }]),
            );
            image::imageops::replace(&mut display, &shown, i64::from(margin), i64::from(margin));
            let scale = 600.0 / display.width() as f32 * rng.gen_range(0.8..1.3);
            let quarter = 90.0 * rng.gen_range(0..4) as f32;
            let rotation = quarter + rng.gen_range(-15.0..15.0);
            let view = synth::camera_view(
                &display,
                rng.gen_range(0.0..20.0),
                rotation,
                1600,
                1200,
                scale,
                40,
                rng,
            );
            let view = if rng.gen_bool(0.5) {
                synth::glare(&view, rng)
            } else {
                view
            };
            let view = synth::defocus(&view, rng.gen_range(0.4..1.2));
            let view = synth::noise(&view, rng.gen_range(3.0..8.0), rng);
            let quality = rng.gen_range(60..=80);
            push(
                "screen",
                i,
                &view,
                vec![text.as_str().to_owned()],
                Want::Any,
                Some(quality),
                true,
            )?;
        }
        // The Code 128 alone from a 203 dpi thermal printer with dead elements inside bars.
        {
            let token = random_token(rng, &key);
            let id = token.prescription_id();
            let orientation = if i % 2 == 0 {
                Orientation::Horizontal
            } else {
                Orientation::Vertical
            };
            let bars = render::code128_image(&id, Dpi::THERMAL_203, orientation)
                .map_err(|e| e.to_string())?;
            let bars = pad(&bars, 40);
            let dead = synth::dead_elements_in_bars(&bars, rng.gen_range(2..=4), rng);
            let printed = synth::ink_spread(&dead, rng.gen_range(-0.4..0.4));
            let scanned = synth::resample(&printed, Dpi::THERMAL_203, Dpi::LASER_300);
            let scanned = synth::rotate(&scanned, rng.gen_range(-3.0..3.0), 255);
            let scanned = synth::defocus(&scanned, 0.6);
            let scanned = synth::noise(&scanned, rng.gen_range(2.0..6.0), rng);
            let expected = vec![id.compact().to_owned()];
            push(
                "thermal-203-dead",
                i,
                &scanned,
                expected,
                Want::Any,
                Some(85),
                false,
            )?;
        }
        // A worn label: the Code 128 alone, partly covered, faded, creased, stained; scanned or
        // photographed.
        {
            let token = random_token(rng, &key);
            let id = token.prescription_id();
            let bars = render::code128_image(&id, Dpi::LASER_300, Orientation::Vertical)
                .map_err(|e| e.to_string())?;
            let area = (60, 60, bars.width(), bars.height());
            let label = pad(&bars, 60);
            let worn = synth::occlude(&label, area, rng.gen_range(0.05..0.2), rng);
            let worn = synth::fade(&worn, rng.gen_range(0.25..0.45), rng.gen_range(225..250));
            let worn = synth::crease(&worn, rng);
            let worn = synth::stains(&worn, rng.gen_range(1..4), rng);
            let image = if i % 2 == 0 {
                scan(&worn, rng)
            } else {
                let page = synth::sheet_image(&alone(worn, Dpi::LASER_300), rng);
                phone_photo(&page, Dpi::LASER_300, rng)
            };
            let expected = vec![id.compact().to_owned()];
            push(
                "worn-c128",
                i,
                &image,
                expected,
                Want::Any,
                Some(75),
                i % 2 == 1,
            )?;
        }
        // The token printed by other encoders: libdmtx C40, libdmtx ASCII, zxing-cpp's writer.
        {
            let token = random_token(rng, &key);
            let text = token.text().as_str().to_owned();
            let symbol = match i % 3 {
                0 => dmtxwrite(&args.dmtxwrite, &text, 'c', dir)?,
                1 => dmtxwrite(&args.dmtxwrite, &text, 'a', dir)?,
                _ => zxing_write(&args.python, &text, dir)?,
            };
            let image = if i % 2 == 0 {
                scan(&symbol, rng)
            } else {
                let page = synth::sheet_image(&alone(symbol, Dpi::LASER_300), rng);
                phone_photo(&page, Dpi::LASER_300, rng)
            };
            push(
                "other-encoder",
                i,
                &image,
                vec![text],
                Want::Any,
                Some(80),
                i % 2 == 1,
            )?;
        }
        // Negatives: malformed tokens in a Data Matrix (libdmtx): short, lower case after
        // `RX`, unknown version. Nothing may be reported.
        {
            let token = random_token(rng, &key);
            let text = token.text().as_str().to_owned();
            let malformed = match i % 3 {
                0 => text[..rng.gen_range(40..120)].to_owned(),
                1 => format!("RX{}", text[2..].to_lowercase()),
                _ => format!("RX{}{}", rng.gen_range(2..=9), &text[3..]),
            };
            let symbol = dmtxwrite(&args.dmtxwrite, &malformed, 'c', dir)?;
            let image = if i % 2 == 0 {
                scan(&symbol, rng)
            } else {
                let page = synth::sheet_image(&alone(symbol, Dpi::LASER_300), rng);
                phone_photo(&page, Dpi::LASER_300, rng)
            };
            push(
                "negative-malformed",
                i,
                &image,
                Vec::new(),
                Want::Any,
                Some(80),
                i % 2 == 1,
            )?;
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
            push(
                class,
                i,
                &photo,
                both(&token),
                Want::All,
                Some(quality),
                true,
            )?;
        }
    }
    Ok(samples)
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 50)
}

/// The nearest-rank percentile.
fn percentile(values: &mut [f64], p: usize) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}

fn report(samples: &[Sample], ours: &[Outcome], zxing: Option<&[Outcome]>) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(
        out,
        "| class | want | images | codes expected | ours found | zxing-cpp found | ours misreads / false pos. | zxing-cpp misreads / false pos. | ours median ms | zxing-cpp median ms | ours p95 ms | zxing-cpp p95 ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut classes: Vec<&str> = Vec::new();
    for sample in samples {
        if !classes.contains(&sample.class) {
            classes.push(sample.class);
        }
    }
    let row = |out: &mut std::io::StdoutLock<'_>, name: &str, picked: &dyn Fn(&Sample) -> bool| {
        let indices: Vec<usize> = (0..samples.len())
            .filter(|&i| picked(&samples[i]))
            .collect();
        let mut wants: Vec<&str> = indices.iter().map(|&i| samples[i].want.name()).collect();
        wants.dedup();
        let want = if wants.len() == 1 { wants[0] } else { "" };
        let expected: usize = indices.iter().map(|&i| samples[i].expected.len()).sum();
        let sum = |outcomes: &[Outcome], f: fn(&Outcome) -> usize| -> usize {
            indices.iter().map(|&i| f(&outcomes[i])).sum()
        };
        let times = |outcomes: &[Outcome]| -> (f64, f64) {
            let mut ms: Vec<f64> = indices.iter().map(|&i| outcomes[i].ms).collect();
            (median(&mut ms), percentile(&mut ms, 95))
        };
        let (ours_median, ours_p95) = times(ours);
        let (z_found, z_bad, z_median, z_p95) = match zxing {
            Some(z) => {
                let (median, p95) = times(z);
                (
                    sum(z, |o| o.found).to_string(),
                    sum(z, |o| o.misreads).to_string(),
                    format!("{median:.1}"),
                    format!("{p95:.1}"),
                )
            }
            None => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {name} | {want} | {} | {expected} | {} | {z_found} | {} | {z_bad} | {ours_median:.1} | {z_median} | {ours_p95:.1} | {z_p95} |",
            indices.len(),
            sum(ours, |o| o.found),
            sum(ours, |o| o.misreads),
        );
    };
    for class in &classes {
        row(&mut out, class, &|s: &Sample| s.class == *class);
    }
    row(&mut out, "**all classes (no sweep)**", &|s: &Sample| {
        !s.class.starts_with("sweep-")
    });
    row(
        &mut out,
        "1600×1200 photos with both codes (phone + worn)",
        &|s: &Sample| s.is_photo && s.expected.len() == 2 && !s.class.starts_with("sweep-"),
    );
}

/// Thread CPU time per image, ours against zxing-cpp, per class and overall (outside the sweep):
/// the comparison that holds when other processes compete for the cores.
fn cpu_report(samples: &[Sample], ours: &[Outcome], zxing: &[Outcome]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| class (CPU time) | ours median ms | zxing-cpp median ms | median ratio | ours p95 ms | zxing-cpp p95 ms | p95 ratio |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut classes: Vec<&str> = Vec::new();
    for sample in samples {
        if !classes.contains(&sample.class) && !sample.class.starts_with("sweep-") {
            classes.push(sample.class);
        }
    }
    let mut groups: Vec<(&str, Vec<usize>)> = classes
        .iter()
        .map(|class| {
            let picked = (0..samples.len())
                .filter(|&i| samples[i].class == *class)
                .collect();
            (*class, picked)
        })
        .collect();
    groups.push((
        "**all classes (no sweep)**",
        (0..samples.len())
            .filter(|&i| !samples[i].class.starts_with("sweep-"))
            .collect(),
    ));
    for (name, picked) in groups {
        let cpu = |outcomes: &[Outcome]| -> (f64, f64) {
            let mut ms: Vec<f64> = picked.iter().map(|&i| outcomes[i].cpu_ms).collect();
            (median(&mut ms), percentile(&mut ms, 95))
        };
        let ((om, op), (zm, zp)) = (cpu(ours), cpu(zxing));
        let _ = writeln!(
            out,
            "| {name} | {om:.1} | {zm:.1} | {:.2} × | {op:.1} | {zp:.1} | {:.2} × |",
            om / zm.max(1e-9),
            op / zp.max(1e-9),
        );
    }
}

/// Where our pipeline spends its time: per step (stage × group), over the images outside the
/// sweep, how often it ran and how often the cheap structure test ruled it out, its total and
/// mean time, how many codes it found first, and codes per second of its time (the order
/// itself comes from `--step-order`).
fn profile(samples: &[Sample], ours: &[Outcome]) {
    #[derive(Default)]
    struct Tally {
        runs: usize,
        skipped: usize,
        ms: f64,
        found: usize,
    }
    let mut by_step: BTreeMap<(Stage, CodeFormat), Tally> = BTreeMap::new();
    let mut total_ms = 0.0;
    for (sample, outcome) in samples.iter().zip(ours) {
        if sample.class.starts_with("sweep-") {
            continue;
        }
        total_ms += outcome.ms;
        for step in &outcome.steps {
            let tally = by_step.entry((step.stage, step.format)).or_default();
            if step.skipped {
                tally.skipped += 1;
            } else {
                tally.runs += 1;
            }
            tally.ms += step.ms;
            tally.found += usize::from(step.found);
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| step | format | runs | skipped (no structure) | total ms | share of decode time | mean ms per run | codes found | codes per second |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for ((stage, format), tally) in by_step {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.1} % | {:.1} | {} | {:.2} |",
            stage.name(),
            format.name(),
            tally.runs,
            tally.skipped,
            tally.ms,
            100.0 * tally.ms / total_ms.max(1e-9),
            tally.ms / tally.runs.max(1) as f64,
            tally.found,
            tally.found as f64 * 1000.0 / tally.ms.max(1e-9),
        );
    }
}

/// One step run alone on one image: milliseconds, and the expected texts it found.
type StepAlone = (f64, Vec<String>);

/// Runs each step of the pipeline alone on every image (outside the sweep), then orders the
/// steps greedily: next is the step with the most expected codes not yet found per millisecond
/// it costs on the images whose code of its group is still missing.
fn step_order(args: &Args, samples: &[Sample]) -> Result<(), String> {
    let samples: Vec<&Sample> = samples
        .iter()
        .filter(|s| !s.class.starts_with("sweep-"))
        .collect();
    let decoder = Decoder::new(DecodeOptions {
        time_budget: Duration::from_millis(args.budget_ms),
        want: Want::All,
        ..DecodeOptions::default()
    });
    // Per step, per image: milliseconds and the expected texts it found.
    let mut alone: Vec<(Step, Vec<StepAlone>)> = Vec::new();
    let lumas: Vec<GrayImage> = samples
        .iter()
        .map(|s| {
            Ok(to_luma_on_white(
                &image::open(&s.file).map_err(|e| e.to_string())?,
            ))
        })
        .collect::<Result<_, String>>()?;
    for &step in &CANDIDATE_STEPS {
        let mut per_image = Vec::new();
        for (sample, luma) in samples.iter().zip(&lumas) {
            let start = Instant::now();
            let (codes, _) =
                decoder.run_steps(luma, start + Duration::from_millis(args.budget_ms), &[step]);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let found = codes
                .into_iter()
                .map(|c| c.text)
                .filter(|t| sample.expected.contains(t))
                .collect();
            per_image.push((ms, found));
        }
        eprintln!("{} {}: done", step.0.name(), step.1.name());
        alone.push((step, per_image));
    }
    // Greedy: covered[i] holds the expected texts found so far on image i.
    let mut covered: Vec<Vec<String>> = vec![Vec::new(); samples.len()];
    let mut remaining: Vec<usize> = (0..alone.len()).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(
        out,
        "| rank | step | format | codes it finds alone | new codes | cost ms (images still missing its group) | new codes per second |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut rank = 0;
    while !remaining.is_empty() {
        let gain = |index: usize| -> (usize, f64) {
            let (step, per_image) = &alone[index];
            let group = step.1.group();
            let mut new = 0;
            let mut ms = 0.0;
            for (i, (step_ms, found)) in per_image.iter().enumerate() {
                let group_done = covered[i]
                    .iter()
                    .any(|t| text_group(t, samples[i]) == Some(group));
                if group_done {
                    continue;
                }
                ms += step_ms;
                new += found.iter().filter(|t| !covered[i].contains(t)).count();
            }
            (new, ms)
        };
        let (position, &best) = remaining
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                let (na, ma) = gain(**a);
                let (nb, mb) = gain(**b);
                let ra = na as f64 / ma.max(0.01);
                let rb = nb as f64 / mb.max(0.01);
                // Equal rates (zero yield): the cheaper step first.
                ra.total_cmp(&rb).then(mb.total_cmp(&ma))
            })
            .ok_or("no steps")?;
        let (new, ms) = gain(best);
        rank += 1;
        let (step, per_image) = &alone[best];
        let alone_found: usize = per_image.iter().map(|(_, f)| f.len()).sum();
        let _ = writeln!(
            out,
            "| {rank} | {} | {} | {alone_found} | {new} | {ms:.0} | {:.2} |",
            step.0.name(),
            step.1.name(),
            new as f64 * 1000.0 / ms.max(0.01),
        );
        for (i, (_, found)) in per_image.iter().enumerate() {
            for text in found {
                if !covered[i].contains(text) {
                    covered[i].push(text.clone());
                }
            }
        }
        remaining.remove(position);
    }
    Ok(())
}

/// Which group an expected text belongs to (the ID is the 1-D code, the token the 2-D code).
fn text_group(text: &str, sample: &Sample) -> Option<prescrypt_barcode::decode::Group> {
    use prescrypt_barcode::decode::Group;
    sample.expected.iter().any(|e| e == text).then(|| {
        if text.starts_with("RX") {
            Group::Matrix
        } else {
            Group::Linear
        }
    })
}
