//! A tiny per-thread xorshift generator for routing choices: fast, lock-free, allocation-free.
//! Not for anything security-related. Tests can make it deterministic with [`seed`].

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(initial_seed());
}

fn initial_seed() -> u64 {
    // Mix the address of a stack value and the time: distinct per thread, no dependency needed.
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as u64;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    splitmix(addr ^ t.rotate_left(17)) | 1
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Re-seeds this thread's generator (for reproducible tests).
pub fn seed(s: u64) {
    STATE.with(|c| c.set(splitmix(s) | 1));
}

/// The next 64 random bits (xorshift64*).
pub(crate) fn next_u64() -> u64 {
    STATE.with(|c| {
        let mut x = c.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Uniform in `[0, 1)`.
pub(crate) fn next_f64() -> f64 {
    (next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `[0, n)`; `n` must be > 0.
pub(crate) fn below(n: usize) -> usize {
    ((next_u64() >> 32).wrapping_mul(n as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_enough() {
        seed(7);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[below(4)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        for _ in 0..1000 {
            let f = next_f64();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
