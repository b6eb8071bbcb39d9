//! The escalation pipeline: steps (a stage applied to one group of formats) in an order chosen
//! from measured cost and yield, stopping as soon as the caller's [`Want`] is met or the time
//! budget is spent. Every canvas it allocates is bounded (see [`WORK_MAX_PIXELS`]).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, warp_into_with};
use imageproc::region_labelling::{Connectivity, connected_components};
use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
use rxing::{
    BarcodeFormat, Binarizer, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader,
    RXingResult, RXingResultMetadataType, RXingResultMetadataValue, Reader,
};

use super::{CodeFormat, DecodeOptions, DecodedCode, Payload, Want};
use crate::gs1::GS;

/// Decodes Code 128, Data Matrix and QR from images within limits and a time budget.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    options: DecodeOptions,
}

/// The two kinds of code a token carries: the 1-D ID and the 2-D token (Data Matrix, or QR on a
/// phone). At most one code of each group is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Linear,
    Matrix,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "1-D",
            Self::Matrix => "2-D",
        }
    }
}

/// One way of looking at the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The working image as it is, local-threshold (hybrid) binarizer.
    Whole,
    /// 1-D only: regions of coherent stripes (structure tensor), each turned upright.
    Striped,
    /// Crops of high-contrast regions, each symbol alone (rxing's Data Matrix detector returns
    /// one candidate per image, so a symbol next to other print can hide); 1-D codes turned
    /// upright by their stripe direction.
    Crops,
    /// The whole image with the one-threshold-per-row (global histogram) binarizer: better on
    /// small, blurred or low-contrast symbols.
    WholeGlobal,
    /// The crops with the global histogram binarizer.
    CropsGlobal,
    /// The inverted image: negative print, dark-mode phone screens.
    Inverted,
    /// The inverted image with the global histogram binarizer.
    InvertedGlobal,
    /// The crops inverted, global histogram binarizer.
    InvertedCrops,
    /// The scale pyramid of the inverted image.
    InvertedPyramid,
    /// ½ and ¼ for large images (averages out noise and smeared edges), ×2 for small ones.
    Pyramid,
    /// 1-D only: 15°-step rotations of the crops and of the whole image.
    Sweep,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::Whole => "whole",
            Self::Striped => "striped",
            Self::Crops => "crops",
            Self::WholeGlobal => "whole-global",
            Self::CropsGlobal => "crops-global",
            Self::Inverted => "inverted",
            Self::InvertedGlobal => "inverted-global",
            Self::InvertedCrops => "inverted-crops",
            Self::InvertedPyramid => "inverted-pyramid",
            Self::Pyramid => "pyramid",
            Self::Sweep => "sweep",
        }
    }

    /// Whether the stage is one of the costly escalations past the first look at the whole
    /// image (and past the striped regions themselves).
    fn escalates(self) -> bool {
        !matches!(self, Self::Whole | Self::WholeGlobal | Self::Striped)
    }

    fn applies_to(self, format: CodeFormat) -> bool {
        format == CodeFormat::Code128 || !matches!(self, Self::Striped | Self::Sweep)
    }

    /// Every stage, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::Whole,
        Self::Striped,
        Self::Crops,
        Self::WholeGlobal,
        Self::CropsGlobal,
        Self::Inverted,
        Self::InvertedGlobal,
        Self::InvertedCrops,
        Self::InvertedPyramid,
        Self::Pyramid,
        Self::Sweep,
    ];
}

fn rxing_format(format: CodeFormat) -> BarcodeFormat {
    match format {
        CodeFormat::Code128 => BarcodeFormat::CODE_128,
        CodeFormat::DataMatrix => BarcodeFormat::DATA_MATRIX,
        CodeFormat::Qr => BarcodeFormat::QR_CODE,
    }
}

/// One attempt of the pipeline: a stage looking for one format.
pub type Step = (Stage, CodeFormat);

/// Every step the pipeline can run: the candidates `rx-readability --step-order` measures.
pub const CANDIDATE_STEPS: [Step; 28] = [
    (Stage::Whole, CodeFormat::DataMatrix),
    (Stage::Whole, CodeFormat::Code128),
    (Stage::Whole, CodeFormat::Qr),
    (Stage::Striped, CodeFormat::Code128),
    (Stage::Crops, CodeFormat::DataMatrix),
    (Stage::Crops, CodeFormat::Code128),
    (Stage::Crops, CodeFormat::Qr),
    (Stage::WholeGlobal, CodeFormat::DataMatrix),
    (Stage::WholeGlobal, CodeFormat::Code128),
    (Stage::WholeGlobal, CodeFormat::Qr),
    (Stage::CropsGlobal, CodeFormat::DataMatrix),
    (Stage::CropsGlobal, CodeFormat::Code128),
    (Stage::Inverted, CodeFormat::DataMatrix),
    (Stage::Inverted, CodeFormat::Code128),
    (Stage::Inverted, CodeFormat::Qr),
    (Stage::InvertedGlobal, CodeFormat::DataMatrix),
    (Stage::InvertedGlobal, CodeFormat::Code128),
    (Stage::InvertedGlobal, CodeFormat::Qr),
    (Stage::InvertedCrops, CodeFormat::DataMatrix),
    (Stage::InvertedCrops, CodeFormat::Code128),
    (Stage::InvertedCrops, CodeFormat::Qr),
    (Stage::InvertedPyramid, CodeFormat::DataMatrix),
    (Stage::InvertedPyramid, CodeFormat::Code128),
    (Stage::InvertedPyramid, CodeFormat::Qr),
    (Stage::Pyramid, CodeFormat::DataMatrix),
    (Stage::Pyramid, CodeFormat::Code128),
    (Stage::Pyramid, CodeFormat::Qr),
    (Stage::Sweep, CodeFormat::Code128),
];

/// The steps the pipeline runs, in the order measured on the readability corpus:
/// `rx-readability --step-order` runs every candidate step alone on every image and orders them
/// greedily by expected codes newly found per millisecond spent on the images still missing
/// that kind of code (seed 7, 16 images per class: not the benchmark's own images). Steps that
/// found nothing new are left out (the rotation sweep, the hybrid binarizer on the whole image
/// for the Data Matrix, the inverted image for the Code 128 …: most find codes alone, but only
/// codes an earlier step already found).
/// Figures and command: `barcode/BENCHMARKS.md`. The caller's goal formats
/// ([`Want::goals`]) run in this order first; the others follow as a fallback.
pub const STEP_ORDER: [Step; 13] = [
    (Stage::Whole, CodeFormat::Code128),
    (Stage::WholeGlobal, CodeFormat::DataMatrix),
    (Stage::CropsGlobal, CodeFormat::DataMatrix),
    (Stage::Striped, CodeFormat::Code128),
    (Stage::InvertedGlobal, CodeFormat::Qr),
    (Stage::Crops, CodeFormat::Qr),
    (Stage::Crops, CodeFormat::DataMatrix),
    (Stage::Pyramid, CodeFormat::Code128),
    (Stage::Pyramid, CodeFormat::DataMatrix),
    (Stage::Pyramid, CodeFormat::Qr),
    (Stage::Crops, CodeFormat::Code128),
    (Stage::InvertedPyramid, CodeFormat::DataMatrix),
    (Stage::InvertedPyramid, CodeFormat::Qr),
];

/// Time and outcome of one step of a decode (for profiling: `Decoder::decode_luma_traced`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTrace {
    pub stage: Stage,
    pub format: CodeFormat,
    pub ms: f64,
    /// Whether this step found a code of its format.
    pub found: bool,
    /// Whether the cheap structure test ruled the step out (nothing in the image for it to look
    /// at); its time is then the test's.
    pub skipped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binarization {
    /// Local thresholds: robust to uneven light.
    Hybrid,
    /// One threshold per row: better on small, blurred or low-contrast symbols.
    GlobalHistogram,
}

/// Rotations tried for the 1-D code. rxing's `TryHarder` also tries each image turned by 90°,
/// so these cover every 15° step; Code 128 tolerates about atan(bar height / length) ≈ 9°.
const SWEEP_DEGREES: [f32; 5] = [15.0, 30.0, 45.0, 60.0, 75.0];
/// Candidate regions are found on a contrast map at most this many cells on its long side.
const REGION_MAP_SIZE: u32 = 200;
const MAX_REGIONS: usize = 6;
/// The smallest block side (pixels) on which a contrast map can call an image evenly textured.
const MIN_TEXTURE_BLOCK: u32 = 4;
/// The rotation sweep over a whole image works on a copy of at most this many pixels.
const SWEEP_MAX_PIXELS: u64 = 2_000_000;
/// The largest canvas the pipeline works on. Larger images are box-averaged down to it first
/// (an A4 page scanned at 300 dpi is 8.7 M pixels; a 12 MP phone photo keeps a 0.25 mm module
/// at about 4 pixels), and a rotated canvas is kept within it by scaling its input.
pub const WORK_MAX_PIXELS: u64 = 8_000_000;
/// Estimated cost of one rxing TryHarder decode per pixel (measured: a 2-D attempt on a
/// 1600×1200 photo takes 40–80 ms on this class of machine); a call is skipped when the
/// estimate does not fit in the time left.
const DECODE_NANOS_PER_PIXEL: u64 = 40;

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes a grey image: every code found, ours validated (see
    /// [`Payload::classify_symbol`](super::Payload::classify_symbol)), at most one 1-D and one 2-D code.
    /// Images larger than [`WORK_MAX_PIXELS`] are averaged down first; any shape is safe.
    pub fn decode_luma(&self, image: &GrayImage) -> Vec<DecodedCode> {
        self.decode_luma_traced(image).0
    }

    /// [`decode_luma`](Self::decode_luma) plus the time and outcome of every step it ran.
    pub fn decode_luma_traced(&self, image: &GrayImage) -> (Vec<DecodedCode>, Vec<StepTrace>) {
        self.decode_luma_until(image, Instant::now() + self.options.time_budget)
    }

    pub(super) fn decode_luma_until(
        &self,
        image: &GrayImage,
        deadline: Instant,
    ) -> (Vec<DecodedCode>, Vec<StepTrace>) {
        let goals = self.options.want.goals();
        let goal_steps = STEP_ORDER.iter().filter(|(_, f)| goals.contains(f));
        let fallback_steps = STEP_ORDER.iter().filter(|(_, f)| !goals.contains(f));
        let steps: Vec<Step> = goal_steps.chain(fallback_steps).copied().collect();
        self.run_steps(image, deadline, &steps)
    }

    /// Runs `steps` in order on `image` (profiling a step alone, or a custom order): stops when
    /// the caller's [`Want`] is met or at `deadline`. Never inlined: `barcode/bench/instructions.py`
    /// counts the instructions inside it.
    #[inline(never)]
    pub fn run_steps(
        &self,
        image: &GrayImage,
        deadline: Instant,
        steps: &[Step],
    ) -> (Vec<DecodedCode>, Vec<StepTrace>) {
        let working;
        let image = if pixels(image) > WORK_MAX_PIXELS {
            working = box_shrink(image, WORK_MAX_PIXELS);
            &working
        } else {
            image
        };
        let mut run = Run {
            want: self.options.want,
            deadline,
            image,
            found: Vec::new(),
            crops: None,
            large_crops: Vec::new(),
            uniform: false,
            levels: None,
            stripes: None,
            linear_evidence: None,
            matrix_refused: false,
            trace: Vec::new(),
        };
        for &(stage, format) in steps {
            if run.finished() {
                break;
            }
            if run.has(format.group()) || !stage.applies_to(format) {
                continue;
            }
            let started = Instant::now();
            let ran = run.step(stage, format);
            run.trace.push(StepTrace {
                stage,
                format,
                ms: started.elapsed().as_secs_f64() * 1000.0,
                found: run.found.iter().any(|code| code.format == format),
                skipped: !ran,
            });
        }
        run.found.sort_by_key(|code| code.format);
        (run.found, run.trace)
    }
}

struct Run<'a> {
    want: Want,
    deadline: Instant,
    image: &'a GrayImage,
    found: Vec<DecodedCode>,
    /// High-contrast crops, computed on first use.
    crops: Option<Vec<GrayImage>>,
    /// Per crop: whether its region covers more than half of the working image (the
    /// whole-image attempts already saw what it holds).
    large_crops: Vec<bool>,
    /// Whether the image is evenly textured, nothing standing out (set with the crops).
    uniform: bool,
    /// Scale pyramid levels, computed on first use.
    levels: Option<Vec<GrayImage>>,
    /// Striped regions (1-D code candidates) with their stripe angle, found on first use;
    /// `None` inside when the image is too small to tell.
    stripes: Option<Option<Vec<StripedRegion>>>,
    /// Whether the image may hold a Code 128 at all (see `may_hold_a_linear_code`), once asked.
    linear_evidence: Option<bool>,
    /// A 2-D symbol was read and its text refused (a malformed token): the 2-D search is over.
    /// Data Matrix and QR carry Reed–Solomon error correction, so a refused text is what was
    /// printed, not a misread; looking further would only read the same symbol again.
    matrix_refused: bool,
    trace: Vec<StepTrace>,
}

impl Run<'_> {
    /// Whether the search for this group is over: a code of it was found (at most one per
    /// group is reported), or, for 2-D codes, a symbol was read and refused.
    fn has(&self, group: Group) -> bool {
        self.found.iter().any(|code| code.format.group() == group)
            || (group == Group::Matrix && self.matrix_refused)
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn finished(&self) -> bool {
        self.want.is_met(&self.found) || self.out_of_time()
    }

    /// Whether an rxing call on `pixels` pixels is expected to end before the deadline.
    fn affordable(&self, pixels: u64) -> bool {
        let estimate = Duration::from_nanos(pixels.saturating_mul(DECODE_NANOS_PER_PIXEL));
        Instant::now() + estimate <= self.deadline
    }

    /// Runs one step; `false` when the cheap structure test ruled it out.
    fn step(&mut self, stage: Stage, format: CodeFormat) -> bool {
        let group = format.group();
        if stage.escalates() {
            let worth_it = match group {
                Group::Linear => self.may_hold_a_linear_code(),
                Group::Matrix => self.has_structure(),
            };
            if !worth_it {
                return false;
            }
        }
        self.run_stage(stage, format);
        true
    }

    fn run_stage(&mut self, stage: Stage, format: CodeFormat) {
        let image = self.image;
        let group = format.group();
        match stage {
            Stage::Whole => self.attempt(image, Binarization::Hybrid, format),
            Stage::WholeGlobal => self.attempt(image, Binarization::GlobalHistogram, format),
            Stage::Striped => {
                for ((x, y, w, h), angle) in self.stripes().unwrap_or_default() {
                    let crop = imageops::crop_imm(image, x, y, w, h).to_image();
                    if !worth_a_linear_attempt(&crop, REGION_MIN_COHERENCE) {
                        continue;
                    }
                    self.turned(&crop, angle);
                    if self.has(group) || self.out_of_time() {
                        return;
                    }
                }
            }
            Stage::Crops | Stage::CropsGlobal => {
                let binarization = if stage == Stage::Crops {
                    Binarization::Hybrid
                } else {
                    Binarization::GlobalHistogram
                };
                let crops = self.crops();
                for (index, crop) in crops.iter().enumerate() {
                    let large = self.large_crops.get(index).copied().unwrap_or(false);
                    if group == Group::Linear
                        && (large || !worth_a_linear_attempt(crop, CROP_MIN_COHERENCE))
                    {
                        continue;
                    }
                    self.attempt(crop, binarization, format);
                    if stage == Stage::Crops && group == Group::Linear && !self.has(group) {
                        self.upright(crop);
                    }
                    if self.has(group) || self.out_of_time() {
                        break;
                    }
                }
                self.crops = Some(crops);
            }
            Stage::Inverted | Stage::InvertedGlobal => {
                if !self.affordable(pixels(image)) {
                    return;
                }
                let mut inverted = image.clone();
                imageops::invert(&mut inverted);
                let binarization = if stage == Stage::Inverted {
                    Binarization::Hybrid
                } else {
                    Binarization::GlobalHistogram
                };
                self.attempt(&inverted, binarization, format);
            }
            Stage::InvertedCrops => {
                let crops = self.crops();
                for crop in &crops {
                    let mut inverted = crop.clone();
                    imageops::invert(&mut inverted);
                    self.attempt(&inverted, Binarization::GlobalHistogram, format);
                    if self.has(group) || self.out_of_time() {
                        break;
                    }
                }
                self.crops = Some(crops);
            }
            Stage::Pyramid | Stage::InvertedPyramid => {
                let levels = self.pyramid();
                for level in &levels {
                    let level = if stage == Stage::InvertedPyramid {
                        let mut inverted = level.clone();
                        imageops::invert(&mut inverted);
                        inverted
                    } else {
                        level.clone()
                    };
                    for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
                        self.attempt(&level, binarization, format);
                        if self.has(group) || self.out_of_time() {
                            break;
                        }
                    }
                    if self.has(group) || self.out_of_time() {
                        break;
                    }
                }
                self.levels = Some(levels);
            }
            Stage::Sweep => {
                let crops = self.crops();
                for crop in &crops {
                    self.sweep(crop);
                    if self.has(group) || self.out_of_time() {
                        break;
                    }
                }
                self.crops = Some(crops);
                if self.has(group) || self.out_of_time() {
                    return;
                }
                if pixels(image) > SWEEP_MAX_PIXELS {
                    self.sweep(&box_shrink(image, SWEEP_MAX_PIXELS));
                } else {
                    self.sweep(image);
                }
            }
        }
    }

    /// The striped regions of the working image (cached).
    fn stripes(&mut self) -> Option<Vec<StripedRegion>> {
        if self.stripes.is_none() {
            self.stripes = Some(linear_regions(self.image, self.deadline));
        }
        self.stripes.clone().flatten()
    }

    /// The cheap test before the 1-D escalations: a Code 128 is a region of strong stripes with
    /// one direction, which the structure tensor finds at a fraction of one rxing call's cost,
    /// either on the whole image or within one of the high-contrast crops (where the stripes of
    /// a code next to text are not drowned by it). An image without any (text, a 2-D code alone,
    /// noise) skips the costly 1-D steps.
    fn may_hold_a_linear_code(&mut self) -> bool {
        if let Some(answer) = self.linear_evidence {
            return answer;
        }
        let answer = self.stripes().is_none_or(|regions| !regions.is_empty()) || {
            let crops = self.crops();
            let striped = crops.iter().any(|crop| stripe_angle(crop).is_some());
            self.crops = Some(crops);
            striped
        };
        self.linear_evidence = Some(answer);
        answer
    }

    /// The cheap test before the 2-D escalations: a printed or shown symbol makes a region of
    /// contrast well above its surroundings (a crop), stripes, or — filling the frame — flat
    /// modules between sharp edges. An evenly textured image (sensor noise, a blank page) with
    /// no crop and no stripes has nothing a decoder can find; it still gets the first look at
    /// the whole image.
    fn has_structure(&mut self) -> bool {
        let crops = self.crops();
        let any_crop = !crops.is_empty();
        self.crops = Some(crops);
        any_crop || !self.uniform || self.stripes().is_none_or(|regions| !regions.is_empty())
    }

    /// The scale pyramid, each level made once per run (reductions by the triangle filter's
    /// [1 3 3 1] / 8 weights: a plain box average leaves more of a screen's moiré). Levels whose
    /// decode would not fit the time left are not made.
    fn pyramid(&mut self) -> Vec<GrayImage> {
        if let Some(levels) = self.levels.take() {
            return levels;
        }
        let image = self.image;
        let mut levels = Vec::new();
        for scale in pyramid(image.width(), image.height()) {
            let scaled_pixels = (pixels(image) as f64 * f64::from(scale * scale)) as u64;
            if !self.affordable(scaled_pixels) {
                break;
            }
            levels.push(if scale == 0.5 {
                halve(image)
            } else if scale == 0.25 {
                halve(&halve(image))
            } else {
                resize(image, scale)
            });
        }
        levels
    }

    fn crops(&mut self) -> Vec<GrayImage> {
        if let Some(crops) = self.crops.take() {
            return crops;
        }
        let image = self.image;
        let (regions, uniform) = candidate_regions(image, self.deadline);
        self.uniform = uniform;
        self.large_crops = regions
            .iter()
            .map(|&(_, _, w, h)| u64::from(w) * u64::from(h) * 2 > pixels(image))
            .collect();
        regions
            .into_iter()
            .map(|(x, y, w, h)| {
                let crop = imageops::crop_imm(image, x, y, w, h).to_image();
                if crop.width().max(crop.height()) < 400 {
                    resize(&crop, 2.0)
                } else {
                    crop
                }
            })
            .collect()
    }

    /// Turns a crop so its stripes stand upright and tries the 1-D code.
    fn upright(&mut self, crop: &GrayImage) {
        // Bars two or three pixels wide blur into each other when turned: turn a doubled copy.
        let fine = if crop.width().max(crop.height()) < 600 {
            resize(crop, 2.0)
        } else {
            crop.clone()
        };
        if let Some(angle) = stripe_angle(&fine) {
            self.turned_fine(&fine, angle);
        }
    }

    /// Turns a crop by its stripe direction `angle` and tries the 1-D code.
    fn turned(&mut self, crop: &GrayImage, angle: f32) {
        let fine = if crop.width().max(crop.height()) < 600 {
            resize(crop, 2.0)
        } else {
            crop.clone()
        };
        self.turned_fine(&fine, angle);
    }

    fn turned_fine(&mut self, fine: &GrayImage, angle: f32) {
        if self.out_of_time() {
            return;
        }
        // A second estimate on the turned crop removes most of the first one's bias.
        let first = rotate(fine, -angle);
        let upright = match stripe_angle(&first) {
            Some(residual) if residual.abs() > 1.5 && residual.abs() < 30.0 => {
                rotate(fine, -(angle + residual))
            }
            _ => first,
        };
        for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
            self.attempt(&upright, binarization, CodeFormat::Code128);
            if self.has(Group::Linear) {
                return;
            }
        }
    }

    /// Tries the 1-D code at each sweep angle.
    fn sweep(&mut self, image: &GrayImage) {
        for degrees in SWEEP_DEGREES {
            if self.has(Group::Linear) || self.out_of_time() {
                return;
            }
            let turned = rotate(image, degrees);
            for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
                self.attempt(&turned, binarization, CodeFormat::Code128);
                if self.has(Group::Linear) {
                    return;
                }
            }
        }
    }

    /// One rxing decode for `format`, if its group's code is still missing and the call fits
    /// the budget.
    fn attempt(&mut self, image: &GrayImage, binarization: Binarization, format: CodeFormat) {
        if self.has(format.group())
            || self.want.is_met(&self.found)
            || !self.affordable(pixels(image))
        {
            return;
        }
        if let Some(result) = decode_once(image, binarization, rxing_format(format)) {
            self.record(&result);
        }
    }

    fn record(&mut self, result: &RXingResult) {
        let format = match result.getBarcodeFormat() {
            BarcodeFormat::CODE_128 => CodeFormat::Code128,
            BarcodeFormat::DATA_MATRIX => CodeFormat::DataMatrix,
            BarcodeFormat::QR_CODE => CodeFormat::Qr,
            _ => return,
        };
        let aim = match result
            .getRXingResultMetadata()
            .get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
        {
            Some(RXingResultMetadataValue::SymbologyIdentifier(aim)) if aim.starts_with(']') => {
                aim.clone()
            }
            _ => format.default_aim().to_owned(),
        };
        let aim = if aim == CODE128_FNC2_AIM {
            // rxing passes the check character through its code-set switch, so a check value
            // of 97 (FNC2 in sets A and B) sets modifier 4. FNC2 (message append) is in no
            // symbol we read, so `]C4` is always that misreading of a plain Code 128.
            format.default_aim().to_owned()
        } else {
            aim
        };
        let mut text = transmitted_text(&aim, result.getText());
        if format == CodeFormat::Code128 && code128_check_value(result.getRawBytes()) == Some(FNC1)
        {
            // The same pass-through, for a check value of 102: FNC1 in every code set, which
            // rxing (told to assume GS1) turns into a GS after the data. An FNC1 as the last
            // character separates nothing, so the GS at the end is always that artefact.
            if text.ends_with(GS) {
                text.pop();
            }
        }
        // A text that looks like ours but fails our check is dropped. A Code 128 may be a
        // misread (its one check character is weak): keep looking. A 2-D symbol is not.
        let Ok(payload) = Payload::classify_symbol(&aim, &text) else {
            self.matrix_refused |= format.group() == Group::Matrix;
            return;
        };
        if self
            .found
            .iter()
            .any(|code| code.format == format && code.text == text)
        {
            return;
        }
        self.found.push(DecodedCode {
            format,
            text,
            aim,
            payload,
        });
    }
}

/// The AIM identifier of a Code 128 with FNC2 (message append).
const CODE128_FNC2_AIM: &str = "]C4";
/// The Code 128 symbol value of FNC1 (the same in code sets A, B and C).
const FNC1: u8 = 102;

/// A Code 128's check character value: rxing's raw bytes are the symbol values from the start
/// character to the stop character, the check character just before the stop.
fn code128_check_value(raw: &[u8]) -> Option<u8> {
    raw.len().checked_sub(2).and_then(|i| raw.get(i)).copied()
}

/// The symbol's data as a scanner transmits it after the AIM identifier (ISO/IEC 15424): rxing,
/// told to assume GS1 (see [`decode_once`]), puts `]C1` in front of a GS1-128's text for the FNC1
/// in first position, and a GS for the FNC1 that follows a Code 128's application indicator
/// (`]C2`); both FNC1s are said by the identifier, not transmitted. Every other FNC1 stays GS.
fn transmitted_text(aim: &str, text: &str) -> String {
    match aim {
        "]C1" => text.strip_prefix("]C1").unwrap_or(text).to_owned(),
        "]C2" => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(indicator), Some(GS)) => core::iter::once(indicator).chain(chars).collect(),
                _ => text.to_owned(),
            }
        }
        _ => text.to_owned(),
    }
}

fn pixels(image: &GrayImage) -> u64 {
    u64::from(image.width()) * u64::from(image.height())
}

/// One rxing decode, shielded against panics inside the decoder.
fn decode_once(
    image: &GrayImage,
    binarization: Binarization,
    format: BarcodeFormat,
) -> Option<RXingResult> {
    let hints = DecodeHints {
        PossibleFormats: Some(HashSet::from([format])),
        TryHarder: Some(true),
        // Without it rxing's Code 128 reader drops every FNC1, so a GS1-128's variable-length
        // values run into each other. A symbol without FNC1 (our Code 128 ID) reads the same;
        // Data Matrix and QR report FNC1 either way.
        AssumeGs1: Some(true),
        ..DecodeHints::default()
    };
    let source = Luma8Source::new_with_slice(image.as_raw(), image.width(), image.height()).ok()?;
    catch_unwind(AssertUnwindSafe(|| match binarization {
        Binarization::Hybrid => read(BinaryBitmap::new(HybridBinarizer::new(source)), &hints),
        Binarization::GlobalHistogram => read(
            BinaryBitmap::new(GlobalHistogramBinarizer::new(source)),
            &hints,
        ),
    }))
    .ok()
    .flatten()
}

fn read<B: Binarizer>(mut bitmap: BinaryBitmap<B>, hints: &DecodeHints) -> Option<RXingResult> {
    MultiFormatReader::default()
        .decode_with_hints(&mut bitmap, hints)
        .ok()
}

/// Scales worth trying for an image of this size.
fn pyramid(width: u32, height: u32) -> Vec<f32> {
    let (short, long) = (width.min(height), width.max(height));
    let mut scales = Vec::new();
    if short >= 600 {
        scales.push(0.5);
    }
    if short >= 1400 {
        scales.push(0.25);
    }
    if long <= 1400 {
        scales.push(2.0);
    }
    scales
}

/// Resizes a bounded image (a crop, the working canvas): the caller keeps `scale` small enough
/// that the output stays within [`WORK_MAX_PIXELS`].
fn resize(image: &GrayImage, scale: f32) -> GrayImage {
    let width = ((image.width() as f32 * scale).round() as u32).max(1);
    let height = ((image.height() as f32 * scale).round() as u32).max(1);
    let filter = if scale < 1.0 {
        FilterType::Triangle
    } else {
        FilterType::CatmullRom
    };
    imageops::resize(image, width, height, filter)
}

/// The image averaged over square blocks so that it has at most `max_pixels` pixels. Allocates
/// only the output and one row of sums, whatever the input's shape.
fn box_shrink(image: &GrayImage, max_pixels: u64) -> GrayImage {
    let (w, h) = image.dimensions();
    let max_pixels = max_pixels.max(1);
    let out_pixels = |f: u32| u64::from(w.div_ceil(f)) * u64::from(h.div_ceil(f));
    // The square-root estimate, raised for thin images whose short side cannot shrink below 1.
    let mut factor = ((pixels(image) as f64 / max_pixels as f64).sqrt().ceil() as u32).max(1);
    while out_pixels(factor) > max_pixels {
        factor = factor.saturating_add(factor / 8 + 1);
    }
    box_reduce(image, factor)
}

/// The image at half size through the [1 3 3 1] / 8 tent in each direction (what a triangle
/// filter does at scale ½), in integers; allocates the output and one half-width pass.
fn halve(image: &GrayImage) -> GrayImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (out_w, out_h) = ((w / 2).max(1), (h / 2).max(1));
    let raw = image.as_raw();
    let tap = |len: usize, i: isize| i.clamp(0, len as isize - 1) as usize;
    // Horizontal pass: sums ×8.
    let mut rows = vec![0u16; out_w * h];
    for y in 0..h {
        let row = &raw[y * w..(y + 1) * w];
        let p = |i: isize| u16::from(row[tap(w, i)]);
        for (ox, out) in rows[y * out_w..(y + 1) * out_w].iter_mut().enumerate() {
            let x = 2 * ox as isize;
            *out = p(x - 1) + 3 * p(x) + 3 * p(x + 1) + p(x + 2);
        }
    }
    // Vertical pass: sums ×64, rounded.
    let mut out = Vec::with_capacity(out_w * out_h);
    for oy in 0..out_h {
        let y = 2 * oy as isize;
        let r = |i: isize| &rows[tap(h, i) * out_w..(tap(h, i) + 1) * out_w];
        let (a, b, c, d) = (r(y - 1), r(y), r(y + 1), r(y + 2));
        out.extend((0..out_w).map(|x| {
            let sum = u32::from(a[x]) + 3 * u32::from(b[x]) + 3 * u32::from(c[x]) + u32::from(d[x]);
            ((sum + 32) / 64) as u8
        }));
    }
    GrayImage::from_raw(out_w as u32, out_h as u32, out)
        .unwrap_or_else(|| GrayImage::new(out_w as u32, out_h as u32))
}

/// The image averaged over `factor`×`factor` blocks (partial blocks at the edges averaged over
/// what they cover). Allocates only the output and one row of sums.
fn box_reduce(image: &GrayImage, factor: u32) -> GrayImage {
    let (w, h) = image.dimensions();
    let factor = factor.max(1);
    let (out_w, out_h) = (w.div_ceil(factor), h.div_ceil(factor));
    let mut out = Vec::with_capacity(out_w as usize * out_h as usize);
    let mut sums = vec![0u32; out_w as usize];
    let mut counts = vec![0u32; out_w as usize];
    let raw = image.as_raw();
    let (width, factor) = (w as usize, factor as usize);
    for oy in 0..out_h as usize {
        sums.fill(0);
        counts.fill(0);
        for y in (oy * factor)..((oy + 1) * factor).min(h as usize) {
            let row = &raw[y * width..(y + 1) * width];
            for ((sum, count), block) in sums.iter_mut().zip(&mut counts).zip(row.chunks(factor)) {
                *sum += block.iter().map(|&v| u32::from(v)).sum::<u32>();
                *count += block.len() as u32;
            }
        }
        out.extend(
            sums.iter()
                .zip(&counts)
                .map(|(s, c)| (s / (*c).max(1)) as u8),
        );
    }
    GrayImage::from_raw(out_w, out_h, out).unwrap_or_else(|| GrayImage::new(out_w, out_h))
}

/// The image turned by `degrees` on a canvas large enough to keep every corner, padded white.
/// The canvas never exceeds [`WORK_MAX_PIXELS`]: when it would, the input is shrunk first (a
/// long thin image turned by θ needs about width² × sin θ cos θ pixels).
fn rotate(image: &GrayImage, degrees: f32) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let canvas = |w: f64, h: f64| {
        let (sin, cos) = (f64::from(sin.abs()), f64::from(cos.abs()));
        ((w * cos + h * sin).ceil(), (w * sin + h * cos).ceil())
    };
    let (cw, ch) = canvas(f64::from(image.width()), f64::from(image.height()));
    if cw * ch > WORK_MAX_PIXELS as f64 {
        let scale = (WORK_MAX_PIXELS as f64 / (cw * ch)).sqrt() * 0.99;
        let target = (pixels(image) as f64 * scale * scale) as u64;
        let shrunk = box_shrink(image, target.max(1));
        let (sw, sh) = canvas(f64::from(shrunk.width()), f64::from(shrunk.height()));
        if sw * sh > WORK_MAX_PIXELS as f64 {
            // Still too large (a one-pixel-thin image cannot shrink in height): nothing to turn.
            return shrunk;
        }
        return rotate(&shrunk, degrees);
    }
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (out_w, out_h) = (cw as u32, ch as u32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ox, oy) = (out_w as f32 / 2.0, out_h as f32 / 2.0);
    let mut out = GrayImage::new(out_w.max(1), out_h.max(1));
    warp_into_with(
        image,
        move |x, y| {
            let (dx, dy) = (x - ox, y - oy);
            (cx + dx * cos + dy * sin, cy - dx * sin + dy * cos)
        },
        Interpolation::Bilinear,
        Luma([255]),
        &mut out,
    );
    out
}

/// Bounding boxes `(x, y, width, height)` of high-contrast regions, largest first, with a margin
/// for the quiet zone. Found on a block map: each block's contrast (max − min), thresholded
/// against the typical (paper) block, dilated, split into connected components that fill at
/// least half of their bounding box.
/// Also says whether the image is evenly textured: its typical block has at least half the
/// contrast of its most contrasted block (sensor noise, a blank page), so nothing stands out;
/// never for an image too small for blocks of [`MIN_TEXTURE_BLOCK`] pixels.
fn candidate_regions(image: &GrayImage, deadline: Instant) -> (Vec<(u32, u32, u32, u32)>, bool) {
    let half = image;
    let long = half.width().max(half.height());
    let block = long.div_ceil(REGION_MAP_SIZE).max(1);
    let (w, h) = (half.width().div_ceil(block), half.height().div_ceil(block));
    if w < 4 || h < 4 {
        return (Vec::new(), false);
    }
    let mut contrast = vec![0u8; (w * h) as usize];
    let mut lows = vec![255u8; w as usize];
    let mut highs = vec![0u8; w as usize];
    let width = half.width() as usize;
    for by in 0..h {
        if Instant::now() >= deadline {
            return (Vec::new(), false);
        }
        lows.fill(255);
        highs.fill(0);
        for y in by * block..((by + 1) * block).min(half.height()) {
            let row = &half.as_raw()[y as usize * width..(y as usize + 1) * width];
            for ((lo, hi), cells) in lows
                .iter_mut()
                .zip(highs.iter_mut())
                .zip(row.chunks(block as usize))
            {
                for &v in cells {
                    *lo = (*lo).min(v);
                    *hi = (*hi).max(v);
                }
            }
        }
        for bx in 0..w as usize {
            contrast[by as usize * w as usize + bx] = highs[bx].saturating_sub(lows[bx]);
        }
    }
    let mut sorted = contrast.clone();
    sorted.sort_unstable();
    let typical = u32::from(sorted[sorted.len() / 2]);
    let high = u32::from(sorted[sorted.len() - 1]);
    // Blocks of a few pixels say nothing about texture (a 1-pixel block has no contrast): small
    // images are never called uniform.
    let uniform = block >= MIN_TEXTURE_BLOCK && typical * 2 >= high;
    let threshold = (typical * 5 / 2).clamp(20, 200) as u8;
    let mask = GrayImage::from_fn(w, h, |x, y| {
        Luma([if contrast[(y * w + x) as usize] >= threshold {
            255
        } else {
            0
        }])
    });
    let mask = imageproc::morphology::dilate(&mask, imageproc::distance_transform::Norm::LInf, 1);
    let labels = connected_components(&mask, Connectivity::Eight, Luma([0u8]));
    // Per component: bounding box and cell count.
    let mut boxes: std::collections::HashMap<u32, (u32, u32, u32, u32, u32)> =
        std::collections::HashMap::new();
    for (x, y, label) in labels.enumerate_pixels() {
        let label = label.0[0];
        if label == 0 {
            continue;
        }
        let b = boxes.entry(label).or_insert((x, y, x, y, 0));
        b.0 = b.0.min(x);
        b.1 = b.1.min(y);
        b.2 = b.2.max(x);
        b.3 = b.3.max(y);
        b.4 += 1;
    }
    // A symbol fills its box; the outline of the paper on a desk or a stray line does not.
    let mut regions: Vec<(u32, u32, u32, u32)> = boxes
        .into_values()
        .map(|(x0, y0, x1, y1, cells)| (x0, y0, x1 - x0 + 1, y1 - y0 + 1, cells))
        .filter(|&(_, _, bw, bh, cells)| {
            bw.max(bh) >= 4 && bw * bh >= 12 && (bw * bh) < w * h * 9 / 10 && cells * 2 >= bw * bh
        })
        .map(|(x, y, bw, bh, _)| (x, y, bw, bh))
        .collect();
    regions.sort_by_key(|&(_, _, bw, bh)| std::cmp::Reverse(bw * bh));
    regions.truncate(MAX_REGIONS);
    // Map back to pixels: one map cell is `block` pixels.
    let cell = block as f32;
    let regions = regions
        .into_iter()
        .map(|(x, y, bw, bh)| {
            let margin = (bw.max(bh) as f32 / 8.0 + 1.0).max(1.5);
            let x0 = ((x as f32 - margin) * cell).max(0.0) as u32;
            let y0 = ((y as f32 - margin) * cell).max(0.0) as u32;
            let x1 = (((x + bw) as f32 + margin) * cell).min(image.width() as f32) as u32;
            let y1 = (((y + bh) as f32 + margin) * cell).min(image.height() as f32) as u32;
            (
                x0,
                y0,
                x1.saturating_sub(x0).max(1),
                y1.saturating_sub(y0).max(1),
            )
        })
        .collect();
    (regions, uniform)
}

/// A striped region `(x, y, width, height)` and its stripes' gradient direction in degrees.
type StripedRegion = ((u32, u32, u32, u32), f32);
/// `(x0, y0, x1, y1)`, inclusive.
type Corners = (u32, u32, u32, u32);
/// A component of striped cells: its corners, striped cell count, summed structure tensor.
type StripedPart = (Corners, u32, [f32; 3]);

/// Regions that look like a 1-D code — strong, consistently oriented stripes — with the
/// stripes' gradient direction in degrees. Found from the structure tensor summed over cells of
/// the image: a cell belongs to a barcode when its gradient energy is well above the typical
/// (paper) cell and its orientation is coherent; text and 2-D codes are not coherent.
/// `None` when the image is too small for the cell map, or the deadline passed.
fn linear_regions(image: &GrayImage, deadline: Instant) -> Option<Vec<StripedRegion>> {
    let (iw, ih) = image.dimensions();
    let cell = (iw.max(ih) / 200).max(4);
    let (w, h) = (iw / cell, ih / cell);
    if w < 4 || h < 4 {
        return None;
    }
    let mut tensors = vec![[0f32; 3]; (w * h) as usize];
    for y in 1..(h * cell).min(ih - 1) {
        if y % 64 == 0 && Instant::now() >= deadline {
            return None;
        }
        let row = &mut tensors[((y / cell) * w) as usize..((y / cell + 1) * w) as usize];
        scharr_row(image, y, (w * cell).min(iw - 1), |x, gx, gy| {
            let (gx, gy) = (gx as f32, gy as f32);
            let t = &mut row[(x / cell) as usize];
            t[0] += gx * gx;
            t[1] += gy * gy;
            t[2] += gx * gy;
        });
    }
    let energy = |t: &[f32; 3]| t[0] + t[1];
    let coherence = |t: &[f32; 3]| {
        let e = energy(t);
        if e <= 0.0 {
            0.0
        } else {
            ((t[0] - t[1]).powi(2) + 4.0 * t[2] * t[2]).sqrt() / e
        }
    };
    let mut energies: Vec<f32> = tensors.iter().map(energy).collect();
    energies.sort_by(f32::total_cmp);
    let typical = energies[energies.len() / 2];
    let strong = (typical * 3.0).max(1.0);
    let striped: Vec<bool> = tensors
        .iter()
        .map(|t| energy(t) >= strong && coherence(t) >= 0.6)
        .collect();
    let mask = GrayImage::from_fn(w, h, |x, y| {
        Luma([if striped[(y * w + x) as usize] {
            255
        } else {
            0
        }])
    });
    let mask = imageproc::morphology::dilate(&mask, imageproc::distance_transform::Norm::LInf, 1);
    let labels = connected_components(&mask, Connectivity::Eight, Luma([0u8]));
    // Per component: bounding box, striped cell count, summed tensor of the striped cells.
    let mut parts: std::collections::HashMap<u32, StripedPart> = std::collections::HashMap::new();
    for (x, y, label) in labels.enumerate_pixels() {
        let label = label.0[0];
        if label == 0 {
            continue;
        }
        let part = parts.entry(label).or_insert(((x, y, x, y), 0, [0.0; 3]));
        let b = &mut part.0;
        b.0 = b.0.min(x);
        b.1 = b.1.min(y);
        b.2 = b.2.max(x);
        b.3 = b.3.max(y);
        let index = (y * w + x) as usize;
        if striped[index] {
            part.1 += 1;
            for (sum, value) in part.2.iter_mut().zip(tensors[index]) {
                *sum += value;
            }
        }
    }
    let mut found: Vec<(Corners, u32, f32)> = parts
        .into_values()
        .filter(|(_, cells, tensor)| *cells >= 6 && coherence(tensor) >= 0.6)
        .map(|((x0, y0, x1, y1), cells, t)| {
            let angle = (0.5 * (2.0 * t[2]).atan2(t[0] - t[1])).to_degrees();
            ((x0, y0, x1, y1), cells, angle)
        })
        .collect();
    found.sort_by_key(|&(_, cells, _)| std::cmp::Reverse(cells));
    found.truncate(4);
    let regions = found
        .into_iter()
        .map(|((x0, y0, x1, y1), _, angle)| {
            // Room for the quiet zones: a quarter of the longer side, at least three cells.
            let margin = ((x1 - x0).max(y1 - y0) / 4).max(3);
            let left = x0.saturating_sub(margin) * cell;
            let top = y0.saturating_sub(margin) * cell;
            let right = ((x1 + 1 + margin) * cell).min(iw);
            let bottom = ((y1 + 1 + margin) * cell).min(ih);
            ((left, top, right - left, bottom - top), angle)
        })
        .collect();
    Some(regions)
}

/// Calls `visit(x, gx, gy)` with the Scharr gradient (far more rotation-invariant than central
/// differences) of every pixel `1 ≤ x < x_end` of row `y` (`1 ≤ y < height − 1`).
fn scharr_row(image: &GrayImage, y: u32, x_end: u32, mut visit: impl FnMut(u32, i32, i32)) {
    let width = image.width() as usize;
    let y = y as usize;
    let raw = image.as_raw();
    let (up, mid, down) = (
        &raw[(y - 1) * width..y * width],
        &raw[y * width..(y + 1) * width],
        &raw[(y + 1) * width..(y + 2) * width],
    );
    let p = |row: &[u8], i: usize| i32::from(row[i]);
    for x in 1..(x_end as usize).min(width.saturating_sub(1)) {
        let gx = 3 * (p(up, x + 1) - p(up, x - 1) + p(down, x + 1) - p(down, x - 1))
            + 10 * (p(mid, x + 1) - p(mid, x - 1));
        let gy = 3 * (p(down, x - 1) - p(up, x - 1) + p(down, x + 1) - p(up, x + 1))
            + 10 * (p(down, x) - p(up, x));
        visit(x as u32, gx, gy);
    }
}

/// The dominant gradient direction of a striped region (a 1-D code), in degrees, from the
/// structure tensor; `None` when the region has no clear stripe direction.
fn stripe_angle(image: &GrayImage) -> Option<f32> {
    let (angle, coherence) = stripes_of(image)?;
    (coherence >= 0.3).then_some(angle)
}

/// The structure tensor summed over the image: the dominant gradient direction in degrees and
/// how much of the gradient energy points that way (coherence, 0 for texture or a 2-D code, 1
/// for perfect stripes). `None` for a flat or tiny image.
fn stripes_of(image: &GrayImage) -> Option<(f32, f64)> {
    let (w, h) = image.dimensions();
    if w < 3 || h < 3 {
        return None;
    }
    let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        // Per row in integers (exact), then into the float sums.
        let (mut xx, mut yy, mut xy) = (0i64, 0i64, 0i64);
        scharr_row(image, y, w - 1, |_, gx, gy| {
            let (gx, gy) = (i64::from(gx), i64::from(gy));
            xx += gx * gx;
            yy += gy * gy;
            xy += gx * gy;
        });
        sxx += xx as f64;
        syy += yy as f64;
        sxy += xy as f64;
    }
    let total = sxx + syy;
    if total <= 0.0 {
        return None;
    }
    let coherence = ((sxx - syy).powi(2) + 4.0 * sxy * sxy).sqrt() / total;
    let angle = (0.5 * (2.0 * sxy).atan2(sxx - syy)).to_degrees() as f32;
    Some((angle, coherence))
}

/// Whether a crop or a striped region is worth the 1-D attempts (a decode, turning it upright,
/// two more decodes): its stripes must be coherent enough, measured over the whole piece
/// (quiet zones and neighbouring print included). On the readability corpus every Code 128 was
/// read from a piece of coherence 0.29 or more; a 2-D symbol or text is 0.0–0.2.
fn worth_a_linear_attempt(piece: &GrayImage, min_coherence: f64) -> bool {
    stripes_of(piece).is_some_and(|(_, coherence)| coherence >= min_coherence)
}

/// Minimum coherence of a crop for the 1-D attempts (see [`worth_a_linear_attempt`]).
const CROP_MIN_COHERENCE: f64 = 0.2;
/// Minimum coherence of a striped region (with its margins) for the 1-D attempts: its cells
/// were already found coherent, so what is left out is a region that was mostly margin or
/// text (every Code 128 read from a region on the corpus had 0.45 or more).
const REGION_MIN_COHERENCE: f64 = 0.3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_whole_image() {
        let image = GrayImage::from_pixel(100, 50, Luma([0]));
        let turned = rotate(&image, 90.0);
        assert!((49..=51).contains(&turned.width()));
        assert!((99..=101).contains(&turned.height()));
        // The centre stays dark.
        assert_eq!(
            turned.get_pixel(turned.width() / 2, turned.height() / 2).0[0],
            0
        );
    }

    #[test]
    fn rotation_canvas_is_bounded_for_thin_images() {
        for (w, h) in [(100_000, 1), (500_000, 1), (1, 500_000), (20_000, 3)] {
            let image = GrayImage::new(w, h);
            for degrees in SWEEP_DEGREES {
                let turned = rotate(&image, degrees);
                assert!(pixels(&turned) <= WORK_MAX_PIXELS, "{w}×{h} at {degrees}°");
            }
        }
    }

    #[test]
    fn halving_keeps_flat_areas_and_smooths_edges() {
        let flat = GrayImage::from_pixel(9, 5, Luma([77]));
        let half = halve(&flat);
        assert_eq!(half.dimensions(), (4, 2));
        assert!(half.pixels().all(|p| p.0[0] == 77));
        // A vertical edge between x = 3 and x = 4: the output pixel over it is mixed.
        let edge = GrayImage::from_fn(8, 2, |x, _| Luma([if x < 4 { 0 } else { 240 }]));
        let half = halve(&edge);
        let row: Vec<u8> = (0..4).map(|x| half.get_pixel(x, 0).0[0]).collect();
        assert_eq!(row, vec![0, 30, 210, 240]);
        assert_eq!(halve(&GrayImage::new(1, 1)).dimensions(), (1, 1));
    }

    #[test]
    fn box_shrink_bounds_any_shape_and_averages() {
        for (w, h) in [(40_000_000, 1), (1, 40_000_000), (9000, 9000), (3, 7)] {
            let image = GrayImage::from_pixel(w, h, Luma([200]));
            let shrunk = box_shrink(&image, 1_000_000);
            assert!(pixels(&shrunk) <= 1_000_000, "{w}×{h}");
            assert!(shrunk.pixels().all(|p| p.0[0] == 200), "{w}×{h}");
        }
        let checker = GrayImage::from_fn(4, 2, |x, _| Luma([if x % 2 == 0 { 0 } else { 200 }]));
        let shrunk = box_shrink(&checker, 2);
        assert_eq!(shrunk.dimensions(), (2, 1));
        assert!(shrunk.pixels().all(|p| p.0[0] == 100));
    }

    #[test]
    fn stripe_angle_finds_the_bar_direction() {
        // Vertical bars: the gradient is horizontal.
        let bars = GrayImage::from_fn(160, 120, |x, y| {
            let inside = (20..140).contains(&x) && (20..100).contains(&y);
            Luma([if inside && (x / 3) % 2 == 0 { 0 } else { 255 }])
        });
        let angle = stripe_angle(&bars).unwrap();
        assert!(
            angle.abs() < 1.0 || (angle.abs() - 180.0).abs() < 1.0,
            "{angle}"
        );
        // Turned by 30°, then turned upright again: the bars are vertical again.
        let turned = rotate(&bars, 30.0);
        let angle = stripe_angle(&turned).unwrap();
        assert!((angle - 30.0).abs() < 3.0, "{angle}");
        let upright = rotate(&turned, -angle);
        let again = stripe_angle(&upright).unwrap();
        assert!(again.abs() < 3.0, "{angle} then {again}");
    }

    #[test]
    fn candidate_regions_find_a_dark_block() {
        let mut image = GrayImage::from_pixel(800, 600, Luma([255]));
        for y in 200..300 {
            for x in 100..250 {
                if (x / 3 + y / 3) % 2 == 0 {
                    image.put_pixel(x, y, Luma([0]));
                }
            }
        }
        let (regions, uniform) =
            candidate_regions(&image, Instant::now() + Duration::from_secs(60));
        assert!(!uniform);
        let (x, y, w, h) = regions[0];
        assert!(
            x <= 100 && y <= 200 && x + w >= 250 && y + h >= 300,
            "{regions:?}"
        );
    }
}
