//! Prompt token counts of requests: [`count_text`] and [`count_chat`] over the tokenizer
//! (`tokenizer.rs`), `TokenCounts`, a bounded cache of exact results, so a client repeating the
//! same prompt (benchmarks, retries, fixed test fixtures) does not pay a BPE pass per request;
//! and [`count_off_workers`], which keeps long prompts' counting off the async workers.

use std::cell::RefCell;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashMap;

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::chat::{ChatMessage, MessageContent};

/// Tokens of a piece of text in `model`'s encoding.
pub fn count_text(model: &str, text: &str) -> u64 {
    crate::tokenizer::count_text_tokens(model, text)
}

/// Loads the tokenizer of every model in `models` now. A tokenizer is built on first use,
/// which takes on the order of 100 ms per encoding: doing it at start keeps that pause off the
/// first request.
pub fn load_tokenizers(models: &[String]) {
    for model in models {
        count_text(model, "");
    }
}

/// Prompt tokens of a chat request, by OpenAI's counting rule.
pub fn count_chat(model: &str, messages: &[ChatMessage]) -> u64 {
    let texts: Vec<String> = messages
        .iter()
        .map(|message| {
            message
                .content
                .as_ref()
                .map(|content| content.text())
                .unwrap_or_default()
        })
        .collect();
    let counted: Vec<crate::tokenizer::CountedMessage<'_>> = messages
        .iter()
        .zip(&texts)
        .map(|(message, text)| crate::tokenizer::CountedMessage {
            role: &message.role,
            content: text,
            name: message.name.as_deref(),
        })
        .collect();
    crate::tokenizer::count_chat_prompt_tokens(model, &counted)
}

/// Prompts of at most this many bytes are counted on the async worker that received them: that
/// takes well under a millisecond, less than handing the work to another thread and back.
pub const INLINE_COUNT_BYTES: usize = 4 * 1024;

/// Counts `input` (of `bytes` bytes of text) with `count`: inline when short, else on tokio's
/// blocking pool, so that a megabyte prompt (about 0.2 s of CPU a megabyte) never stalls the
/// async workers that serve everyone else's requests.
///
/// Long counts first take permits from the state's counting budget, one per KiB (see
/// [`AppState::counting_budget`]): the budget holds one maximal body, so however many huge
/// prompts arrive at once, about one body's worth of counting runs at a time and the rest of
/// the cores stay free for short requests. The permits travel with the work, so a client that
/// hangs up mid-count frees them only when the count is done.
pub async fn count_off_workers<T, R>(
    state: &AppState,
    bytes: usize,
    input: T,
    count: impl FnOnce(&TokenCounts, &T) -> R + Send + 'static,
) -> Result<(T, R), ApiError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    if bytes <= INLINE_COUNT_BYTES {
        let counted = count(state.token_counts(), &input);
        return Ok((input, counted));
    }
    let budget = state.counting_budget();
    let wanted = u32::try_from(bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(state.counting_budget_permits());
    // The budget is never closed, so this only fails if it were; count without it then.
    let permits = budget.clone().acquire_many_owned(wanted).await.ok();
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let counted = count(state.token_counts(), &input);
        drop(permits);
        (input, counted)
    })
    .await
    .map_err(|error| {
        tracing::error!(%error, "token counting failed");
        ApiError::ServerError
    })
}

/// The cache is cleared when it holds this many prompts, which bounds its memory.
const MAX_ENTRIES: usize = 4096;
/// Prompts whose key is longer than this are counted every time: long prompts are rarely
/// repeated, and caching them would make the memory bound large.
const MAX_KEY_BYTES: usize = 4096;

/// Counts prompt tokens with the tokenizer's rules, remembering exact counts by the full
/// text of what was counted (model included), never by a hash alone.
#[derive(Debug, Default)]
pub struct TokenCounts {
    /// Read-mostly: repeated prompts only read, so concurrent requests share the lock.
    counted: RwLock<HashMap<String, u64>>,
}

impl TokenCounts {
    /// Tokens of `text` in `model`'s encoding.
    pub fn text(&self, model: &str, text: &str) -> u64 {
        with_key(|key| {
            key.push('t');
            push_field(key, model);
            push_field(key, text);
            self.cached(key, || count_text(model, text))
        })
    }

    /// Prompt tokens of a chat request, by OpenAI's counting rule.
    pub fn chat(&self, model: &str, messages: &[ChatMessage]) -> u64 {
        with_key(|key| {
            key.push('c');
            push_field(key, model);
            for message in messages {
                push_field(key, &message.role);
                match &message.content {
                    Some(MessageContent::Text(text)) => push_field(key, text),
                    Some(content) => push_field(key, &content.text()),
                    None => key.push('-'),
                }
                match &message.name {
                    Some(name) => push_field(key, name),
                    None => key.push('-'),
                }
                if key.len() > MAX_KEY_BYTES {
                    return count_chat(model, messages);
                }
            }
            self.cached(key, || count_chat(model, messages))
        })
    }

    fn cached(&self, key: &str, count: impl FnOnce() -> u64) -> u64 {
        if key.len() > MAX_KEY_BYTES {
            return count();
        }
        if let Some(&tokens) = self.read().get(key) {
            return tokens;
        }
        // Count outside the lock: a BPE pass is the slow part, and other requests need not wait.
        let tokens = count();
        let mut counted = self.write();
        if counted.len() >= MAX_ENTRIES {
            counted.clear();
        }
        counted.insert(key.to_owned(), tokens);
        tokens
    }

    // A cache of pure results cannot be left inconsistent by a panicking holder.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, u64>> {
        self.counted
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, u64>> {
        self.counted
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Runs `build` with this thread's empty key buffer: a key is built per request, and only a
/// cache miss needs it as an owned string.
fn with_key<T>(build: impl FnOnce(&mut String) -> T) -> T {
    thread_local! {
        static KEY: RefCell<String> = RefCell::new(String::with_capacity(256));
    }
    KEY.with(|key| match key.try_borrow_mut() {
        Ok(mut key) => {
            key.clear();
            build(&mut key)
        }
        // Only a count that itself counted tokens on this thread could get here; it gets a
        // buffer of its own.
        Err(_) => build(&mut String::new()),
    })
}

/// Appends a length-prefixed field, so distinct field lists can never make the same key.
fn push_field(key: &mut String, field: &str) {
    key.push_str(itoa::Buffer::new().format(field.len()));
    key.push(':');
    key.push_str(field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::chat::ChatCompletionRequest;

    fn messages(body: &str) -> Vec<ChatMessage> {
        crate::extract::parse_json::<ChatCompletionRequest>(body.as_bytes())
            .unwrap()
            .messages
    }

    #[test]
    fn cached_counts_equal_fresh_counts() {
        let counts = TokenCounts::default();
        let bodies = [
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello","name":"world"}]}"#,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"hello world"}]}]}"#,
            r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#,
        ];
        for body in bodies {
            let messages = messages(body);
            for model in ["gpt-4o", "gpt-4", "my-own-model"] {
                let fresh = count_chat(model, &messages);
                assert_eq!(counts.chat(model, &messages), fresh, "{model} {body}");
                assert_eq!(
                    counts.chat(model, &messages),
                    fresh,
                    "{model} {body} (cached)"
                );
            }
        }
        for text in ["hello world", "<|endoftext|> hi", ""] {
            for model in ["gpt-4o", "gpt-4"] {
                let fresh = count_text(model, text);
                assert_eq!(counts.text(model, text), fresh);
                assert_eq!(counts.text(model, text), fresh);
            }
        }
    }

    #[test]
    fn keys_of_different_prompts_differ() {
        let mut first = String::new();
        push_field(&mut first, "ab");
        push_field(&mut first, "c");
        let mut second = String::new();
        push_field(&mut second, "a");
        push_field(&mut second, "bc");
        assert_ne!(first, second);
    }
}
