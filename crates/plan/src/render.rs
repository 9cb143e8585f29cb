//! A plan as people read it: the terminal's verdict and grid, `plan.md`, and `plan.json`.

use std::fmt::Write;

use crate::document::{COST_COLUMNS, Cell, Plan, RulePlan};

/// `plan.json`: the plan, pretty-printed, with a final newline.
pub fn plan_json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).unwrap_or_else(|error| {
        // Every field is a plain value: serialization cannot fail.
        format!("{{\"error\": \"{error}\"}}")
    });
    text.push('\n');
    text
}

/// A grid cell in a few characters: `ok 99.9% 1.20s`, `-- 64.9% 6m05s`.
fn cell_text(cell: &Cell) -> String {
    let (success, p99) = cell.best_numbers();
    format!("{} {success} {p99}", if cell.meets { "ok" } else { "--" })
}

fn grid_cell<'a>(rule: &'a RulePlan, tier: &str, growth: crate::Growth) -> Option<&'a Cell> {
    rule.cells
        .iter()
        .find(|cell| cell.tier == tier && cell.growth == growth)
}

/// The terminal's output: the verdict's lines, then the grid of the plan's rule (each cell: `ok`
/// or `--`, the best strategy's success and p99), each tier's breaking point and binding limit.
pub fn terminal(plan: &Plan) -> String {
    let mut out = String::new();
    for line in &plan.verdict.lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    let rule = &plan.rules[0];
    let _ = writeln!(
        out,
        "{} on {}: {} x {}, {} simulations (ok: the best strategy meets the criterion; success, p99; skipped: failed at a smaller factor)",
        plan.scenario.name,
        plan.scenario.model,
        counted(plan.strategies.len(), "strategy", "strategies"),
        counted(plan.seeds.len(), "seed", "seeds"),
        plan.simulations
    );
    let tier_width = plan.tiers.iter().map(String::len).max().unwrap_or(4).max(4);
    let _ = write!(out, "{:tier_width$}", "tier");
    for growth in &plan.growth {
        let _ = write!(out, "  {:<16}", growth.to_string());
    }
    let _ = writeln!(out, "  breaks at    binds");
    for (tier, tier_plan) in plan.tiers.iter().zip(&rule.tiers) {
        let _ = write!(out, "{tier:tier_width$}");
        for &growth in &plan.growth {
            let text = grid_cell(rule, tier, growth).map_or(SKIPPED.to_owned(), cell_text);
            let _ = write!(out, "  {text:<16}");
        }
        let _ = writeln!(
            out,
            "  {:<11}  {}",
            tier_plan.breaking_point.describe(),
            tier_plan
                .binding_limit
                .as_deref()
                .map_or("-".to_owned(), str::to_uppercase)
        );
    }
    out
}

/// A grid cell not run: the tier failed at a smaller factor (see `Planner`).
const SKIPPED: &str = "-- skipped";

/// `1 seed`, `3 seeds`.
fn counted(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `plan.md`: the verdict, the grid per rule, the breaking points, the cost table and how the
/// traffic grew.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("# Capacity plan: {}\n\n", plan.scenario.name);
    if !plan.scenario.description.is_empty() {
        let _ = writeln!(out, "{}\n", plan.scenario.description);
    }
    for line in &plan.verdict.lines {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(
        out,
        "\nModel {}; {} on {} per cell ({}); {} simulations; breaking points bisected to {}.\n",
        plan.scenario.model,
        counted(plan.strategies.len(), "strategy", "strategies"),
        counted(plan.seeds.len(), "seed", "seeds"),
        if plan.judged_by == "interval" {
            "a cell meets the criterion when the worse end of its 95% interval does"
        } else {
            "a cell meets the criterion when every seed does"
        },
        plan.simulations,
        plan.precision
    );
    for (index, rule) in plan.rules.iter().enumerate() {
        let title = if index == 0 {
            format!("## Grid (rejections: {})", rule.rule)
        } else {
            format!("## Grid if rejected requests count ({})", rule.rule)
        };
        let _ = writeln!(out, "{title}\n");
        out.push_str("| tier |");
        for growth in &plan.growth {
            let _ = write!(out, " {growth} |");
        }
        out.push_str(
            " breaks at | binds first | best there | pacing sustains | retries alone |\n|:--|",
        );
        for _ in &plan.growth {
            out.push_str(":--|");
        }
        out.push_str(":--|:--|:--|:--|:--|\n");
        for (tier, tier_plan) in plan.tiers.iter().zip(&rule.tiers) {
            let _ = write!(out, "| {tier} |");
            for &growth in &plan.growth {
                let text = grid_cell(rule, tier, growth).map_or(SKIPPED.to_owned(), |cell| {
                    let text = cell_text(cell);
                    if cell.meets {
                        format!("✅ {}", &text[3..])
                    } else {
                        format!("❌ {}", &text[3..])
                    }
                });
                let _ = write!(out, " {text} |");
            }
            let describe =
                |growth: Option<crate::Growth>| growth.map_or("-".to_owned(), |g| g.to_string());
            let _ = writeln!(
                out,
                " {} | {} | {} | {} | {} |",
                tier_plan.breaking_point.describe(),
                tier_plan
                    .binding_limit
                    .as_deref()
                    .map_or("-".to_owned(), str::to_uppercase),
                tier_plan
                    .best_strategy
                    .as_deref()
                    .unwrap_or("-")
                    .replace('|', "\\|"),
                describe(tier_plan.paced_sustains),
                describe(tier_plan.retries_alone_sustain),
            );
        }
        out.push('\n');
    }
    let rule = &plan.rules[0];
    out.push_str("## Peak utilisation at each tier's breaking point\n\n| tier | RPM | TPM | RPD | TPD |\n|:--|--:|--:|--:|--:|\n");
    for tier_plan in &rule.tiers {
        let share = |value: Option<f64>| value.map_or("-".to_owned(), report::units::percent);
        let used = &tier_plan.utilisation;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            tier_plan.tier,
            share(used.rpm),
            share(used.tpm),
            share(used.rpd),
            share(used.tpd)
        );
    }
    out.push_str("\nPer-minute limits: the busiest minute admitted; per-day limits: the run's average rate over a whole day.\n\n");
    out.push_str("## Monthly cost at list prices (30 days)\n\n|");
    for column in COST_COLUMNS {
        let _ = write!(out, " {column} |");
    }
    out.push_str("\n|:--|:--|--:|--:|--:|--:|--:|--:|:--|\n");
    for row in &plan.cost {
        out.push('|');
        for column in row.columns() {
            let _ = write!(out, " {} |", column.replace('|', "\\|"));
        }
        out.push('\n');
    }
    out.push_str("\n## How the traffic grows\n\n| client group | what grows |\n|:--|:--|\n");
    for scaling in &plan.scaling {
        let _ = writeln!(out, "| {} | {} |", scaling.group, scaling.scales);
    }
    out.push_str("\n## Strategies\n\n| label | spec | paces sends |\n|:--|:--|:--|\n");
    for strategy in &plan.strategies {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            strategy.label.replace('|', "\\|"),
            strategy.spec,
            if strategy.paces { "yes" } else { "no" }
        );
    }
    out
}
