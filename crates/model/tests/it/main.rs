//! Integration tests of the server model: one binary, one module per concern.

mod decide;
mod timeline;

use model::{Caller, Cost, ServerConfig, ServerModel};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A model of `text`, a config in the serve file's format.
pub fn model(text: &str) -> ServerModel {
    let config = ServerConfig::from_toml_str(text, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    ServerModel::new(&config).unwrap_or_else(|e| panic!("{e}"))
}

/// A small chat request to `model` with `prompt_tokens` and `max_tokens`.
pub fn cost(model: &str, prompt_tokens: u64, max_tokens: u64) -> Cost<'_> {
    Cost {
        model,
        prompt_tokens,
        prompt_characters: None,
        max_output_tokens: Some(max_tokens),
        choices: 1,
    }
}

/// A fixed RNG: the tests here inject no random faults.
pub fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

/// The caller of a server without declared organizations.
pub const DEFAULT: Caller<'static> = Caller::DEFAULT;
