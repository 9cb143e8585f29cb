//! How numbers read in reports: latencies, shares, factors and rates, the same in every format.

/// A latency in microseconds: `850ms`, `12.3s`, `2m05s`.
pub fn latency(micros: u64) -> String {
    let millis = micros / 1_000;
    if micros < 1_000 {
        format!("{micros}µs")
    } else if millis < 1_000 {
        format!("{millis}ms")
    } else if millis < 10_000 {
        format!("{:.2}s", micros as f64 / 1e6)
    } else if millis < 60_000 {
        format!("{:.1}s", micros as f64 / 1e6)
    } else {
        let seconds = millis / 1_000;
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

/// A point on a time axis, in minutes since the start, as coarse as the axis allows: `45s`,
/// `2m`, `2m30s`, `6h`, `6h30m`. `axis_minutes` is the axis length.
pub fn axis_time(minutes: f64, axis_minutes: f64) -> String {
    let seconds = (minutes * 60.0).round().max(0.0) as u64;
    if axis_minutes < 2.0 {
        format!("{seconds}s")
    } else if axis_minutes <= 180.0 {
        match seconds % 60 {
            0 => format!("{}m", seconds / 60),
            rest => format!("{}m{rest:02}s", seconds / 60),
        }
    } else {
        let minutes = seconds / 60;
        match minutes % 60 {
            0 => format!("{}h", minutes / 60),
            rest => format!("{}h{rest:02}m", minutes / 60),
        }
    }
}

/// A duration in milliseconds, coarser than [`latency`]: `45s`, `3m20s`, `1h05m`.
pub fn duration_ms(millis: u64) -> String {
    let seconds = millis / 1_000;
    if millis < 1_000 {
        format!("{millis}ms")
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3_600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3_600, (seconds % 3_600) / 60)
    }
}

/// A share from 0 to 1 as a percentage with one decimal: `99.2%`.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A multiplication factor: `1.23x`.
pub fn factor(value: f64) -> String {
    format!("{value:.2}x")
}

/// A rate per minute: `480/min`, `1.2k/min`, `3.4M/min`.
pub fn per_minute(value: f64) -> String {
    format!("{}/min", compact(value))
}

/// A count with a k or M suffix past four digits.
pub fn compact(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A file-name-safe form of a label: lowercase letters, digits and `-`.
pub fn slug(label: &str) -> String {
    let mut slug = String::with_capacity(label.len());
    for character in label.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_naturally() {
        assert_eq!(latency(850), "850µs");
        assert_eq!(latency(850_000), "850ms");
        assert_eq!(latency(1_490_000), "1.49s");
        assert_eq!(axis_time(1.5, 3.0), "1m30s");
        assert_eq!(axis_time(0.75, 1.0), "45s");
        assert_eq!(axis_time(390.0, 1440.0), "6h30m");
        assert_eq!(latency(12_345_000), "12.3s");
        assert_eq!(latency(125_000_000), "2m05s");
        assert_eq!(duration_ms(3_900_000), "1h05m");
        assert_eq!(percent(0.9921), "99.2%");
        assert_eq!(factor(1.234), "1.23x");
        assert_eq!(per_minute(480.0), "480/min");
        assert_eq!(per_minute(12_345.0), "12.3k/min");
        assert_eq!(slug("openai-python@2.52:max=3"), "openai-python-2-52-max-3");
    }
}
