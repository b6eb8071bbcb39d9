//! From one linear-sensor scanline (8-bit intensities, dark bars = low values) to the positions of
//! its edges. A survey first measures the line: its contrast, its sensor noise and its mean
//! element width. The slope is then the difference of two adjacent boxes of h samples, h sized to
//! the line (long enough to lift a full-contrast step well over the noise, a fraction of an
//! element, never so long that narrow elements blur away); an edge is a slope extremum above an
//! adaptive threshold (ZBar's `scanner.c` scheme: restarting at a fraction of the last edge's
//! slope, fading back to a noise floor over a few element widths), located to 1/32 sample by the
//! centroid of its flank. Integer-only, O(1) state besides the edges, no allocation.

/// Most samples in one scanline (a TCD1304 has 3,694).
pub const MAX_SAMPLES: usize = 4096;
/// Most edges kept from one scanline; later edges are dropped.
pub const MAX_EDGES: usize = 1024;
/// Edge positions and widths are in 1/`SUBPIXEL` sample.
pub const SUBPIXEL: u32 = 32;

/// Tuning of the edge detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The slope is the difference of two adjacent boxes of `h` samples. `h` is chosen per line
    /// from its measured noise: the smallest box that lifts a full-contrast step this many noise
    /// standard deviations (in 1/10) over the slope noise.
    pub target_snr: i32,
    /// The box is at least this fraction (in 1/100) of the line's mean element width, measured
    /// by counting mid-level crossings (a longer box averages more noise away).
    pub box_fraction: i32,
    /// Longest box, in samples.
    pub max_box: i32,
    /// Threshold restart after an edge, in 1/256 of its slope (96 = 0.375; ZBar uses 0.44, which
    /// misses a faint one-module bar next to full-ink ones).
    pub restart: i32,
    /// The threshold fades back to its floor over this many widths of the last element.
    pub fade_widths: i32,
    /// The floor is at least this many slope-noise standard deviations, in 1/10.
    pub noise_sigmas: i32,
    /// The floor is at most the line's contrast step divided by this.
    pub floor_divisor: i32,
    /// Lines with less contrast (max − min) than this are not decoded.
    pub min_contrast: u8,
    /// …nor lines whose contrast is under this many noise standard deviations (in 1/10): a floor
    /// relative to the sensor noise, so a faded label in a quiet line still reads.
    pub min_contrast_sigmas: i32,
}

impl EdgeConfig {
    /// A box of about 0.3 element, or longer if the noise needs it (tried first).
    pub const SHARP: Self = Self {
        target_snr: 60,
        box_fraction: 30,
        max_box: MAX_BOX,
        restart: 96,
        fade_widths: 8,
        noise_sigmas: 35,
        floor_divisor: 7,
        min_contrast: 28,
        min_contrast_sigmas: 80,
    };
    /// Only as long a box as the noise needs: for narrow modules and heavy blur, where even a
    /// third of an element is too long (the last resort of single-profile reads).
    pub const FINE: Self = Self {
        box_fraction: 0,
        ..Self::SHARP
    };
    /// A box of about half an element, for noisy lines (the fallback).
    pub const SMOOTH: Self = Self {
        box_fraction: 45,
        ..Self::SHARP
    };
}

/// Longest box of the slope filter, in samples.
pub const MAX_BOX: i32 = 16;

impl Default for EdgeConfig {
    fn default() -> Self {
        Self::SHARP
    }
}

/// Whether a line is worth decoding, and if not which way to move the exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Contrast is enough.
    Good,
    /// Too little contrast and dark: lengthen the exposure.
    TooDark,
    /// Too little contrast and clipped at the top: shorten the exposure.
    TooBright,
    /// Too little contrast at a usable level: nothing in view.
    Featureless,
}

/// Intensity range of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contrast {
    pub min: u8,
    pub max: u8,
}

impl Contrast {
    /// Measures a line.
    pub fn of(samples: &[u8]) -> Self {
        let (min, max) = samples
            .iter()
            .fold((u8::MAX, u8::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        Self { min, max }
    }

    /// Judges the exposure.
    pub fn exposure(&self, min_contrast: u8) -> Exposure {
        if self.max.saturating_sub(self.min) >= min_contrast {
            Exposure::Good
        } else if self.max < 128 {
            Exposure::TooDark
        } else if self.max >= 250 {
            Exposure::TooBright
        } else {
            Exposure::Featureless
        }
    }
}

/// The edges of one line: element `k` runs from edge `k-1` to edge `k` (element 0 from the
/// line's start, the last element to its end); colours alternate.
#[derive(Debug, Clone)]
pub struct Edges {
    pos: [u32; MAX_EDGES],
    len: usize,
    first_is_bar: bool,
    end: u32,
}

impl Default for Edges {
    fn default() -> Self {
        Self::new()
    }
}

impl Edges {
    /// No edges.
    pub const fn new() -> Self {
        Self {
            pos: [0; MAX_EDGES],
            len: 0,
            first_is_bar: false,
            end: 0,
        }
    }

    /// Number of edges found.
    pub fn edge_count(&self) -> usize {
        self.len
    }

    /// Number of elements (edges + 1, or 0 for a line without edges).
    pub fn element_count(&self) -> usize {
        if self.len == 0 { 0 } else { self.len + 1 }
    }

    /// Width of element `k` in 1/32 sample.
    pub fn width(&self, k: usize) -> u32 {
        let start = if k == 0 { 0 } else { self.pos[k - 1] };
        let end = if k < self.len { self.pos[k] } else { self.end };
        end.saturating_sub(start)
    }

    /// Width of the `n` elements from element `k` on, in 1/32 sample (one subtraction, however
    /// many elements).
    pub fn span(&self, k: usize, n: usize) -> u32 {
        let start = if k == 0 { 0 } else { self.pos[k - 1] };
        let last = k + n - 1;
        let end = if last < self.len {
            self.pos[last]
        } else {
            self.end
        };
        end.saturating_sub(start)
    }

    /// Whether element `k` is dark.
    pub fn is_bar(&self, k: usize) -> bool {
        self.first_is_bar == (k % 2 == 0)
    }

    /// Edge positions in 1/32 sample.
    pub fn positions(&self) -> &[u32] {
        &self.pos[..self.len]
    }

    fn push(&mut self, position: u32, rising: bool) {
        if self.len == 0 {
            // A rising edge (dark → light) first means the line starts on a bar.
            self.first_is_bar = rising;
        }
        if self.len < MAX_EDGES {
            self.pos[self.len] = position;
            self.len += 1;
        }
    }

    fn replace_last(&mut self, position: u32) {
        if self.len > 0 {
            self.pos[self.len - 1] = position;
        }
    }
}

/// Samples of a run weighed for its position.
const MAX_FLANK: i32 = 512;

/// A run of samples whose slope has one sign and exceeds the noise floor; it is an edge if its
/// peak exceeds the adaptive threshold in force when it began.
#[derive(Debug, Clone, Copy)]
struct Run {
    sign: i32,
    peak: i32,
    first_index: i32,
    last_index: i32,
    /// Σ (slope − floor) over the run's first `MAX_FLANK` samples.
    weight: i32,
    /// Σ (slope − floor) × (index − first_index) over the same samples. No overflow: slopes are
    /// at most 255 × MAX_BOX = 4,080, so moment < 4,080 × 512² < 2^31.
    moment: i32,
}

impl Run {
    /// Sub-pixel edge position (1/32 sample): the centroid of the slope above the threshold,
    /// which uses the whole flank (robust to noise) and is exact for a symmetric blur.
    /// The slope at index `i` lies between samples `i-1` and `i`.
    fn position(&self, offset: i32) -> u32 {
        let scale = SUBPIXEL as i32;
        let centroid = if self.weight > 0 {
            // 32-bit only (a Cortex-M4 has no 64-bit divide): quotient and scaled remainder.
            let whole = self.moment / self.weight;
            let fraction = (self.moment % self.weight) * scale / self.weight;
            (self.first_index + whole) * scale + fraction
        } else {
            self.last_index * scale
        };
        (centroid - scale / 2 - offset * scale).max(0) as u32
    }
}

/// The detector's running state between samples.
#[derive(Debug)]
struct Tracker {
    floor: i32,
    threshold: i32,
    /// Where `threshold` was set; it fades linearly by `fade_step` per sample from there.
    threshold_index: i32,
    fade_step: i32,
    last_sign: i32,
    last_magnitude: i32,
    last_index: i32,
}

impl Tracker {
    /// The threshold in force at `index` (evaluated only when a run starts).
    fn threshold_at(&self, index: i32) -> i32 {
        (self.threshold - self.fade_step * (index - self.threshold_index)).max(self.floor)
    }

    fn emit(&mut self, run: &Run, offset: i32, config: &EdgeConfig, edges: &mut Edges) {
        let sign = run.sign;
        let magnitude = run.peak;
        if sign == self.last_sign {
            // Two slopes the same way in a row: one ragged edge; keep the steeper.
            if magnitude <= self.last_magnitude {
                return;
            }
            edges.replace_last(run.position(offset));
        } else {
            edges.push(run.position(offset), sign > 0);
        }
        let width = (run.last_index - self.last_index).max(1);
        self.last_sign = sign;
        self.last_magnitude = magnitude;
        self.last_index = run.last_index;
        self.threshold = ((magnitude * config.restart) >> 8).max(self.floor);
        self.fade_step = ((self.threshold - self.floor) / (config.fade_widths * width)).max(1);
        self.threshold_index = run.last_index;
    }
}

/// What one cheap pass over a line tells about it.
struct Survey {
    contrast: Contrast,
    /// Sensor noise σ in 1/16 grey level, from the lower quartile and the median of
    /// |x[i] − x[i−1]| (sampled on every 4th pair, which is plenty for a quantile).
    noise16: i32,
    /// Mean width of the elements between the first and the last mid-level crossing, in 1/16
    /// sample (0: fewer than two crossings); with hysteresis, so noise does not count.
    element16: i32,
}

/// The value below which `rank` of the histogram's counts lie, in 1/16, interpolated within
/// the bin (bin v of integer differences covers [v − ½, v + ½)).
fn quantile16(histogram: &[u16; 256], rank: u32) -> i32 {
    let mut seen = 0u32;
    for (value, &count) in histogram.iter().enumerate() {
        let count = u32::from(count);
        if seen + count >= rank {
            let within = ((rank - seen) * 16 / count.max(1)) as i32;
            return (value as i32 * 16 - 8 + within).max(0);
        }
        seen += count;
    }
    255 * 16
}

fn survey(samples: &[u8]) -> Survey {
    let contrast = Contrast::of(samples);
    let mut histogram = [0u16; 256];
    let mut pairs = 0u32;
    let mut clipped = 0u32;
    for quad in samples.chunks_exact(4) {
        let bin = usize::from(quad[0].abs_diff(quad[1]));
        histogram[bin] = histogram[bin].wrapping_add(1);
        pairs += 1;
        // Pairs clipped at white or black show no noise: leave them out.
        // (Equal samples, at 0 or 255: 255 + 1 and 0 + 1 wrap to 0 and 1.)
        clipped += u32::from(bin == 0 && quad[0].wrapping_add(1) <= 1);
    }
    histogram[0] = histogram[0].wrapping_sub(clipped as u16);
    let pairs = pairs - clipped;
    let quartile16 = quantile16(&histogram, pairs.div_ceil(4));
    let median16 = quantile16(&histogram, pairs.div_ceil(2));
    // For |N(0, 2σ²)| the lower quartile is 0.45 σ and the median 0.954 σ. Both overstate the
    // noise where sample pairs straddle edges, the median more so where modules are narrow.
    let noise16 = (quartile16 * 100 / 45).min(median16 * 100 / 95);

    // Mid-level crossings with hysteresis: ± max(20 % of the range, 3 σ).
    let mid = (i32::from(contrast.min) + i32::from(contrast.max)) / 2;
    let range = i32::from(contrast.max - contrast.min);
    let band = (range / 5).max(noise16 * 3 / 16);
    let (high, low) = (mid + band, mid - band);
    // Branch-light: `beyond` is negative once the sample has crossed the band away from the
    // current side (`flip` = 0 above the band, −1 below it, which mirrors the comparison).
    let mut flip = if samples.first().is_some_and(|&x| i32::from(x) > mid) {
        0
    } else {
        -1
    };
    let mut threshold = if flip == 0 { low } else { high };
    let (mut crossings, mut first, mut last) = (0i32, 0i32, 0i32);
    for (index, &x) in (0i32..).zip(samples) {
        let beyond = (i32::from(x) - threshold) ^ flip;
        if beyond < 0 {
            flip = !flip;
            threshold = if flip == 0 { low } else { high };
            if crossings == 0 {
                first = index;
            }
            last = index;
            crossings += 1;
        }
    }
    let element16 = if crossings >= 2 {
        (last - first) * 16 / (crossings - 1)
    } else {
        0
    };
    Survey {
        contrast,
        noise16,
        element16,
    }
}

/// √(2h) × 16 for box lengths h = 0..=MAX_BOX (the slope noise in units of the sample noise).
const SQRT_2H_16: [i32; MAX_BOX as usize + 1] = [
    0, 23, 32, 39, 45, 51, 55, 60, 64, 68, 72, 75, 78, 82, 85, 88, 91,
];

/// The box length for a line: the smallest h with h·C / (σ·√(2h)) ≥ target, i.e.
/// h ≥ 2 (target·σ / C)², or the configured fraction of the mean element width if longer.
fn box_length(step16: i32, survey: &Survey, config: &EdgeConfig) -> i32 {
    let ratio = config.target_snr * survey.noise16 * 10 / step16.max(1); // target·σ/C in 1/100
    let for_noise = (2 * ratio * ratio + 9_999) / (100 * 100);
    let for_width = survey.element16 * config.box_fraction / (16 * 100);
    // A box longer than ~0.6 of an element blurs the narrow ones away, whatever the noise.
    let longest = (survey.element16 * 6 / (16 * 10)).clamp(1, config.max_box);
    for_noise.max(for_width).clamp(1, longest)
}

/// Finds the edges of `samples` into `edges`; returns the line's contrast. A line with too little
/// contrast, absolute or relative to its noise, yields no edges.
pub fn find_edges(samples: &[u8], config: &EdgeConfig, edges: &mut Edges) -> Contrast {
    let samples = &samples[..samples.len().min(MAX_SAMPLES)];
    edges.len = 0;
    edges.end = samples.len() as u32 * SUBPIXEL;
    if samples.len() < 3 {
        return Contrast::of(samples);
    }
    let survey = survey(samples);
    let (contrast, noise16) = (survey.contrast, survey.noise16);
    if contrast.exposure(config.min_contrast) != Exposure::Good {
        return contrast;
    }
    let range16 = i32::from(contrast.max - contrast.min) * 16;
    if range16 * 10 < config.min_contrast_sigmas * noise16 {
        return contrast;
    }
    // The range of a noisy line overstates the bars' contrast by about ±3σ.
    let step16 = (range16 - 6 * noise16).max(range16 / 2);
    let h = box_length(step16, &survey, config);
    let box_samples = h as usize;
    if samples.len() <= 2 * box_samples {
        return contrast;
    }
    // Slopes are box differences: h × grey levels.
    let slope_noise = noise16 * SQRT_2H_16[box_samples] / (16 * 16);
    let ceiling = step16 * h / (16 * config.floor_divisor);
    let floor = (slope_noise * config.noise_sigmas / 10).clamp(1, ceiling.max(1));
    let mut tracker = Tracker {
        floor,
        threshold: floor,
        threshold_index: 0,
        fade_step: 1,
        last_sign: 0,
        last_magnitude: 0,
        last_index: 0,
    };
    let mut slope: i32 = samples[box_samples..2 * box_samples]
        .iter()
        .map(|&x| i32::from(x))
        .sum::<i32>()
        - samples[..box_samples]
            .iter()
            .map(|&x| i32::from(x))
            .sum::<i32>();
    // The slope at index i compares samples (i−2h, i−h] and (i−h, i]: it is centred between
    // samples i−h and i−h+1.
    let offset = h - 1;
    // The current run, in locals (the hot loop): `sign` 0 = no run.
    let (mut sign, mut first_index, mut peak, mut weight, mut moment) = (0i32, 0, 0, 0, 0);
    let first = 2 * box_samples;
    let newest = samples[first..].iter();
    let middle = samples[box_samples..].iter();
    for (index, ((&new, &mid), &old)) in (first as i32..).zip(newest.zip(middle).zip(samples)) {
        slope += i32::from(new) + i32::from(old) - 2 * i32::from(mid);
        let magnitude = slope.abs();
        let above = magnitude > floor;
        // Same sign as the run (sign bits equal) and above the floor: the flank goes on.
        if above && sign != 0 && (slope ^ sign) >= 0 {
            let offset = index - first_index;
            if offset < MAX_FLANK {
                let w = magnitude - floor;
                weight += w;
                moment += w * offset;
            }
            peak = peak.max(magnitude);
            continue;
        }
        if sign != 0 {
            let run = Run {
                sign,
                peak,
                first_index,
                last_index: index - 1,
                weight,
                moment,
            };
            if peak > tracker.threshold_at(first_index) {
                tracker.emit(&run, offset, config, edges);
            }
            sign = 0;
        }
        if above {
            sign = if slope > 0 { 1 } else { -1 };
            first_index = index;
            peak = magnitude;
            weight = magnitude - floor;
            moment = 0;
        }
    }
    if sign != 0 && peak > tracker.threshold_at(first_index) {
        let last_index = (samples.len() - 1) as i32;
        let run = Run {
            sign,
            peak,
            first_index,
            last_index,
            weight,
            moment,
        };
        tracker.emit(&run, offset, config, edges);
    }
    contrast
}
