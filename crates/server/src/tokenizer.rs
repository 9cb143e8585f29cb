//! Token counts with each model's real tiktoken encoding, for `usage` and the cookbook's charge
//! rule: bounded work on any input, never a panic. Only the mock server counts tokens; the
//! limiter's charge rule (`quota::TokenChargeRule`) takes the measurements it produces.

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
/// up, the same estimate the token charge uses (docs/limits.md); it never panics.
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
/// use ratelab_server::tokenizer::count_text_tokens;
///
/// assert_eq!(count_text_tokens("gpt-4o", "hello world"), 2);
/// // A million spaces: tiktoken alone gives up on these; ratelab counts them in pieces.
/// assert!(count_text_tokens("gpt-4o", &" ".repeat(1_000_000)) > 0);
/// ```
pub fn count_text_tokens(model: &str, text: &str) -> u64 {
    count_bounded(encoding_for(model), text)
}

/// One chat message as the prompt counter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountedMessage<'a> {
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
/// use ratelab_server::tokenizer::{count_chat_prompt_tokens, CountedMessage};
///
/// let messages = [CountedMessage { role: "user", content: "hello world", name: None }];
/// // 3 framing + 1 ("user") + 2 ("hello world") + 3 priming.
/// assert_eq!(count_chat_prompt_tokens("gpt-4o", &messages), 9);
/// ```
pub fn count_chat_prompt_tokens(model: &str, messages: &[CountedMessage<'_>]) -> u64 {
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
