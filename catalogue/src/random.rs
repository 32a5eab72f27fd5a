//! The host's random numbers: retry jitter for the guest, lease holder ids,
//! scratch-file names, and the one scheduling-jitter seed of the process.

/// SplitMix64: tiny, fast, statistically fine for retry jitter and ids. Not
/// for cryptography (nor does anything here need that).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a fixed seed (tests).
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// A generator seeded from the time, the process id and an address, so
    /// that processes started in the same instant still differ.
    pub fn from_entropy() -> SplitMix64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        let mut g =
            SplitMix64(nanos ^ (u64::from(std::process::id()) << 32) ^ addr.rotate_left(17));
        // Mix once so that close seeds do not give close first values.
        g.next_u64();
        g
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The scheduling-jitter seed of this process: different per process (so
/// that many clients spread out), the same for every decision it makes (the
/// next due time written by a sync or a settings change, and each check of
/// the MCP server's scheduler). A fresh seed per decision would redraw the
/// jitter each time and let the earliest draw win, shrinking the spread the
/// jitter exists for.
pub fn jitter_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| SplitMix64::from_entropy().next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_spread() {
        let mut a = SplitMix64::new(1);
        let mut b = SplitMix64::new(1);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
        assert_ne!(
            SplitMix64::from_entropy().next_u64(),
            SplitMix64::from_entropy().next_u64()
        );
    }
}
