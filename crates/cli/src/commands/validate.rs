//! `ratelab validate FILE...`: checks scenario files without running them.

use std::path::{Path, PathBuf};

use super::Outcome;

/// Arguments of `ratelab validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `--catalog FILE`, for every command that reads the tier catalog.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CatalogArg {
    /// Your own tiers and models (custom enterprise limits, private models), in the tier
    /// catalog's format, over the built-in catalog; the scenario's [server.catalog] still wins.
    /// Added tiers come after the built-in ones, by monthly spend cap (docs/tiers.md).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

impl CatalogArg {
    /// The file as a table to lay over a config's `[catalog]`, checked at `file:line:column`.
    pub fn read(&self) -> anyhow::Result<Option<toml::Table>> {
        let Some(path) = &self.catalog else {
            return Ok(None);
        };
        let name = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|error| anyhow::anyhow!("{name}: cannot read the catalog file: {error}"))?;
        let text = utf8_text(bytes).map_err(|bad| {
            anyhow::anyhow!("{name}:{}:{}: {}", bad.line, bad.column, bad.message())
        })?;
        Ok(Some(model::read_catalog_file(&text, &name)?))
    }

    /// The built-in catalog with the file over it.
    pub fn catalog(&self) -> anyhow::Result<quota::Catalog> {
        let mut catalog = quota::Catalog::builtin();
        if let Some(table) = self.read()? {
            // The file was checked over the built-in catalog already.
            catalog.apply_overrides_toml(&toml::to_string(&table)?)?;
        }
        Ok(catalog)
    }
}

/// Reads and validates one scenario file, resolving the traces it refers to.
pub fn load(path: &Path) -> anyhow::Result<scenario::Scenario> {
    load_with_catalog(path, None)
}

/// [`load`] over a user's catalog file ([`CatalogArg::read`]).
pub fn load_with_catalog(
    path: &Path,
    catalog: Option<&toml::Table>,
) -> anyhow::Result<scenario::Scenario> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("{name}: cannot read the scenario: {error}"))?;
    let text = utf8_text(bytes)
        .map_err(|bad| anyhow::anyhow!("{name}:{}:{}: {}", bad.line, bad.column, bad.message()))?;
    let read = &mut |referenced: &Path| {
        let bytes = std::fs::read(referenced)?;
        utf8_text(bytes).map_err(|bad| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "line {}, column {}: {}",
                    bad.line,
                    bad.column,
                    bad.message()
                ),
            )
        })
    };
    Ok(scenario::parse_scenario_with_catalog(
        &text, &name, read, catalog,
    )?)
}

/// Where a file stops being UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotUtf8 {
    /// 1-based line of the first bad byte.
    line: usize,
    /// 1-based column, in characters, of the first bad byte.
    column: usize,
    byte: u8,
}

impl NotUtf8 {
    fn message(&self) -> String {
        format!(
            "the file is not UTF-8 text (byte 0x{:02x} here); save it as UTF-8",
            self.byte
        )
    }
}

/// The bytes as text, or the line and column of the first byte that is not UTF-8.
fn utf8_text(bytes: Vec<u8>) -> Result<String, NotUtf8> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let valid = &bytes[..error.utf8_error().valid_up_to()];
        let line_start = valid
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |index| index + 1);
        let line = 1 + valid.iter().filter(|byte| **byte == b'\n').count();
        // The prefix is valid UTF-8, so the column counts characters.
        let column = 1 + String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count();
        NotUtf8 {
            line,
            column,
            byte: bytes[valid.len()],
        }
    })
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut failures = 0;
    for path in &args.files {
        match load(path) {
            Ok(scenario) => {
                let work = scenario::estimate_work(&scenario, scenario.seeds);
                crate::outln!(
                    "ok {}: {} client groups, {} instances, {} runs; about {} requests per run before retries, {} MiB per run",
                    path.display(),
                    scenario.groups.len(),
                    scenario.instance_count(),
                    work.runs,
                    work.requests_per_run,
                    work.bytes_per_run.div_ceil(1 << 20),
                )?;
                if let Some(reason) = work.over_ceiling(1) {
                    crate::outln!(
                        "  warning: `ratelab run` will refuse it without --force: {reason}"
                    )?;
                }
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        anyhow::bail!(
            "{failures} of {} scenario files are invalid",
            args.files.len()
        );
    }
    Ok(Outcome::Success)
}

/// The server variant labelled `label` (default: the first), for `ratelab test` and
/// `ratelab serve --scenario`.
pub fn pick_variant<'a>(
    scenario: &'a scenario::Scenario,
    label: Option<&str>,
) -> anyhow::Result<&'a scenario::ServerVariant> {
    use anyhow::Context;
    let variants = &scenario.server.variants;
    match label {
        None => variants
            .first()
            .context("the scenario has no server variant (add [server] tier or limits)"),
        Some(label) => variants
            .iter()
            .find(|variant| variant.label == label)
            .with_context(|| {
                let known: Vec<&str> = variants.iter().map(|v| v.label.as_str()).collect();
                format!(
                    "--variant {label:?}: the scenario has no such server variant (expected one of: {})",
                    known.join(", ")
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::{NotUtf8, utf8_text};

    #[test]
    fn the_first_byte_that_is_not_utf8_is_located_by_line_and_column() {
        assert_eq!(
            utf8_text(b"name = \"x\"\n".to_vec()).unwrap(),
            "name = \"x\"\n"
        );
        assert_eq!(
            utf8_text(b"a = 1\nb = \"\xc3\xa9\xff\"\n".to_vec()),
            Err(NotUtf8 {
                line: 2,
                column: 7,
                byte: 0xff
            })
        );
        assert_eq!(
            utf8_text(vec![0xfe]),
            Err(NotUtf8 {
                line: 1,
                column: 1,
                byte: 0xfe
            })
        );
    }
}
