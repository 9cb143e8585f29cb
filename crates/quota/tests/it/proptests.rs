//! Property tests of the limiter's invariants over random limits and request sequences, for
//! every algorithm and option. Failing cases are kept in `proptests.txt` next to this file.

use proptest::prelude::*;
use quota::{
    Algorithm, Charge, Instant, LimitKind, LimitSet, Limiter, Limits, RejectedRequests, Rejection,
    Scope, ScopedKey,
};

use crate::ALGORITHMS;

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;

/// One request of the sequence.
#[derive(Debug, Clone)]
struct Step {
    /// Time since the previous step.
    advance_nanos: u64,
    tokens: u64,
    /// Whether the request also goes through the project scope.
    with_project: bool,
}

fn limit_set() -> impl Strategy<Value = LimitSet> {
    (
        proptest::sample::select(ALGORITHMS.to_vec()),
        proptest::option::of(1..40u64),
        1..5_000u64,
        proptest::option::of(prop_oneof![Just(1_000u64), 1..60_000u64]),
        proptest::sample::select(vec![
            RejectedRequests::Free,
            RejectedRequests::CountPerMinute,
            RejectedRequests::CountAllRequestLimits,
        ]),
    )
        .prop_map(
            |(algorithm, rpm, tpm, quantum_ms, rejected_requests)| LimitSet {
                rpm,
                tpm: Some(tpm),
                algorithm,
                quantum_ms,
                rejected_requests,
                ..LimitSet::default()
            },
        )
}

/// Time between two requests: often none, else up to two seconds or two minutes.
fn advance_nanos() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0..2 * SECOND, 0..2 * MINUTE]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (advance_nanos(), 0..3_000u64, any::<bool>()).prop_map(
        |(advance_nanos, tokens, with_project)| Step {
            advance_nanos,
            tokens,
            with_project,
        },
    );
    proptest::collection::vec(step, 1..120)
}

/// What one step decided.
type Outcome = (Instant, Charge, Result<(), Rejection>);

/// Runs the steps on a fresh limiter, checking per decision that remaining stays within the
/// capacity, used within the limit, and that a retry at exactly the returned wait succeeds
/// (when rejections are free; when they count, once one more request has refilled).
fn run(
    (org_set, org_limits): (&LimitSet, &Limits),
    (project_set, project_limits): (&LimitSet, &Limits),
    steps: &[Step],
) -> Vec<Outcome> {
    let mut limiter = Limiter::new();
    let mut now = Instant::from_nanos(3 * SECOND);
    let mut outcomes = Vec::new();
    for step in steps {
        now = Instant::from_nanos(now.as_nanos() + step.advance_nanos);
        let org_scope = ScopedKey {
            scope: Scope::Organization,
            key: &0u8,
            limits: org_limits,
        };
        let project_scope = ScopedKey {
            scope: Scope::Project,
            key: &1u8,
            limits: project_limits,
        };
        let both = [org_scope, project_scope];
        let scopes: &[ScopedKey<'_, u8>] = if step.with_project { &both } else { &both[..1] };
        let charge = Charge::request(step.tokens);
        let result = limiter.try_acquire(now, charge, scopes);
        if let Err(rejection) = &result {
            check_used(
                rejection,
                if step.with_project && rejection.scope == Scope::Project {
                    project_limits
                } else {
                    org_limits
                },
            );
            if let Some(wait) = rejection.retry_after {
                let sets = [(org_set, org_limits), (project_set, project_limits)];
                let applicable = if step.with_project {
                    &sets[..]
                } else {
                    &sets[..1]
                };
                let extra = rejection_refill(applicable);
                let wait = wait + extra;
                let mut retry = limiter.clone();
                assert_eq!(
                    retry.try_acquire(now + wait, charge, scopes),
                    Ok(()),
                    "retry at the returned wait (plus {extra:?} when rejections count) after {rejection:?}"
                );
            }
        }
        for status in limiter.status(now, scopes) {
            let limits = if status.scope == Scope::Project {
                project_limits
            } else {
                org_limits
            };
            let capacity = capacity_of(limits, status.kind);
            assert!(
                status.remaining <= capacity,
                "{status:?} above capacity {capacity}"
            );
        }
        outcomes.push((now, charge, result));
    }
    outcomes
}

fn capacity_of(limits: &Limits, kind: LimitKind) -> u64 {
    limits
        .rules()
        .find(|rule| rule.kind == kind)
        .expect("statuses only report configured limits")
        .capacity
}

/// Used never exceeds the capacity, whatever the rejection rule: a rejection reports the
/// state it found, and a counted rejection charges only up to the capacity.
fn check_used(rejection: &Rejection, limits: &Limits) {
    let capacity = capacity_of(limits, rejection.kind);
    assert!(
        rejection.used <= capacity,
        "{rejection:?} exceeds its capacity {capacity}"
    );
}

/// How much longer than the stated wait a retry may need: nothing when rejections are free.
/// When they count, the rejection charged its request unit to a counted RPM that may not have
/// rejected it: a continuous limit (token bucket, GCRA) gives it back within one unit's refill,
/// `window / limit`; a windowed one only when its windows have moved on, within two minutes.
/// Only the RPM counts in these sets, which have no RPD.
fn rejection_refill(sets: &[(&LimitSet, &Limits)]) -> std::time::Duration {
    sets.iter()
        .filter(|(set, _)| set.rejected_requests != RejectedRequests::Free)
        .filter_map(|(set, limits)| {
            let rule = limits.rules().find(|rule| rule.kind == LimitKind::Rpm)?;
            let nanos = match set.algorithm {
                Algorithm::TokenBucket | Algorithm::Gcra => {
                    (LimitKind::Rpm.window().as_nanos() as u64).div_ceil(rule.limit)
                }
                _ => 2 * MINUTE,
            };
            Some(std::time::Duration::from_nanos(nanos))
        })
        .max()
        .unwrap_or_default()
}

/// Tokens admitted within any interval [t, t + d] are at most capacity + rate x d.
fn check_interval_bound(set: &LimitSet, limits: &Limits, outcomes: &[Outcome]) {
    let tpm = set.tpm.expect("the strategy always sets a TPM limit");
    let capacity = capacity_of(limits, LimitKind::Tpm);
    let window = u128::from(LimitKind::Tpm.window().as_nanos() as u64);
    let admitted: Vec<(u64, u64)> = outcomes
        .iter()
        .filter(|(_, _, result)| result.is_ok())
        .map(|(now, charge, _)| (now.as_nanos(), charge.tokens))
        .collect();
    for first in 0..admitted.len() {
        let mut total = 0u128;
        for last in first..admitted.len() {
            total += u128::from(admitted[last].1);
            let elapsed = u128::from(admitted[last].0 - admitted[first].0);
            let holds = match set.algorithm {
                // GCRA's emission interval is rounded to whole nanoseconds.
                Algorithm::Gcra => {
                    let interval = (window + u128::from(tpm) / 2) / u128::from(tpm);
                    total * interval <= u128::from(capacity) * interval + elapsed
                }
                _ => total * window <= u128::from(capacity) * window + u128::from(tpm) * elapsed,
            };
            assert!(
                holds,
                "{total} tokens admitted in {elapsed} ns exceed capacity {capacity} + rate"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn limiter_invariants_hold(
        org_set in limit_set(),
        project_set in limit_set(),
        steps in steps(),
    ) {
        let org_limits = org_set.compile().unwrap();
        let project_limits = project_set.compile().unwrap();
        let outcomes = run((&org_set, &org_limits), (&project_set, &project_limits), &steps);
        // Fixed and sliding-counter windows admit up to twice the limit around a boundary by
        // design; the interval bound is the continuous algorithms' promise.
        if matches!(
            org_set.algorithm,
            Algorithm::TokenBucket | Algorithm::SlidingWindowLog | Algorithm::Gcra
        ) {
            check_interval_bound(&org_set, &org_limits, &outcomes);
        }
        // The same input gives the same decisions.
        prop_assert_eq!(
            run((&org_set, &org_limits), (&project_set, &project_limits), &steps),
            outcomes
        );
    }
}

/// One step of the differential test: time moves on, then a request of `tokens` arrives.
fn direct_steps() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((advance_nanos(), 0..3_000u64), 1..150)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The simulator's `DirectLimiter` and the server's keyed `Limiter` decide alike: the same
    /// admissions, the same rejections (kind, used, wait) and the same statuses, step by step,
    /// for every algorithm and rejection rule.
    #[test]
    fn the_direct_and_the_keyed_limiter_decide_alike(
        set in limit_set(),
        steps in direct_steps(),
    ) {
        let limits = set.compile().unwrap();
        let mut direct = quota::DirectLimiter::new(&limits);
        let mut keyed = Limiter::new();
        let scopes = [ScopedKey { scope: Scope::Organization, key: &7u32, limits: &limits }];
        let mut now = Instant::from_nanos(SECOND);
        for (advance, tokens) in steps {
            now = Instant::from_nanos(now.as_nanos() + advance);
            let charge = Charge::request(tokens);
            let mut found = Vec::new();
            let from_direct = direct.try_acquire_reporting(now, charge, Some(&mut found));
            let from_keyed = keyed.decide(now, charge, &scopes);
            match (&from_direct, &from_keyed) {
                (Ok(()), Ok(_)) => {}
                (Err(rejection), Err(rejected)) => {
                    prop_assert_eq!(rejection, &rejected.rejection);
                    prop_assert_eq!(&found, &rejected.statuses);
                }
                _ => prop_assert!(false, "{from_direct:?} vs {from_keyed:?} at {now:?}"),
            }
            prop_assert_eq!(direct.status(now), keyed.status(now, &scopes));
        }
    }
}

/// One step of the two-scope differential test.
#[derive(Debug, Clone)]
struct SlotStep {
    advance_nanos: u64,
    tokens: u64,
    with_project: bool,
    /// Which of the two limit sets of each holder is in force: switching starts that holder
    /// afresh in both limiters, unless the two sets are the same.
    organization_set: usize,
    project_set: usize,
    /// Whether to ask for statuses (`decide`) rather than the fast `try_acquire`.
    report: bool,
}

/// Two limit sets for one holder: often distinct, sometimes the same set compiled twice (a
/// change that changes nothing, which must not start the holder afresh).
fn limit_set_pair() -> impl Strategy<Value = [LimitSet; 2]> {
    (limit_set(), limit_set(), any::<bool>()).prop_map(|(first, second, same)| {
        let second = if same { first.clone() } else { second };
        [first, second]
    })
}

fn slot_steps() -> impl Strategy<Value = Vec<SlotStep>> {
    let step = (
        advance_nanos(),
        0..3_000u64,
        any::<bool>(),
        prop_oneof![4 => Just(0usize), 1 => Just(1usize)],
        prop_oneof![4 => Just(0usize), 1 => Just(1usize)],
        any::<bool>(),
    )
        .prop_map(
            |(advance_nanos, tokens, with_project, organization_set, project_set, report)| {
                SlotStep {
                    advance_nanos,
                    tokens,
                    with_project,
                    organization_set,
                    project_set,
                    report,
                }
            },
        );
    proptest::collection::vec(step, 1..150)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The numbered slots of `SlotLimiter` (the server model's store) and the keyed `Limiter`
    /// decide alike over one or two scopes, whatever the algorithms, rejection rules and limit
    /// changes: the same admissions, the same rejections, the same statuses, step by step.
    #[test]
    fn the_slot_and_the_keyed_limiter_decide_alike(
        organization_sets in limit_set_pair(),
        project_sets in limit_set_pair(),
        steps in slot_steps(),
    ) {
        let organization_limits = organization_sets.map(|set| set.compile().unwrap());
        let project_limits = project_sets.map(|set| set.compile().unwrap());
        let mut slots = quota::SlotLimiter::new();
        let mut keyed = Limiter::new();
        // A project numbered past the organization: the slots grow to it.
        let (organization_slot, project_slot) = (quota::HolderSlot(0), quota::HolderSlot(5));
        let (organization_key, project_key) = (0u8, 1u8);
        let mut now = Instant::from_nanos(SECOND);
        for step in steps {
            now = Instant::from_nanos(now.as_nanos() + step.advance_nanos);
            let charge = Charge::request(step.tokens);
            let organization = &organization_limits[step.organization_set];
            let project = &project_limits[step.project_set];
            let slot_scopes = [
                ScopedKey { scope: Scope::Organization, key: &organization_slot, limits: organization },
                ScopedKey { scope: Scope::Project, key: &project_slot, limits: project },
            ];
            let keyed_scopes = [
                ScopedKey { scope: Scope::Organization, key: &organization_key, limits: organization },
                ScopedKey { scope: Scope::Project, key: &project_key, limits: project },
            ];
            let count = if step.with_project { 2 } else { 1 };
            let (slot_scopes, keyed_scopes) = (&slot_scopes[..count], &keyed_scopes[..count]);
            if step.report {
                let from_slots = slots.decide(now, charge, slot_scopes);
                let from_keyed = keyed.decide(now, charge, keyed_scopes);
                prop_assert_eq!(from_slots, from_keyed, "at {:?}", now);
            } else {
                let from_slots = slots.try_acquire(now, charge, slot_scopes);
                let from_keyed = keyed.try_acquire(now, charge, keyed_scopes);
                prop_assert_eq!(from_slots, from_keyed, "at {:?}", now);
            }
            prop_assert_eq!(slots.status(now, slot_scopes), keyed.status(now, keyed_scopes));
        }
    }
}
