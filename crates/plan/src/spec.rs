//! What a plan sweeps: the scenario, the tiers, the rejection rules, the growth grid, the
//! seeds, the bisection's precision and the share of cached input; and how `--tiers` reads.

use quota::{Catalog, RejectedRequests};
use scenario::Scenario;

use crate::growth::Growth;

/// Everything a plan sweeps, checked by [`crate::Planner::new`].
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// The scenario as written, with the strategies to compare (its own or `--strategy`).
    pub scenario: Scenario,
    /// Tiers in the catalog's order, cheapest first.
    pub tiers: Vec<String>,
    /// Rejection rules: the first is the plan's (the scenario's own rule, or the first of its
    /// `compare_rejections`); the others are swept on the grid only, to say whether the answer
    /// changes under them.
    pub rules: Vec<RejectedRequests>,
    /// The growth grid, ascending.
    pub growth: Vec<Growth>,
    /// Seeds per (tier, growth, strategy), derived from the scenario's seed.
    pub seeds: u32,
    /// The bisection stops when the breaking point is bracketed this closely.
    pub precision: Growth,
    /// The share of input tokens billed at the cached-input price, 0 to 1.
    pub cached_share: f64,
    /// The tier catalog (the built-in one with the scenario's `[server.catalog]` overrides).
    pub catalog: Catalog,
}

/// The default bisection precision: 0.05x.
pub const DEFAULT_PRECISION: Growth = Growth::from_thousandths(50);

/// The default growth grid: 1, 1.5, 2, 3 and 5 times the scenario's traffic.
pub const DEFAULT_GROWTH: &str = "1,1.5,2,3,5";

/// The rejection rules a plan of `scenario` compares by default: its `compare_rejections`,
/// else its own rule; the first is the plan's.
pub fn scenario_rules(scenario: &Scenario) -> Vec<RejectedRequests> {
    let config = &scenario.server.config;
    if config.compare_rejections.is_empty() {
        vec![config.limiter.rejected_requests]
    } else {
        config.compare_rejections.clone()
    }
}

/// The tiers of `catalog` that offer `model`, in the catalog's order.
pub fn tiers_offering(catalog: &Catalog, model: &str) -> Vec<String> {
    catalog
        .tier_names()
        .into_iter()
        .filter(|tier| catalog.limits(tier, model).is_ok())
        .collect()
}

/// Reads `--tiers`: a comma-separated list of tiers and ranges (`free..tier-5`, `tier-2..`,
/// `..tier-3`) in the catalog's order, each named tier checked against the catalog. A range
/// keeps the tiers that offer `model`; a tier named alone must offer it.
///
/// ```
/// let catalog = quota::Catalog::builtin();
/// let tiers = plan::parse_tiers("free..tier-3", &catalog, "gpt-4o").unwrap();
/// // gpt-4o has no free tier: a range skips it.
/// assert_eq!(tiers, ["tier-1", "tier-2", "tier-3"]);
/// assert_eq!(
///     plan::parse_tiers("tier-9", &catalog, "gpt-4o").unwrap_err(),
///     "--tiers: unknown tier \"tier-9\" (expected one of: free, tier-1, tier-2, tier-3, tier-4, tier-5; a range such as free..tier-5 takes every tier between)"
/// );
/// ```
pub fn parse_tiers(text: &str, catalog: &Catalog, model: &str) -> Result<Vec<String>, String> {
    let order = catalog.tier_names();
    let offering = tiers_offering(catalog, model);
    let position = |name: &str| -> Result<usize, String> {
        order.iter().position(|tier| tier == name).ok_or_else(|| {
            format!(
                "--tiers: unknown tier \"{name}\" (expected one of: {}; a range such as {}..{} takes every tier between)",
                order.join(", "),
                order.first().map_or("", String::as_str),
                order.last().map_or("", String::as_str),
            )
        })
    };
    let mut chosen = vec![false; order.len()];
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        if let Some((from, to)) = part.split_once("..") {
            let from = if from.trim().is_empty() {
                0
            } else {
                position(from.trim())?
            };
            let to = if to.trim().is_empty() {
                order.len().saturating_sub(1)
            } else {
                position(to.trim())?
            };
            if from > to {
                return Err(format!(
                    "--tiers: the range {part} runs backwards (write the cheaper tier first, e.g. {}..{})",
                    order[to], order[from]
                ));
            }
            for (index, slot) in chosen.iter_mut().enumerate().take(to + 1).skip(from) {
                *slot |= offering.contains(&order[index]);
            }
        } else {
            let index = position(part)?;
            if !offering.contains(&order[index]) {
                return Err(format!(
                    "--tiers: tier \"{part}\" does not offer {model} (tiers that do: {})",
                    offering.join(", ")
                ));
            }
            chosen[index] = true;
        }
    }
    let tiers: Vec<String> = order
        .iter()
        .zip(&chosen)
        .filter(|(_, chosen)| **chosen)
        .map(|(tier, _)| tier.clone())
        .collect();
    if tiers.is_empty() {
        return Err(format!(
            "--tiers \"{text}\" names no tier that offers {model} (tiers that do: {})",
            offering.join(", ")
        ));
    }
    Ok(tiers)
}

/// Reads `--cached-share`: a share from 0 to 1.
///
/// ```
/// assert_eq!(plan::parse_share("0.25"), Ok(0.25));
/// assert!(plan::parse_share("25").unwrap_err().contains("from 0 to 1"));
/// ```
pub fn parse_share(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| {
        format!("\"{text}\" is not a number (expected a share from 0 to 1, e.g. 0.3 for 30%)")
    })?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "{text} is not a share from 0 to 1 (write 0.3 for 30% of input tokens served from the cache)"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_read_as_lists_and_ranges_in_catalog_order() {
        let catalog = Catalog::builtin();
        let read = |text| parse_tiers(text, &catalog, "gpt-4o-mini");
        assert_eq!(read("tier-3,tier-1").unwrap(), ["tier-1", "tier-3"]);
        assert_eq!(read("tier-4..").unwrap(), ["tier-4", "tier-5"]);
        assert_eq!(read("..tier-2").unwrap(), ["tier-1", "tier-2"]);
        assert_eq!(read("tier-2..tier-2").unwrap(), ["tier-2"]);
        assert!(
            read("tier-3..tier-1")
                .unwrap_err()
                .contains("runs backwards")
        );
        assert_eq!(
            read("free").unwrap_err(),
            "--tiers: tier \"free\" does not offer gpt-4o-mini (tiers that do: tier-1, tier-2, tier-3, tier-4, tier-5)"
        );
        assert!(read(",").unwrap_err().contains("names no tier"));
    }
}
