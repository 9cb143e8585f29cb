//! The legends under the tables: each strategy label's full spec, and each server variant
//! whose limits the timeline changes over the run.

use results::RunReport;

/// `(label, spec)` for every strategy whose label is not its own spec, in run order, once each.
///
/// ```
/// let mut report = report::example_report();
/// report.runs[1].spec = "honour-retry-after:inner=(full-jitter)".to_owned();
/// assert_eq!(
///     report::strategy_legend(&report),
///     vec![("retry-after".to_owned(), "honour-retry-after:inner=(full-jitter)".to_owned())]
/// );
/// ```
pub fn strategy_legend(report: &RunReport) -> Vec<(String, String)> {
    let mut legend: Vec<(String, String)> = Vec::new();
    for run in &report.runs {
        if run.spec.is_empty() || run.spec == run.strategy {
            continue;
        }
        if !legend.iter().any(|(label, _)| *label == run.strategy) {
            legend.push((run.strategy.clone(), run.spec.clone()));
        }
    }
    legend
}

/// One line per server variant whose limits change over the run (its timeline's tier or
/// limits entries): `tier-1 changes over the run: 25m: tier tier-2`.
///
/// ```
/// let mut report = report::example_report();
/// assert!(report::server_changes(&report).is_empty());
/// report.scenario.servers[0].limit_changes = vec!["25m: tier tier-2".to_owned()];
/// assert_eq!(
///     report::server_changes(&report),
///     ["tier-1 changes over the run: 25m: tier tier-2"]
/// );
/// ```
pub fn server_changes(report: &RunReport) -> Vec<String> {
    report
        .scenario
        .servers
        .iter()
        .filter(|server| !server.limit_changes.is_empty())
        .map(|server| {
            format!(
                "{} changes over the run: {}",
                server.label,
                server.limit_changes.join("; ")
            )
        })
        .collect()
}
