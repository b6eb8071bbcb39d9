//! Code 128 from the element widths of one scanline (ISO/IEC 15417).
//!
//! Each character is 6 elements over 11 modules; it is identified by its four edge-to-edge sums
//! (bar+space, space+bar, …) rounded to modules — the reference decode, insensitive to ink spread
//! and blur that widen bars at the expense of spaces — with a nearest-pattern fallback. A symbol
//! needs its quiet zones, consistent character widths, the stop pattern and the mod-103 check.
//! Both scan directions are tried.

use crate::scanline::{EdgeConfig, Edges, Exposure, find_edges};

/// Most decoded bytes kept from one symbol.
pub const MAX_TEXT: usize = 128;

const START_A: u8 = 103;
const START_B: u8 = 104;
const START_C: u8 = 105;
/// The stop pattern's first six elements (its seventh is a 2-module bar).
const STOP: u8 = 106;
const FNC1: u8 = 102;
const FNC3: u8 = 96;
const GS: u8 = 0x1D;

/// Element widths in modules (bar, space, bar, space, bar, space) of values 0–105 and the stop.
const PATTERNS: [[u8; 6]; 107] = [
    [2, 1, 2, 2, 2, 2],
    [2, 2, 2, 1, 2, 2],
    [2, 2, 2, 2, 2, 1],
    [1, 2, 1, 2, 2, 3],
    [1, 2, 1, 3, 2, 2],
    [1, 3, 1, 2, 2, 2],
    [1, 2, 2, 2, 1, 3],
    [1, 2, 2, 3, 1, 2],
    [1, 3, 2, 2, 1, 2],
    [2, 2, 1, 2, 1, 3],
    [2, 2, 1, 3, 1, 2],
    [2, 3, 1, 2, 1, 2],
    [1, 1, 2, 2, 3, 2],
    [1, 2, 2, 1, 3, 2],
    [1, 2, 2, 2, 3, 1],
    [1, 1, 3, 2, 2, 2],
    [1, 2, 3, 1, 2, 2],
    [1, 2, 3, 2, 2, 1],
    [2, 2, 3, 2, 1, 1],
    [2, 2, 1, 1, 3, 2],
    [2, 2, 1, 2, 3, 1],
    [2, 1, 3, 2, 1, 2],
    [2, 2, 3, 1, 1, 2],
    [3, 1, 2, 1, 3, 1],
    [3, 1, 1, 2, 2, 2],
    [3, 2, 1, 1, 2, 2],
    [3, 2, 1, 2, 2, 1],
    [3, 1, 2, 2, 1, 2],
    [3, 2, 2, 1, 1, 2],
    [3, 2, 2, 2, 1, 1],
    [2, 1, 2, 1, 2, 3],
    [2, 1, 2, 3, 2, 1],
    [2, 3, 2, 1, 2, 1],
    [1, 1, 1, 3, 2, 3],
    [1, 3, 1, 1, 2, 3],
    [1, 3, 1, 3, 2, 1],
    [1, 1, 2, 3, 1, 3],
    [1, 3, 2, 1, 1, 3],
    [1, 3, 2, 3, 1, 1],
    [2, 1, 1, 3, 1, 3],
    [2, 3, 1, 1, 1, 3],
    [2, 3, 1, 3, 1, 1],
    [1, 1, 2, 1, 3, 3],
    [1, 1, 2, 3, 3, 1],
    [1, 3, 2, 1, 3, 1],
    [1, 1, 3, 1, 2, 3],
    [1, 1, 3, 3, 2, 1],
    [1, 3, 3, 1, 2, 1],
    [3, 1, 3, 1, 2, 1],
    [2, 1, 1, 3, 3, 1],
    [2, 3, 1, 1, 3, 1],
    [2, 1, 3, 1, 1, 3],
    [2, 1, 3, 3, 1, 1],
    [2, 1, 3, 1, 3, 1],
    [3, 1, 1, 1, 2, 3],
    [3, 1, 1, 3, 2, 1],
    [3, 3, 1, 1, 2, 1],
    [3, 1, 2, 1, 1, 3],
    [3, 1, 2, 3, 1, 1],
    [3, 3, 2, 1, 1, 1],
    [3, 1, 4, 1, 1, 1],
    [2, 2, 1, 4, 1, 1],
    [4, 3, 1, 1, 1, 1],
    [1, 1, 1, 2, 2, 4],
    [1, 1, 1, 4, 2, 2],
    [1, 2, 1, 1, 2, 4],
    [1, 2, 1, 4, 2, 1],
    [1, 4, 1, 1, 2, 2],
    [1, 4, 1, 2, 2, 1],
    [1, 1, 2, 2, 1, 4],
    [1, 1, 2, 4, 1, 2],
    [1, 2, 2, 1, 1, 4],
    [1, 2, 2, 4, 1, 1],
    [1, 4, 2, 1, 1, 2],
    [1, 4, 2, 2, 1, 1],
    [2, 4, 1, 2, 1, 1],
    [2, 2, 1, 1, 1, 4],
    [4, 1, 3, 1, 1, 1],
    [2, 4, 1, 1, 1, 2],
    [1, 3, 4, 1, 1, 1],
    [1, 1, 1, 2, 4, 2],
    [1, 2, 1, 1, 4, 2],
    [1, 2, 1, 2, 4, 1],
    [1, 1, 4, 2, 1, 2],
    [1, 2, 4, 1, 1, 2],
    [1, 2, 4, 2, 1, 1],
    [4, 1, 1, 2, 1, 2],
    [4, 2, 1, 1, 1, 2],
    [4, 2, 1, 2, 1, 1],
    [2, 1, 2, 1, 4, 1],
    [2, 1, 4, 1, 2, 1],
    [4, 1, 2, 1, 2, 1],
    [1, 1, 1, 1, 4, 3],
    [1, 1, 1, 3, 4, 1],
    [1, 3, 1, 1, 4, 1],
    [1, 1, 4, 1, 1, 3],
    [1, 1, 4, 3, 1, 1],
    [4, 1, 1, 1, 1, 3],
    [4, 1, 1, 3, 1, 1],
    [1, 1, 3, 1, 4, 1],
    [1, 1, 4, 1, 3, 1],
    [3, 1, 1, 1, 4, 1],
    [4, 1, 1, 1, 3, 1],
    [2, 1, 1, 4, 1, 2],
    [2, 1, 1, 2, 1, 4],
    [2, 1, 1, 2, 3, 2],
    [2, 3, 3, 1, 1, 1],
];

/// The four edge-to-edge sums of a pattern packed 3 bits each.
const fn edge_key(e: [u32; 4]) -> u16 {
    ((e[0] << 9) | (e[1] << 6) | (e[2] << 3) | e[3]) as u16
}

const fn pattern_keys() -> [u16; 107] {
    let mut keys = [0u16; 107];
    let mut i = 0;
    while i < 107 {
        let p = PATTERNS[i];
        keys[i] = edge_key([
            (p[0] + p[1]) as u32,
            (p[1] + p[2]) as u32,
            (p[2] + p[3]) as u32,
            (p[3] + p[4]) as u32,
        ]);
        i += 1;
    }
    keys
}

const KEYS: [u16; 107] = pattern_keys();

/// The element widths (in modules) of a symbol value, for renderers and tests.
pub fn pattern(value: u8) -> Option<&'static [u8; 6]> {
    PATTERNS.get(usize::from(value))
}

/// Decoder tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code128Config {
    /// Smallest light margin before the start and after the stop, in modules (spec: 10; real
    /// labels are sometimes printed with ~5).
    pub quiet_zone_modules: u32,
}

impl Default for Code128Config {
    fn default() -> Self {
        Self {
            quiet_zone_modules: 5,
        }
    }
}

/// A decoded Code 128 symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The data (FNC1 after the first position as GS, 0x1D).
    pub data: heapless::Vec<u8, MAX_TEXT>,
    /// FNC1 in the first position: a GS1-128 symbol (AIM `]C1`).
    pub gs1: bool,
    /// An FNC3 was present: a reader-programming symbol, never to be forwarded.
    pub programming: bool,
    /// The symbol was read right to left.
    pub reversed: bool,
}

/// The elements of a line in one reading direction.
struct Line<'a> {
    edges: &'a Edges,
    count: usize,
    reversed: bool,
}

impl Line<'_> {
    fn index(&self, k: usize) -> usize {
        if self.reversed { self.count - 1 - k } else { k }
    }

    fn width(&self, k: usize) -> u32 {
        self.edges.width(self.index(k))
    }

    fn is_bar(&self, k: usize) -> bool {
        self.edges.is_bar(self.index(k))
    }

    fn sum6(&self, k: usize) -> u32 {
        (k..k + 6).map(|j| self.width(j)).sum()
    }

    /// The value of the character whose six elements start at `k` (`total` = their sum);
    /// `fallback` allows the nearest-pattern match when the edge sums do not identify it.
    fn character(&self, k: usize, total: u32, fallback: bool) -> Option<u8> {
        let w = [
            self.width(k),
            self.width(k + 1),
            self.width(k + 2),
            self.width(k + 3),
            self.width(k + 4),
            self.width(k + 5),
        ];
        let mut e = [0u32; 4];
        let mut in_range = true;
        for j in 0..4 {
            let modules = ((w[j] + w[j + 1]) * 22 + total) / (2 * total);
            in_range &= (2..=7).contains(&modules);
            e[j] = modules;
        }
        if in_range {
            let key = edge_key(e);
            if let Some(value) = KEYS.iter().position(|&k| k == key) {
                return Some(value as u8);
            }
        }
        if fallback {
            nearest_pattern(&w, total)
        } else {
            None
        }
    }

    /// Cheap test for the start codes' common prefix: bar 2, space 1, bar 1 modules
    /// (edge sums 3 and 2), before any table lookup.
    fn has_start_prefix(&self, k: usize, total: u32) -> bool {
        let e1 = (self.width(k) + self.width(k + 1)) * 22;
        let e2 = (self.width(k + 1) + self.width(k + 2)) * 22;
        (5 * total..7 * total).contains(&e1) && (3 * total..5 * total).contains(&e2)
    }
}

/// Fallback: the pattern nearest to the normalised widths, if clearly nearest.
fn nearest_pattern(w: &[u32; 6], total: u32) -> Option<u8> {
    let mut best = (u32::MAX, 0u8);
    let mut second = u32::MAX;
    for (value, pattern) in PATTERNS.iter().enumerate() {
        let mut score = 0u32;
        for j in 0..6 {
            // Widths in 1/16 module.
            let measured = (w[j] * 11 * 16 / total) as i32;
            let diff = measured - i32::from(pattern[j]) * 16;
            score += (diff * diff) as u32;
        }
        if score < best.0 {
            second = best.0;
            best = (score, value as u8);
        } else if score < second {
            second = score;
        }
    }
    // Average error under ~0.45 module per element, and no close runner-up.
    (best.0 <= 6 * 7 * 7 && second > best.0 + best.0 / 2).then_some(best.1)
}

/// The outcome of one scanline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRead {
    /// A symbol.
    Symbol(Decoded),
    /// Enough contrast, no symbol.
    NoRead,
    /// Too little contrast, too dark or clipped: change the exposure this way and try again.
    Exposure(Exposure),
}

/// Reads one scanline with one edge-detector setting (one pass over the samples, then both
/// directions). The scanner alternates [`EdgeConfig::SHARP`] and [`EdgeConfig::SMOOTH`] from line
/// to line, which keeps every line within the same time budget.
pub fn read_line(
    samples: &[u8],
    edges: &mut Edges,
    edge_config: &EdgeConfig,
    config: &Code128Config,
) -> LineRead {
    let contrast = find_edges(samples, edge_config, edges);
    match contrast.exposure(edge_config.min_contrast) {
        Exposure::Good => {}
        Exposure::Featureless => return LineRead::NoRead,
        exposure => return LineRead::Exposure(exposure),
    }
    decode(edges, config).map_or(LineRead::NoRead, LineRead::Symbol)
}

/// Reads one scanline trying light smoothing, then heavier smoothing (two passes when the first
/// finds nothing; for callers without a stream of lines, e.g. reading a single profile).
pub fn read_line_adaptive(samples: &[u8], edges: &mut Edges, config: &Code128Config) -> LineRead {
    match read_line(samples, edges, &EdgeConfig::SHARP, config) {
        LineRead::NoRead => read_line(samples, edges, &EdgeConfig::SMOOTH, config),
        other => other,
    }
}

/// Decodes the first Code 128 symbol found on the line, in either direction.
pub fn decode(edges: &Edges, config: &Code128Config) -> Option<Decoded> {
    decode_direction(edges, config, false).or_else(|| decode_direction(edges, config, true))
}

fn decode_direction(edges: &Edges, config: &Code128Config, reversed: bool) -> Option<Decoded> {
    let line = Line {
        edges,
        count: edges.element_count(),
        reversed,
    };
    // start (6) + check (6) + stop (7) + trailing quiet zone (1), after a leading quiet zone.
    if line.count < 1 + 6 + 6 + 7 + 1 {
        return None;
    }
    let first_bar = if line.is_bar(1) { 1 } else { 2 };
    (first_bar..line.count - 20)
        .step_by(2)
        .find_map(|k| decode_at(&line, k, config))
        .map(|mut decoded| {
            decoded.reversed = reversed;
            decoded
        })
}

/// Whether `margin` is a quiet zone for characters of total width `total` (11 modules).
fn is_quiet(margin: u32, total: u32, config: &Code128Config) -> bool {
    margin * 11 >= config.quiet_zone_modules * total
}

fn decode_at(line: &Line<'_>, start: usize, config: &Code128Config) -> Option<Decoded> {
    // The margin must be at least 2.5 times the start's first bar (2 modules) before anything
    // else is measured: random bars almost never pass, which keeps no-read lines cheap.
    let margin = line.width(start - 1);
    if margin * 4 < config.quiet_zone_modules * line.width(start) * 2 {
        return None;
    }
    let mut total = line.sum6(start);
    if total == 0
        || !is_quiet(line.width(start - 1), total, config)
        || !line.has_start_prefix(start, total)
    {
        return None;
    }
    let first = line.character(start, total, false)?;
    if !(START_A..=START_C).contains(&first) {
        return None;
    }
    let mut values: heapless::Vec<u8, MAX_TEXT> = heapless::Vec::new();
    let mut k = start + 6;
    loop {
        // A character plus the stop's final bar and the trailing margin must still fit.
        if k + 7 >= line.count {
            return None;
        }
        let next = line.sum6(k);
        // Neighbouring characters have the same width within print and scan tolerances.
        if next * 4 < total * 3 || next * 3 > total * 4 {
            return None;
        }
        total = next;
        let value = line.character(k, total, true)?;
        if value == STOP {
            let bar = line.width(k + 6) * 11;
            let bar_ok = bar * 10 >= 13 * total && bar * 10 <= 27 * total;
            if !bar_ok || !is_quiet(line.width(k + 7), total, config) {
                return None;
            }
            break;
        }
        if value > FNC1 {
            return None;
        }
        values.push(value).ok()?;
        k += 6;
    }
    let check = values.pop()?;
    if values.is_empty() {
        return None;
    }
    let sum = values
        .iter()
        .enumerate()
        .fold(u32::from(first), |sum, (i, &v)| {
            (sum + (i as u32 + 1) * u32::from(v)) % 103
        });
    if sum != u32::from(check) {
        return None;
    }
    interpret(first, &values)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CodeSet {
    A,
    B,
    C,
}

/// Turns symbol values into data bytes.
fn interpret(start: u8, values: &[u8]) -> Option<Decoded> {
    let mut set = match start {
        START_A => CodeSet::A,
        START_B => CodeSet::B,
        _ => CodeSet::C,
    };
    let mut decoded = Decoded {
        data: heapless::Vec::new(),
        gs1: values.first() == Some(&FNC1),
        programming: false,
        reversed: false,
    };
    let mut shift = false;
    let mut high = false;
    for (i, &value) in values.iter().enumerate() {
        if value == FNC1 {
            if i > 0 {
                decoded.data.push(GS).ok()?;
            }
            continue;
        }
        let current = match (set, shift) {
            (CodeSet::A, true) => CodeSet::B,
            (CodeSet::B, true) => CodeSet::A,
            (other, _) => other,
        };
        shift = false;
        match (current, value) {
            (CodeSet::C, 0..=99) => {
                decoded.data.push(b'0' + value / 10).ok()?;
                decoded.data.push(b'0' + value % 10).ok()?;
            }
            (CodeSet::C, 100) => set = CodeSet::B,
            (CodeSet::C, _) => set = CodeSet::A,
            (_, FNC3) => decoded.programming = true,
            (_, 97) => {} // FNC2 (message append) carries no data
            (_, 98) => shift = true,
            (_, 99) => set = CodeSet::C,
            (CodeSet::A, 100) | (CodeSet::B, 101) => {
                set = if current == CodeSet::A {
                    CodeSet::B
                } else {
                    CodeSet::A
                }
            }
            (_, 100 | 101) => high = true, // FNC4: next character + 128
            (CodeSet::A, 0..=95) => {
                let byte = if value < 64 { value + 32 } else { value - 64 };
                decoded.data.push(byte | if high { 0x80 } else { 0 }).ok()?;
                high = false;
            }
            (_, _) => {
                decoded
                    .data
                    .push((value + 32) | if high { 0x80 } else { 0 })
                    .ok()?;
                high = false;
            }
        }
    }
    (!decoded.data.is_empty() || decoded.programming).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_eleven_modules_with_even_bars_and_unique_edge_sums() {
        for (value, p) in PATTERNS.iter().enumerate() {
            assert_eq!(p.iter().map(|&m| u32::from(m)).sum::<u32>(), 11, "{value}");
            assert_eq!((p[0] + p[2] + p[4]) % 2, 0, "{value}");
        }
        for (i, key) in KEYS.iter().enumerate() {
            for (j, other) in KEYS.iter().enumerate().skip(i + 1) {
                assert_ne!(key, other, "values {i} and {j} share edge sums");
            }
        }
    }

    #[test]
    fn interpret_handles_code_sets_shift_and_fnc() {
        // Start B "Hi", Code C "1234", FNC1 → GS, then Code B "x".
        let values = [40, 73, 99, 12, 34, FNC1, 100, 88];
        let decoded = interpret(START_B, &values).unwrap();
        assert_eq!(&decoded.data[..], b"Hi1234\x1dx");
        assert!(!decoded.gs1);
        let gs1 = interpret(START_C, &[FNC1, 1, 23]).unwrap();
        assert!(gs1.gs1);
        assert_eq!(&gs1.data[..], b"0123");
        let programming = interpret(START_A, &[FNC3, 33]).unwrap();
        assert!(programming.programming);
    }
}
