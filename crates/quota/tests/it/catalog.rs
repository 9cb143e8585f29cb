//! The embedded tier catalog: it parses, covers every tier and model docs/tiers.md lists, and
//! errors list valid names.

use quota::{Catalog, CatalogError, ModelKind};

#[test]
fn builtin_catalog_has_every_tier_and_model() {
    let catalog = Catalog::builtin();
    assert_eq!(
        catalog.tier_names(),
        ["free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5"]
    );
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-long-context",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "gpt-4",
    ] {
        for tier in ["tier-1", "tier-2", "tier-3", "tier-4", "tier-5"] {
            let limits = catalog.limits(tier, model).unwrap();
            assert!(
                limits.rpm.is_some() && limits.tpm.is_some(),
                "{model} {tier}"
            );
            limits.limit_set().compile().unwrap();
        }
    }
    let free = catalog.limits("free", "gpt-3.5-turbo").unwrap();
    assert_eq!(
        (free.rpm, free.rpd, free.tpm),
        (Some(3), Some(200), Some(40_000))
    );
    let mini = catalog.limits("tier-5", "gpt-4o-mini").unwrap();
    assert_eq!(mini.batch_queue_tokens, Some(15_000_000_000));
    assert_eq!(
        catalog.tier("tier-5").unwrap().monthly_spend_cap_usd,
        200_000
    );
}

#[test]
fn unknown_model_lists_the_tiers_models() {
    let error = Catalog::builtin().limits("free", "gpt-4o").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown model \"gpt-4o\" in tier free (expected one of: gpt-3.5-turbo, \
         text-embedding-3-large, text-embedding-3-small, text-embedding-ada-002)"
    );
}

#[test]
fn overrides_with_undefined_tiers_are_refused() {
    let mut catalog = Catalog::builtin();
    let error = catalog
        .apply_overrides_toml("[models.gpt-4o.tiers]\ntier-6 = { rpm = 1 }\n")
        .unwrap_err();
    assert!(
        matches!(error, CatalogError::UndefinedTier { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("expected one of: free, tier-1"));
    let error = catalog
        .apply_overrides_toml("[models.gpt-4o]\nrpm = 1\n")
        .unwrap_err();
    assert!(error.to_string().contains("unknown field `rpm`"), "{error}");
}

#[test]
fn every_model_has_sourced_request_limits_and_the_long_context_pool_is_no_model() {
    let catalog = Catalog::builtin();
    for (name, entry) in &catalog.models {
        match entry.kind() {
            ModelKind::Pool => {
                assert_eq!(name, "gpt-4.1-long-context");
                assert!(!entry.is_model());
                assert_eq!(
                    (entry.context_window, entry.max_output_tokens),
                    (None, None)
                );
            }
            ModelKind::Embedding => {
                assert!(entry.is_model());
                assert!(entry.context_window.is_some(), "{name}");
                assert_eq!(entry.max_output_tokens, None, "{name}");
            }
            ModelKind::Chat => {
                let context = entry.context_window.unwrap_or_else(|| panic!("{name}"));
                let output = entry.max_output_tokens.unwrap_or_else(|| panic!("{name}"));
                assert!(output <= context, "{name}");
            }
        }
        if entry.is_model() {
            let source = entry.request_limits_source.as_deref().unwrap_or_default();
            assert!(
                source.contains("https://platform.openai.com/docs/"),
                "{name}: {source}"
            );
            assert!(source.contains("read 20"), "{name}: {source}");
        }
    }
    let gpt_4_1 = catalog.model("gpt-4.1").unwrap();
    assert_eq!(
        (gpt_4_1.context_window, gpt_4_1.max_output_tokens),
        (Some(1_047_576), Some(32_768))
    );
    assert_eq!(
        catalog.model("text-embedding-3-small").unwrap().kind(),
        ModelKind::Embedding
    );
}

#[test]
fn overrides_set_request_limits_and_kind_without_touching_the_rest() {
    let mut catalog = Catalog::builtin();
    catalog
        .apply_overrides_toml(
            "[models.gpt-4o]\nmax_output_tokens = 4096\n\
             [models.my-embedder]\nkind = \"embedding\"\ncontext_window = 512\n",
        )
        .unwrap();
    let gpt_4o = catalog.model("gpt-4o").unwrap();
    assert_eq!(gpt_4o.max_output_tokens, Some(4096));
    assert_eq!(gpt_4o.context_window, Some(128_000));
    assert_eq!(gpt_4o.kind(), ModelKind::Chat);
    assert!(gpt_4o.tiers.contains_key("tier-1"));
    // A tier override leaves the kind alone.
    catalog
        .apply_overrides_toml("[models.text-embedding-3-small.tiers]\ntier-1 = { rpm = 5 }\n")
        .unwrap();
    assert_eq!(
        catalog.model("text-embedding-3-small").unwrap().kind(),
        ModelKind::Embedding
    );
    assert_eq!(
        catalog.model("my-embedder").unwrap().kind(),
        ModelKind::Embedding
    );
    let error = catalog
        .apply_overrides_toml("[models.gpt-4o]\nkind = \"image\"\n")
        .unwrap_err();
    assert!(
        error.to_string().contains("unknown variant `image`"),
        "{error}"
    );
}
