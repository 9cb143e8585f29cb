//! The latency model: a time to first token that grows with the prompt, then a steady interval
//! between output tokens, all scaled by one log-normal jitter factor per request.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// How long an answer takes (`[server.latency]`).
///
/// An admitted request's first token comes `ttft + per_prompt_token x prompt tokens` after
/// admission, and each later token `per_output_token` after the one before; a whole
/// (non-streamed) reply of `n` tokens arrives with its last token. Every part is multiplied by
/// the request's jitter factor `exp(jitter x N(0, 1))`, drawn once per request. A refused
/// request (a 429 or an injected error) is answered after `reject`.
///
/// ```
/// use model::LatencyConfig;
/// use std::time::Duration;
///
/// let latency: LatencyConfig = toml::from_str("ttft = \"300ms\"\nper_output_token = \"20ms\"\njitter = 0.0").unwrap();
/// let plan = latency.plan(0, 1.0);
/// assert_eq!(plan.time_to_first_token(), Duration::from_millis(300));
/// // The first token at 300 ms, nine more 20 ms apart.
/// assert_eq!(plan.total(10), Duration::from_millis(480));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Time to first token of a request with an empty prompt. Default: 200ms.
    pub ttft: HumanDuration,
    /// Prefill time per prompt token, added to the time to first token. Default: 0s.
    pub per_prompt_token: HumanDuration,
    /// Time between output tokens. Default: 10ms.
    pub per_output_token: HumanDuration,
    /// Log-normal spread (sigma) of the factor that scales every part of a request's timing;
    /// 0 means none. Default: 0.2.
    pub jitter: f64,
    /// How long a refused request (a 429, an injected error) takes to answer. Default: 20ms.
    pub reject: HumanDuration,
}

impl Default for LatencyConfig {
    fn default() -> LatencyConfig {
        LatencyConfig {
            ttft: HumanDuration(Duration::from_millis(200)),
            per_prompt_token: HumanDuration(Duration::ZERO),
            per_output_token: HumanDuration(Duration::from_millis(10)),
            jitter: 0.2,
            reject: HumanDuration(Duration::from_millis(20)),
        }
    }
}

impl LatencyConfig {
    /// No latency at all: every answer at once. Tests on a manual clock use it, so nothing
    /// waits for the clock to move.
    pub fn instant() -> LatencyConfig {
        LatencyConfig {
            ttft: HumanDuration(Duration::ZERO),
            per_prompt_token: HumanDuration(Duration::ZERO),
            per_output_token: HumanDuration(Duration::ZERO),
            jitter: 0.0,
            reject: HumanDuration(Duration::ZERO),
        }
    }

    /// Checks the values, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.jitter.is_finite() && (0.0..=3.0).contains(&self.jitter)) {
            return Err(format!(
                "latency.jitter: {} is not a spread from 0 to 3 (0.2 is a typical sigma)",
                self.jitter
            ));
        }
        Ok(())
    }

    /// Whether [`LatencyConfig::draw_factor`] draws from its RNG at all.
    pub fn is_jittered(&self) -> bool {
        self.jitter != 0.0
    }

    /// Draws one request's jitter factor, `exp(jitter x N(0, 1))`; exactly 1 without jitter,
    /// drawing nothing.
    pub fn draw_factor(&self, rng: &mut impl Rng) -> f64 {
        if self.is_jittered() {
            self.factor(StandardNormal.sample(rng))
        } else {
            1.0
        }
    }

    /// The jitter factor of a standard normal draw `normal`: `exp(jitter x normal)`. The
    /// simulator draws `normal` once per request, so every strategy meets the same latency for
    /// the same request, whatever regime the timeline has in force.
    #[inline]
    pub fn factor(&self, normal: f64) -> f64 {
        self.nanos().factor(normal)
    }

    /// The timing of a request with `prompt_tokens`, scaled by `factor` (from
    /// [`LatencyConfig::draw_factor`]). Times are whole nanoseconds, saturating at
    /// `u64::MAX` (584 years).
    #[inline]
    pub fn plan(&self, prompt_tokens: u64, factor: f64) -> LatencyPlan {
        self.nanos().plan(prompt_tokens, factor)
    }

    /// The regime in whole nanoseconds, for a caller that plans many requests with it.
    pub fn nanos(&self) -> LatencyNanos {
        LatencyNanos {
            ttft: nanos(self.ttft.0),
            per_prompt_token: nanos(self.per_prompt_token.0),
            per_output_token: nanos(self.per_output_token.0),
            per_output_token_float: nanos(self.per_output_token.0) as f64,
            jitter: self.jitter,
            reject: nanos(self.reject.0),
        }
    }
}

/// A [`LatencyConfig`] in whole nanoseconds (saturating at 584 years), computed once: what
/// [`LatencyConfig::plan`] reads, and what the simulator keeps per regime
/// ([`ServerModel::latency_nanos_at`](crate::ServerModel::latency_nanos_at)), so an attempt
/// converts no durations.
///
/// ```
/// use model::LatencyConfig;
///
/// let latency: LatencyConfig = toml::from_str("ttft = \"300ms\"\njitter = 0.0").unwrap();
/// let nanos = latency.nanos();
/// assert_eq!(nanos.plan(0, nanos.factor(0.7)), latency.plan(0, 1.0));
/// assert_eq!(nanos.reject_nanos(), 20_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyNanos {
    ttft: u64,
    per_prompt_token: u64,
    per_output_token: u64,
    /// `per_output_token` as a float, what its scaling multiplies.
    per_output_token_float: f64,
    jitter: f64,
    reject: u64,
}

impl LatencyNanos {
    /// [`LatencyConfig::factor`]: `exp(jitter x normal)`, exactly 1 without jitter.
    #[inline]
    pub fn factor(&self, normal: f64) -> f64 {
        if self.jitter != 0.0 {
            (self.jitter * normal).exp()
        } else {
            1.0
        }
    }

    /// [`LatencyConfig::plan`].
    #[inline]
    pub fn plan(&self, prompt_tokens: u64, factor: f64) -> LatencyPlan {
        let prompt = prompt_tokens.min(u64::from(u32::MAX));
        let first = self
            .ttft
            .saturating_add(self.per_prompt_token.saturating_mul(prompt));
        LatencyPlan {
            time_to_first_token: scale(first, first as f64, factor),
            per_token: scale(self.per_output_token, self.per_output_token_float, factor),
        }
    }

    /// How long a refused request takes to answer, in nanoseconds.
    #[inline]
    pub fn reject_nanos(&self) -> u64 {
        self.reject
    }
}

/// A duration in whole nanoseconds, saturating.
#[inline]
fn nanos(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}

/// `nanos x factor`, truncated to whole nanoseconds, saturating; `float` is `nanos as f64`,
/// which a regime's constant times keep. Plain `u64` arithmetic: the simulator computes it for
/// every admitted attempt, and `Duration`'s conversions showed in its profile.
#[inline]
fn scale(nanos: u64, float: f64, factor: f64) -> u64 {
    if factor == 1.0 {
        return nanos;
    }
    // `as` saturates: a factor too large for a u64 of nanoseconds gives the longest wait.
    (float * factor) as u64
}

/// One request's timing: the first token after [`LatencyPlan::time_to_first_token`], then one
/// every [`LatencyPlan::per_token`]. Kept in whole nanoseconds: the simulator reads
/// [`LatencyPlan::total_nanos`] for every admitted attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyPlan {
    time_to_first_token: u64,
    per_token: u64,
}

impl LatencyPlan {
    /// When the first token is ready.
    pub fn time_to_first_token(&self) -> Duration {
        Duration::from_nanos(self.time_to_first_token)
    }

    /// The interval between later tokens.
    pub fn per_token(&self) -> Duration {
        Duration::from_nanos(self.per_token)
    }

    /// How long a whole response of `output_tokens` takes: its last token's time (the first
    /// token's when there are none).
    #[inline]
    pub fn total(&self, output_tokens: u64) -> Duration {
        Duration::from_nanos(self.total_nanos(output_tokens))
    }

    /// [`LatencyPlan::total`] in whole nanoseconds, saturating at `u64::MAX`.
    #[inline]
    pub fn total_nanos(&self, output_tokens: u64) -> u64 {
        let later_tokens = output_tokens.saturating_sub(1).min(u64::from(u32::MAX));
        self.time_to_first_token
            .saturating_add(self.per_token.saturating_mul(later_tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn total_is_ttft_plus_prefill_plus_one_interval_per_later_token() {
        let config = LatencyConfig {
            ttft: HumanDuration(Duration::from_millis(200)),
            per_prompt_token: HumanDuration(Duration::from_micros(100)),
            per_output_token: HumanDuration(Duration::from_millis(20)),
            jitter: 0.0,
            reject: HumanDuration(Duration::ZERO),
        };
        let plan = config.plan(1_000, 1.0);
        assert_eq!(plan.time_to_first_token(), Duration::from_millis(300));
        assert_eq!(plan.total(11), Duration::from_millis(500));
        assert_eq!(plan.total(0), Duration::from_millis(300));
        assert_eq!(config.plan(0, 2.0).total(2), Duration::from_millis(440));
    }

    #[test]
    fn times_saturate_at_the_longest_u64_of_nanoseconds() {
        let config = LatencyConfig {
            ttft: HumanDuration(Duration::from_secs(u64::MAX)),
            per_prompt_token: HumanDuration(Duration::from_secs(1)),
            per_output_token: HumanDuration(Duration::from_secs(1 << 40)),
            jitter: 0.0,
            reject: HumanDuration(Duration::ZERO),
        };
        let plan = config.plan(u64::MAX, 1.0);
        assert_eq!(plan.total_nanos(u64::MAX), u64::MAX);
        assert_eq!(plan.time_to_first_token(), Duration::from_nanos(u64::MAX));
        let short = LatencyConfig {
            ttft: HumanDuration(Duration::from_millis(1)),
            ..config
        };
        // 2^40 s per token times a million tokens is past 584 years; half a factor is too.
        assert_eq!(short.plan(0, 0.5).total_nanos(1_000_000), u64::MAX);
        assert_eq!(short.plan(0, 0.5).total(1), Duration::from_micros(500));
    }

    #[test]
    fn jitter_repeats_for_a_seed_and_draws_nothing_when_off() {
        let config = LatencyConfig::default();
        let draw = |seed| config.draw_factor(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let factors: Vec<f64> = (0..200).map(draw).collect();
        assert_eq!(factors, (0..200).map(draw).collect::<Vec<_>>());
        assert!(factors.iter().all(|factor| *factor > 0.0));
        let median = {
            let mut sorted = factors.clone();
            sorted.sort_by(f64::total_cmp);
            sorted[100]
        };
        assert!((0.9..1.1).contains(&median), "median factor {median}");
        let off = LatencyConfig::instant();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(off.draw_factor(&mut rng), 1.0);
        assert_eq!(rng, rand_chacha::ChaCha8Rng::seed_from_u64(1));
    }

    #[test]
    fn a_bad_jitter_is_named() {
        let config = LatencyConfig {
            jitter: -1.0,
            ..LatencyConfig::default()
        };
        assert!(config.validate().unwrap_err().starts_with("latency.jitter"));
    }
}
