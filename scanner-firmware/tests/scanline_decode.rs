//! Decoding Code 128 from simulated scanlines of real Code 128 bitmaps (rxing's writer):
//! magnification, blur, noise, gain, direction, quiet zone and check character.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used)]

use prescrypt_barcode::PrescriptionId;
use prescrypt_scanner_firmware::aim::AimId;
use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead};
use prescrypt_scanner_firmware::scanline::{EdgeConfig, Edges, Exposure, find_edges};
use prescrypt_scanner_firmware::sim::optics::{
    Optics, code128_modules, code128_modules_from_values, id_code128_modules,
    printed_with_dead_dots, with_blotted_character,
};
use prescrypt_scanner_firmware::validate;
use rand::{Rng, SeedableRng};

const ID: &str = "D7AC09A999684BA59C";
const HYPHENATED: &str = "D7AC09-A99968-4BA59C";

fn read(line: &[u8]) -> Option<code128::Decoded> {
    let mut edges = Edges::new();
    match code128::read_line_adaptive(line, &mut edges, &Code128Config::default()) {
        LineRead::Symbol(decoded) => Some(decoded),
        LineRead::NoRead | LineRead::Exposure(_) => None,
    }
}

fn read_text(line: &[u8]) -> Option<String> {
    read(line).map(|d| String::from_utf8(d.data.to_vec()).unwrap())
}

/// Optics blur in proportion to the module (0.25 module), light sensor noise.
fn optics(module_samples: f64, samples: usize) -> Optics {
    Optics {
        module_samples,
        samples,
        blur: 0.25 * module_samples,
        noise: 2.0,
        ..Optics::default()
    }
}

#[test]
fn reads_ids_across_module_widths_from_1_5_to_8_samples() {
    for text in [ID, HYPHENATED] {
        let modules = code128_modules(text).unwrap();
        // The printed form (compact) from 1.5 samples/module; the 20-character hyphenated form,
        // which prescriptions do not print, from 1.8: at 1.5 three of its characters are weak
        // (an edge sum ≥ 7/16 module off), more than one line may carry alone.
        let smallest = if text == ID { 15 } else { 18 };
        for tenths in [15, 18, 20, 25, 30, 40, 55, 70, 80]
            .into_iter()
            .filter(|&t| t >= smallest)
        {
            let m = f64::from(tenths) / 10.0;
            let samples = ((modules.len() as f64 + 30.0) * m) as usize + 64;
            let samples = samples.clamp(512, 4096);
            let line = optics(m, samples).scanline(&modules);
            assert_eq!(
                read_text(&line).as_deref(),
                Some(text),
                "{text} at {m} samples/module"
            );
        }
    }
}

#[test]
fn reads_through_blur_noise_and_gain_changes() {
    let modules = code128_modules(ID).unwrap();
    for (m, blur, noise, gain, offset) in [
        // (samples/module, blur σ in samples, noise σ in grey levels, gain, offset)
        (1.5, 0.3, 3.0, 0.8, 0.0),
        (2.0, 0.5, 3.0, 1.0, 0.0),
        (3.0, 0.9, 4.0, 0.8, 10.0),
        (3.0, 0.9, 6.0, 1.2, -20.0),
        (4.0, 1.4, 5.0, 0.8, 0.0),
        (6.0, 2.4, 6.0, 1.2, 0.0),
        (8.0, 3.2, 6.0, 1.0, 5.0),
    ] {
        for seed in 1..=5 {
            let line = Optics {
                module_samples: m,
                blur,
                noise,
                gain,
                offset,
                samples: 3694,
                seed,
                ..Optics::default()
            }
            .scanline(&modules);
            assert_eq!(
                read_text(&line).as_deref(),
                Some(ID),
                "m={m} blur={blur} noise={noise} gain={gain} offset={offset} seed={seed}"
            );
        }
    }
}

#[test]
fn reads_other_texts_and_code_sets() {
    for text in [
        "PJJ123C",
        "0123456789012345",
        "Hello, World!",
        "a",
        "RX1ABCDEFGHIJKLMNOPQ",
    ] {
        let modules = code128_modules(text).unwrap();
        let line = optics(2.5, 2048).scanline(&modules);
        assert_eq!(read_text(&line).as_deref(), Some(text));
    }
}

#[test]
fn reads_a_reversed_scan() {
    let modules = code128_modules(ID).unwrap();
    for m in [1.5, 3.0, 7.0] {
        let samples = ((modules.len() as f64 + 30.0) * m) as usize + 64;
        let line = Optics {
            reversed: true,
            ..optics(m, samples.max(512))
        }
        .scanline(&modules);
        let decoded = read(&line).unwrap();
        assert!(decoded.reversed);
        assert_eq!(&decoded.data[..], ID.as_bytes());
    }
}

#[test]
fn no_read_without_a_quiet_zone() {
    let modules = code128_modules(ID).unwrap();
    for quiet in [0.0, 1.0, 2.0, 3.0] {
        let line = Optics {
            quiet_modules: quiet,
            dark_surround: true,
            ..optics(3.0, 2048)
        }
        .scanline(&modules);
        assert_eq!(read(&line), None, "quiet zone of {quiet} modules");
    }
    // The same print with a proper margin reads.
    let line = Optics {
        quiet_modules: 10.0,
        dark_surround: true,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    assert_eq!(read_text(&line).as_deref(), Some(ID));
}

#[test]
fn no_read_with_a_wrong_check_character() {
    // Start B, "PJJ123C" as code set B values.
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    let good = code128_modules_from_values(&values, 0);
    assert_eq!(
        read_text(&optics(3.0, 2048).scanline(&good)).as_deref(),
        Some("PJJ123C")
    );
    for offset in [1, 7, 50] {
        let bad = code128_modules_from_values(&values, offset);
        assert_eq!(read(&optics(3.0, 2048).scanline(&bad)), None);
    }
}

#[test]
fn check_value_of_the_reference_example_is_55() {
    // scanners.md: "PJJ123C" in code set B has check value 55.
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    let modules = code128_modules_from_values(&values, 0);
    let check_start = 11 * values.len();
    let check_modules = &modules[check_start..check_start + 11];
    let expected = code128::pattern(55).unwrap();
    let mut runs = Vec::new();
    let mut run = 1u8;
    for pair in check_modules.windows(2) {
        if pair[0] == pair[1] {
            run += 1;
        } else {
            runs.push(run);
            run = 1;
        }
    }
    runs.push(run);
    assert_eq!(&runs[..], &expected[..]);
}

#[test]
fn fnc3_marks_a_programming_symbol() {
    let values = [104, 96, 33, 34];
    let modules = code128_modules_from_values(&values, 0);
    let decoded = read(&optics(3.0, 2048).scanline(&modules)).unwrap();
    assert!(decoded.programming);
}

#[test]
fn low_contrast_lines_ask_for_more_or_less_exposure() {
    let modules = code128_modules(ID).unwrap();
    // 10 grey levels of contrast: under the absolute floor of 20 even where the noise is low.
    let dim = Optics {
        gain: 0.05,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    let mut edges = Edges::new();
    let contrast = find_edges(&dim, &EdgeConfig::default(), &mut edges);
    assert_eq!(
        contrast.exposure(EdgeConfig::default().min_contrast),
        Exposure::TooDark
    );
    assert_eq!(edges.edge_count(), 0);
    let glare = Optics {
        gain: 0.05,
        offset: 235.0,
        ..optics(3.0, 2048)
    }
    .scanline(&modules);
    let contrast = find_edges(&glare, &EdgeConfig::default(), &mut edges);
    assert_eq!(
        contrast.exposure(EdgeConfig::default().min_contrast),
        Exposure::TooBright
    );
}

#[test]
fn blank_and_random_lines_do_not_read() {
    assert_eq!(read(&[200u8; 2048]), None);
    let mut state = 0x1234_5678u32;
    for _ in 0..50 {
        let line: Vec<u8> = (0..2048)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(read(&line), None);
    }
}

/// Runs of equal modules (element widths in modules).
fn runs(modules: &[bool]) -> Vec<(usize, bool, usize)> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=modules.len() {
        if i == modules.len() || modules[i] != modules[start] {
            runs.push((start, modules[start], i - start));
            start = i;
        }
    }
    runs
}

/// A line of the sharp-edged optics the tests below vary one thing at a time from.
fn clean(module_samples: f64) -> Optics {
    Optics {
        module_samples,
        samples: 3694,
        blur: 0.2 * module_samples,
        noise: 2.0,
        ..Optics::default()
    }
}

#[test]
fn reads_bars_split_by_dead_thermal_print_elements() {
    // 203 dpi thermal print, 2 dots per module; the middle dot column of every 3- and 4-module
    // bar among the first 60 modules is dead: each of those bars reads as bar, ½-module space, bar.
    let modules = code128_modules(ID).unwrap();
    let dead: Vec<usize> = runs(&modules)
        .into_iter()
        .filter(|&(start, bar, width)| bar && width >= 3 && start < 60)
        .map(|(start, _, width)| 2 * start + width)
        .collect();
    assert!(dead.len() >= 2, "the symbol has wide bars to split");
    let printed = printed_with_dead_dots(&modules, 2, &dead);
    for m in [4.0, 6.0, 8.0, 12.0] {
        let line = Optics {
            module_samples: m / 2.0,
            quiet_modules: 20.0,
            ..clean(m)
        }
        .scanline(&printed);
        let mut edges = Edges::new();
        find_edges(&line, &EdgeConfig::SHARP, &mut edges);
        let whole = Optics {
            module_samples: m,
            ..clean(m)
        }
        .scanline(&modules);
        let mut whole_edges = Edges::new();
        find_edges(&whole, &EdgeConfig::SHARP, &mut whole_edges);
        assert_eq!(
            edges.edge_count(),
            whole_edges.edge_count() + 2 * dead.len(),
            "every streak shows as a space at {m} samples/module"
        );
        assert_eq!(read_text(&line).as_deref(), Some(ID), "{m} samples/module");
    }
}

#[test]
fn reads_bars_thinned_by_a_dead_element_at_their_edge() {
    // 203 dpi thermal print, 2 dots per module, the first dot column of one bar dead: the bar
    // is half a module thinner and the space before it half a module wider, which moves two
    // edge sums by half a module each. Where the edge sums then make another valid character,
    // the element widths still match the printed one, and the check character decides. Dot
    // columns 146, 298 and 366 of this ID are such bars (they read only that way); every other
    // bar's first dot is tried too, and nothing else than the ID is ever sent.
    let modules = code128_modules(ID).unwrap();
    let bars: Vec<usize> = runs(&modules)
        .into_iter()
        .filter(|&(start, bar, width)| bar && width >= 2 && start > 0)
        .map(|(start, _, _)| 2 * start)
        .collect();
    for &dot in &bars {
        let printed = printed_with_dead_dots(&modules, 2, &[dot]);
        for m in [4.0, 6.0] {
            let line = Optics {
                module_samples: m / 2.0,
                quiet_modules: 20.0,
                blur: 0.35 * m,
                noise: 1.0,
                samples: 3694,
                ..Optics::default()
            }
            .scanline(&printed);
            let mut edges = Edges::new();
            let config = Code128Config::default();
            let read = sent(code128::read_line(
                &line,
                &mut edges,
                &EdgeConfig::SHARP,
                &config,
            ));
            if [146, 298, 366].contains(&dot) {
                assert_eq!(
                    read.as_deref(),
                    Some(ID.as_bytes()),
                    "dead dot {dot}, {m} samples/module"
                );
            } else if let Some(data) = read {
                assert_eq!(
                    &data[..],
                    ID.as_bytes(),
                    "dead dot {dot}, {m} samples/module"
                );
            }
        }
    }
}

#[test]
fn reads_faint_one_module_bars() {
    // Two one-module bars printed at 40 % ink: their edges are under 0.44 of the neighbours'.
    let modules = code128_modules(ID).unwrap();
    let one_module_bars: Vec<usize> = runs(&modules)
        .into_iter()
        .filter(|&(_, bar, _)| bar)
        .enumerate()
        .filter(|&(_, (_, _, width))| width == 1)
        .map(|(index, _)| index)
        .collect();
    for m in [4.0, 8.0, 12.0] {
        let line = Optics {
            faint_bars: vec![(one_module_bars[3], 0.4), (one_module_bars[9], 0.4)],
            ..clean(m)
        }
        .scanline(&modules);
        assert_eq!(read_text(&line).as_deref(), Some(ID), "{m} samples/module");
    }
}

#[test]
fn reads_faded_labels_under_40_grey_levels_of_contrast() {
    // 30–38 grey levels between bar and paper (the old fixed floor was 40), quiet sensor.
    let modules = code128_modules(ID).unwrap();
    for (contrast, m) in [(30.0, 6.0), (34.0, 10.0), (38.0, 4.0)] {
        let line = Optics {
            bar_level: 180.0 - contrast,
            paper_level: 180.0,
            ..clean(m)
        }
        .scanline(&modules);
        assert_eq!(
            read_text(&line).as_deref(),
            Some(ID),
            "contrast {contrast} at {m} samples/module"
        );
    }
}

#[test]
fn reads_noisy_low_contrast_lines_with_a_box_sized_to_the_elements() {
    // Noise σ 6–8 against 50–60 grey levels: the old one-sample slope drowned in it.
    let modules = code128_modules(ID).unwrap();
    for (noise, contrast, m) in [(6.0, 60.0, 8.0), (6.0, 60.0, 12.0), (5.0, 50.0, 8.0)] {
        for seed in 1..=3 {
            let line = Optics {
                noise,
                bar_level: 170.0 - contrast,
                paper_level: 170.0,
                blur: 0.3 * m,
                seed,
                ..clean(m)
            }
            .scanline(&modules);
            assert_eq!(
                read_text(&line).as_deref(),
                Some(ID),
                "noise {noise} contrast {contrast} m {m} seed {seed}"
            );
        }
    }
}

/// The modules of a Code 128 from symbol values (check computed) with the character at
/// `blotted` (0 = start) unreadable.
fn with_blot(values: &[u8], blotted: usize) -> Vec<bool> {
    with_blotted_character(&code128_modules_from_values(values, 0), blotted)
}

#[test]
fn read_lines_votes_characters_across_lines_none_of_which_reads_alone() {
    // Start B "PJJ123C" + check: three lines of one trigger, each with a different character
    // unreadable; each still gives the characters before it (from the start) and after it
    // (from the stop), and the element count between start and stop gives the length.
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    let lines: Vec<Vec<u8>> = [2, 5, 7]
        .iter()
        .zip(1u64..)
        .map(|(&blotted, seed)| {
            Optics { seed, ..clean(5.0) }.scanline(&with_blot(&values, blotted))
        })
        .collect();
    for line in &lines {
        assert_eq!(read(line), None, "a blotted line does not read alone");
    }
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut edges = Edges::new();
    let config = Code128Config::default();
    match code128::read_lines(&refs, &mut edges, &config) {
        LineRead::Symbol(decoded) => assert_eq!(&decoded.data[..], b"PJJ123C"),
        other => panic!("voted read expected, got {other:?}"),
    }
    // Two lines blotted at the same character cannot fill it in.
    let same: Vec<Vec<u8>> = (1..=2)
        .map(|seed| Optics { seed, ..clean(5.0) }.scanline(&with_blot(&values, 5)))
        .collect();
    let refs: Vec<&[u8]> = same.iter().map(Vec::as_slice).collect();
    assert_eq!(
        code128::read_lines(&refs, &mut edges, &config),
        LineRead::NoRead
    );
    // A line that reads alone is returned as it is.
    let good = clean(5.0).scanline(&code128_modules_from_values(&values, 0));
    let refs: Vec<&[u8]> = vec![&lines[0], &good];
    assert!(matches!(
        code128::read_lines(&refs, &mut edges, &config),
        LineRead::Symbol(d) if &d.data[..] == b"PJJ123C"
    ));
}

#[test]
fn a_trigger_gives_its_lines_to_the_edge_setting_that_reads_more_of_the_label() {
    use code128::TriggerVotes;
    let config = Code128Config::default();
    let mut edges = Edges::new();
    let values: Vec<u8> = std::iter::once(104)
        .chain(b"PJJ123C".iter().map(|b| b - 32))
        .collect();
    // Every line has the same character blotted, so no line and no vote reads the label.
    let blotted = |seed| Optics { seed, ..clean(5.0) }.scanline(&with_blot(&values, 5));
    let blank = vec![200u8; 3694];
    let noise: Vec<u8> = {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        (0..3694).map(|_| rng.r#gen::<u8>()).collect()
    };
    // In turn while the settings tie or have not both had a line.
    let mut trigger = TriggerVotes::new();
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SHARP);
    assert_eq!(
        trigger.read(&blotted(1), &mut edges, &EdgeConfig::SHARP, &config),
        LineRead::NoRead
    );
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SMOOTH);
    // SMOOTH's line shows nothing (pure noise, no symbol): SHARP, which read part of the label,
    // gets the next lines.
    trigger.read(&noise, &mut edges, &EdgeConfig::SMOOTH, &config);
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SHARP);
    trigger.read(&blotted(2), &mut edges, &EdgeConfig::SHARP, &config);
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SHARP);
    // And the other way round.
    let mut trigger = TriggerVotes::new();
    trigger.read(&noise, &mut edges, &EdgeConfig::SHARP, &config);
    trigger.read(&blotted(3), &mut edges, &EdgeConfig::SMOOTH, &config);
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SMOOTH);
    // Lines that change nothing (a blank line has no contrast and votes for nothing) leave the
    // choice to the turn.
    let mut trigger = TriggerVotes::new();
    trigger.read(&blank, &mut edges, &EdgeConfig::SHARP, &config);
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SMOOTH);
    trigger.read(&blank, &mut edges, &EdgeConfig::SMOOTH, &config);
    assert_eq!(trigger.next_edge_config(), EdgeConfig::SHARP);
}

#[test]
fn one_line_through_read_lines_reads_exactly_what_it_reads_alone() {
    // At 0.45-module blur of wide modules several characters are weak: one line must not
    // pass the weak-character limit through its own forward and backward walks voting twice.
    let modules = code128_modules(ID).unwrap();
    let config = Code128Config::default();
    let mut edges = Edges::new();
    let (mut alone, mut through_votes) = (0, 0);
    for (m, seed) in [6.0, 8.0]
        .into_iter()
        .flat_map(|m| (1..=20).map(move |s| (m, s)))
    {
        let line = Optics {
            module_samples: m,
            blur: 0.45 * m,
            noise: 3.0,
            samples: 3694,
            seed,
            ..Optics::default()
        }
        .scanline(&modules);
        let single = code128::read_line(&line, &mut edges, &EdgeConfig::SHARP, &config);
        let voted = code128::read_lines(&[&line], &mut edges, &config);
        assert_eq!(single, voted, "m {m}, seed {seed}");
        alone += usize::from(matches!(single, LineRead::Symbol(_)));
        through_votes += usize::from(matches!(voted, LineRead::Symbol(_)));
    }
    assert_eq!(alone, through_votes);
    assert!(
        alone < 40,
        "some of these lines have too many weak characters"
    );
}

/// What the scanner would send from a line (the decoder, then the ID check).
fn sent(read: LineRead) -> Option<Vec<u8>> {
    match read {
        LineRead::Symbol(d) => validate::check(AimId::CODE128, &d.data, d.programming)
            .ok()
            .map(|()| d.data.to_vec()),
        LineRead::NoRead | LineRead::Exposure(_) => None,
    }
}

#[test]
fn no_misreads_on_noise_random_bars_wrong_ids_and_hard_lines() {
    let config = Code128Config::default();
    let mut edges = Edges::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    // Pure noise and random bars, alone and as the lines of one trigger.
    for round in 0..12 {
        let lines: Vec<Vec<u8>> = (0..5)
            .map(|seed| {
                if round % 2 == 0 {
                    (0..3694).map(|_| rng.r#gen::<u8>()).collect()
                } else {
                    let bars: Vec<bool> = (0..300)
                        .flat_map(|i| std::iter::repeat_n(i % 2 == 0, rng.gen_range(1..=4)))
                        .collect();
                    Optics {
                        noise: 4.0,
                        seed,
                        ..clean(rng.gen_range(2.0..10.0))
                    }
                    .scanline(&bars)
                }
            })
            .collect();
        for line in &lines {
            assert_eq!(read(line), None, "round {round}");
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        assert!(!matches!(
            code128::read_lines(&refs, &mut edges, &config),
            LineRead::Symbol(_)
        ));
    }
    // An ID printed with a wrong check character decodes as Code 128 and is never sent.
    let id = PrescriptionId::parse(ID).unwrap();
    let mut wrong = id.compact().as_bytes().to_vec();
    wrong[17] = if wrong[17] == b'0' { b'1' } else { b'0' };
    let values: Vec<u8> = std::iter::once(104)
        .chain(wrong.iter().map(|b| b - 32))
        .collect();
    let line = clean(5.0).scanline(&code128_modules_from_values(&values, 0));
    assert_eq!(read(&line).map(|d| d.data.to_vec()), Some(wrong.clone()));
    assert_eq!(
        sent(code128::read_line_adaptive(&line, &mut edges, &config)),
        None
    );
    // Hard lines of valid IDs (low contrast, heavy noise, few samples per module, dead
    // elements): whatever is sent is the printed ID.
    let mut reads = 0;
    for label in 0..24u64 {
        let id = PrescriptionId::new(rng.gen_range(0..=0xFF_FFFF), "A99968", label as u32).unwrap();
        let modules = id_code128_modules(&id).unwrap();
        let dead = [rng.gen_range(0..modules.len() * 2)];
        let printed = printed_with_dead_dots(&modules, 2, &dead);
        let m = rng.gen_range(2.0..8.0);
        let contrast = rng.gen_range(30.0..60.0);
        let lines: Vec<Vec<u8>> = (0..5)
            .map(|seed| {
                Optics {
                    module_samples: m / 2.0,
                    quiet_modules: 20.0,
                    noise: rng.gen_range(4.0..8.0),
                    bar_level: 160.0 - contrast,
                    paper_level: 160.0,
                    seed: label * 8 + seed,
                    ..clean(m)
                }
                .scanline(&printed)
            })
            .collect();
        for line in &lines {
            if let Some(data) = sent(code128::read_line_adaptive(line, &mut edges, &config)) {
                assert_eq!(&data[..], id.compact().as_bytes(), "label {label}");
                reads += 1;
            }
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        if let Some(data) = sent(code128::read_lines(&refs, &mut edges, &config)) {
            assert_eq!(&data[..], id.compact().as_bytes(), "label {label}, voted");
        }
    }
    assert!(reads > 0, "the hard lines are not all unreadable");
}
