//! `ratelab strategies`: lists every registered retry strategy with its parameters, defaults
//! and source, as an aligned table or as JSON.

use std::fmt::Write as _;

use retry::{Registry, StrategyInfo};

use super::Outcome;

/// Arguments of `ratelab strategies`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let registry = Registry::with_builtins();
    let infos: Vec<&StrategyInfo> = registry.infos().collect();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&infos)?)?;
    } else {
        crate::out!("{}", render_table(&infos))?;
    }
    Ok(Outcome::Success)
}

/// Whether a parameter is one of the common caps left unset, shown once in the footer rather
/// than under every strategy.
fn is_unset_cap(param: &retry::ParamInfo) -> bool {
    Registry::CAP_PARAMS.contains(&param.name.as_str()) && param.default.is_none()
}

/// One block per strategy (name, summary, source), its parameters aligned across all blocks.
fn render_table(infos: &[&StrategyInfo]) -> String {
    let shown = |info: &&StrategyInfo| {
        info.params
            .iter()
            .filter(|param| !is_unset_cap(param))
            .cloned()
            .collect::<Vec<_>>()
    };
    let all_params: Vec<retry::ParamInfo> = infos.iter().flat_map(shown).collect();
    let name_width = all_params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let kind_width = all_params
        .iter()
        .map(|p| p.kind.to_string().len())
        .max()
        .unwrap_or(0);
    let default_text = |param: &retry::ParamInfo| match (&param.default, param.required) {
        (Some(default), _) => default.clone(),
        (None, true) => "(required)".to_owned(),
        (None, false) => "(unset)".to_owned(),
    };
    let default_width = all_params
        .iter()
        .map(|p| default_text(p).len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for info in infos {
        let _ = writeln!(out, "{}  {}", info.name, info.summary);
        let _ = writeln!(out, "  source: {}", info.source);
        for param in shown(info) {
            let _ = writeln!(
                out,
                "  {:name_width$}  {:kind_width$}  {:default_width$}  {}",
                param.name,
                param.kind.to_string(),
                default_text(&param),
                param.doc,
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "every strategy also takes the caps {} (unset unless listed above)",
        Registry::CAP_PARAMS.join(", ")
    );
    let _ = writeln!(
        out,
        "command line: --strategy 'name:param=value,...', nested strategies in parentheses, e.g.\n  \
         stacked:outer=(tenacity@9:max-attempts=6),inner=(openai-python@2.52)\n\
         a version picks the latest release line at or below it: openai-node@7.10 -> openai-node@7.5"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_builtin_with_aligned_parameters() {
        let registry = Registry::with_builtins();
        let infos: Vec<&StrategyInfo> = registry.infos().collect();
        let table = render_table(&infos);
        for info in &infos {
            assert!(
                table.contains(&format!("{}  {}", info.name, info.summary)),
                "{}",
                info.name
            );
        }
        let base_line = table
            .lines()
            .find(|line| line.trim_start().starts_with("base ") && line.contains("100ms"))
            .expect("full-jitter's base parameter");
        let cap_line = table
            .lines()
            .find(|line| line.trim_start().starts_with("cap ") && line.contains("20s"))
            .expect("full-jitter's cap parameter");
        assert_eq!(base_line.find("duration"), cap_line.find("duration"));
        assert!(table.contains("(required)"));
    }
}
