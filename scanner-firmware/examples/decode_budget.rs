//! Workload for the decode budget (bench/budget.sh runs it under callgrind, counting only
//! `code128::read_line`): decodes `lines` pre-rendered scanlines of `samples` samples.
//!
//! `decode_budget <samples> <lines> read|noread [sharp|smooth|voted]` (one pass per line, as the
//! scanner does, with the given edge-detector setting; `voted`: `read_lines` over groups of 5
//! lines, one pass per line with the setting the trigger's votes pick): `read` lines carry a
//! prescription ID's Code 128
//! (3 samples/module, blur 0.25 module, noise σ 2); `noread` lines carry random bars with full
//! contrast — the worst case, both smoothing passes and both directions fail; `badcheck` lines
//! the same ID's characters with a wrong mod-103 check character (every line walks from start
//! to stop, fails the check and gets the second opinion, which finds nothing to change).

use std::hint::black_box;

use prescrypt_barcode::PrescriptionId;
use prescrypt_scanner_firmware::code128::{Code128Config, LineRead, read_line, read_lines};
use prescrypt_scanner_firmware::scanline::{EdgeConfig, Edges};
use prescrypt_scanner_firmware::sim::optics::{
    Optics, code128_modules_from_values, id_code128_modules,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3694);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let kind = args.next().unwrap_or_else(|| "read".to_owned());
    let setting = args.next().unwrap_or_else(|| "sharp".to_owned());
    let edge_config = match setting.as_str() {
        "smooth" => EdgeConfig::SMOOTH,
        _ => EdgeConfig::SHARP,
    };
    let id = PrescriptionId::parse("D7AC09-A99968-4BA59C").map_err(|e| e.to_string())?;
    let modules = match kind.as_str() {
        "read" => id_code128_modules(&id)?,
        "badcheck" => {
            let values: Vec<u8> = std::iter::once(104)
                .chain(id.compact().bytes().map(|b| b - 32))
                .collect();
            code128_modules_from_values(&values, 1)
        }
        _ => {
            let mut rng = StdRng::seed_from_u64(5);
            (0..samples / 3).map(|_| rng.gen_bool(0.5)).collect()
        }
    };
    let lines: Vec<Vec<u8>> = (0..count)
        .map(|seed| {
            Optics {
                module_samples: 3.0,
                blur: 0.75,
                noise: 2.0,
                samples,
                seed,
                quiet_modules: if kind == "noread" { 0.0 } else { 10.0 },
                ..Optics::default()
            }
            .scanline(&modules)
        })
        .collect();
    let config = Code128Config::default();
    let mut edges = Edges::new();
    let mut reads = 0;
    if setting == "voted" {
        for group in lines.chunks(5) {
            let refs: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
            if let LineRead::Symbol(_) =
                black_box(read_lines(black_box(&refs), &mut edges, &config))
            {
                reads += group.len();
            }
        }
        println!(
            "{kind}: {reads}/{count} lines of {samples} samples decoded (voted in groups of 5)"
        );
        return Ok(());
    }
    for line in &lines {
        if let LineRead::Symbol(_) = black_box(read_line(
            black_box(line),
            &mut edges,
            &edge_config,
            &config,
        )) {
            reads += 1;
        }
    }
    println!("{kind}: {reads}/{count} lines of {samples} samples decoded");
    Ok(())
}
