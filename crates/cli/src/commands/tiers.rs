//! `ratelab tiers`: prints the tier catalog.

use std::fmt::Write as _;

use quota::{Catalog, ModelKind, ModelLimits};

use super::Outcome;

/// Arguments of `ratelab tiers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show only this model (e.g. gpt-4o-mini).
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub catalog: super::validate::CatalogArg,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut catalog = args.catalog.catalog()?;
    if let Some(model) = &args.model {
        catalog.model(model)?;
        catalog.models.retain(|name, _| name == model);
    }
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&catalog)?)?;
    } else {
        crate::out!("{}", render_table(&catalog))?;
    }
    Ok(Outcome::Success)
}

/// The catalog as a plain-text table, one row per tier and model.
fn render_table(catalog: &Catalog) -> String {
    let header = ["tier", "model", "RPM", "RPD", "TPM", "TPD", "batch queue"];
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut any_unverified = false;
    let tiers = catalog.tier_names();
    for tier in &tiers {
        for (model, entry) in &catalog.models {
            let Some(limits) = entry.tiers.get(tier) else {
                continue;
            };
            let unverified = limits.verified == Some(false);
            any_unverified |= unverified;
            let model = if unverified {
                format!("{model} *")
            } else {
                model.clone()
            };
            rows.push(row(tier, model, limits));
        }
    }
    let mut out = format!(
        "ratelab tier catalog, version {} ({})\n\n",
        catalog.version, catalog.date
    );
    out.push_str(&aligned_table(&header.map(str::to_owned), &rows));
    out.push_str("\nmonthly spend caps:");
    for (tier, info) in tiers
        .iter()
        .filter_map(|tier| Some((tier, catalog.tiers.get(tier)?)))
    {
        let _ = write!(
            out,
            " {tier} ${}",
            thousands(Some(info.monthly_spend_cap_usd))
        );
    }
    out.push('\n');
    if any_unverified {
        out.push_str(
            "* not confirmed in OpenAI's published tables (docs/tiers.md); check before relying on it\n",
        );
    }
    out.push_str(&render_request_limits(catalog));
    out
}

/// Each model's per-request limits, which OpenAI enforces with a 400 (docs/model-limits.md);
/// pools are not models and are left out.
fn render_request_limits(catalog: &Catalog) -> String {
    let header = ["model", "kind", "context window", "max output"].map(str::to_owned);
    let mut rows = Vec::new();
    let mut any_unverified = false;
    for (model, entry) in &catalog.models {
        if !entry.is_model() {
            continue;
        }
        let unverified = entry.request_limits_verified == Some(false);
        any_unverified |= unverified;
        let kind = match entry.kind() {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
            ModelKind::Pool => "pool",
        };
        rows.push([
            if unverified {
                format!("{model} +")
            } else {
                model.clone()
            },
            kind.to_owned(),
            thousands(entry.context_window),
            thousands(entry.max_output_tokens),
        ]);
    }
    let mut out = "\nper-request limits (beyond them OpenAI answers 400):\n\n".to_owned();
    out.push_str(&aligned_table(&header, &rows));
    if any_unverified {
        out.push_str(
            "+ not confirmed in OpenAI's own text (see request_limits_source in --json)\n",
        );
    }
    out
}

fn row(tier: &str, model: String, limits: &ModelLimits) -> [String; 7] {
    [
        tier.to_owned(),
        model,
        thousands(limits.rpm),
        thousands(limits.rpd),
        thousands(limits.tpm),
        thousands(limits.tpd),
        thousands(limits.batch_queue_tokens),
    ]
}

/// `30000` as `30,000`; a missing limit as `-`.
fn thousands(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Rows under a header, columns padded to their widest cell: the first two left-aligned (names),
/// the rest right-aligned (numbers).
fn aligned_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|cell| cell.len());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column < 2 {
                let _ = write!(line, "{cell:<width$}  ");
            } else {
                let _ = write!(line, "{cell:>width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_every_tier_of_a_model_with_separators() {
        let mut catalog = Catalog::builtin();
        catalog.models.retain(|name, _| name == "gpt-4o-mini");
        let table = render_table(&catalog);
        // The tier rows; the per-request limits follow the spend caps.
        let rows: Vec<&str> = table
            .lines()
            .take_while(|line| !line.starts_with("monthly spend caps"))
            .filter(|line| line.contains("gpt-4o-mini"))
            .collect();
        assert_eq!(rows.len(), 5, "{table}");
        assert_eq!(
            rows[0].split_whitespace().collect::<Vec<_>>(),
            [
                "tier-1",
                "gpt-4o-mini",
                "500",
                "10,000",
                "200,000",
                "-",
                "2,000,000"
            ]
        );
        assert_eq!(thousands(Some(15_000_000_000)), "15,000,000,000");
        let limits = table
            .lines()
            .skip_while(|line| !line.starts_with("per-request limits"))
            .find(|line| line.starts_with("gpt-4o-mini"))
            .unwrap();
        assert_eq!(
            limits.split_whitespace().collect::<Vec<_>>(),
            ["gpt-4o-mini", "+", "chat", "128,000", "16,384"]
        );
    }

    #[test]
    fn the_long_context_pool_is_no_row_of_the_request_limits() {
        let limits = render_request_limits(&Catalog::builtin());
        assert!(limits.contains("\ngpt-4.1 +"), "{limits}");
        assert!(!limits.contains("long-context"), "{limits}");
        assert_eq!(thousands(Some(999)), "999");
    }
}
