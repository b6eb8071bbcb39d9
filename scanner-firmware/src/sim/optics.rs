//! A simulated linear image sensor looking at a printed 1-D symbol: module placement, optical
//! blur (Gaussian point spread, integrated over each pixel), gain, offset and sensor noise.

use rand::{Rng, SeedableRng, rngs::StdRng};

/// How the symbol is imaged onto the sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Optics {
    /// Samples per module (the magnification).
    pub module_samples: f64,
    /// Standard deviation of the optical blur, in samples.
    pub blur: f64,
    /// Standard deviation of the sensor noise, in grey levels.
    pub noise: f64,
    /// Multiplier applied to the light reaching the sensor (exposure × illumination).
    pub gain: f64,
    /// Added to every sample (dark current, ambient light), in grey levels.
    pub offset: f64,
    /// Light margin on each side of the symbol, in modules.
    pub quiet_modules: f64,
    /// Whether the surface beyond the margins is dark (label edge, print) instead of light.
    pub dark_surround: bool,
    /// Sensor length in samples.
    pub samples: usize,
    /// Where the symbol's centre falls, as a fraction of the line (0.5 = middle).
    pub centre: f64,
    /// The symbol is imaged right to left.
    pub reversed: bool,
    /// Grey level of a bar and of the paper at gain 1.
    pub bar_level: f64,
    pub paper_level: f64,
    /// Noise seed (same seed, same line).
    pub seed: u64,
    /// Faded bars: (index of the bar counted from the line's start, ink as a fraction of a full
    /// bar's darkness), e.g. a one-module bar a worn print head or a scratch left pale.
    pub faint_bars: Vec<(usize, f64)>,
}

impl Default for Optics {
    fn default() -> Self {
        Self {
            module_samples: 3.0,
            blur: 0.6,
            noise: 2.0,
            gain: 1.0,
            offset: 0.0,
            quiet_modules: 10.0,
            dark_surround: false,
            samples: 2048,
            centre: 0.5,
            reversed: false,
            bar_level: 25.0,
            paper_level: 215.0,
            seed: 1,
            faint_bars: Vec::new(),
        }
    }
}

/// Standard normal cumulative distribution (Abramowitz–Stegun 7.1.26 for erf, |error| < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + if z >= 0.0 { erf } else { -erf })
}

impl Optics {
    /// Dark intervals (in samples) of the scene with their ink (1 = a full bar): the symbol's bars
    /// and, if set, the surround.
    fn dark_intervals(&self, modules: &[bool]) -> Vec<(f64, f64, f64)> {
        let m = self.module_samples;
        let width = modules.len() as f64 * m;
        let left = self.centre * self.samples as f64 - width / 2.0;
        let mut intervals = Vec::new();
        let quiet = self.quiet_modules * m;
        if self.dark_surround {
            intervals.push((f64::MIN / 4.0, left - quiet, 1.0));
        }
        let mut run_start = None;
        let mut bar = 0;
        for (i, &dark) in modules.iter().chain(std::iter::once(&false)).enumerate() {
            match (dark, run_start) {
                (true, None) => run_start = Some(i),
                (false, Some(s)) => {
                    let ink = self
                        .faint_bars
                        .iter()
                        .find(|(index, _)| *index == bar)
                        .map_or(1.0, |&(_, ink)| ink);
                    intervals.push((left + s as f64 * m, left + i as f64 * m, ink));
                    run_start = None;
                    bar += 1;
                }
                _ => {}
            }
        }
        if self.dark_surround {
            intervals.push((left + width + quiet, f64::MAX / 4.0, 1.0));
        }
        intervals
    }

    /// Renders one scanline of a symbol given as modules (`true` = bar).
    pub fn scanline(&self, modules: &[bool]) -> Vec<u8> {
        let modules: Vec<bool> = if self.reversed {
            modules.iter().rev().copied().collect()
        } else {
            modules.to_vec()
        };
        let intervals = self.dark_intervals(&modules);
        let mut rng = StdRng::seed_from_u64(self.seed);
        const SUB: usize = 8;
        let reach = 5.0 * self.blur + 1.0;
        let mut first = 0;
        (0..self.samples)
            .map(|i| {
                let lo = i as f64 - reach;
                while first < intervals.len() && intervals[first].1 < lo {
                    first += 1;
                }
                let mut darkness = 0.0;
                for j in 0..SUB {
                    let t = i as f64 + (j as f64 + 0.5) / SUB as f64;
                    for &(a, b, ink) in intervals[first..]
                        .iter()
                        .take_while(|(a, _, _)| *a < t + reach)
                    {
                        darkness += ink
                            * if self.blur > 0.0 {
                                phi((b - t) / self.blur) - phi((a - t) / self.blur)
                            } else if (a..b).contains(&t) {
                                1.0
                            } else {
                                0.0
                            };
                    }
                }
                darkness /= SUB as f64;
                let reflected = self.paper_level
                    - (self.paper_level - self.bar_level) * darkness.clamp(0.0, 1.0);
                let noise = if self.noise > 0.0 {
                    // Box–Muller.
                    let u1: f64 = rng.r#gen::<f64>().max(1e-12);
                    let u2: f64 = rng.r#gen();
                    self.noise * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                } else {
                    0.0
                };
                (reflected * self.gain + self.offset + noise)
                    .round()
                    .clamp(0.0, 255.0) as u8
            })
            .collect()
    }
}

/// The modules of a Code 128 symbol for `text` as the barcode crate prints it, without its quiet
/// zone (the [`Optics`] place the margins).
pub fn code128_modules(text: &str) -> Result<Vec<bool>, String> {
    let modules = prescrypt_barcode::render::code128_modules(text)
        .map_err(|e| format!("cannot encode {text:?} as Code 128: {e}"))?;
    Ok(trim_quiet_zone(&modules))
}

/// The GS1-128 symbol (FNC1 after the start character) of an element string as a scanner
/// transmits it (`data`: FNC1 separators as GS, 0x1D), encoded by rxing, without its quiet zone.
pub fn gs1_128_modules(data: &str) -> Result<Vec<bool>, String> {
    // rxing's Code 128 writer takes U+00F1 for FNC1.
    let text: String = core::iter::once('\u{f1}')
        .chain(
            data.chars()
                .map(|c| if c == '\u{1d}' { '\u{f1}' } else { c }),
        )
        .collect();
    code128_modules(&text)
}

/// The Code 128 printed on a prescription for `id` (the barcode crate's layout), without its
/// quiet zone.
pub fn id_code128_modules(id: &prescrypt_barcode::PrescriptionId) -> Result<Vec<bool>, String> {
    let modules = prescrypt_barcode::render::id_code128_modules(id)
        .map_err(|e| format!("cannot encode {id} as Code 128: {e}"))?;
    Ok(trim_quiet_zone(&modules))
}

/// The symbol as a printer with `dots` dots per module prints it when the heating elements at
/// the given dot columns are dead (never print): a dead element leaves a light streak across the
/// bars it crosses. Render the result with `module_samples` divided by `dots`.
pub fn printed_with_dead_dots(modules: &[bool], dots: usize, dead: &[usize]) -> Vec<bool> {
    let mut printed: Vec<bool> = modules
        .iter()
        .flat_map(|&m| std::iter::repeat_n(m, dots))
        .collect();
    for &d in dead {
        if let Some(dot) = printed.get_mut(d) {
            *dot = false;
        }
    }
    printed
}

/// The symbol with its character number `character` (0 = the start character; 11 modules each)
/// blotted: printed as 1-1-1-1-1-6 modules, which no Code 128 pattern is near, so that no
/// reading of it is possible. For lines that do not read alone.
pub fn with_blotted_character(modules: &[bool], character: usize) -> Vec<bool> {
    let mut blotted = modules.to_vec();
    let mut i = 11 * character;
    for (k, &w) in [1usize, 1, 1, 1, 1, 6].iter().enumerate() {
        for _ in 0..w {
            if let Some(module) = blotted.get_mut(i) {
                *module = k % 2 == 0;
            }
            i += 1;
        }
    }
    blotted
}

fn trim_quiet_zone(modules: &[bool]) -> Vec<bool> {
    let first = modules.iter().position(|&m| m).unwrap_or(0);
    let last = modules.iter().rposition(|&m| m).map_or(0, |i| i + 1);
    modules[first..last.max(first)].to_vec()
}

/// The modules of a Code 128 symbol from raw symbol values (start, data…, check computed here,
/// stop), for symbols a text encoder will not make (FNC3, wrong check values in tests).
pub fn code128_modules_from_values(values: &[u8], check_offset: u8) -> Vec<bool> {
    use crate::code128::pattern;
    let check = values
        .iter()
        .enumerate()
        .fold(0u32, |sum, (i, &v)| sum + u32::from(v) * (i as u32).max(1))
        % 103;
    let check = ((check + u32::from(check_offset)) % 103) as u8;
    let mut modules = Vec::new();
    let mut push = |widths: &[u8]| {
        for (i, &w) in widths.iter().enumerate() {
            modules.extend(std::iter::repeat_n(i % 2 == 0, usize::from(w)));
        }
    };
    for &v in values.iter().chain(std::iter::once(&check)) {
        push(pattern(v).map(|p| &p[..]).unwrap_or(&[]));
    }
    push(&[2, 3, 3, 1, 1, 1, 2]);
    modules
}
