//! Nanoseconds per limiter decision on virtual time: ratelab's `quota` side by side with the
//! `governor` crate's direct limiter on its fake clock, for one limit, a combined RPM+TPM
//! check, the server's path with statuses, and a keyed check over a million keys.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use quota::{Charge, DirectLimiter, Instant, LimitSet, Limiter, Limits, Scope, ScopedKey};
use rustc_hash::FxHashMap;

/// Virtual time between decisions: one millisecond, so a 60,000 RPM limit hovers near its
/// refill rate and both admissions and rejections occur.
const STEP: Duration = Duration::from_millis(1);

fn limits(rpm: u64, tpm: Option<u64>) -> Limits {
    LimitSet {
        rpm: Some(rpm),
        tpm,
        ..LimitSet::default()
    }
    .compile()
    .expect("the benchmark's limits are valid")
}

fn single_limit(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("single_limit");
    group.bench_function("governor_direct", |bencher| {
        let clock = FakeRelativeClock::default();
        let quota = Quota::per_minute(NonZeroU32::new(60_000).expect("non-zero"));
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        bencher.iter(|| {
            clock.advance(STEP);
            black_box(limiter.check().is_ok())
        });
    });
    group.bench_function("quota_direct", |bencher| {
        let mut limiter = DirectLimiter::new(&limits(60_000, None));
        let mut now = Instant::ZERO;
        bencher.iter(|| {
            now += STEP;
            black_box(limiter.try_acquire(now, Charge::request(0)).is_ok())
        });
    });
    group.bench_function("quota_keyed_one_key", |bencher| {
        let limits = limits(60_000, None);
        let mut limiter = Limiter::new();
        let key = 7u64;
        let scopes = [ScopedKey {
            scope: Scope::Organization,
            key: &key,
            limits: &limits,
        }];
        let mut now = Instant::ZERO;
        bencher.iter(|| {
            now += STEP;
            black_box(
                limiter
                    .try_acquire(now, Charge::request(0), &scopes)
                    .is_ok(),
            )
        });
    });
    group.finish();
}

fn combined_rpm_tpm(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("combined_rpm_tpm");
    let limits = limits(60_000, Some(6_000_000));
    let key = 7u64;
    let scopes = [ScopedKey {
        scope: Scope::Organization,
        key: &key,
        limits: &limits,
    }];
    group.bench_function("quota_direct", |bencher| {
        let mut limiter = DirectLimiter::new(&limits);
        let mut now = Instant::ZERO;
        bencher.iter(|| {
            now += STEP;
            black_box(limiter.try_acquire(now, Charge::request(100)).is_ok())
        });
    });
    group.bench_function("quota_keyed_one_key", |bencher| {
        let mut limiter = Limiter::new();
        let mut now = Instant::ZERO;
        bencher.iter(|| {
            now += STEP;
            black_box(
                limiter
                    .try_acquire(now, Charge::request(100), &scopes)
                    .is_ok(),
            )
        });
    });
    group.bench_function("quota_decide_with_headers", |bencher| {
        let mut limiter = Limiter::new();
        let mut now = Instant::ZERO;
        bencher.iter(|| {
            now += STEP;
            match limiter.decide(now, Charge::request(100), &scopes) {
                Ok(admitted) => black_box(quota::rate_limit_headers(&admitted.statuses).len()),
                Err(rejected) => black_box(quota::retry_headers(&rejected.rejection).len()),
            }
        });
    });
    group.finish();
}

/// A fixed pseudo-random visiting order over the keys (xorshift), so every run is the same.
fn key_order(keys: u64, length: usize) -> Vec<u64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % keys
        })
        .collect()
}

/// One keyed RPM+TPM decision, a microsecond of virtual time after the previous one.
fn keyed_decision(
    limiter: &mut Limiter<u64>,
    limits: &Limits,
    now: &mut Instant,
    key: u64,
) -> bool {
    *now += Duration::from_micros(1);
    let scopes = [ScopedKey {
        scope: Scope::Organization,
        key: &key,
        limits,
    }];
    limiter
        .try_acquire(*now, Charge::request(100), &scopes)
        .is_ok()
}

fn keyed_million(criterion: &mut Criterion) {
    const KEYS: u64 = 1_000_000;
    let mut group = criterion.benchmark_group("keyed_1m_keys");
    let limits = limits(600, Some(60_000));
    let mut limiter = Limiter::new();
    let mut now = Instant::ZERO;
    for key in 0..KEYS {
        let scopes = [ScopedKey {
            scope: Scope::Organization,
            key: &key,
            limits: &limits,
        }];
        let _ = limiter.try_acquire(now, Charge::request(100), &scopes);
    }
    assert_eq!(limiter.len() as u64, KEYS, "every key holds state");
    let order = key_order(KEYS, 1 << 20);
    let mut position = 0;
    // The floor: one random lookup-and-update in a plain map of a million entries of the same
    // size as the limiter's, without any limiter arithmetic.
    group.bench_function("baseline_fxhashmap_get_mut", |bencher| {
        let mut map: FxHashMap<u64, [u64; 11]> = (0..KEYS).map(|key| (key, [key; 11])).collect();
        let mut position = 0;
        bencher.iter(|| {
            let key = order[position & (order.len() - 1)];
            position += 1;
            let entry = map.get_mut(&key).expect("every key is present");
            entry[0] += 1;
            black_box(entry[1])
        });
    });
    // The same lookup, but each key depends on the previous lookup's result, so misses cannot
    // overlap: the memory latency a limiter decision on a cold key cannot beat.
    group.bench_function("baseline_fxhashmap_get_mut_dependent", |bencher| {
        let mut map: FxHashMap<u64, [u64; 11]> = (0..KEYS).map(|key| (key, [0; 11])).collect();
        let mut position = 0;
        bencher.iter(|| {
            let key = order[position & (order.len() - 1)];
            let entry = map.get_mut(&key).expect("every key is present");
            entry[0] += 1;
            position += 1 + (entry[1] as usize & black_box(0));
        });
    });
    group.bench_function("quota_hot_10k_of_1m_keys_rpm_tpm", |bencher| {
        let hot = key_order(10_000, 1 << 20);
        let mut position = 0;
        bencher.iter(|| {
            let key = hot[position & (hot.len() - 1)];
            position += 1;
            black_box(keyed_decision(&mut limiter, &limits, &mut now, key))
        });
    });
    group.bench_function("quota_random_key_rpm_tpm", |bencher| {
        bencher.iter(|| {
            let key = order[position & (order.len() - 1)];
            position += 1;
            black_box(keyed_decision(&mut limiter, &limits, &mut now, key))
        });
    });
    group.finish();
}

criterion_group!(benches, single_limit, combined_rpm_tpm, keyed_million);
criterion_main!(benches);
