//! What is limited: limit kinds, the charge of one request, and the serde limit-set config that
//! compiles into [`Limits`], the validated rules a limiter enforces.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One of OpenAI's limit dimensions. Whichever limit is hit first rejects a request.
///
/// ```
/// use std::time::Duration;
/// use quota::{Charge, LimitKind};
///
/// assert_eq!(LimitKind::Tpm.window(), Duration::from_secs(60));
/// assert_eq!(LimitKind::Rpd.window(), Duration::from_secs(86_400));
/// assert_eq!(LimitKind::Tpm.amount(Charge::request(385)), 385);
/// assert_eq!(LimitKind::Rpm.amount(Charge::request(385)), 1);
/// assert_eq!(LimitKind::Tpd.phrase(), "tokens per day (TPD)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKind {
    /// Requests per minute.
    Rpm,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Tokens per day.
    Tpd,
    /// Images per minute.
    Ipm,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Requests (RPM, RPD).
    Requests,
    /// Tokens (TPM, TPD).
    Tokens,
    /// Images (IPM).
    Images,
}

impl Unit {
    /// The part of a [`Charge`] counted in this unit.
    #[inline(always)]
    pub(crate) const fn amount(self, charge: Charge) -> u64 {
        match self {
            Unit::Requests => charge.requests,
            Unit::Tokens => charge.tokens,
            Unit::Images => charge.images,
        }
    }
}

impl LimitKind {
    /// Every kind, in the order limits are checked and reported.
    pub const ALL: [LimitKind; 5] = [
        LimitKind::Rpm,
        LimitKind::Rpd,
        LimitKind::Tpm,
        LimitKind::Tpd,
        LimitKind::Ipm,
    ];

    /// The period the limit is stated over: one minute or one day.
    pub const fn window(self) -> Duration {
        Duration::from_nanos(self.window_nanos())
    }

    pub(crate) const fn window_nanos(self) -> u64 {
        match self {
            LimitKind::Rpm | LimitKind::Tpm | LimitKind::Ipm => 60_000_000_000,
            LimitKind::Rpd | LimitKind::Tpd => 86_400_000_000_000,
        }
    }

    /// What the limit counts.
    #[inline]
    pub const fn unit(self) -> Unit {
        match self {
            LimitKind::Rpm | LimitKind::Rpd => Unit::Requests,
            LimitKind::Tpm | LimitKind::Tpd => Unit::Tokens,
            LimitKind::Ipm => Unit::Images,
        }
    }

    /// Whether the limit is stated per minute (RPM, TPM, IPM).
    pub const fn is_per_minute(self) -> bool {
        matches!(self, LimitKind::Rpm | LimitKind::Tpm | LimitKind::Ipm)
    }

    /// The part of a [`Charge`] this limit counts.
    #[inline]
    pub const fn amount(self, charge: Charge) -> u64 {
        self.unit().amount(charge)
    }

    /// The upper-case abbreviation: `RPM`, `RPD`, `TPM`, `TPD`, `IPM`.
    pub const fn abbreviation(self) -> &'static str {
        match self {
            LimitKind::Rpm => "RPM",
            LimitKind::Rpd => "RPD",
            LimitKind::Tpm => "TPM",
            LimitKind::Tpd => "TPD",
            LimitKind::Ipm => "IPM",
        }
    }

    /// The phrase OpenAI's 429 messages use, e.g. `tokens per min (TPM)`.
    pub const fn phrase(self) -> &'static str {
        match self {
            LimitKind::Rpm => "requests per min (RPM)",
            LimitKind::Rpd => "requests per day (RPD)",
            LimitKind::Tpm => "tokens per min (TPM)",
            LimitKind::Tpd => "tokens per day (TPD)",
            LimitKind::Ipm => "images per min (IPM)",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.abbreviation())
    }
}

/// What one request costs: requests, tokens and images, each counted by the matching limits.
///
/// ```
/// use quota::Charge;
///
/// let charge = Charge::request(1_200);
/// assert_eq!((charge.requests, charge.tokens, charge.images), (1, 1_200, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Charge {
    /// Requests: 1 for one API call.
    pub requests: u64,
    /// Tokens charged at admission (see [`TokenChargeRule`](crate::TokenChargeRule)).
    pub tokens: u64,
    /// Images to generate.
    pub images: u64,
}

impl Charge {
    /// One request charging `tokens` tokens and no images.
    #[inline]
    pub const fn request(tokens: u64) -> Charge {
        Charge {
            requests: 1,
            tokens,
            images: 0,
        }
    }
}

/// Which holder of a limit rejected a request: the organization or one of its projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The organization's limit, shared by all its projects and keys.
    Organization,
    /// A project's own limit inside its organization.
    Project,
}

/// The limiting algorithm. All share one interface and one arithmetic style: integers in
/// nanoseconds, never floats, so a run replays bit for bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Continuous-refill bucket of capacity `limit`, refilled at `limit / window`: OpenAI's
    /// observed behaviour, exact to the nanosecond with rational arithmetic.
    #[default]
    TokenBucket,
    /// Calendar windows aligned to multiples of the window since the epoch; the count resets
    /// at each window start.
    FixedWindow,
    /// Exact log of admissions in the trailing window; memory grows with admissions per window.
    SlidingWindowLog,
    /// Two fixed windows, the previous one weighted by how much of it still overlaps the
    /// trailing window.
    SlidingWindowCounter,
    /// Generic cell rate algorithm with the emission interval rounded to whole nanoseconds, as
    /// the `governor` crate does; within a nanosecond per unit of the token bucket.
    Gcra,
}

/// Whether a rejected request costs anything: OpenAI's guide says rejected requests count
/// toward the per-minute limit, without saying how, and no measurement says how much. This is
/// a named modelling choice; reports can compare the rules side by side (`compare_rejections`).
///
/// Under every rule a 429 describes the limit as the request found it, before any charge for
/// the rejection itself: `Used` never exceeds `Limit`, and OpenAI's public samples (e.g. RPM 3:
/// "Limit 3, Used 3, Requested 1 ... try again in 20s") are reproduced exactly.
///
/// The arithmetic of the counting rules is ratelab's guess: a rejected request's request units
/// (normally 1) are charged to every counted request limit of every scope of the check, but
/// only up to the limit's capacity. A rejection thus takes whatever has refilled toward the
/// next request and never puts a limit in debt: a client resending faster than
/// `limit / window` stays locked out, while one that waits out a full limit's Retry-After from
/// a full bucket gets through. A retry at exactly the stated wait can meet a fresh 429 under
/// these rules, when the first rejection took a partly refilled unit. Token and image limits
/// are never charged for a rejection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectedRequests {
    /// Rejected requests cost nothing: the default. A retry at exactly the stated wait
    /// succeeds if nothing else consumed meanwhile. Every public 429 sample is consistent with
    /// it, and overloaded clients are reported to see many 429s, not zero successes.
    #[default]
    Free,
    /// Rejected requests are charged to per-minute request limits (RPM), the reading of the
    /// guide's wording closest to its text.
    CountPerMinute,
    /// Rejected requests are charged to every request limit (RPM and RPD).
    CountAllRequestLimits,
}

/// A set of limits for one holder (an organization or a project, for one model or shared
/// pool), as written in scenario and config files. Compile it with [`LimitSet::compile`].
///
/// ```
/// use quota::{Algorithm, LimitSet};
///
/// let set: LimitSet = toml::from_str(r#"
///     rpm = 500
///     tpm = 30000
///     algorithm = "token-bucket"
///     quantum_ms = 1000
///     rejected_requests = "count-per-minute"
/// "#).unwrap();
/// assert_eq!(set.algorithm, Algorithm::TokenBucket);
/// let limits = set.compile().unwrap();
/// assert_eq!(limits.rules().count(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSet {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
    /// Images per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipm: Option<u64>,
    /// The limiting algorithm, token bucket unless set.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Quantization: enforce each per-minute limit (RPM, TPM, IPM) over this shorter period, in
    /// milliseconds. A limit `L` per minute becomes `floor(L x quantum / 1 min)` (at least 1)
    /// per `quantum`, refilled at the same rate, so 60,000 RPM with `quantum_ms = 1000` admits
    /// 1,000 per second. Daily limits are never quantized. Unset: enforce over the whole
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantum_ms: Option<u64>,
    /// Whether rejected requests are charged; see [`RejectedRequests`] for the exact rule.
    #[serde(default)]
    pub rejected_requests: RejectedRequests,
    /// How many tokens a request is charged at admission; see
    /// [`TokenChargeRule`](crate::TokenChargeRule).
    #[serde(default)]
    pub token_charge: crate::TokenChargeRule,
}

impl LimitSet {
    /// The limit of `kind`, if set.
    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        match kind {
            LimitKind::Rpm => self.rpm,
            LimitKind::Rpd => self.rpd,
            LimitKind::Tpm => self.tpm,
            LimitKind::Tpd => self.tpd,
            LimitKind::Ipm => self.ipm,
        }
    }

    /// Sets the limit of `kind`.
    pub fn set(&mut self, kind: LimitKind, value: Option<u64>) {
        let slot = match kind {
            LimitKind::Rpm => &mut self.rpm,
            LimitKind::Rpd => &mut self.rpd,
            LimitKind::Tpm => &mut self.tpm,
            LimitKind::Tpd => &mut self.tpd,
            LimitKind::Ipm => &mut self.ipm,
        };
        *slot = value;
    }

    /// Validates the set and precomputes what the limiter needs per limit.
    pub fn compile(&self) -> Result<Limits, LimitConfigError> {
        let mut rules = Vec::new();
        for kind in LimitKind::ALL {
            let Some(limit) = self.get(kind) else {
                continue;
            };
            if limit == 0 {
                return Err(LimitConfigError::ZeroLimit { kind });
            }
            let window = kind.window_nanos();
            let mut capacity = limit;
            // OpenAI describes quantization for per-minute limits only ("60,000 requests/minute
            // may be enforced as 1,000 requests/second"); daily limits keep their whole window.
            let quantum_ms = self.quantum_ms.filter(|_| kind.is_per_minute());
            if let Some(quantum_ms) = quantum_ms {
                let quantum = quantum_ms.saturating_mul(1_000_000);
                if quantum == 0 || quantum > window {
                    return Err(LimitConfigError::BadQuantum { quantum_ms, kind });
                }
                // The rate stays limit / window; only the burst shrinks to one quantum's share.
                let share = u128::from(limit) * u128::from(quantum) / u128::from(window);
                capacity = u64::try_from(share).unwrap_or(u64::MAX).max(1);
            }
            // Limits above 2^40 (a trillion) could overflow the u128 bucket arithmetic with a
            // day window; no real limit is that large.
            if limit > 1 << 40 {
                return Err(LimitConfigError::TooLarge { kind, limit });
            }
            let scale = TokenBucketScale::new(limit, window, capacity);
            rules.push(Rule {
                kind,
                unit: kind.unit(),
                limit,
                capacity,
                window,
                unit_scaled: scale.unit_scaled,
                refill_scaled: scale.refill_scaled,
                capacity_scaled: scale.capacity_scaled,
                algorithm: self.algorithm,
                quantum: quantum_ms.map(|quantum_ms| quantum_ms.saturating_mul(1_000_000)),
                counts_rejections: match self.rejected_requests {
                    RejectedRequests::Free => false,
                    RejectedRequests::CountPerMinute => kind == LimitKind::Rpm,
                    RejectedRequests::CountAllRequestLimits => kind.unit() == Unit::Requests,
                },
            });
        }
        let mut hasher = rustc_hash::FxHasher::default();
        self.hash(&mut hasher);
        let compact = self.algorithm == Algorithm::TokenBucket
            && rules.len() <= COMPACT_RULES
            && rules.iter().all(|rule: &Rule| {
                TokenBucketScale::new(rule.limit, rule.window, rule.capacity).fits_u64
            });
        Ok(Limits {
            rules: rules.into(),
            fingerprint: hasher.finish(),
            compact,
            rejected_requests: self.rejected_requests,
            token_charge: self.token_charge,
        })
    }
}

/// A limit-set config that cannot be enforced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitConfigError {
    /// A limit of zero would reject everything forever.
    #[error("limit {kind} is 0: set a positive limit or remove the key to leave {kind} unlimited")]
    ZeroLimit {
        /// The offending limit.
        kind: LimitKind,
    },
    /// The quantum is zero or longer than the limit's window.
    #[error(
        "quantum_ms = {quantum_ms} does not fit the {kind} window: use a value from 1 to the window length in milliseconds"
    )]
    BadQuantum {
        /// The configured quantum.
        quantum_ms: u64,
        /// The limit whose window it exceeds.
        kind: LimitKind,
    },
    /// The limit exceeds what the exact arithmetic supports.
    #[error("limit {kind} = {limit} is too large: use at most 1099511627776 (2^40)")]
    TooLarge {
        /// The offending limit.
        kind: LimitKind,
        /// Its value.
        limit: u64,
    },
}

/// One compiled limit: what the per-key state machines read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) kind: LimitKind,
    /// `kind.unit()`, stored for the hot path.
    pub(crate) unit: Unit,
    /// The nominal limit, as configured and reported in headers and messages.
    pub(crate) limit: u64,
    /// The enforced burst: `limit`, or one quantum's share under quantization.
    pub(crate) capacity: u64,
    /// The window in nanoseconds the *rate* is stated over: the rate is `limit / window`.
    pub(crate) window: u64,
    pub(crate) algorithm: Algorithm,
    /// Token bucket: scaled units per unit of use, `window / gcd(limit, window)`.
    pub(crate) unit_scaled: u64,
    /// Token bucket: scaled units refilled per nanosecond, `limit / gcd(limit, window)`.
    pub(crate) refill_scaled: u64,
    /// Token bucket: the capacity in scaled units, saturating at `u64::MAX` (exact whenever
    /// the limits are compact).
    pub(crate) capacity_scaled: u64,
    /// The quantum in nanoseconds, when quantized: windowed algorithms use it as their window.
    pub(crate) quantum: Option<u64>,
    pub(crate) counts_rejections: bool,
}

/// A compiled, validated [`LimitSet`]: cheap to clone (shared), compared by content.
///
/// A limiter keeps per-key state built for the `Limits` it was first checked with; checking the
/// same key with different limits (e.g. after an admin changed the tier) starts that key afresh.
#[derive(Debug, Clone)]
pub struct Limits {
    pub(crate) rules: Arc<[Rule]>,
    /// Content hash of the [`LimitSet`]: keyed state remembers it instead of the rules.
    pub(crate) fingerprint: u64,
    /// Whether per-key state fits the compact form: token buckets only, at most
    /// [`COMPACT_RULES`] of them, with 64-bit levels that cannot overflow.
    pub(crate) compact: bool,
    rejected_requests: RejectedRequests,
    token_charge: crate::TokenChargeRule,
}

/// How many token buckets a compact per-key state holds in line: three (e.g. RPM, RPD and
/// TPM) keep an entry keyed by a `u64` within one 64-byte cache line.
pub(crate) const COMPACT_RULES: usize = 3;

/// A token bucket's exact integer scale. Use is counted in scaled units so that refill is
/// exact: one unit of use is `window / g` scaled units and the bucket refills `limit / g` scaled
/// units per nanosecond, `g = gcd(limit, window)`. Dividing by `g` keeps levels small enough
/// for 64 bits for every ordinary limit, without changing any result: every level is a
/// multiple of `g` in the unreduced scale.
struct TokenBucketScale {
    unit_scaled: u64,
    refill_scaled: u64,
    capacity_scaled: u64,
    /// Whether four times the capacity in scaled units fits a `u64`: room for the rejection
    /// debt (twice the capacity) and for sums before they are compared, with margin.
    fits_u64: bool,
}

impl TokenBucketScale {
    fn new(limit: u64, window: u64, capacity: u64) -> TokenBucketScale {
        let divisor = greatest_common_divisor(limit, window);
        let unit_scaled = window / divisor;
        let capacity_scaled = u128::from(capacity) * u128::from(unit_scaled);
        TokenBucketScale {
            unit_scaled,
            refill_scaled: limit / divisor,
            capacity_scaled: u64::try_from(capacity_scaled).unwrap_or(u64::MAX),
            fits_u64: capacity_scaled * 4 <= u128::from(u64::MAX),
        }
    }
}

fn greatest_common_divisor(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One limit of a compiled set, as reported by [`Limits::rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    /// The dimension.
    pub kind: LimitKind,
    /// The nominal limit per window.
    pub limit: u64,
    /// The enforced burst capacity (smaller than `limit` under quantization).
    pub capacity: u64,
}

impl Limits {
    /// The limits in check order (RPM, RPD, TPM, TPD, IPM; unset ones absent).
    pub fn rules(&self) -> impl Iterator<Item = LimitRule> + '_ {
        self.rules.iter().map(|rule| LimitRule {
            kind: rule.kind,
            limit: rule.limit,
            capacity: rule.capacity,
        })
    }

    /// Whether rejected requests are charged.
    pub fn rejected_requests(&self) -> RejectedRequests {
        self.rejected_requests
    }

    /// How many tokens a request is charged at admission.
    pub fn token_charge(&self) -> crate::TokenChargeRule {
        self.token_charge
    }

    /// Whether no limit is set: every request is admitted.
    pub fn is_unlimited(&self) -> bool {
        self.rules.is_empty()
    }
}
