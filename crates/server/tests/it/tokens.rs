//! Token counting on hostile text: it never panics, its work is bounded, and cutting long
//! text into pieces leaves ordinary prose counted exactly.

use ratelab_server::tokenizer::{
    CountedMessage, TOKENIZER_CHUNK_BYTES, count_chat_prompt_tokens, count_text_tokens,
};

/// Models on both encodings, and a name tiktoken does not know (counted as o200k).
const MODELS: [&str; 5] = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4", "my-own-model"];

#[test]
fn a_million_spaces_count_without_panicking() {
    // tiktoken-rs's `encode_with_special_tokens` panics on this text for o200k models.
    let spaces = " ".repeat(1_000_000);
    for model in MODELS {
        let tokens = count_text_tokens(model, &spaces);
        // o200k packs long runs of spaces into tokens of up to 128 or so; any sane count is
        // between that and one token a character.
        assert!((1_000..=1_000_000).contains(&tokens), "{model}: {tokens}");
        let messages = [CountedMessage {
            role: "user",
            content: &spaces,
            name: None,
        }];
        let chat = count_chat_prompt_tokens(model, &messages);
        assert!(chat > tokens, "{model}: {chat} <= {tokens}");
    }
}

#[test]
fn other_long_runs_count_without_panicking() {
    for unit in ["a", "\n", " \n", "1", "!", "é", "\u{3000}", "<|endoftext|>"] {
        let text = unit.repeat(300_000 / unit.len());
        for model in ["gpt-4o", "gpt-4"] {
            assert!(count_text_tokens(model, &text) > 0, "{model} {unit:?}");
        }
    }
}

#[test]
fn prose_longer_than_a_piece_counts_exactly() {
    // Words, punctuation, digits, newlines, runs of spaces and a special token, long enough to
    // be cut many times.
    let paragraph = "The quick brown fox, aged 12345, jumps over the lazy dog's back.\n\n  \
        Indented   twice; <|endoftext|> then: naïve café — ünïcödé!  \t end.\n";
    let text = paragraph.repeat(4 * TOKENIZER_CHUNK_BYTES / paragraph.len());
    assert!(text.len() > 3 * TOKENIZER_CHUNK_BYTES);
    for (model, encoding) in [
        ("gpt-4o", tiktoken_rs::o200k_base_singleton()),
        ("gpt-4", tiktoken_rs::cl100k_base_singleton()),
    ] {
        let whole = encoding.encode_with_special_tokens(&text).len() as u64;
        assert_eq!(count_text_tokens(model, &text), whole, "{model}");
    }
}
