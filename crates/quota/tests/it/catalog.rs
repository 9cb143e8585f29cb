//! The embedded tier catalog: it parses, covers the facts sheet, and errors list valid names.

use quota::{Catalog, CatalogError};

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
