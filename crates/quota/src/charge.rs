//! The token charge of a request at admission: prompt tokens counted with the model's real
//! tiktoken encoding plus `n x max_tokens`, OpenAI's cookbook rule.
//!
//! The simulator skips counting and passes its token counts straight to [`Charge::request`];
//! the server counts the prompt here.

use crate::limits::Charge;

/// Tokens charged for a request: `prompt_tokens + n x max_output_tokens`, where
/// `max_output_tokens` is `max_tokens` (or `max_completion_tokens`) and counts 0 when the
/// request sets neither, and `n` is the number of choices (at least 1).
///
/// ```
/// assert_eq!(quota::token_charge(100, Some(256), 2), 612);
/// assert_eq!(quota::token_charge(100, None, 1), 100);
/// ```
#[inline]
pub fn token_charge(prompt_tokens: u64, max_output_tokens: Option<u64>, n: u64) -> u64 {
    prompt_tokens.saturating_add(n.max(1).saturating_mul(max_output_tokens.unwrap_or(0)))
}

/// The encoding for `model`: tiktoken's mapping, else `o200k_base` (the encoding of every
/// current OpenAI model) for names tiktoken does not know, such as user-defined models.
fn encoding_for(model: &str) -> &'static tiktoken_rs::CoreBPE {
    tiktoken_rs::bpe_for_model(model).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton())
}

/// Tokens of `text` in `model`'s encoding (embeddings input, legacy completions prompt).
///
/// ```
/// assert_eq!(quota::count_text_tokens("gpt-4o", "hello world"), 2);
/// ```
pub fn count_text_tokens(model: &str, text: &str) -> u64 {
    encoding_for(model).encode_with_special_tokens(text).len() as u64
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
    let count = |text: &str| encoding.encode_with_special_tokens(text).len() as u64;
    let mut tokens = 3;
    for message in messages {
        tokens += 3 + count(message.role) + count(message.content);
        if let Some(name) = message.name {
            tokens += 1 + count(name);
        }
    }
    tokens
}

/// The [`Charge`] of one chat request: counted prompt plus `n x max_output_tokens`.
pub fn chat_charge(
    model: &str,
    messages: &[ChatMessage<'_>],
    max_output_tokens: Option<u64>,
    n: u64,
) -> Charge {
    Charge::request(token_charge(
        count_chat_prompt_tokens(model, messages),
        max_output_tokens,
        n,
    ))
}
