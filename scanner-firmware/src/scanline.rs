//! From one linear-sensor scanline (8-bit intensities, dark bars = low values) to the positions of
//! its edges, the way ZBar's `scanner.c` does it: an EWMA-smoothed profile, its first derivative,
//! an edge at each slope extremum above an adaptive threshold (restarting at ~0.44 × the last
//! edge's slope, fading back over a few element widths), located to 1/32 sample by a parabola
//! through the derivative around the peak. Streaming, integer-only, O(1) state besides the edges.

/// Most samples in one scanline (a TCD1304 has 3,694).
pub const MAX_SAMPLES: usize = 4096;
/// Most edges kept from one scanline; later edges are dropped.
pub const MAX_EDGES: usize = 1024;
/// Edge positions and widths are in 1/`SUBPIXEL` sample.
pub const SUBPIXEL: u32 = 32;

/// Tuning of the edge detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConfig {
    /// EWMA weight of the new sample, in 1/32 (25 ≈ 0.78, ZBar's value; smaller smooths more).
    pub ewma_weight: i32,
    /// Noise gain of that EWMA-and-difference filter, in 1/256: w / sqrt(2 − w).
    pub noise_gain: i32,
    /// Threshold restart after an edge, in 1/256 of its slope (113 ≈ 0.44).
    pub restart: i32,
    /// The threshold fades back to its floor over this many widths of the last element.
    pub fade_widths: i32,
    /// The floor is at least this many noise standard deviations, in 1/10.
    pub noise_sigmas: i32,
    /// The floor is at most the line's contrast divided by this.
    pub floor_divisor: i32,
    /// Lines with less contrast (max − min) than this are not decoded.
    pub min_contrast: u8,
}

impl EdgeConfig {
    /// Light smoothing for sharp, narrow modules (tried first).
    pub const SHARP: Self = Self {
        ewma_weight: 25,
        noise_gain: 181,
        restart: 113,
        fade_widths: 8,
        noise_sigmas: 35,
        floor_divisor: 7,
        min_contrast: 40,
    };
    /// Heavier smoothing for blurred or noisy lines of wide modules (the fallback).
    pub const SMOOTH: Self = Self {
        ewma_weight: 11,
        noise_gain: 68,
        ..Self::SHARP
    };
}

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

/// A run of samples whose slope has one sign and exceeds the noise floor; it is an edge if its
/// peak exceeds the adaptive threshold in force when it began.
#[derive(Debug, Clone, Copy)]
struct Run {
    sign: i32,
    base: i32,
    threshold: i32,
    peak: i32,
    first_index: i32,
    last_index: i32,
    weight: i32,
    /// Σ weight × (index − first_index).
    moment: i32,
}

impl Run {
    fn start(index: i32, slope: i32, floor: i32, threshold: i32) -> Self {
        let mut run = Self {
            sign: slope.signum(),
            base: floor,
            threshold,
            peak: 0,
            first_index: index,
            last_index: index,
            weight: 0,
            moment: 0,
        };
        run.add(index, slope.abs());
        run
    }

    fn add(&mut self, index: i32, magnitude: i32) {
        // No overflow: every slope in a run exceeds the floor (≥ 1 grey level), so a run spans at
        // most 255 samples and its weights sum to at most 255 × 16: moment < 2^20.
        let w = magnitude - self.base;
        self.weight = self.weight.wrapping_add(w);
        self.moment = self
            .moment
            .wrapping_add(w.wrapping_mul(index - self.first_index));
        self.peak = self.peak.max(magnitude);
        self.last_index = index;
    }

    /// Sub-pixel edge position (1/32 sample): the centroid of the slope above the threshold,
    /// which uses the whole flank (robust to noise) and is exact for a symmetric blur.
    /// The slope at index `i` lies between samples `i-1` and `i`.
    fn position(&self) -> u32 {
        let scale = SUBPIXEL as i32;
        let centroid = if self.weight > 0 {
            // 32-bit only (a Cortex-M4 has no 64-bit divide): quotient and scaled remainder.
            let whole = self.moment / self.weight;
            let fraction = (self.moment % self.weight) * scale / self.weight;
            (self.first_index + whole) * scale + fraction
        } else {
            self.last_index * scale
        };
        (centroid - scale / 2).max(0) as u32
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

    fn emit(&mut self, run: &Run, config: &EdgeConfig, edges: &mut Edges) {
        let sign = run.sign;
        let magnitude = run.peak;
        if sign == self.last_sign {
            // Two slopes the same way in a row: one ragged edge; keep the steeper.
            if magnitude <= self.last_magnitude {
                return;
            }
            edges.replace_last(run.position());
        } else {
            edges.push(run.position(), sign > 0);
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

/// Contrast of the line and the median of |x[i] − x[i−1]| (a robust measure of sensor noise
/// where modules span several samples; sampled on every 4th pair, which is plenty for a median).
fn survey(samples: &[u8]) -> (Contrast, i32) {
    let contrast = Contrast::of(samples);
    let mut histogram = [0u16; 256];
    let mut pairs = 0u32;
    for quad in samples.chunks_exact(4) {
        let bin = usize::from(quad[0].abs_diff(quad[1]));
        histogram[bin] = histogram[bin].wrapping_add(1);
        pairs += 1;
    }
    let half = pairs.div_ceil(2);
    let mut seen = 0u32;
    let mut median = 255;
    for (value, &count) in histogram.iter().enumerate() {
        seen += u32::from(count);
        if seen >= half {
            median = value as i32;
            break;
        }
    }
    (contrast, median)
}

/// Finds the edges of `samples` into `edges`; returns the line's contrast. A line with too little
/// contrast yields no edges.
pub fn find_edges(samples: &[u8], config: &EdgeConfig, edges: &mut Edges) -> Contrast {
    let samples = &samples[..samples.len().min(MAX_SAMPLES)];
    edges.len = 0;
    edges.end = samples.len() as u32 * SUBPIXEL;
    if samples.len() < 3 {
        return Contrast::of(samples);
    }
    let (contrast, median_difference) = survey(samples);
    if contrast.exposure(config.min_contrast) != Exposure::Good {
        return contrast;
    }
    let ceiling = i32::from(contrast.max - contrast.min) * 16 / config.floor_divisor;
    // Slope noise from the median absolute sample difference (σ_diff ≈ median / 0.6745).
    let noise = (median_difference * 16 * 100 / 67 * config.noise_gain) >> 8;
    let floor = (noise * config.noise_sigmas / 10).clamp(16, ceiling.max(16));
    let mut tracker = Tracker {
        floor,
        threshold: floor,
        threshold_index: 0,
        fade_step: 1,
        last_sign: 0,
        last_magnitude: 0,
        last_index: 0,
    };
    // Smoothed intensity in 1/16 grey level; the current run is kept in locals (hot loop).
    let mut smooth = i32::from(samples[0]) * 16;
    let floor = tracker.floor;
    let weight = config.ewma_weight;
    let mut run = Run::start(0, 0, floor, 0);
    let mut in_run = false;

    for (i, &sample) in samples.iter().enumerate().skip(1) {
        let index = i as i32;
        let step = ((i32::from(sample) * 16 - smooth) * weight) >> 5;
        smooth += step;
        let slope = step;
        let magnitude = slope.abs();

        if in_run {
            // Same sign as the run (sign bits equal) and above the floor: the flank goes on.
            if (slope ^ run.sign) >= 0 && magnitude > floor {
                run.add(index, magnitude);
                continue;
            }
            if run.peak > run.threshold {
                tracker.emit(&run, config, edges);
            }
            in_run = false;
        }
        if magnitude > floor {
            run = Run::start(index, slope, floor, tracker.threshold_at(index));
            in_run = true;
        }
    }
    if in_run && run.peak > run.threshold {
        tracker.emit(&run, config, edges);
    }
    contrast
}
