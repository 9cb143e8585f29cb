"""A small real client for `ratelab test`: 40 chat completions with the official `openai` SDK.

By default it uses the widely copied tenacity wrapper around the SDK (OpenAI's cookbook):
`wait_random_exponential(min=1, max=60)` and `stop_after_attempt(6)`, re-raising 429s and 5xx,
on top of the SDK's own retries, which honour Retry-After. With `--stormy` it turns the SDK's
retries off and retries at once, with no backoff: the client `ratelab test` should fail.

`ratelab test` sets OPENAI_BASE_URL, OPENAI_API_KEY, RATELAB_MODEL and RATELAB_INSTANCE.
Each prompt is distinct, since the server groups attempts of one call by their body.
"""

import os
import sys

import openai
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

REQUESTS = 40
MODEL = os.environ.get("RATELAB_MODEL", "gpt-4o-mini")
INSTANCE = os.environ.get("RATELAB_INSTANCE", "0")


def prompt(number: int) -> list:
    return [{"role": "user", "content": f"instance {INSTANCE}, question {number}: say hello"}]


def polite(client: openai.OpenAI) -> int:
    @retry(
        wait=wait_random_exponential(min=1, max=60),
        stop=stop_after_attempt(6),
        retry=retry_if_exception_type((openai.RateLimitError, openai.InternalServerError)),
        reraise=True,
    )
    def ask(number: int):
        return client.chat.completions.create(model=MODEL, messages=prompt(number), max_tokens=5)

    failed = 0
    for number in range(REQUESTS):
        try:
            ask(number)
        except openai.APIError as error:
            failed += 1
            print(f"question {number} failed: {error}", file=sys.stderr)
    return failed


def stormy(client: openai.OpenAI) -> int:
    failed = 0
    for number in range(REQUESTS):
        for attempt in range(6):
            try:
                client.chat.completions.create(model=MODEL, messages=prompt(number), max_tokens=5)
                break
            except openai.RateLimitError:
                continue  # no backoff: straight back to the server
        else:
            failed += 1
    return failed


def main() -> int:
    # Short timeouts: the mock server answers in milliseconds.
    if "--stormy" in sys.argv[1:]:
        client = openai.OpenAI(max_retries=0, timeout=10)
        failed = stormy(client)
    else:
        client = openai.OpenAI(timeout=10)
        failed = polite(client)
    print(f"instance {INSTANCE}: {REQUESTS - failed} of {REQUESTS} questions answered")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
