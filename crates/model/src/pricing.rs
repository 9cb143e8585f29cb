//! The price table behind spend caps and `insufficient_quota`: US dollars per million tokens.
//!
//! Figures are OpenAI's standard (not Batch) list prices for the catalog's models; a config
//! config can override or add models under `[prices]`. Unknown models cost nothing, so they
//! never exhaust a budget.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one million tokens of a model cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_million_usd: f64,
    #[serde(default)]
    pub output_per_million_usd: f64,
    /// Input tokens served from the prompt cache; unset: not known, billed as plain input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_million_usd: Option<f64>,
}

/// When the built-in prices were last checked against their sources.
pub const PRICES_DATE: &str = "2026-12";

/// (model, input, output, cached input) in US dollars per million tokens.
///
/// Checked in November 2026 against stored copies of public pages; OpenAI's own pricing page
/// (platform.openai.com/docs/pricing) was not among them, so each figure rests on secondary
/// sources that quote it, all of which agree:
/// - gpt-4o 2.50/10.00 and gpt-4o-mini 0.15/0.60: aimodelcalc.pages.dev/guides/openai-api-pricing.html
///   (quoting OpenAI's page, May 2026), deploybase.ai/articles/openai-pricing (March 2026),
///   chatgptpricing.com/api (March 2025). One outlier (aifreeapi.com, 5.00/20.00 for gpt-4o)
///   is contradicted by all of these and was not followed.
/// - gpt-4.1 2.00/8.00: deploybase.ai/articles/gpt-4.1-pricing (March 2026),
///   losclouds.com/ai-models/gpt-4-1 (verified April 2026), chatai.guide/models/gpt-4-1
///   (quoting OpenAI's model page). A page listing 1.00/4.00 gives the Batch price.
/// - gpt-4.1-long-context: no separate price was found. It is ratelab's name for gpt-4.1's
///   long-context rate-limit pool (inputs over 128k tokens, community.openai.com thread
///   1371479); such requests are gpt-4.1 requests, so they carry gpt-4.1's price.
/// - gpt-3.5-turbo 0.50/1.50: aimodelcalc (May 2026), goitreels-com.pages.dev (April 2026),
///   chatgptpricing.com/api (March 2025).
/// - gpt-4 30.00/60.00: openrouter.ai/openai/gpt-4 and ora.it.com (both undated), matching the
///   per-thousand 0.03/0.06 of 2023-24 price lists; no dated first-party page was found.
/// - text-embedding-3-small 0.02, -3-large 0.13, ada-002 0.10 (input only):
///   tokenmix.ai/blog/openai-embedding-pricing (April 2026), embeddingcost.com/openai
///   (May 2026), and the January 2024 launch prices per thousand (0.00002, 0.00013, 0.0001).
/// - Cached input, gpt-4o 1.25 and gpt-4o-mini 0.075 (half the input price):
///   chatgptpricing-akr.pages.dev/api-pricing (quoting developers.openai.com/api/docs/pricing)
///   and ai.cloudprice.net's gpt-4o-mini record (cache read 0.075, June 2026).
///
/// Added in December 2026 (pages read 2026-12-06), for models whose rate limits the catalog
/// does not hold yet (docs/tiers.md says why): priced here so that a user's `--catalog` file
/// giving their limits plans with a cost.
/// - gpt-4.1-mini 0.40/1.60, cached 0.10: deploybase.ai/articles/gpt-4.1-pricing ("from OpenAI
///   API pricing", March 2026; input and output), losclouds.com/ai-models/gpt-4-1-mini
///   (verified 2026-04-02), explore.oreate.ai/posts/gpt41-mini-pricing-explained-costs-for-every-api-tier
///   (April 2026, with the cached 0.10), whichllm.io's gpt-4.1-mini record (cache read 0.10).
/// - gpt-4.1-nano 0.10/0.40, cached 0.025: deploybase.ai (March 2026), losclouds.com
///   (verified 2026-04-02), llmpricing.site's gpt-4.1-nano record (cached 0.025, LiteLLM's
///   cost map synced 2026-05-27), qumge.com (cache read 0.025).
/// - o4-mini 1.10/4.40, cached 0.275: yingtu.ai's o4-mini pricing article ("as of July 2,
///   2026, OpenAI direct Standard pricing"), losclouds.com/ai-models/o4-mini (verified
///   2026-04-05, the cached price rounded to 0.28), ai.cloudprice.net's o4-mini record (cache
///   read 0.275, 2026-06-23).
/// - o3-mini 1.10/4.40, cached 0.55: toksum.dev's o3-mini comparison (verified 2026-05-21
///   against platform.openai.com/docs/pricing), llmcalc.app/models/o3-mini (verified
///   2026-05-06, and noting its removal from OpenAI's price page on 2026-06-12: the last list
///   price), codeswap.net/models/o3-mini (2026-05-29).
///
/// No source for the other models' cached price was found: they bill cached input as plain
/// input. Not priced, for want of two agreeing sources: o3 (only goitreels-com.pages.dev's
/// April 2026 guide, 10.00/40.00, was found), o1 (only aimodelcalc's 15.00/60.00), the gpt-5
/// family (no dated page stating its list prices was found).
const BUILTIN: &[(&str, f64, f64, Option<f64>)] = &[
    ("gpt-4o", 2.50, 10.00, Some(1.25)),
    ("gpt-4o-mini", 0.15, 0.60, Some(0.075)),
    ("gpt-4.1", 2.00, 8.00, None),
    ("gpt-4.1-long-context", 2.00, 8.00, None),
    ("gpt-4.1-mini", 0.40, 1.60, Some(0.10)),
    ("gpt-4.1-nano", 0.10, 0.40, Some(0.025)),
    ("o4-mini", 1.10, 4.40, Some(0.275)),
    ("o3-mini", 1.10, 4.40, Some(0.55)),
    ("gpt-3.5-turbo", 0.50, 1.50, None),
    ("gpt-4", 30.00, 60.00, None),
    ("text-embedding-3-small", 0.02, 0.0, None),
    ("text-embedding-3-large", 0.13, 0.0, None),
    ("text-embedding-ada-002", 0.10, 0.0, None),
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
            .map(|&(model, input, output, cached_input)| {
                let price = Price {
                    input_per_million_usd: input,
                    output_per_million_usd: output,
                    cached_input_per_million_usd: cached_input,
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
        self.price(model).cost_usd(input_tokens, output_tokens)
    }

    /// The price of `model`; nothing for a model the table does not list.
    pub fn price(&self, model: &str) -> Price {
        self.prices.get(model).copied().unwrap_or(Price {
            input_per_million_usd: 0.0,
            output_per_million_usd: 0.0,
            cached_input_per_million_usd: None,
        })
    }

    /// Whether the table lists `model`.
    pub fn lists(&self, model: &str) -> bool {
        self.prices.contains_key(model)
    }
}

impl Price {
    /// The cost in dollars of this many tokens.
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_million_usd
            + output_tokens as f64 * self.output_per_million_usd)
            / 1e6
    }

    /// The cost in dollars of `input_tokens` of which `cached_tokens` are served from the prompt
    /// cache (at the cached-input price, or the input price when it is not known), and
    /// `output_tokens`.
    ///
    /// ```
    /// let table = model::PriceTable::new(&Default::default());
    /// let price = table.price("gpt-4o");
    /// // 1M input, half of it cached at 1.25, and 100k output at 10.00.
    /// let cost = price.cost_with_cache_usd(1_000_000, 500_000, 100_000);
    /// assert!((cost - (0.5 * 2.5 + 0.5 * 1.25 + 1.0)).abs() < 1e-9);
    /// ```
    pub fn cost_with_cache_usd(
        &self,
        input_tokens: u64,
        cached_tokens: u64,
        output_tokens: u64,
    ) -> f64 {
        let cached_tokens = cached_tokens.min(input_tokens);
        let cached_price = self
            .cached_input_per_million_usd
            .unwrap_or(self.input_per_million_usd);
        self.cost_usd(input_tokens - cached_tokens, output_tokens)
            + cached_tokens as f64 * cached_price / 1e6
    }
}

/// Checks override values, naming the model and the fix.
pub fn validate(overrides: &BTreeMap<String, Price>) -> Result<(), String> {
    for (model, price) in overrides {
        let cached = price.cached_input_per_million_usd.unwrap_or(0.0);
        for value in [
            price.input_per_million_usd,
            price.output_per_million_usd,
            cached,
        ] {
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

    /// The figures checked against public sources (see [`BUILTIN`]); change them only with a
    /// new source and date there.
    #[test]
    fn the_builtin_figures_are_the_checked_list_prices() {
        let table = PriceTable::new(&BTreeMap::new());
        let checked = [
            ("gpt-4o", 2.50, 10.00),
            ("gpt-4o-mini", 0.15, 0.60),
            ("gpt-4.1", 2.00, 8.00),
            ("gpt-4.1-long-context", 2.00, 8.00),
            ("gpt-4.1-mini", 0.40, 1.60),
            ("gpt-4.1-nano", 0.10, 0.40),
            ("o4-mini", 1.10, 4.40),
            ("o3-mini", 1.10, 4.40),
            ("gpt-3.5-turbo", 0.50, 1.50),
            ("gpt-4", 30.00, 60.00),
            ("text-embedding-3-small", 0.02, 0.0),
            ("text-embedding-3-large", 0.13, 0.0),
            ("text-embedding-ada-002", 0.10, 0.0),
        ];
        for (model, input, output) in checked {
            let million_in = table.cost_usd(model, 1_000_000, 0);
            let million_out = table.cost_usd(model, 0, 1_000_000);
            assert!(
                (million_in - input).abs() < 1e-9,
                "{model} input: {million_in}"
            );
            assert!(
                (million_out - output).abs() < 1e-9,
                "{model} output: {million_out}"
            );
        }
        assert_eq!(
            table.prices.len(),
            checked.len(),
            "a model without a checked price"
        );
        let cached = |model: &str| table.price(model).cached_input_per_million_usd;
        assert_eq!(cached("gpt-4.1-mini"), Some(0.10));
        assert_eq!(cached("gpt-4.1-nano"), Some(0.025));
        assert_eq!(cached("o4-mini"), Some(0.275));
        assert_eq!(cached("o3-mini"), Some(0.55));
    }

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
                cached_input_per_million_usd: None,
            },
        )]);
        let table = PriceTable::new(&overrides);
        assert!((table.cost_usd("my-model", 500_000, 500_000) - 1.5).abs() < 1e-9);
    }
}
