//! The same std scaffolding as `core_footprint` without the firmware core: bench/budget.sh
//! subtracts its size to get the core's code size.

use std::hint::black_box;

fn main() {
    let polls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let state: Box<[u64; 4]> = Box::new([1, 2, 3, 4]);
    let mut sum = 0u64;
    for now in 0..polls {
        sum = sum.wrapping_add(black_box(now) ^ state[(now % 4) as usize]);
    }
    println!("static RAM of nothing: {} {:?}", sum, black_box(state));
}
