//! Read rate of the scanline decoder over magnification × blur (10 noise seeds each), for
//! BENCHMARKS.md: `cargo run --release -p prescrypt-scanner-firmware --example decode_envelope [noise]`.
use prescrypt_scanner_firmware::code128::{self, Code128Config, LineRead};
use prescrypt_scanner_firmware::scanline::Edges;
use prescrypt_scanner_firmware::sim::optics::{Optics, code128_modules};
fn main() -> Result<(), String> {
    let modules = code128_modules("D7AC09A999684BA59C")?;
    let noise: f64 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    println!(
        "noise σ = {noise} grey levels (contrast 190); cells: blur σ in modules → reads of 10"
    );
    for m in [1.5, 2.0, 3.0, 4.0, 6.0, 8.0] {
        let mut row = vec![];
        for ratio in [0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45] {
            let mut ok = 0;
            for seed in 1..=10 {
                let line = Optics {
                    module_samples: m,
                    blur: ratio * m,
                    noise,
                    samples: 3694,
                    seed,
                    ..Optics::default()
                }
                .scanline(&modules);
                let mut e = Edges::new();
                if matches!(
                    code128::read_line_adaptive(&line, &mut e, &Code128Config::default()),
                    LineRead::Symbol(_)
                ) {
                    ok += 1;
                }
            }
            row.push(format!("{ratio}:{ok}"));
        }
        println!("m={m}: {}", row.join(" "));
    }
    Ok(())
}
