//! Fitting labels into a width without cutting them: wrapping at the places a strategy label or
//! a sentence breaks naturally, for the terminal table and the charts.

/// `text` in lines of at most `width` characters, broken at a space, after `,` or `(`, or
/// before `@` where one falls in the line, else mid-word: a label is wrapped, never cut.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > width {
        // A cut at `at` keeps `rest[..at]` on this line.
        let breaks_at =
            |at: usize| matches!(rest[at - 1], ',' | '(' | ' ') || matches!(rest[at], ' ' | '@');
        let cut = (1..=width).rev().find(|&at| breaks_at(at)).unwrap_or(width);
        let line: String = rest[..cut].iter().collect();
        lines.push(line.trim_end().to_owned());
        rest.drain(..cut);
        while rest.first() == Some(&' ') {
            rest.remove(0);
        }
    }
    lines.push(rest.into_iter().collect());
    lines
}

/// [`wrap`] with every line after the first indented by two spaces, so a wrapped label does not
/// read as a row of its own.
pub(crate) fn wrap_hanging(text: &str, width: usize) -> Vec<String> {
    let mut lines = wrap(text, width);
    if lines.len() > 1 && width > 4 {
        lines.truncate(1);
        // `wrap` only trims spaces at a break, so the first line is a prefix of the text.
        let rest = text[lines[0].len()..].trim_start();
        lines.extend(
            wrap(rest, width - 2)
                .into_iter()
                .map(|line| format!("  {line}")),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_at_spaces_and_parentheses_and_never_drops_text() {
        assert_eq!(wrap("sdk default", 20), ["sdk default"]);
        assert_eq!(wrap("pace at 480 RPM", 10), ["pace at", "480 RPM"]);
        assert_eq!(
            wrap("honour-retry-after(decorrelated-jitter)", 20),
            ["honour-retry-after(", "decorrelated-jitter)"]
        );
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("openai-python@2.52", 15), ["openai-python", "@2.52"]);
        for width in 1..30 {
            let text = "tenacity@9(openai-python@2.52) jitter=1";
            let lines = wrap(text, width);
            assert!(lines.iter().all(|line| line.chars().count() <= width));
            let joined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            assert_eq!(joined, text.replace(' ', ""));
        }
    }
}
