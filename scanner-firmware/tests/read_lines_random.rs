//! `code128::read_lines` on random input: any number of lines (none, more than `MAX_LINES`), any
//! length (empty, a few samples, longer than the sensor), noise and random bars at several
//! scales. It must never panic and never read a symbol.
#![allow(clippy::unwrap_used)]

use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead, MAX_LINES};
use prescrypt_scanner_firmware::scanline::{Edges, MAX_SAMPLES};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn random_triggers_never_panic_and_never_read() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0020);
    let mut edges = Edges::new();
    let config = Code128Config::default();
    for trigger in 0..120 {
        let count = rng.gen_range(0..=MAX_LINES + 2);
        let lines: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                let len = match rng.gen_range(0..4) {
                    0 => rng.gen_range(0..40),
                    1 => MAX_SAMPLES + rng.gen_range(0..200),
                    _ => rng.gen_range(500..=3694),
                };
                let stretch = rng.gen_range(1..=8);
                let (low, high) = (rng.r#gen::<u8>() / 2, 128 + rng.r#gen::<u8>() / 2);
                let mut line = Vec::with_capacity(len);
                while line.len() < len {
                    let level = rng.gen_range(low..=high);
                    line.extend(std::iter::repeat_n(level, stretch));
                }
                line.truncate(len);
                line
            })
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let read = code128::read_lines(&refs, &mut edges, &config);
        assert!(
            !matches!(read, LineRead::Symbol(_)),
            "random trigger {trigger} read as {read:?}"
        );
    }
}
