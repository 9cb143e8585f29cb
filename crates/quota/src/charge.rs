//! The token charge of a request at admission, by a named rule, and prompt token counts with
//! the model's real tiktoken encoding (for `usage` and the cookbook rule).
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
    pub fn prompt_estimate(&self) -> u64 {
        match (self.prompt_characters, self.prompt_tokens) {
            (Some(characters), _) => characters.div_ceil(4),
            (None, Some(tokens)) => tokens,
            (None, None) => 0,
        }
    }

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

/// The encoding for `model`: tiktoken's mapping, else `o200k_base` (the encoding of every
/// current OpenAI model) for names tiktoken does not know, such as user-defined models.
fn encoding_for(model: &str) -> &'static tiktoken_rs::CoreBPE {
    tiktoken_rs::bpe_for_model(model).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton())
}

/// The most text handed to the tokenizer at once. tiktoken's splitting regex backtracks, and
/// its byte-pair merge grows faster than linearly with a piece's length: a million spaces
/// exceed the regex's stack in one call (tiktoken-rs then panics inside
/// `encode_with_special_tokens`), and one 8 MB word costs seconds. Pieces of this size count at
/// about 0.2 µs a byte whatever they hold.
pub const TOKENIZER_CHUNK_BYTES: usize = 8 * 1024;

/// Tokens of `text` by `encoding`, in pieces of at most [`TOKENIZER_CHUNK_BYTES`].
///
/// A piece ends just before a space that sits between two non-space characters: no piece of
/// OpenAI's splitting regexes (cl100k, o200k) spans such a space, nor does a special token, so
/// those cuts leave the count exact. A run of that length without one (a long word, a run of
/// whitespace) is cut at a character boundary, which can change the count by a token or so per
/// piece. Where the tokenizer fails on a piece, the piece counts as its characters / 4 rounded
/// up, the same estimate the token charge uses (`docs/limits.md`); it never panics.
fn count_bounded(encoding: &tiktoken_rs::CoreBPE, text: &str) -> u64 {
    let special = encoding.special_tokens();
    let mut tokens = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(chunk_end(rest));
        let counted = match encoding.encode(piece, &special) {
            Ok((encoded, _)) => encoded.len() as u64,
            Err(_) => (piece.chars().count() as u64).div_ceil(4),
        };
        tokens = tokens.saturating_add(counted);
        rest = after;
    }
    tokens
}

/// Where the first piece of `text` ends (see [`count_bounded`]): all of it when short, else
/// the last exact cut within [`TOKENIZER_CHUNK_BYTES`], else the last character boundary there.
fn chunk_end(text: &str) -> usize {
    if text.len() <= TOKENIZER_CHUNK_BYTES {
        return text.len();
    }
    let window = &text[..text.floor_char_boundary(TOKENIZER_CHUNK_BYTES)];
    let exact = window.rmatch_indices(' ').map(|(at, _)| at).find(|&at| {
        let before = window[..at].chars().next_back();
        let after = text[at + 1..].chars().next();
        matches!((before, after), (Some(before), Some(after))
            if !before.is_whitespace() && !after.is_whitespace())
    });
    match exact {
        Some(at) => at,
        // A window always holds at least one whole character, so the text shrinks.
        None => window.len().max(text.ceil_char_boundary(1)),
    }
}

/// Tokens of `text` in `model`'s encoding (embeddings input, legacy completions prompt).
/// Long text is counted in bounded pieces and never panics (see [`TOKENIZER_CHUNK_BYTES`]).
///
/// ```
/// assert_eq!(quota::count_text_tokens("gpt-4o", "hello world"), 2);
/// // A million spaces: tiktoken alone gives up on these; ratelab counts them in pieces.
/// assert!(quota::count_text_tokens("gpt-4o", &" ".repeat(1_000_000)) > 0);
/// ```
pub fn count_text_tokens(model: &str, text: &str) -> u64 {
    count_bounded(encoding_for(model), text)
}

/// One chat message as the prompt counter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    /// `system`, `user`, `assistant`, ...
    pub role: &'a str,
    /// The text content.
    pub content: &'a str,
    /// The optional participant name.
    pub name: Option<&'a str>,
}

/// Prompt tokens of a chat request, by OpenAI's cookbook rule: 3 tokens of framing per
/// message, the role's and content's tokens, 1 more for a name, and 3 priming the reply.
///
/// ```
/// use quota::{count_chat_prompt_tokens, ChatMessage};
///
/// let messages = [ChatMessage { role: "user", content: "hello world", name: None }];
/// // 3 framing + 1 ("user") + 2 ("hello world") + 3 priming.
/// assert_eq!(count_chat_prompt_tokens("gpt-4o", &messages), 9);
/// ```
pub fn count_chat_prompt_tokens(model: &str, messages: &[ChatMessage<'_>]) -> u64 {
    let encoding = encoding_for(model);
    let count = |text: &str| count_bounded(encoding, text);
    let mut tokens: u64 = 3;
    for message in messages {
        tokens = tokens
            .saturating_add(3)
            .saturating_add(count(message.role))
            .saturating_add(count(message.content));
        if let Some(name) = message.name {
            tokens = tokens.saturating_add(1).saturating_add(count(name));
        }
    }
    tokens
}
