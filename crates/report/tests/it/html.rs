//! The HTML report holds 50 runs: structural checks of `index.html` and every SVG chart of a
//! 50-run report (five server variants, ten strategies with long labels), the CI side of the
//! local screenshot check `docs/checks/html-screenshots.sh`.
//!
//! - Legends lie outside the plots: below every curve, axis and bar, inside the chart.
//! - No text is cut: none ends in an ellipsis, and by a character-width estimate none runs past
//!   the chart's edges; every strategy label is written whole (wrapped at most).
//! - The scoreboard has no scroll container or server column, one heading row per server
//!   variant, and every column.

use report::{RunReport, example_report, render_all};

/// Long strategy labels, as long as the short names of wrappers get.
fn labels_of(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("honour-retry-after(decorrelated-jitter) {index}"))
        .collect()
}

/// A report of `servers` x 10 runs built from the example's retrying run, each strategy's
/// latencies scaled differently so that only some curves coincide.
fn report_of(servers: usize) -> RunReport {
    report_with(servers, 10)
}

/// A report of `servers` x `strategies` runs, as [`report_of`].
fn report_with(servers: usize, strategies: usize) -> RunReport {
    let mut report = example_report();
    let template = report.runs[1].clone();
    let server_template = report.scenario.servers[0].clone();
    report.runs.clear();
    report.scenario.servers.clear();
    report.scenario.strategies = labels_of(strategies);
    for server in 0..servers {
        let label = format!("tier-{}, rejections count-per-minute", server + 1);
        let mut summary = server_template.clone();
        summary.label = label.clone();
        report.scenario.servers.push(summary);
        for (index, strategy) in labels_of(strategies).into_iter().enumerate() {
            let mut run = template.clone();
            run.server = label.clone();
            run.strategy = strategy;
            // Strategies 0 and 1 coincide; the others differ.
            let scale = 1.0 + index.saturating_sub(1) as f64 * 0.2;
            for point in &mut run.analysis.latency_cdf {
                point.latency_us = (point.latency_us as f64 * scale) as u64;
            }
            run.latency.p99_us = (run.latency.p99_us as f64 * scale) as u64;
            report.runs.push(run);
        }
    }
    report
}

fn number(node: roxmltree::Node<'_, '_>, attribute: &str) -> f64 {
    node.attribute(attribute)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// The vertical offset of a node: the sum of the `translate(x,y)` of its `<g>` ancestors.
fn offset_y(node: roxmltree::Node<'_, '_>) -> f64 {
    node.ancestors()
        .filter_map(|ancestor| ancestor.attribute("transform"))
        .filter_map(|transform| transform.strip_prefix("translate("))
        .filter_map(|rest| rest.trim_end_matches(')').split(',').nth(1))
        .filter_map(|y| y.trim().parse::<f64>().ok())
        .sum()
}

/// The y coordinates a drawing element covers.
fn ys(node: roxmltree::Node<'_, '_>) -> Vec<f64> {
    match node.tag_name().name() {
        "polyline" | "polygon" => node
            .attribute("points")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|point| point.split(',').nth(1))
            .filter_map(|y| y.parse().ok())
            .collect(),
        "line" => vec![number(node, "y1"), number(node, "y2")],
        "rect" => vec![
            number(node, "y"),
            number(node, "y") + number(node, "height"),
        ],
        "circle" => vec![number(node, "cy")],
        _ => Vec::new(),
    }
}

#[track_caller]
fn check_svg(name: &str, svg: &str, labels: &[String]) {
    let document =
        roxmltree::Document::parse(svg).unwrap_or_else(|error| panic!("{name}: {error}"));
    let root = document.root_element();
    let (width, height) = (number(root, "width"), number(root, "height"));
    let legend = document
        .descendants()
        .find(|node| node.attribute("class") == Some("legend"));
    let in_legend = |node: roxmltree::Node<'_, '_>| {
        node.ancestors()
            .any(|ancestor| ancestor.attribute("class") == Some("legend"))
    };

    if let Some(legend) = legend {
        let top = offset_y(legend.first_child().unwrap_or(legend));
        // Every curve, axis and bar is drawn above the legend (the white background aside).
        for node in document.descendants().filter(|node| !in_legend(*node)) {
            let full_background = node.has_tag_name("rect")
                && number(node, "width") == width
                && number(node, "height") == height;
            if full_background {
                continue;
            }
            for y in ys(node) {
                assert!(
                    y <= top + 0.5,
                    "{name}: a <{}> reaches y={y}, into the legend at {top}",
                    node.tag_name().name()
                );
            }
        }
        // And the legend's own text lies within the chart, under the plots.
        for text in legend
            .descendants()
            .filter(|node| node.has_tag_name("text"))
        {
            let y = number(text, "y") + offset_y(text);
            assert!(
                y >= top && y <= height,
                "{name}: legend text at y={y} outside {top}..{height}"
            );
        }
    }

    let mut all_text = String::new();
    for text in document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
    {
        let content = text.text().unwrap_or("").trim();
        all_text.push_str(content);
        assert!(
            !content.contains("...") && !content.contains('…'),
            "{name}: text cut: {content}"
        );
        if text.attribute("transform").is_some() {
            // Rotated axis titles run vertically.
            continue;
        }
        // A simple estimate: 0.6 em per character.
        let font_size = number(text, "font-size");
        let estimate = content.chars().count() as f64 * font_size * 0.6;
        let x = number(text, "x");
        let (left, right) = match text.attribute("text-anchor") {
            Some("middle") => (x - estimate / 2.0, x + estimate / 2.0),
            Some("end") => (x - estimate, x),
            _ => (x, x + estimate),
        };
        assert!(
            left >= -1.0 && right <= width + 1.0,
            "{name}: \"{content}\" spans {left:.0}..{right:.0}, past the width {width}"
        );
    }
    let squeezed: String = all_text.chars().filter(|c| !c.is_whitespace()).collect();
    for label in labels {
        let label: String = label.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(squeezed.contains(&label), "{name}: label {label} not whole");
    }
}

#[test]
fn every_chart_of_a_50_run_report_keeps_legends_outside_the_plots_and_no_text_cut() {
    // One server with fourteen strategies (colours repeat, dashed), and the 50-run report.
    for (servers, strategies) in [(1, 14), (5, 10)] {
        let report = report_with(servers, strategies);
        for file in render_all(&report).unwrap() {
            if !file.name.ends_with(".svg") {
                continue;
            }
            let svg = std::str::from_utf8(&file.bytes).unwrap();
            // Timelines name one run in their title; the others name every strategy.
            let labels = if file.name.starts_with("timeline-") {
                Vec::new()
            } else {
                labels_of(strategies)
            };
            check_svg(&format!("{servers} servers, {}", file.name), svg, &labels);
        }
    }
}

#[test]
fn coinciding_curves_are_named_under_the_chart() {
    let report = report_of(2);
    let charts = report::charts(&report).unwrap();
    let latency = charts
        .iter()
        .find(|chart| chart.file_name == "latency-cdf.svg")
        .unwrap();
    assert!(latency.svg.contains("Curves that coincide"));
    assert!(latency.svg.contains(
        "tier-1, rejections count-per-minute: honour-retry-after(decorrelated-jitter) 0 = honour-retry-after(decorrelated-jitter) 1"
    ));
}

#[test]
fn the_scoreboard_of_50_runs_wraps_instead_of_scrolling() {
    let report = report_of(5);
    let files = render_all(&report).unwrap();
    let html = files.iter().find(|file| file.name == "index.html").unwrap();
    let html = std::str::from_utf8(&html.bytes).unwrap();
    let scoreboard = html
        .split("<table class=\"scoreboard\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("a scoreboard table");
    assert!(
        !html.contains("overflow-x"),
        "nothing hides behind a scroll bar"
    );
    assert!(!scoreboard.contains("<th>server</th>"));
    assert_eq!(scoreboard.matches("<tr class=\"group\">").count(), 5);
    for column in &report::Scoreboard::of(&report).columns {
        assert!(scoreboard.contains(&format!("<th>{}</th>", column.title)));
    }
    assert_eq!(scoreboard.matches("<td class=\"label\">").count(), 50);
    // Goodput keeps its parenthesis together, and only one.
    assert!(
        scoreboard.contains("(65%\u{a0}of\u{a0}RPM)</td>"),
        "{scoreboard}"
    );
    assert!(!scoreboard.contains("))"));
}
