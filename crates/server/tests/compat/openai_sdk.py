"""ratelab SDK compatibility check: drives the mock server with the official `openai` package.

Run by the Rust test `compat::the_official_python_sdk_works_unchanged`, which starts the server,
sets OPENAI_BASE_URL / OPENAI_API_KEY / RATELAB_RETRY_KEY, and checks the JSON printed last.
Every check raises on failure, so a non-zero exit code names what broke.
"""

import json
import math
import os
import time

import openai
from openai import OpenAI

MESSAGES = [{"role": "user", "content": "Say hello to ratelab."}]


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def chat_whole(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=12
    )
    completion = raw.parse()
    check(completion.object == "chat.completion", f"object {completion.object!r}")
    content = completion.choices[0].message.content
    check(bool(content), "empty content")
    check(completion.usage.completion_tokens <= 12, "max_tokens not honoured")
    check(
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens,
        "usage does not add up",
    )
    for header in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-tokens", "x-request-id"):
        check(raw.headers.get(header), f"missing header {header}")
    return content


def chat_streamed(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish_reason = [], None, None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish_reason = chunk.choices[0].finish_reason or finish_reason
        if chunk.usage:
            usage = chunk.usage
    check(usage is not None, "no usage chunk despite include_usage")
    check(finish_reason in ("stop", "length"), f"finish_reason {finish_reason!r}")
    return "".join(pieces), usage.completion_tokens


def embeddings_base64(client):
    # The SDK asks for base64 by default and decodes the little-endian float32 bytes itself.
    response = client.embeddings.create(
        model="text-embedding-3-small", input=["hello", "ratelab"]
    )
    check(len(response.data) == 2, "two inputs, two vectors")
    vector = response.data[0].embedding
    check(len(vector) == 1536, f"dimension {len(vector)}")
    norm = math.sqrt(sum(x * x for x in vector))
    check(abs(norm - 1.0) < 1e-3, f"norm {norm}")
    return len(vector)


def responses_api(client):
    response = client.responses.create(model="gpt-4o", input="Tell me something.")
    check(response.status == "completed", f"status {response.status!r}")
    check(bool(response.output_text), "empty output_text")


def waits_out_retry_after():
    # The server scripts one 429 with `Retry-After: 1` for this key; the SDK must wait it out.
    client = OpenAI(api_key=os.environ["RATELAB_RETRY_KEY"], max_retries=2, timeout=30)
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=5
    )
    gap = time.monotonic() - started
    check(raw.retries_taken == 1, f"retries_taken {raw.retries_taken}")
    check(gap >= 0.95, f"the SDK retried after {gap:.3f}s, before Retry-After's 1s")
    check(gap < 10.0, f"the retry took {gap:.3f}s")
    check(bool(raw.parse().choices[0].message.content), "empty content after retry")
    return gap


def main():
    client = OpenAI(timeout=30, max_retries=0)
    whole = chat_whole(client)
    streamed, streamed_tokens = chat_streamed(client)
    check(streamed == whole, "the same request streamed and whole gave different content")
    dimensions = embeddings_base64(client)
    responses_api(client)
    gap = waits_out_retry_after()
    print(
        json.dumps(
            {
                "sdk_version": openai.__version__,
                "chat": whole,
                "streamed_tokens": streamed_tokens,
                "embedding_dimensions": dimensions,
                "retry_gap_seconds": gap,
            }
        )
    )


if __name__ == "__main__":
    main()
