//! JUnit XML for CI test reporters: one `<testsuite>` per scenario and one `<testcase>` per
//! scenario x run x threshold, and one for its capacity gate (`[expect.plan]`); a baseline's
//! (a strategy outside `[expect]` `gate`) is skipped.

use std::fmt::Write;

use crate::html::escape;
use crate::verdict::CheckedScenario;

/// The JUnit XML document of `ratelab check`'s verdicts.
///
/// Test case names read `<run>: <metric> <comparison> <limit>`; their class name is
/// `ratelab.<scenario>`; a failed threshold carries a `<failure>` whose message gives the
/// actual value and where the threshold is written.
///
/// A baseline's verdict is a `<skipped>` test case whose message says whether it met the bound:
/// GitHub's, GitLab's and Jenkins' JUnit reporters all count and show skipped cases apart from
/// passes and failures, and none of them fails a build for one, which is what a baseline is.
/// (A `<property>` would carry the same words, but most reporters do not display properties.)
///
/// ```
/// let xml = report::junit_xml(&[]);
/// assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
/// ```
pub fn junit_xml(checked: &[CheckedScenario]) -> String {
    let tests: usize = checked.iter().map(CheckedScenario::cases).sum();
    let failures: usize = checked.iter().map(CheckedScenario::failures).sum();
    let skipped: usize = checked
        .iter()
        .flat_map(|scenario| &scenario.verdicts)
        .filter(|verdict| !verdict.gated)
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ratelab check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    for scenario in checked {
        let scenario_failures = scenario.failures();
        let scenario_skipped = scenario
            .verdicts
            .iter()
            .filter(|verdict| !verdict.gated)
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{scenario_failures}\" errors=\"0\" skipped=\"{scenario_skipped}\">",
            escape(&scenario.name),
            scenario.cases()
        );
        for verdict in &scenario.verdicts {
            let bound = verdict.threshold();
            let _ = write!(
                out,
                "    <testcase classname=\"ratelab.{}\" name=\"{}: {}\"",
                escape(&scenario.name),
                escape(&scenario.run_name(verdict)),
                escape(&bound)
            );
            if !verdict.gated {
                let outcome = if verdict.passed { "met" } else { "missed" };
                let message = format!(
                    "baseline, not gated ({outcome}): {} ({})",
                    verdict.describe(),
                    verdict.location
                );
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&message)
                );
            } else if verdict.passed {
                out.push_str("/>\n");
            } else {
                let message = format!("{} ({})", verdict.describe(), verdict.location);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{0}\" type=\"threshold\">{0}</failure>\n    </testcase>",
                    escape(&message)
                );
            }
        }
        if let Some(plan) = &scenario.plan {
            let _ = write!(
                out,
                "    <testcase classname=\"ratelab.{}\" name=\"plan: {}\"",
                escape(&scenario.name),
                escape(&plan.gate())
            );
            if plan.holds {
                out.push_str("/>\n");
            } else {
                let message = format!("{} ({})", plan.describe(), plan.location);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{0}\" type=\"plan\">{0}</failure>\n    </testcase>",
                    escape(&message)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
