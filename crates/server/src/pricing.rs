//! The price table behind spend caps and `insufficient_quota`: US dollars per million tokens.
//!
//! Figures are OpenAI's list prices as published in 2025 for the catalog's models; a config
//! file can override or add models under `[prices]`. Unknown models cost nothing, so they
//! never exhaust a budget.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one million tokens of a model cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million_usd: f64,
    #[serde(default)]
    pub output_per_million_usd: f64,
}

const BUILTIN: &[(&str, f64, f64)] = &[
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-long-context", 2.00, 8.00),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("gpt-4", 30.00, 60.00),
    ("text-embedding-3-small", 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.0),
];

/// Prices by model: the built-in figures with the config's overrides on top.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl PriceTable {
    pub fn new(overrides: &BTreeMap<String, Price>) -> PriceTable {
        let mut prices: BTreeMap<String, Price> = BUILTIN
            .iter()
            .map(|&(model, input, output)| {
                let price = Price {
                    input_per_million_usd: input,
                    output_per_million_usd: output,
                };
                (model.to_owned(), price)
            })
            .collect();
        prices.extend(
            overrides
                .iter()
                .map(|(model, price)| (model.clone(), *price)),
        );
        PriceTable { prices }
    }

    /// The cost in dollars of one request's tokens.
    pub fn cost_usd(&self, model: &str, input_tokens: u64, output_tokens: u64) -> f64 {
        self.prices.get(model).map_or(0.0, |price| {
            (input_tokens as f64 * price.input_per_million_usd
                + output_tokens as f64 * price.output_per_million_usd)
                / 1e6
        })
    }
}

/// Checks override values, naming the model and the fix.
pub fn validate(overrides: &BTreeMap<String, Price>) -> Result<(), String> {
    for (model, price) in overrides {
        for value in [price.input_per_million_usd, price.output_per_million_usd] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!(
                    "prices.{model}: {value} is not a non-negative price in dollars per million tokens"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_table_and_overrides() {
        let table = PriceTable::new(&BTreeMap::new());
        assert!((table.cost_usd("gpt-4o", 1_000_000, 100_000) - 3.5).abs() < 1e-9);
        assert_eq!(table.cost_usd("my-model", 10, 10), 0.0);
        let overrides = BTreeMap::from([(
            "my-model".to_owned(),
            Price {
                input_per_million_usd: 1.0,
                output_per_million_usd: 2.0,
            },
        )]);
        let table = PriceTable::new(&overrides);
        assert!((table.cost_usd("my-model", 500_000, 500_000) - 1.5).abs() < 1e-9);
    }
}
