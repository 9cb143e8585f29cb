#!/usr/bin/env bash
# Loopback benchmark of ratelab's mock server (limiting on) against a bare axum handler that
# returns the same bytes, for issue 3's three targets:
#   (a) throughput: wrk, closed loop, bare and server run alternately ROUNDS times, medians;
#   (b) latency: `loadgen` (benches/src/bin/loadgen/), open loop at a fixed rate of half the
#       server's median throughput; each of ROUNDS runs takes turns between the same-bytes
#       baseline and the server every SLICE_MS, a histogram each; medians of p50/p99 and of
#       each run's own p99 difference;
#   (c) memory: a server configured with KEYS organizations of one key each (so the limiter
#       holds KEYS buckets), driven with MEMORY_REQUESTS requests rotating over the keys while
#       loadgen samples its RSS.
# Everything is release builds, RUST_LOG=warn, on 127.0.0.1 only, and bounded in time.
# Prints the figures of one run as Markdown: update the server section of reports/benchmarks.md
# (where each target stands) from them; the full printout belongs in the commit message.
#
# Usage: bash benches/server-throughput.sh
# Knobs (environment): DURATION (wrk run, default 4s), CONNECTIONS (default 32), THREADS (wrk
# threads, default 2), ROUNDS (default 7), LATENCY_SECONDS (each target's share of a loadgen
# run, default 8), SLICE_MS (how long each target has the load in turn, default 100), KEYS
# (default 100000), MEMORY_REQUESTS (default 1000000; 0 skips (c)), MEMORY_RATE (requests/s,
# default 15000), RATELAB (the server binary, default the fresh release build), BEFORE (an
# older server binary to run alongside in (a) and (b), e.g. a build of main), BEFORE_CONFIG (its
# serve config, for a binary older than the config's vocabulary; default the same file),
# LATENCY_RATE (requests/s for (b) instead of half the server's median from (a)).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-4s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-7}
LATENCY_SECONDS=${LATENCY_SECONDS:-8}
SLICE_MS=${SLICE_MS:-100}
KEYS=${KEYS:-100000}
MEMORY_REQUESTS=${MEMORY_REQUESTS:-1000000}
MEMORY_RATE=${MEMORY_RATE:-15000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
export RUST_LOG=warn

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package) for the load runs" >&2
  apt-get update -qq && apt-get install -y -qq wrk
fi

echo "building release binaries" >&2
cargo build --release -q -p ratelab-cli
cargo build --release -q -p ratelab-server --example bare_axum
cargo build --release -q -p ratelab-benches --bin loadgen
RATELAB=${RATELAB:-$CARGO_TARGET_DIR/release/ratelab}
BARE="$CARGO_TARGET_DIR/release/examples/bare_axum"
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for a "listening on http://..." line in $1 and prints the URL.
wait_for_url() {
  for _ in $(seq 1 600); do
    if url=$(grep -o 'http://[0-9.]*:[0-9]*' "$1" 2>/dev/null | head -1) && [ -n "$url" ]; then
      echo "$url"
      return 0
    fi
    sleep 0.1
  done
  echo "no listening line in $1:" >&2
  cat "$1" >&2
  return 1
}

# Limits far above what loopback can reach, so every request runs the limiter and is admitted;
# no latency (the default is a realistic 200 ms to the first token), so the server's own cost
# is what is measured.
LIMITS='[latency]
ttft = "0s"
per_output_token = "0s"
jitter = 0.0
reject = "0s"
[catalog.models.gpt-4o-mini.tiers]
tier-1 = { rpm = 1000000000000, tpm = 1000000000000, rpd = 1000000000000 }'
echo "$LIMITS" >"$WORK/serve.toml"
REQUEST='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to ratelab."}],"max_tokens":16}'
echo "$REQUEST" >"$WORK/request.json"

"$RATELAB" serve --addr 127.0.0.1:0 --config "$WORK/serve.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=("$!")
SERVER_URL=$(wait_for_url "$WORK/server.out")/v1/chat/completions

# The baseline answers with the mock server's own reply: its body, and (for the "same bytes"
# baseline) its headers too, replayed as constants.
curl -sf -D "$WORK/headers.txt" -X POST "$SERVER_URL" -H 'authorization: Bearer sk-bench-000000' \
  -H 'content-type: application/json' -d "$REQUEST" >"$WORK/body.json"
"$BARE" --addr 127.0.0.1:0 --body-file "$WORK/body.json" >"$WORK/bare.out" 2>&1 &
PIDS+=("$!")
BARE_URL=$(wait_for_url "$WORK/bare.out")/v1/chat/completions
"$BARE" --addr 127.0.0.1:0 --body-file "$WORK/body.json" --headers-file "$WORK/headers.txt" \
  >"$WORK/same.out" 2>&1 &
PIDS+=("$!")
SAME_URL=$(wait_for_url "$WORK/same.out")/v1/chat/completions
TARGETS="bare same server"
if [ -n "${BEFORE:-}" ]; then
  "$BEFORE" serve --addr 127.0.0.1:0 --config "${BEFORE_CONFIG:-$WORK/serve.toml}" >"$WORK/before.out" 2>&1 &
  PIDS+=("$!")
  BEFORE_URL=$(wait_for_url "$WORK/before.out")/v1/chat/completions
  TARGETS="$TARGETS before"
fi
url_of() {
  case $1 in
    bare) echo "$BARE_URL" ;; same) echo "$SAME_URL" ;; server) echo "$SERVER_URL" ;;
    before) echo "$BEFORE_URL" ;;
  esac
}

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$REQUEST'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-000000"
LUA

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'; }

# Prints requests/s of one wrk run.
wrk_rps() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/post.lua" "$1" |
    tee -a "$WORK/wrk.log" | awk '/^Requests\/sec:/ {print $2}'
}

echo "warming up" >&2
for target in $TARGETS; do
  wrk -t1 -c4 -d2s -s "$WORK/post.lua" "$(url_of "$target")" >/dev/null
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RPS
for round in $(seq 1 "$ROUNDS"); do
  for target in $TARGETS; do
    rps=$(wrk_rps "$(url_of "$target")")
    echo "throughput round $round $target: $rps/s" >&2
    RPS[$target]="${RPS[$target]:-} $rps"
    declare "LAST_${target}=$rps"
  done
  # Runs next to each other in time see the same machine: their ratio is steadier than the
  # ratio of medians taken over the whole (shared, noisy) run.
  RATIO_bare="${RATIO_bare:-} $(awk -v s="$LAST_server" -v b="$LAST_bare" 'BEGIN {printf "%.1f", 100 * s / b}')"
  RATIO_same="${RATIO_same:-} $(awk -v s="$LAST_server" -v b="$LAST_same" 'BEGIN {printf "%.1f", 100 * s / b}')"
done
MEDIAN_RATIO_bare=$(tr ' ' '\n' <<<"$RATIO_bare" | grep . | median)
MEDIAN_RATIO_same=$(tr ' ' '\n' <<<"$RATIO_same" | grep . | median)
for target in $TARGETS; do
  declare "MEDIAN_${target}=$(tr ' ' '\n' <<<"${RPS[$target]}" | grep . | median)"
done
RATE=${LATENCY_RATE:-$(awk -v s="$MEDIAN_server" 'BEGIN {printf "%d", s / 2}')}

# (b) One loadgen run per round takes turns between the targets every SLICE_MS, so every
# target sees the same machine (the cores' stalls come and go within seconds); each target has
# the load for LATENCY_SECONDS in all. Every other round reverses the order of the turns, so
# neither target always goes first.
LATENCY_TARGETS=${TARGETS#bare }
LATENCY_RUN=$(awk -v s="$LATENCY_SECONDS" -v n="$(wc -w <<<"$LATENCY_TARGETS")" 'BEGIN {print s * n}')
declare -A P50 P99 LATENCY_LINES
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    read -r -a LATENCY_LIST <<<"$LATENCY_TARGETS"
  else
    read -r -a LATENCY_LIST <<<"$(tr ' ' '\n' <<<"$LATENCY_TARGETS" | tac | tr '\n' ' ')"
  fi
  LATENCY_ARGS=()
  for target in "${LATENCY_LIST[@]}"; do LATENCY_ARGS+=(--url "$(url_of "$target")"); done
  lines=$("$LOADGEN" "${LATENCY_ARGS[@]}" --body-file "$WORK/request.json" --rate "$RATE" \
    --duration-secs "$LATENCY_RUN" --slice-ms "$SLICE_MS")
  for index in "${!LATENCY_LIST[@]}"; do
    target=${LATENCY_LIST[$index]}
    line=$(grep "^target=$index " <<<"$lines")
    echo "latency round $round $target at $RATE/s: $line" >&2
    P50[$target]="${P50[$target]:-} $(field p50_us "$line")"
    P99[$target]="${P99[$target]:-} $(field p99_us "$line")"
    LATENCY_LINES[$target]="${LATENCY_LINES[$target]:-}"$'\n'"    ${line#target=$index }"
    declare "LAST_P99_${target}=$(field p99_us "$line")"
  done
  ADDED="${ADDED:-} $((LAST_P99_server - LAST_P99_same))"
done
MEDIAN_ADDED=$(tr ' ' '\n' <<<"$ADDED" | grep . | median)
for target in $LATENCY_TARGETS; do
  declare "P50_${target}=$(tr ' ' '\n' <<<"${P50[$target]}" | grep . | median)"
  declare "P99_${target}=$(tr ' ' '\n' <<<"${P99[$target]}" | grep . | median)"
done
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)

MEMORY_LINE="skipped (MEMORY_REQUESTS=0)"
LOAD_END=$LOAD_MID
if [ "$MEMORY_REQUESTS" -gt 0 ]; then
# (c) KEYS organizations, one project and one key each: every key its own limiter bucket.
{
  echo "$LIMITS"
  awk -v n="$KEYS" 'BEGIN {
    for (i = 0; i < n; i++) {
      printf "[[organizations]]\nid = \"org-bench-%06d\"\n", i
      printf "[[organizations.projects]]\nid = \"proj-bench-%06d\"\nkeys = [\"sk-bench-%06d\"]\n", i, i
    }
  }'
} >"$WORK/keys.toml"
"$RATELAB" serve --addr 127.0.0.1:0 --config "$WORK/keys.toml" >"$WORK/keys.out" 2>"$WORK/keys.err" &
KEYS_PID=$!
PIDS+=("$KEYS_PID")
KEYS_URL=$(wait_for_url "$WORK/keys.out")/v1/chat/completions
MEMORY_SECONDS=$(awk -v n="$MEMORY_REQUESTS" -v r="$MEMORY_RATE" 'BEGIN {printf "%d", 1.5 * n / r + 1}')
MEMORY_LINE=$("$LOADGEN" --url "$KEYS_URL" --body-file "$WORK/request.json" --rate "$MEMORY_RATE" \
  --duration-secs "$MEMORY_SECONDS" --max-requests "$MEMORY_REQUESTS" --keys "$KEYS" --rss-pid "$KEYS_PID")
echo "memory: $MEMORY_LINE" >&2
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
fi

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
cat <<REPORT
### run $(date -u '+%Y-%m-%d %H:%M UTC')

Machine: $(nproc) vCPU ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')),
$(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $(rustc --version). The cores are shared with other
sessions and with the load tool; load average $LOAD_START at the start, $LOAD_MID after the
latency runs, $LOAD_END at the end.

(a) Throughput, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS alternating rounds, median
requests/s (all rounds, bare / same / server${BEFORE:+ / before}:${RPS[bare]} /${RPS[same]} /${RPS[server]}${BEFORE:+ /${RPS[before]:-}}):

| target | requests/s | mock server as % of it (ratio of medians) | median of the rounds' ratios (each round's in brackets) |
|---|---|---|---|
| bare axum, same body | $MEDIAN_bare | $(pct "$MEDIAN_server" "$MEDIAN_bare")% | **$MEDIAN_RATIO_bare%** ($RATIO_bare) |
| bare axum, same body and headers | $MEDIAN_same | $(pct "$MEDIAN_server" "$MEDIAN_same")% | **$MEDIAN_RATIO_same%** ($RATIO_same) |
| ratelab mock server | $MEDIAN_server | | |
${BEFORE:+| mock server before (main) | ${MEDIAN_before:-} | $(pct "${MEDIAN_before:-0}" "$MEDIAN_bare")% of bare, $(pct "${MEDIAN_before:-0}" "$MEDIAN_same")% of same-bytes |}

(b) Latency, loadgen open loop at $RATE requests/s (${LATENCY_RATE:+set by LATENCY_RATE, not }half the server's median),
$ROUNDS runs, each taking turns between the targets every ${SLICE_MS} ms so that each has the load
for ${LATENCY_SECONDS}s in all; median of each run's percentile:

| target | p50 | p99 |
|---|---|---|
| bare axum, same body and headers | ${P50_same} us | ${P99_same} us |
| ratelab mock server | ${P50_server} us | ${P99_server} us |
${BEFORE:+| mock server before | ${P50_before:-} us | ${P99_before:-} us |}

Added p99: **$MEDIAN_ADDED us** as the median of the runs' own differences (each run's:$ADDED),
$((P99_server - P99_same)) us as the difference of the medians above (target: under 1000 us). Runs:
\`\`\`
same:${LATENCY_LINES[same]}
server:${LATENCY_LINES[server]}${BEFORE:+
before:${LATENCY_LINES[before]:-}}
\`\`\`

(c) Memory: $KEYS organizations with one key each (one limiter bucket per key),
$MEMORY_REQUESTS requests rotating over the keys, scheduled at $MEMORY_RATE/s (bounded to
${MEMORY_SECONDS:-0}s); RSS sampled at the start, every tenth of the run, and the end:
\`\`\`
$MEMORY_LINE
\`\`\`
REPORT
