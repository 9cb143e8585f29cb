// A small real client for `ratelab test`: 40 chat completions, one after another, with the
// official `openai` npm package and nothing around it. The SDK's default retries are the point:
// `maxRetries: 2` (three attempts in all), 429s and 5xx retried, and a `retry-after-ms` or
// `retry-after` of at most 60 s waited out exactly (openai-node 7.5 and later; ratelab's model
// of it is `openai-node@7.5`).
//
// `ratelab test` sets OPENAI_BASE_URL, OPENAI_API_KEY, RATELAB_MODEL and RATELAB_INSTANCE; the
// SDK reads the first two itself. Each prompt is distinct, since the server groups attempts of
// one call by their body.

import OpenAI from "openai";

const REQUESTS = 40;
const MODEL = process.env.RATELAB_MODEL ?? "gpt-4o-mini";
const INSTANCE = process.env.RATELAB_INSTANCE ?? "0";

// Only the timeout is changed (the default is 10 minutes): the mock server answers in
// milliseconds. The retry settings are the SDK's own.
const client = new OpenAI({ timeout: 10_000 });

let failed = 0;
for (let number = 0; number < REQUESTS; number++) {
  try {
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: `instance ${INSTANCE}, question ${number}: say hello` }],
      max_tokens: 5,
    });
  } catch (error) {
    failed += 1;
    console.error(`question ${number} failed: ${error.message}`);
  }
}
console.log(`instance ${INSTANCE}: ${REQUESTS - failed} of ${REQUESTS} questions answered`);
process.exitCode = failed === 0 ? 0 : 1;
