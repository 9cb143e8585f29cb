//! The renderers: snapshots of the text formats, well-formed SVG and HTML, and determinism.

use report::{Colour, example_report, render_all};

#[test]
fn summary_markdown_snapshot() {
    insta::assert_snapshot!(report::summary_markdown(&example_report()));
}

#[test]
fn report_json_snapshot() {
    insta::assert_snapshot!(report::report_json(&example_report()));
}

#[test]
fn terminal_table_snapshot() {
    insta::assert_snapshot!(report::terminal_table(&example_report(), Colour::Never));
}

#[test]
fn terminal_table_colours_only_the_best_cells() {
    let plain = report::terminal_table(&example_report(), Colour::Never);
    let coloured = report::terminal_table(&example_report(), Colour::Always);
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[1;32m"));
    let stripped = coloured
        .replace("\x1b[1;32m", "")
        .replace("\x1b[2m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn report_json_round_trips() {
    let report = example_report();
    let parsed = report::parse_report_json(&report::report_json(&report)).unwrap();
    assert_eq!(parsed, report);
}

#[test]
fn report_json_of_another_version_is_refused_with_advice() {
    let with_version = |version: u32| {
        report::report_json(&example_report()).replacen(
            "\"format_version\": 1",
            &format!("\"format_version\": {version}"),
            1,
        )
    };
    let error = |version| {
        report::parse_report_json(&with_version(version))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(2),
        "report.json has format_version 2, newer than this ratelab reads (version 1): render it with the ratelab that wrote it, or re-run the scenario with this one"
    );
    assert_eq!(
        error(0),
        "report.json has format_version 0, older than this ratelab reads (version 1): re-run the scenario to write it again"
    );
    // Every version from the oldest readable to the current one is read.
    for version in report::OLDEST_READABLE_FORMAT_VERSION..=results::REPORT_FORMAT_VERSION {
        assert!(report::parse_report_json(&with_version(version)).is_ok());
    }
}

#[test]
fn every_svg_is_well_formed_xml_with_an_svg_root() {
    let files = render_all(&example_report()).unwrap();
    let svgs: Vec<_> = files
        .iter()
        .filter(|file| file.name.ends_with(".svg"))
        .collect();
    assert_eq!(
        svgs.len(),
        5,
        "comparison, latency, retries and two timelines"
    );
    for file in svgs {
        let text = std::str::from_utf8(&file.bytes).unwrap();
        let document = roxmltree::Document::parse(text)
            .unwrap_or_else(|error| panic!("{} is not well-formed: {error}", file.name));
        assert_eq!(
            document.root_element().tag_name().name(),
            "svg",
            "{}",
            file.name
        );
        assert!(
            document.descendants().any(|node| node.has_tag_name("text")),
            "{} has no text",
            file.name
        );
    }
}

#[test]
fn html_is_well_formed_self_contained_and_embeds_every_chart() {
    let files = render_all(&example_report()).unwrap();
    let html = files.iter().find(|file| file.name == "index.html").unwrap();
    let text = std::str::from_utf8(&html.bytes).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(text, options)
        .unwrap_or_else(|error| panic!("index.html is not well-formed: {error}"));
    assert_eq!(document.root_element().tag_name().name(), "html");
    let inline_svgs = document
        .descendants()
        .filter(|node| node.has_tag_name("svg"))
        .count();
    let chart_files = files
        .iter()
        .filter(|file| file.name.ends_with(".svg"))
        .count();
    assert_eq!(inline_svgs, chart_files);
    // Self-contained: nothing is loaded from elsewhere and nothing needs JavaScript.
    for node in document.descendants() {
        assert!(!node.has_tag_name("script"), "index.html has a script");
        assert!(!node.has_tag_name("link"), "index.html links an asset");
        for attribute in ["src", "href"] {
            assert!(
                node.attribute(attribute).is_none(),
                "<{}> has a {attribute}",
                node.tag_name().name()
            );
        }
    }
    let best_cells = document
        .descendants()
        .filter(|node| node.attribute("class") == Some("number best"))
        .count();
    assert!(best_cells > 0, "the scoreboard marks best values");
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let first = render_all(&example_report()).unwrap();
    let second = render_all(&example_report()).unwrap();
    assert_eq!(first.len(), second.len());
    for (first, second) in first.iter().zip(&second) {
        assert_eq!(first.name, second.name);
        assert!(
            first.bytes == second.bytes,
            "{} differs between renders",
            first.name
        );
    }
}

#[test]
fn a_report_without_runs_still_renders() {
    let mut report = example_report();
    report.runs.clear();
    let files = render_all(&report).unwrap();
    let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
    assert_eq!(names, ["report.json", "summary.md", "index.html"]);
    assert!(report::summary_markdown(&report).contains("No runs."));
}

#[test]
fn labels_with_markup_are_escaped() {
    let mut report = example_report();
    report.runs[0].strategy = "a<b>&c|d".to_owned();
    let files = render_all(&report).unwrap();
    for file in &files {
        if file.name.ends_with(".svg") || file.name == "index.html" {
            let text = std::str::from_utf8(&file.bytes).unwrap();
            let options = roxmltree::ParsingOptions {
                allow_dtd: true,
                ..roxmltree::ParsingOptions::default()
            };
            roxmltree::Document::parse_with_options(text, options)
                .unwrap_or_else(|error| panic!("{}: {error}", file.name));
        }
    }
    let markdown = report::summary_markdown(&report);
    assert!(markdown.contains("| `a<b>&c|d` |") || markdown.contains("a\\<b\\>&c\\|d"));
}

#[test]
fn a_single_run_renders_every_chart() {
    let mut report = example_report();
    report.runs.truncate(1);
    let files = render_all(&report).unwrap();
    let svgs = files
        .iter()
        .filter(|file| file.name.ends_with(".svg"))
        .count();
    assert_eq!(svgs, 4, "comparison, latency, retries and one timeline");
    for file in files.iter().filter(|file| file.name.ends_with(".svg")) {
        roxmltree::Document::parse(std::str::from_utf8(&file.bytes).unwrap())
            .unwrap_or_else(|error| panic!("{}: {error}", file.name));
    }
}

#[test]
fn comparison_bars_follow_table_order_from_the_top() {
    let charts = report::charts(&example_report()).unwrap();
    let comparison = charts
        .iter()
        .find(|chart| chart.file_name == "comparison.svg")
        .unwrap();
    let document = roxmltree::Document::parse(&comparison.svg).unwrap();
    // The y of each label text, in the first panel (the first occurrence of each label).
    let label_y = |label: &str| -> f64 {
        document
            .descendants()
            .find(|node| node.has_tag_name("text") && node.text().map(str::trim) == Some(label))
            .and_then(|node| node.attribute("y"))
            .and_then(|y| y.parse().ok())
            .unwrap_or_else(|| panic!("no label {label}"))
    };
    assert!(
        label_y("none") < label_y("retry-after"),
        "the first run is drawn on top"
    );
    // Each value label sits on the same row as its run's label: `none` succeeded for 41.7%.
    let value_y = label_y("41.7%");
    assert!(
        (value_y - label_y("none")).abs() < 2.0,
        "41.7% is on the `none` row"
    );
}

#[test]
fn answers_name_the_tier_needed_when_tiers_are_compared() {
    let mut report = example_report();
    let mut upgraded: Vec<_> = report.runs.clone();
    for run in &mut upgraded {
        run.server = "tier-2".to_owned();
        run.totals.succeeded = run.totals.requests;
        run.totals.gave_up = 0;
    }
    report.runs.extend(upgraded);
    let answers = report::answers(&report);
    assert_eq!(
        answers,
        [
            "Best strategy on tier-1: retry-after (80.8% success, p99 35.3s, 1.97x amplification).",
            "Survives: no. On tier-1, no strategy succeeds for at least 99.0% of requests; retry-after comes closest (success rate 80.8% < 99.0%).",
            "Best strategy on tier-2: none (100.0% success, p99 1.49s, 1.00x amplification).",
            "Survives: yes. On tier-2, none succeeds for at least 99.0% of requests.",
            "Tier needed: tier-2, the cheapest compared tier where a strategy (none) succeeds for at least 99.0% of requests.",
        ]
    );
}
