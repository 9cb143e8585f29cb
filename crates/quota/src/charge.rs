//! The token charge of a request at admission, by a named rule over the request's
//! measurements. Counting tokens with a real tokenizer is the mock server's job
//! (`ratelab_server::tokenizer`): the limiter stays pure and light.
//!
//! OpenAI's guide: the charge is the larger of `max_tokens` (times `n`) and an estimate of the
//! prompt from its characters. OpenAI's cookbook client estimates counted prompt tokens plus
//! `n x max_tokens` instead; ratelab offers that as [`TokenChargeRule::PromptPlusMax`].

use serde::{Deserialize, Serialize};

/// How many tokens a request is charged at admission (a named modelling choice; see
/// `docs/limits.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenChargeRule {
    /// OpenAI's guide: the larger of `n x max_tokens` and the prompt estimate; the estimate
    /// alone when the request sets no `max_tokens`. The default.
    #[default]
    Guide,
    /// OpenAI's cookbook client: the prompt's token count (the estimate where no count is
    /// known) plus `n x max_tokens`.
    PromptPlusMax,
}

/// What the charge rule needs to know of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestSize {
    /// Characters of the prompt text, when the executor has the text (the mock server).
    pub prompt_characters: Option<u64>,
    /// Prompt tokens, when known without the text (the simulator's workload).
    pub prompt_tokens: Option<u64>,
    /// `max_tokens` (or `max_completion_tokens`, `max_output_tokens`), if the request sets it.
    pub max_output_tokens: Option<u64>,
    /// Choices requested (`n`); 0 counts as 1.
    pub choices: u64,
}

impl RequestSize {
    /// The prompt estimate: characters / 4 rounded up (OpenAI's rule of thumb that a token is
    /// about four characters of English), or the token count when no text is known, as in the
    /// simulator, whose workload draws token counts rather than text.
    #[inline]
    pub fn prompt_estimate(&self) -> u64 {
        match (self.prompt_characters, self.prompt_tokens) {
            (Some(characters), _) => characters.div_ceil(4),
            (None, Some(tokens)) => tokens,
            (None, None) => 0,
        }
    }

    #[inline]
    fn reserved_output(&self) -> Option<u64> {
        self.max_output_tokens
            .map(|max| self.choices.max(1).saturating_mul(max))
    }
}

impl TokenChargeRule {
    /// Tokens charged for a request of `size`.
    ///
    /// ```
    /// use quota::{RequestSize, TokenChargeRule};
    ///
    /// let size = RequestSize {
    ///     prompt_characters: Some(1_000),
    ///     prompt_tokens: None,
    ///     max_output_tokens: Some(100),
    ///     choices: 2,
    /// };
    /// // max(2 x 100, 1000 / 4)
    /// assert_eq!(TokenChargeRule::Guide.tokens(&size), 250);
    /// assert_eq!(TokenChargeRule::PromptPlusMax.tokens(&size), 450);
    /// // Without max_tokens, the estimate alone.
    /// let bare = RequestSize { max_output_tokens: None, ..size };
    /// assert_eq!(TokenChargeRule::Guide.tokens(&bare), 250);
    /// ```
    #[inline]
    pub fn tokens(self, size: &RequestSize) -> u64 {
        let estimate = size.prompt_estimate();
        match self {
            TokenChargeRule::Guide => size
                .reserved_output()
                .map_or(estimate, |reserved| reserved.max(estimate)),
            TokenChargeRule::PromptPlusMax => size
                .prompt_tokens
                .unwrap_or(estimate)
                .saturating_add(size.reserved_output().unwrap_or(0)),
        }
    }
}
