//! The latency model: time to first token plus a steady token rate, with seeded jitter.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Latency settings. The default is instant (no TTFT, unlimited rate), which suits tests; a
/// realistic run sets e.g. `ttft_ms = 400`, `tokens_per_second = 60`, `jitter = 0.2`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Mean time to first token, in milliseconds.
    pub ttft_ms: f64,
    /// Output rate after the first token; 0 means unlimited.
    pub tokens_per_second: f64,
    /// Relative spread in [0, 1): each request draws TTFT and rate scaled by `1 ± jitter`.
    pub jitter: f64,
}

impl LatencyConfig {
    /// Checks the values, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.ttft_ms.is_finite() && self.ttft_ms >= 0.0) {
            return Err(format!(
                "latency.ttft_ms: {} is not a non-negative number of milliseconds",
                self.ttft_ms
            ));
        }
        if !(self.tokens_per_second.is_finite() && self.tokens_per_second >= 0.0) {
            return Err(format!(
                "latency.tokens_per_second: {} is not a non-negative rate (0 means unlimited)",
                self.tokens_per_second
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(format!(
                "latency.jitter: {} is outside [0, 1); use e.g. 0.2 for ±20%",
                self.jitter
            ));
        }
        Ok(())
    }

    /// Draws one request's timing.
    pub fn plan(&self, rng: &mut impl Rng) -> LatencyPlan {
        let mut scale = || {
            if self.jitter == 0.0 {
                1.0
            } else {
                rng.random_range(1.0 - self.jitter..1.0 + self.jitter)
            }
        };
        let time_to_first_token_scale = scale();
        let rate_scale = if self.tokens_per_second == 0.0 {
            1.0
        } else {
            scale()
        };
        self.scaled_plan(time_to_first_token_scale, rate_scale)
    }

    /// Whether [`LatencyConfig::plan`] draws from its RNG at all.
    pub fn is_jittered(&self) -> bool {
        self.jitter != 0.0
    }

    /// The timing with the time to first token and the token rate scaled by these factors.
    pub fn scaled_plan(&self, time_to_first_token_scale: f64, rate_scale: f64) -> LatencyPlan {
        let time_to_first_token =
            Duration::from_secs_f64(self.ttft_ms * time_to_first_token_scale / 1000.0);
        let per_token = if self.tokens_per_second == 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(1.0 / (self.tokens_per_second * rate_scale))
        };
        LatencyPlan {
            time_to_first_token,
            per_token,
        }
    }
}

/// One request's timing: the first token after `time_to_first_token`, then one every `per_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyPlan {
    pub time_to_first_token: Duration,
    pub per_token: Duration,
}

impl LatencyPlan {
    /// How long a whole response of `output_tokens` takes: the wait before a non-streamed reply.
    pub fn total(&self, output_tokens: u64) -> Duration {
        let later_tokens = u32::try_from(output_tokens.saturating_sub(1)).unwrap_or(u32::MAX);
        self.time_to_first_token + self.per_token * later_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn total_is_ttft_plus_one_interval_per_later_token() {
        let config = LatencyConfig {
            ttft_ms: 200.0,
            tokens_per_second: 50.0,
            jitter: 0.0,
        };
        let plan = config.plan(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert_eq!(plan.time_to_first_token, Duration::from_millis(200));
        assert_eq!(plan.total(11), Duration::from_millis(400));
        assert_eq!(plan.total(0), Duration::from_millis(200));
    }

    #[test]
    fn jitter_stays_within_its_band_and_repeats_for_a_seed() {
        let config = LatencyConfig {
            ttft_ms: 100.0,
            tokens_per_second: 10.0,
            jitter: 0.5,
        };
        let draw = |seed| config.plan(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        for seed in 0..50 {
            let plan = draw(seed);
            assert!(plan.time_to_first_token >= Duration::from_millis(50));
            assert!(plan.time_to_first_token <= Duration::from_millis(150));
            assert_eq!(plan, draw(seed));
        }
    }
}
