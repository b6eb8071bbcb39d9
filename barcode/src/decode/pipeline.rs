//! The escalation pipeline: cheap attempts first, costlier ones only while a code is missing and
//! the time budget lasts.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{Interpolation, warp_into_with};
use imageproc::region_labelling::{Connectivity, connected_components};
use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
use rxing::{
    BarcodeFormat, Binarizer, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader,
    RXingResult, RXingResultMetadataType, RXingResultMetadataValue, Reader,
};

use super::{CodeFormat, DecodeOptions, DecodedCode, Payload};

/// Decodes Code 128, Data Matrix and QR from images within limits and a time budget.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    options: DecodeOptions,
}

/// The two kinds of code a token carries: the 1-D ID and the 2-D token (Data Matrix, or QR on a
/// phone). The pipeline stops once it has one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Linear,
    Matrix,
}

impl Group {
    fn formats(self) -> HashSet<BarcodeFormat> {
        match self {
            Self::Linear => HashSet::from([BarcodeFormat::CODE_128]),
            Self::Matrix => HashSet::from([BarcodeFormat::DATA_MATRIX, BarcodeFormat::QR_CODE]),
        }
    }
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
/// The rotation sweep over a whole image works on a copy of at most this many pixels.
const SWEEP_MAX_PIXELS: u64 = 2_000_000;

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Self { options }
    }

    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes a grey image: every code found, ours validated (see
    /// [`Payload::classify`](super::Payload::classify)), at most one 1-D and one 2-D code.
    pub fn decode_luma(&self, image: &GrayImage) -> Vec<DecodedCode> {
        let mut run = Run {
            deadline: Instant::now() + self.options.time_budget,
            found: Vec::new(),
        };
        run.escalate(image);
        run.found.sort_by_key(|code| code.format);
        run.found
    }
}

struct Run {
    deadline: Instant,
    found: Vec<DecodedCode>,
}

impl Run {
    fn missing(&self) -> Vec<Group> {
        let linear = self.found.iter().any(|c| c.format.is_linear());
        let matrix = self.found.iter().any(|c| !c.format.is_linear());
        let mut missing = Vec::new();
        if !linear {
            missing.push(Group::Linear);
        }
        if !matrix {
            missing.push(Group::Matrix);
        }
        missing
    }

    fn finished(&self) -> bool {
        self.missing().is_empty() || Instant::now() >= self.deadline
    }

    fn escalate(&mut self, image: &GrayImage) {
        let all = [Group::Linear, Group::Matrix];
        // 1. The 2-D code in the image as it is; the 1-D code in striped regions (a cheap
        //    structure-tensor map), each turned upright by its stripe direction, so a code at
        //    any angle costs one small decode; then the 1-D code in the whole image.
        if self.attempt(image, Binarization::Hybrid, &[Group::Matrix]) {
            return;
        }
        if self.missing().contains(&Group::Linear) {
            for ((x, y, w, h), angle) in linear_regions(image) {
                let crop = imageops::crop_imm(image, x, y, w, h).to_image();
                if self.turned(&crop, angle) {
                    return;
                }
            }
        }
        if self.attempt(image, Binarization::Hybrid, &[Group::Linear]) {
            return;
        }
        // 2. Crops of high-contrast regions: each symbol alone (rxing's Data Matrix detector
        //    returns one candidate per image, so a symbol next to other print can hide), and
        //    the 1-D code turned upright — the usual rescue for phone photos.
        let regions: Vec<GrayImage> = candidate_regions(image)
            .into_iter()
            .map(|(x, y, w, h)| {
                let crop = imageops::crop_imm(image, x, y, w, h).to_image();
                if crop.width().max(crop.height()) < 400 {
                    resize(&crop, 2.0)
                } else {
                    crop
                }
            })
            .collect();
        for crop in &regions {
            if self.attempt(crop, Binarization::Hybrid, &all) || self.upright(crop) {
                return;
            }
        }
        // 3. The second binarizer, on the whole image and on the crops.
        if self.attempt(image, Binarization::GlobalHistogram, &all) {
            return;
        }
        for crop in &regions {
            if self.attempt(crop, Binarization::GlobalHistogram, &all) {
                return;
            }
        }
        // 4. Negative print or a dark-mode phone screen.
        let mut inverted = image.clone();
        imageops::invert(&mut inverted);
        if self.attempt(&inverted, Binarization::Hybrid, &all) {
            return;
        }
        drop(inverted);
        // 5. Scale pyramid: halving averages out noise and blur-smeared edges; doubling helps
        //    symbols whose modules are only a pixel or two wide.
        for scale in pyramid(image.width(), image.height()) {
            let scaled = resize(image, scale);
            for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
                if self.attempt(&scaled, binarization, &all) {
                    return;
                }
            }
        }
        // 6. Rotation sweeps for a tilted 1-D code the stripe estimate missed: each crop, then
        //    the whole image.
        for crop in &regions {
            if self.sweep(crop) {
                return;
            }
        }
        let pixels = u64::from(image.width()) * u64::from(image.height());
        if pixels > SWEEP_MAX_PIXELS {
            let scale = (SWEEP_MAX_PIXELS as f64 / pixels as f64).sqrt() as f32;
            let _ = self.sweep(&resize(image, scale));
        } else {
            let _ = self.sweep(image);
        }
    }

    /// Turns a crop so its stripes stand upright and tries the 1-D code. Returns whether the
    /// run is finished.
    fn upright(&mut self, crop: &GrayImage) -> bool {
        if !self.missing().contains(&Group::Linear) {
            return self.finished();
        }
        // Bars two or three pixels wide blur into each other when turned: turn a doubled copy.
        let fine = if crop.width().max(crop.height()) < 600 {
            resize(crop, 2.0)
        } else {
            crop.clone()
        };
        let Some(angle) = stripe_angle(&fine) else {
            return self.finished();
        };
        self.turned_fine(&fine, angle)
    }

    /// Turns a crop by its stripe direction `angle` and tries the 1-D code.
    fn turned(&mut self, crop: &GrayImage, angle: f32) -> bool {
        let fine = if crop.width().max(crop.height()) < 600 {
            resize(crop, 2.0)
        } else {
            crop.clone()
        };
        self.turned_fine(&fine, angle)
    }

    fn turned_fine(&mut self, fine: &GrayImage, angle: f32) -> bool {
        // A second estimate on the turned crop removes most of the first one's bias.
        let first = rotate(fine, -angle);
        let upright = match stripe_angle(&first) {
            Some(residual) if residual.abs() > 1.5 && residual.abs() < 30.0 => {
                rotate(fine, -(angle + residual))
            }
            _ => first,
        };
        for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
            if self.attempt(&upright, binarization, &[Group::Linear]) {
                return true;
            }
        }
        self.finished()
    }

    /// Tries the 1-D code at each sweep angle. Returns whether the run is finished.
    fn sweep(&mut self, image: &GrayImage) -> bool {
        for degrees in SWEEP_DEGREES {
            if !self.missing().contains(&Group::Linear) || self.finished() {
                return self.finished();
            }
            let turned = rotate(image, degrees);
            for binarization in [Binarization::Hybrid, Binarization::GlobalHistogram] {
                if self.attempt(&turned, binarization, &[Group::Linear]) {
                    return true;
                }
            }
        }
        self.finished()
    }

    /// One decode per still-missing group among `groups`. Returns whether the run is finished.
    fn attempt(&mut self, image: &GrayImage, binarization: Binarization, groups: &[Group]) -> bool {
        for group in groups {
            if self.finished() {
                return true;
            }
            if !self.missing().contains(group) {
                continue;
            }
            if let Some(result) = decode_once(image, binarization, group.formats()) {
                self.record(&result);
            }
        }
        self.finished()
    }

    fn record(&mut self, result: &RXingResult) {
        let format = match result.getBarcodeFormat() {
            BarcodeFormat::CODE_128 => CodeFormat::Code128,
            BarcodeFormat::DATA_MATRIX => CodeFormat::DataMatrix,
            BarcodeFormat::QR_CODE => CodeFormat::Qr,
            _ => return,
        };
        let text = result.getText().to_owned();
        // A text that looks like ours but fails our check is a misread: drop it and keep looking.
        let Ok(payload) = Payload::classify(&text) else {
            return;
        };
        if self
            .found
            .iter()
            .any(|code| code.format == format && code.text == text)
        {
            return;
        }
        let aim = match result
            .getRXingResultMetadata()
            .get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
        {
            Some(RXingResultMetadataValue::SymbologyIdentifier(aim)) if aim.starts_with(']') => {
                aim.clone()
            }
            _ => format.default_aim().to_owned(),
        };
        self.found.push(DecodedCode {
            format,
            text,
            aim,
            payload,
        });
    }
}

/// One rxing decode, shielded against panics inside the decoder.
fn decode_once(
    image: &GrayImage,
    binarization: Binarization,
    formats: HashSet<BarcodeFormat>,
) -> Option<RXingResult> {
    let hints = DecodeHints {
        PossibleFormats: Some(formats),
        TryHarder: Some(true),
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

/// The image turned by `degrees` on a canvas large enough to keep every corner, padded white.
fn rotate(image: &GrayImage, degrees: f32) -> GrayImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (image.width() as f32, image.height() as f32);
    let out_w = (w * cos.abs() + h * sin.abs()).ceil() as u32;
    let out_h = (w * sin.abs() + h * cos.abs()).ceil() as u32;
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ox, oy) = (out_w as f32 / 2.0, out_h as f32 / 2.0);
    let mut out = GrayImage::new(out_w, out_h);
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
fn candidate_regions(image: &GrayImage) -> Vec<(u32, u32, u32, u32)> {
    let half = image;
    let long = half.width().max(half.height());
    let block = long.div_ceil(REGION_MAP_SIZE).max(1);
    let (w, h) = (half.width().div_ceil(block), half.height().div_ceil(block));
    if w < 4 || h < 4 {
        return Vec::new();
    }
    let mut contrast = vec![0u8; (w * h) as usize];
    for by in 0..h {
        for bx in 0..w {
            let (mut lo, mut hi) = (255u8, 0u8);
            for y in by * block..((by + 1) * block).min(half.height()) {
                for x in bx * block..((bx + 1) * block).min(half.width()) {
                    let v = half.get_pixel(x, y).0[0];
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            contrast[(by * w + bx) as usize] = hi.saturating_sub(lo);
        }
    }
    let mut sorted = contrast.clone();
    sorted.sort_unstable();
    let typical = u32::from(sorted[sorted.len() / 2]);
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
    regions
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
        .collect()
}

/// `(x0, y0, x1, y1)`, inclusive.
type Corners = (u32, u32, u32, u32);
/// A component of striped cells: its corners, striped cell count, summed structure tensor.
type StripedPart = (Corners, u32, [f32; 3]);

/// Regions that look like a 1-D code — strong, consistently oriented stripes — with the
/// stripes' gradient direction in degrees. Found from the structure tensor summed over cells of
/// the image: a cell belongs to a barcode when its gradient energy is well above the typical
/// (paper) cell and its orientation is coherent; text and 2-D codes are not coherent.
fn linear_regions(image: &GrayImage) -> Vec<((u32, u32, u32, u32), f32)> {
    let (iw, ih) = image.dimensions();
    let cell = (iw.max(ih) / 200).max(4);
    let (w, h) = (iw / cell, ih / cell);
    if w < 4 || h < 4 {
        return Vec::new();
    }
    let mut tensors = vec![[0f32; 3]; (w * h) as usize];
    let p = |x: u32, y: u32| f32::from(image.get_pixel(x, y).0[0]);
    for y in 1..(h * cell).min(ih - 1) {
        for x in 1..(w * cell).min(iw - 1) {
            let gx = 3.0 * (p(x + 1, y - 1) - p(x - 1, y - 1) + p(x + 1, y + 1) - p(x - 1, y + 1))
                + 10.0 * (p(x + 1, y) - p(x - 1, y));
            let gy = 3.0 * (p(x - 1, y + 1) - p(x - 1, y - 1) + p(x + 1, y + 1) - p(x + 1, y - 1))
                + 10.0 * (p(x, y + 1) - p(x, y - 1));
            let t = &mut tensors[((y / cell) * w + x / cell) as usize];
            t[0] += gx * gx;
            t[1] += gy * gy;
            t[2] += gx * gy;
        }
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
    found
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
        .collect()
}

/// The dominant gradient direction of a striped region (a 1-D code), in degrees, from the
/// structure tensor; `None` when the region has no clear stripe direction.
fn stripe_angle(image: &GrayImage) -> Option<f32> {
    let (w, h) = image.dimensions();
    if w < 3 || h < 3 {
        return None;
    }
    let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
    let p = |x: u32, y: u32| f64::from(image.get_pixel(x, y).0[0]);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            // Scharr kernels: far more rotation-invariant than central differences.
            let gx = 3.0 * (p(x + 1, y - 1) - p(x - 1, y - 1) + p(x + 1, y + 1) - p(x - 1, y + 1))
                + 10.0 * (p(x + 1, y) - p(x - 1, y));
            let gy = 3.0 * (p(x - 1, y + 1) - p(x - 1, y - 1) + p(x + 1, y + 1) - p(x + 1, y - 1))
                + 10.0 * (p(x, y + 1) - p(x, y - 1));
            sxx += gx * gx;
            syy += gy * gy;
            sxy += gx * gy;
        }
    }
    let total = sxx + syy;
    if total <= 0.0 {
        return None;
    }
    let coherence = ((sxx - syy).powi(2) + 4.0 * sxy * sxy).sqrt() / total;
    (coherence >= 0.3).then(|| (0.5 * (2.0 * sxy).atan2(sxx - syy)).to_degrees() as f32)
}

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
        let regions = candidate_regions(&image);
        let (x, y, w, h) = regions[0];
        assert!(
            x <= 100 && y <= 200 && x + w >= 250 && y + h >= 300,
            "{regions:?}"
        );
    }
}
