//! Code 128 from the element widths of one scanline (ISO/IEC 15417).
//!
//! Each character is 6 elements over 11 modules; it is identified by its four edge-to-edge sums
//! (bar+space, space+bar, …) rounded to modules — the reference decode, insensitive to ink spread
//! and blur that widen bars at the expense of spaces — with a nearest-pattern fallback. A symbol
//! needs its quiet zones, consistent character widths, the stop pattern and the mod-103 check.
//! Both scan directions are tried. Characters read only approximately are *weak*: one line with
//! more than two of them does not read alone, but [`read_lines`] can confirm them by voting across
//! the lines of one trigger. A bar split by a dead print element is joined back when a character
//! does not read otherwise. A complete line whose check character fails gets a second opinion:
//! if exactly one character's element widths clearly match another pattern than its edge sums
//! do (a bar thinned by half a module), that pattern is tried.

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
        let first = if self.reversed { self.count - 6 - k } else { k };
        self.edges.span(first, 6)
    }

    /// The value of the character whose six elements start at `k` (`total` = their sum), and
    /// whether it is weak: an edge sum more than 0.3 module off a whole number of modules, or
    /// only the nearest pattern (`fallback`) identifies it.
    fn character(&self, k: usize, total: u32, fallback: bool) -> Option<Char> {
        let w = [
            self.width(k),
            self.width(k + 1),
            self.width(k + 2),
            self.width(k + 3),
            self.width(k + 4),
            self.width(k + 5),
        ];
        character_of(&w, total, fallback)
    }

    /// Cheap test for the start codes' common prefix: bar 2, space 1, bar 1 modules
    /// (edge sums 3 and 2), before any table lookup.
    fn has_start_prefix(&self, k: usize, total: u32) -> bool {
        let e1 = (self.width(k) + self.width(k + 1)) * 22;
        let e2 = (self.width(k + 1) + self.width(k + 2)) * 22;
        (5 * total..7 * total).contains(&e1) && (3 * total..5 * total).contains(&e2)
    }
}

/// A decoded character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Char {
    value: u8,
    weak: bool,
}

fn character_of(w: &[u32; 6], total: u32, fallback: bool) -> Option<Char> {
    let mut e = [0u32; 4];
    let mut in_range = true;
    let mut weak = false;
    for j in 0..4 {
        // Edge sum in 1/16 module.
        let sixteenths = (w[j] + w[j + 1]) * 11 * 16 / total;
        let modules = (sixteenths + 8) / 16;
        weak |= sixteenths.abs_diff(modules * 16) > WEAK_EDGE_SUM;
        in_range &= (2..=7).contains(&modules);
        e[j] = modules;
    }
    if in_range {
        let key = edge_key(e);
        if let Some(value) = KEYS.iter().position(|&k| k == key) {
            return Some(Char {
                value: value as u8,
                weak,
            });
        }
    }
    if fallback {
        nearest_pattern(w, total, None).map(|value| Char { value, weak: true })
    } else {
        None
    }
}

/// An edge sum this far (in 1/16 module) from a whole number of modules makes a character weak.
const WEAK_EDGE_SUM: u32 = 6;

/// Fallback: the pattern nearest to the normalised widths, if clearly nearest. With `other_than`,
/// only a pattern other than that one (the second opinion on a character its edge sums read):
/// that pattern's score bounds the search, so most patterns are left after one or two elements.
fn nearest_pattern(w: &[u32; 6], total: u32, other_than: Option<u8>) -> Option<u8> {
    // Widths in 1/16 module, divided once (not once per pattern).
    let measured = w.map(|width| (width * 11 * 16 / total.max(1)) as i32);
    let score_of = |pattern: &[u8; 6], bound: u32| {
        let mut score = 0u32;
        for (&m, &p) in measured.iter().zip(pattern) {
            let diff = m - i32::from(p) * 16;
            score += (diff * diff) as u32;
            if score >= bound {
                break;
            }
        }
        score
    };
    let mut best = (u32::MAX, u8::MAX);
    let mut second = u32::MAX;
    // A pattern that scores no better than the runner-up changes neither; with `other_than`,
    // one no better than that pattern cannot be the answer nor change a runner-up that
    // pattern's score already bounds.
    let mut bound = u32::MAX;
    if let Some(value) = other_than {
        best = (score_of(PATTERNS.get(usize::from(value))?, u32::MAX), value);
        bound = best.0;
    }
    for (value, pattern) in PATTERNS.iter().enumerate() {
        if Some(value as u8) == other_than {
            continue;
        }
        let score = score_of(pattern, second.min(bound));
        if score < best.0 {
            second = best.0;
            best = (score, value as u8);
        } else if score < second {
            second = score;
        }
    }
    // Average error under ~0.45 module per element, and no close runner-up.
    (best.0 <= 6 * 7 * 7 && second > best.0 + best.0 / 2 && Some(best.1) != other_than)
        .then_some(best.1)
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

/// Reads one scanline trying [`EdgeConfig::SHARP`], then [`EdgeConfig::SMOOTH`], then
/// [`EdgeConfig::FINE`] (up to three passes when the first finds nothing; for callers without a
/// stream of lines, e.g. reading a single profile).
pub fn read_line_adaptive(samples: &[u8], edges: &mut Edges, config: &Code128Config) -> LineRead {
    match read_line(samples, edges, &EdgeConfig::SHARP, config) {
        LineRead::NoRead => match read_line(samples, edges, &EdgeConfig::SMOOTH, config) {
            LineRead::NoRead => read_line(samples, edges, &EdgeConfig::FINE, config),
            other => other,
        },
        other => other,
    }
}

/// Most lines of one trigger [`read_lines`] combines.
pub const MAX_LINES: usize = 8;

/// Reads up to [`MAX_LINES`] consecutive lines of one trigger (the same label, fresh noise,
/// a slightly different height): one edge-detector pass per line, with the setting
/// [`TriggerVotes::next_edge_config`] picks as the scanner does from line to line. A line
/// that reads alone is returned at once; otherwise each line's characters, read from the start
/// pattern onwards and from the stop pattern backwards (each character once per line), are votes
/// per character position, and the winners must pass the check character like any single-line
/// read. Stack only, no allocation. The same rule line by line, for a caller that gets its lines
/// one at a time: [`TriggerVotes`].
pub fn read_lines(lines: &[&[u8]], edges: &mut Edges, config: &Code128Config) -> LineRead {
    let mut trigger = TriggerVotes::new();
    let mut verdict = LineRead::NoRead;
    for line in lines.iter().take(MAX_LINES) {
        let edge_config = trigger.next_edge_config();
        match trigger.read(line, edges, &edge_config, config) {
            LineRead::Symbol(decoded) => return LineRead::Symbol(decoded),
            LineRead::Exposure(exposure) => verdict = LineRead::Exposure(exposure),
            LineRead::NoRead => {}
        }
    }
    verdict
}

/// The votes of the lines of one trigger so far: [`read_lines`] for lines that arrive one at a
/// time (the scanner's sensor stream), at the cost of one edge pass per line. Only the votes are
/// kept (≈ 1.5 KB), not the samples.
#[derive(Debug, Clone)]
pub struct TriggerVotes {
    votes: Votes,
    lines: usize,
    /// What the last line read with [`EdgeConfig::SHARP`] and with [`EdgeConfig::SMOOTH`] voted
    /// for: 2 per strong and 1 per weak character, start and stop included (`None`: no such line
    /// yet).
    progress: [Option<usize>; 2],
    /// Lines passed to [`read`](Self::read) since the last clear, for alternating the settings.
    passes: usize,
}

impl Default for TriggerVotes {
    fn default() -> Self {
        Self::new()
    }
}

impl TriggerVotes {
    /// No lines yet.
    pub const fn new() -> Self {
        Self {
            votes: Votes::new(),
            lines: 0,
            progress: [None; 2],
            passes: 0,
        }
    }

    /// Forgets the lines so far (a new trigger, or a different label in view).
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Lines with enough contrast that voted since the last [`clear`](Self::clear).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The edge-detector setting for the next line: [`EdgeConfig::SHARP`] and
    /// [`EdgeConfig::SMOOTH`] in turn until both have had a line, then the one whose last line
    /// voted for more (strong characters count twice; in turn again when they tie). A label that one setting cannot
    /// read (noise or blur that the other handles) then gets most of the trigger's lines.
    pub fn next_edge_config(&self) -> EdgeConfig {
        let alternate = if self.passes % 2 == 0 {
            EdgeConfig::SHARP
        } else {
            EdgeConfig::SMOOTH
        };
        match self.progress {
            [Some(sharp), Some(smooth)] if sharp > smooth => EdgeConfig::SHARP,
            [Some(sharp), Some(smooth)] if smooth > sharp => EdgeConfig::SMOOTH,
            _ => alternate,
        }
    }

    /// One line, one pass with `edge_config`: the symbol if this line reads alone or the votes
    /// of the lines so far now read it (the votes are then cleared), the exposure to change if
    /// the line asks for it. After [`MAX_LINES`] lines without a read the next line starts
    /// afresh, so a label that has left the view stops voting.
    pub fn read(
        &mut self,
        samples: &[u8],
        edges: &mut Edges,
        edge_config: &EdgeConfig,
        config: &Code128Config,
    ) -> LineRead {
        self.passes += 1;
        let contrast = find_edges(samples, edge_config, edges);
        match contrast.exposure(edge_config.min_contrast) {
            Exposure::Good => {}
            Exposure::Featureless => return LineRead::NoRead,
            exposure => return LineRead::Exposure(exposure),
        }
        if self.lines == MAX_LINES {
            self.clear();
        }
        self.lines += 1;
        let added = self.votes.add(edges, config);
        let setting = if *edge_config == EdgeConfig::SHARP {
            Some(0)
        } else if *edge_config == EdgeConfig::SMOOTH {
            Some(1)
        } else {
            None
        };
        if let Some(setting) = setting {
            self.progress[setting] = Some(self.votes.last_voted);
        }
        let read = match added {
            Some(decoded) => Some(decoded),
            None => self.votes.decide(),
        };
        match read {
            Some(decoded) => {
                self.clear();
                LineRead::Symbol(decoded)
            }
            None => LineRead::NoRead,
        }
    }
}

/// One candidate value at one position and its weight.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    value: u8,
    weight: u8,
}

/// The two best-supported candidates of one position.
#[derive(Debug, Clone, Copy, Default)]
struct Ballot([Slot; 3]);

impl Ballot {
    const EMPTY: Self = Self(
        [Slot {
            value: 0,
            weight: 0,
        }; 3],
    );

    fn add(&mut self, value: u8, weight: u8) {
        if let Some(slot) = self.0.iter_mut().find(|s| s.weight > 0 && s.value == value) {
            slot.weight = slot.weight.saturating_add(weight);
        } else if let Some(slot) = self.0.iter_mut().min_by_key(|s| s.weight) {
            if slot.weight == 0 {
                *slot = Slot { value, weight };
            }
        }
    }

    fn merge(&self, other: &Ballot) -> Ballot {
        let mut merged = *self;
        for slot in other.0.iter().filter(|s| s.weight > 0) {
            merged.add(slot.value, slot.weight);
        }
        merged
    }

    /// The winner if it has at least `quorum` and more than twice any rival.
    fn winner(&self, quorum: u8) -> Option<u8> {
        let mut sorted = self.0;
        sorted.sort_unstable_by_key(|s| core::cmp::Reverse(s.weight));
        (sorted[0].weight >= quorum && sorted[0].weight > sorted[1].weight.saturating_mul(2))
            .then_some(sorted[0].value)
    }
}

/// A strong character counts twice a weak one; a position needs one strong line or two weak
/// lines that agree.
const STRONG_VOTE: u8 = 2;
const WEAK_VOTE: u8 = 1;
const QUORUM: u8 = 2;

/// Per-position votes of several lines.
#[derive(Debug, Clone)]
struct Votes {
    start: Ballot,
    /// Symbol length (data + check characters) from lines that saw start and stop.
    length: Ballot,
    /// Position `i` after the start character.
    from_start: [Ballot; MAX_CHARS],
    /// Position `i` before the stop pattern (0 = the check character).
    from_stop: [Ballot; MAX_CHARS],
    /// What the last line voted for: 2 per strong, 1 per weak character (start and stop
    /// count as strong).
    last_voted: usize,
}

impl Votes {
    const fn new() -> Self {
        Self {
            start: Ballot::EMPTY,
            length: Ballot::EMPTY,
            from_start: [Ballot::EMPTY; MAX_CHARS],
            from_stop: [Ballot::EMPTY; MAX_CHARS],
            last_voted: 0,
        }
    }

    fn vote(weak: bool) -> u8 {
        if weak { WEAK_VOTE } else { STRONG_VOTE }
    }

    /// Reads one line as [`decode`] does (the symbol, if the line reads alone) and otherwise
    /// adds its votes: in the first direction that has any, the walk from its first start
    /// character and the backward walk from its last stop pattern. One walk per start
    /// candidate serves both.
    fn add(&mut self, edges: &Edges, config: &Code128Config) -> Option<Decoded> {
        let mut voted = false;
        self.last_voted = 0;
        for reversed in [false, true] {
            let line = Line {
                edges,
                count: edges.element_count(),
                reversed,
            };
            if line.count < 1 + 6 + 6 + 7 + 1 {
                return None;
            }
            let first_bar = if line.is_bar(1) { 1 } else { 2 };
            let mut forward = None;
            for k in (first_bar..line.count - 20).step_by(2) {
                if let Some(walk) = walk(&line, k, config) {
                    if let Some(mut decoded) = accept(&line, &walk) {
                        decoded.reversed = reversed;
                        return Some(decoded);
                    }
                    if forward.is_none() {
                        forward = Some((k, walk));
                    }
                }
            }
            if voted {
                continue;
            }
            // The backward walk stops where the forward walk stopped: a line votes once per
            // character, or its weak characters would count twice and one line could pass what
            // it may not read alone.
            let floor = forward.as_ref().map_or(0, |(_, walk)| walk.end);
            let backward = stop_walk(&line, config, floor);
            if let Some((_, walk)) = &forward {
                self.start.add(walk.start, STRONG_VOTE);
                for i in 0..walk.len {
                    self.from_start[i].add(walk.values[i], Self::vote(walk.is_weak(i)));
                }
            }
            if let Some((_, back)) = &backward {
                if back.complete {
                    self.start.add(back.start, STRONG_VOTE);
                }
                for i in 0..back.len {
                    self.from_stop[i].add(back.values[i], Self::vote(back.is_weak(i)));
                }
            }
            // The symbol's length: from a walk that went from start to stop (either way), or
            // from a whole number of characters' elements between a start and a stop.
            let length = match (&forward, &backward) {
                (Some((_, walk)), _) if walk.complete => Some(walk.len),
                (_, Some((_, back))) if back.complete => Some(back.len),
                (Some((start, _)), Some((stop, _))) if *stop > start + 6 => {
                    let between = stop - (start + 6);
                    (between % 6 == 0).then_some(between / 6)
                }
                _ => None,
            };
            if let Some(length) = length {
                self.length.add(length.min(MAX_CHARS) as u8, STRONG_VOTE);
            }
            // One reading direction per line.
            voted = forward.is_some() || backward.is_some();
            self.last_voted = forward
                .as_ref()
                .map_or(0, |(_, walk)| 2 * walk.len + 2 - walk.weak_count() as usize)
                + backward
                    .as_ref()
                    .map_or(0, |(_, back)| 2 * back.len + 2 - back.weak_count() as usize);
        }
        None
    }

    fn decide(&self) -> Option<Decoded> {
        let start = self.start.winner(QUORUM)?;
        let len = usize::from(self.length.winner(QUORUM)?);
        if !(2..=MAX_CHARS).contains(&len) {
            return None;
        }
        let mut values = [0u8; MAX_CHARS];
        for (i, value) in values[..len].iter_mut().enumerate() {
            let ballot = self.from_start[i].merge(&self.from_stop[len - 1 - i]);
            *value = ballot.winner(QUORUM)?;
            if *value > FNC1 {
                return None;
            }
        }
        checked(start, &values[..len])
    }
}

/// Reads backwards from the last stop pattern (with its quiet zone) on the line: the characters
/// before it, nearest first, until one does not read; `complete` if a start character (after a
/// quiet zone) ends it. Characters are looked up with the same rules as forwards. No character
/// beginning before element `floor` is read.
fn stop_walk(line: &Line<'_>, config: &Code128Config, floor: usize) -> Option<(usize, Walk)> {
    // The stop: 7 elements ending in a bar, followed by the trailing quiet zone.
    let last_bar = if line.is_bar(line.count - 2) {
        line.count - 2
    } else {
        line.count - 3
    };
    let mut stop = None;
    let mut k = last_bar;
    while k >= 7 + 6 {
        // As for the start: the margin must be 2.5 times the stop's last bar (2 modules)
        // before anything else is measured.
        if line.width(k + 1) * 4 < config.quiet_zone_modules * line.width(k) * 2 {
            k -= 2;
            continue;
        }
        let begin = k - 6;
        let total = line.sum6(begin);
        if total > 0 && is_quiet(line.width(k + 1), total, config) {
            let bar = line.width(k) * 11;
            if bar * 10 >= 13 * total
                && bar * 10 <= 27 * total
                && line
                    .character(begin, total, false)
                    .is_some_and(|c| c.value == STOP && !c.weak)
            {
                stop = Some((begin, total));
                break;
            }
        }
        k -= 2;
    }
    let (stop_begin, mut total) = stop?;
    let mut back = Walk {
        start: 0,
        values: [0; MAX_CHARS],
        weak: 0,
        at: [u16::MAX; MAX_CHARS],
        len: 0,
        complete: false,
        end: stop_begin,
    };
    let mut end = stop_begin;
    while end >= floor + 6 && end > 6 && back.len < MAX_CHARS {
        let k = end - 6;
        let next = line.sum6(k);
        if !consistent(next, total) {
            break;
        }
        total = next;
        let Some(c) = line.character(k, total, true) else {
            break;
        };
        if (START_A..=START_C).contains(&c.value) {
            back.start = c.value;
            back.complete = !c.weak && k >= 1 && is_quiet(line.width(k - 1), total, config);
            break;
        }
        if c.value > FNC1 {
            break;
        }
        back.values[back.len] = c.value;
        if c.weak {
            back.weak |= 1 << back.len;
        }
        back.len += 1;
        end = k;
    }
    Some((stop_begin, back))
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

/// Most symbol characters (data and check) one symbol may have.
pub const MAX_CHARS: usize = MAX_TEXT;

/// How many weak characters (see [`Line::character`]) one line may contribute to a symbol it
/// reads alone; with more, only the votes of several lines read it.
const MAX_WEAK_ALONE: u32 = 2;

/// The characters read from a start character onwards, as far as they go.
struct Walk {
    start: u8,
    /// Data and check characters (not the start, not the stop).
    values: [u8; MAX_CHARS],
    /// Bit `i`: character `i` is weak.
    weak: u128,
    /// The element where character `i` begins, or `u16::MAX` where a split bar was joined.
    at: [u16; MAX_CHARS],
    len: usize,
    /// Ended with a stop pattern, its final bar and a quiet zone.
    complete: bool,
    /// The element where the walk stopped (the stop pattern or the first that did not read).
    end: usize,
}

impl Walk {
    fn weak_count(&self) -> u32 {
        self.weak.count_ones()
    }

    fn is_weak(&self, i: usize) -> bool {
        self.weak & (1 << i) != 0
    }
}

/// The start character at element `start` (after a quiet zone) and the width of its six
/// elements.
fn start_at(line: &Line<'_>, start: usize, config: &Code128Config) -> Option<(u8, u32)> {
    // The margin must be at least 2.5 times the start's first bar (2 modules) before anything
    // else is measured: random bars almost never pass, which keeps no-read lines cheap.
    let margin = line.width(start - 1);
    if margin * 4 < config.quiet_zone_modules * line.width(start) * 2 {
        return None;
    }
    let total = line.sum6(start);
    if total == 0
        || !is_quiet(line.width(start - 1), total, config)
        || !line.has_start_prefix(start, total)
    {
        return None;
    }
    let first = line.character(start, total, false)?;
    (!first.weak && (START_A..=START_C).contains(&first.value)).then_some((first.value, total))
}

/// Whether neighbouring characters have the same width within print and scan tolerances.
fn consistent(next: u32, total: u32) -> bool {
    next * 4 >= total * 3 && next * 3 <= total * 4
}

/// The character at element `k` given the previous character's width `total`: its value, its
/// width and the element after it. If its six elements do not make a character, a bar split by
/// a narrow light streak (a dead thermal print element) is looked for: bar, space under ¾
/// module, bar are taken as one bar when that makes the character 11 modules wide and valid.
fn character_at(line: &Line<'_>, k: usize, total: u32) -> Option<(Char, u32, usize)> {
    let next = line.sum6(k);
    if consistent(next, total) {
        if let Some(c) = line.character(k, next, true) {
            return Some((c, next, k + 6));
        }
    }
    // A dead element is one printer dot: half a module at 203 dpi and 2 dots per module, so
    // anything under ¾ module is a candidate (only where the character does not read as is).
    let narrow = total * 3 / 44;
    let mut w = [0u32; 6];
    let mut j = k;
    let mut merged = false;
    for (slot, width) in w.iter_mut().enumerate() {
        // Room for this element and, after the character, the stop's last bar and a margin.
        if j + 8 >= line.count {
            return None;
        }
        *width = line.width(j);
        j += 1;
        if slot % 2 == 0 {
            while line.width(j) < narrow && j + 10 < line.count {
                *width += line.width(j) + line.width(j + 1);
                j += 2;
                merged = true;
            }
        }
    }
    let sum: u32 = w.iter().sum();
    if !merged || !consistent(sum, total) {
        return None;
    }
    character_of(&w, sum, true).map(|c| (Char { weak: true, ..c }, sum, j))
}

/// Reads characters from the start character at element `start` until the stop pattern or
/// the first element that does not read.
fn walk(line: &Line<'_>, start: usize, config: &Code128Config) -> Option<Walk> {
    let (first, mut total) = start_at(line, start, config)?;
    let mut walk = Walk {
        start: first,
        values: [0; MAX_CHARS],
        weak: 0,
        at: [u16::MAX; MAX_CHARS],
        len: 0,
        complete: false,
        end: start + 6,
    };
    let mut k = start + 6;
    // A character plus the stop's final bar and the trailing margin must still fit.
    while k + 7 < line.count {
        let Some((c, width, next_k)) = character_at(line, k, total) else {
            break;
        };
        total = width;
        if c.value == STOP {
            let bar = line.width(next_k) * 11;
            let bar_ok = bar * 10 >= 13 * total && bar * 10 <= 27 * total;
            walk.complete = bar_ok && is_quiet(line.width(next_k + 1), total, config);
            break;
        }
        if c.value > FNC1 || walk.len == MAX_CHARS {
            break;
        }
        walk.values[walk.len] = c.value;
        if c.weak {
            walk.weak |= 1 << walk.len;
        }
        if next_k == k + 6 {
            walk.at[walk.len] = k as u16;
        }
        walk.len += 1;
        k = next_k;
    }
    walk.end = k;
    Some(walk)
}

/// The symbol a complete walk spells, if its check character is right.
fn checked(start: u8, values: &[u8]) -> Option<Decoded> {
    let (&check, data) = values.split_last()?;
    if data.is_empty() {
        return None;
    }
    let sum = data
        .iter()
        .enumerate()
        .fold(u32::from(start), |sum, (i, &v)| {
            (sum + (i as u32 + 1) * u32::from(v)) % 103
        });
    if sum != u32::from(check) {
        return None;
    }
    interpret(start, data)
}

fn decode_at(line: &Line<'_>, start: usize, config: &Code128Config) -> Option<Decoded> {
    accept(line, &walk(line, start, config)?)
}

/// The symbol a walk reads alone: start to stop, few weak characters, right check character.
fn accept(line: &Line<'_>, walk: &Walk) -> Option<Decoded> {
    if !walk.complete || walk.weak_count() > MAX_WEAK_ALONE {
        return None;
    }
    checked(walk.start, &walk.values[..walk.len]).or_else(|| second_opinion(line, walk))
}

/// A complete walk whose check character is wrong: where exactly one character's element
/// widths clearly match another pattern than its edge sums do (a bar thinned by half a module,
/// e.g. a dead print element at its edge, moves two edge sums by half a module each), that
/// pattern is tried, as a weak character. One alternative per line, and only when the two
/// decodings disagree, so the check character still guards the read.
fn second_opinion(line: &Line<'_>, walk: &Walk) -> Option<Decoded> {
    if walk.weak_count() >= MAX_WEAK_ALONE {
        return None;
    }
    let mut disagreement = None;
    for (i, (&at, &value)) in walk.at[..walk.len].iter().zip(&walk.values).enumerate() {
        if at == u16::MAX || walk.is_weak(i) {
            continue;
        }
        let k = usize::from(at);
        let w = [
            line.width(k),
            line.width(k + 1),
            line.width(k + 2),
            line.width(k + 3),
            line.width(k + 4),
            line.width(k + 5),
        ];
        match nearest_pattern(&w, line.sum6(k), Some(value)) {
            Some(other) if other <= FNC1 => {
                if disagreement.is_some() {
                    return None;
                }
                disagreement = Some((i, other));
            }
            _ => {}
        }
    }
    let (i, other) = disagreement?;
    let mut values = walk.values;
    values[i] = other;
    checked(walk.start, &values[..walk.len])
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
