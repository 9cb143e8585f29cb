//! Runs over several seeds: the seed list derived from a scenario's seed, and the most seeds a
//! run may ask for.
//!
//! One seed is one draw of the workload, the latencies and the jitter; running every (variant,
//! strategy) on N seeds says how much of a difference between strategies is noise. The seed
//! list belongs to the scenario (its `seed` and `seeds` keys, checked against [`MAX_SEEDS`]);
//! what a run makes of its seeds, the per-seed values with their intervals, is the `results`
//! crate's `SeedStats`. The executor (the command line's parallel runner) runs the seeds.

/// The most seeds a scenario or `--seeds` may ask for: a thousand runs of every pair is already
/// far past the point where another seed narrows an interval visibly.
pub const MAX_SEEDS: u32 = 1_000;

/// The seeds of an N-seed run: the scenario's own seed first, then the first `count - 1` outputs
/// of SplitMix64 seeded with it, each cut to 53 bits.
///
/// The first seed being the scenario's own makes `seeds = 1` exactly a plain run. SplitMix64
/// (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014; the seeder
/// `rand` uses) spreads the others over the whole range, so the seed lists of `--seed 1` and
/// `--seed 2` share nothing, which they would if the seeds were consecutive. The 53-bit cut
/// keeps every seed exact for JSON readers that hold numbers as doubles (JavaScript).
///
/// ```
/// let seeds = scenario::derive_seeds(7, 3);
/// assert_eq!(seeds[0], 7);
/// assert_eq!(seeds.len(), 3);
/// assert!(seeds.iter().all(|seed| *seed < 1 << 53));
/// assert_eq!(scenario::derive_seeds(7, 1), vec![7]);
/// ```
pub fn derive_seeds(seed: u64, count: u32) -> Vec<u64> {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state = seed;
    let mut seeds = Vec::with_capacity(count as usize);
    if count > 0 {
        seeds.push(seed);
    }
    for _ in 1..count {
        state = state.wrapping_add(GAMMA);
        let mut mixed = state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        seeds.push(mixed >> 11);
    }
    seeds
}

#[cfg(test)]
mod tests {
    use super::derive_seeds;

    #[test]
    fn seeds_start_with_the_scenarios_own_and_two_lists_share_nothing() {
        let one = derive_seeds(1, 50);
        let two = derive_seeds(2, 50);
        assert_eq!((one[0], two[0]), (1, 2));
        let mut all: Vec<u64> = one.iter().chain(&two).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 100, "every seed is distinct");
        assert!(all.iter().all(|seed| *seed < 1 << 53));
        // A longer list extends a shorter one: seeds = 3 runs the first three of seeds = 5.
        assert_eq!(derive_seeds(1, 3), one[..3]);
        assert!(derive_seeds(9, 0).is_empty());
    }
}
