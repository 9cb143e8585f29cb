//! How long the server's replies are (`[server.completion]`), before `max_tokens` cuts them:
//! the mock server draws each reply's length from it; the simulator's requests carry their own
//! completion lengths from the workload.

use rand::Rng;
use rand_distr::Distribution;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How many tokens a reply has before `max_tokens` caps it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthDistribution {
    /// Always this many tokens.
    Fixed { tokens: u32 },
    /// Uniform between `min` and `max` inclusive.
    Uniform { min: u32, max: u32 },
    /// Normal with this mean and standard deviation, at least one token.
    Normal { mean: f64, std_dev: f64 },
    /// Log-normal with this mean and standard deviation (of the token count, not its log).
    LogNormal { mean: f64, std_dev: f64 },
}

impl Default for LengthDistribution {
    fn default() -> LengthDistribution {
        LengthDistribution::Uniform { min: 16, max: 64 }
    }
}

impl LengthDistribution {
    /// Checks the parameters, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            LengthDistribution::Fixed { tokens: 0 } => {
                Err("completion.tokens: must be at least 1".to_owned())
            }
            LengthDistribution::Uniform { min, max } if min == 0 || min > max => Err(format!(
                "completion: uniform needs 1 <= min <= max, got min {min} and max {max}"
            )),
            LengthDistribution::Normal { mean, std_dev }
            | LengthDistribution::LogNormal { mean, std_dev }
                if !(mean.is_finite() && mean >= 1.0 && std_dev.is_finite() && std_dev >= 0.0) =>
            {
                Err(format!(
                    "completion: needs mean >= 1 and std_dev >= 0, got mean {mean} and std_dev {std_dev}"
                ))
            }
            _ => Ok(()),
        }
    }

    /// Draws one reply length, at least one token.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let draw = match *self {
            LengthDistribution::Fixed { tokens } => return tokens,
            LengthDistribution::Uniform { min, max } => return rng.random_range(min..=max),
            LengthDistribution::Normal { mean, std_dev } => rand_distr::Normal::new(mean, std_dev)
                .map(|normal| normal.sample(rng))
                .unwrap_or(mean),
            LengthDistribution::LogNormal { mean, std_dev } => {
                // Convert the count's mean and deviation into the underlying normal's parameters.
                let sigma_squared = (1.0 + (std_dev / mean).powi(2)).ln();
                let mu = mean.ln() - sigma_squared / 2.0;
                rand_distr::LogNormal::new(mu, sigma_squared.sqrt())
                    .map(|log_normal| log_normal.sample(rng))
                    .unwrap_or(mean)
            }
        };
        draw.round().clamp(1.0, f64::from(u32::MAX)) as u32
    }
}
