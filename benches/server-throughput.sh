#!/usr/bin/env bash
# Loopback throughput of ratelab's mock server (limiting on) against a bare axum handler that
# returns the same bytes, measured with wrk in the same run, plus the server's memory across
# many distinct keys. Appends the figures under "## server" in reports/benchmarks.md.
#
# Usage: bash benches/server-throughput.sh
# Knobs (environment): DURATION (per throughput run, default 10s), CONNECTIONS (default 32),
# THREADS (wrk threads, default 2), MEMORY_DURATION (key-rotation run, default 60s),
# KEYS (distinct API keys in that run, default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
MEMORY_DURATION=${MEMORY_DURATION:-60s}
KEYS=${KEYS:-100000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
REPORT=reports/benchmarks.md

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package) for the load runs"
  apt-get update -qq && apt-get install -y -qq wrk
fi

echo "building release binaries"
cargo build --release -q -p ratelab-cli
cargo build --release -q -p ratelab-server --example bare_axum
RATELAB="$CARGO_TARGET_DIR/release/ratelab"
BARE="$CARGO_TARGET_DIR/release/examples/bare_axum"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for a "listening on http://..." line in $1 and prints the URL.
wait_for_url() {
  for _ in $(seq 1 100); do
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

# Limits far above what loopback can reach, so every request runs the limiter and is admitted.
cat >"$WORK/serve.toml" <<'TOML'
[catalog.models.gpt-4o-mini.tiers]
tier-1 = { rpm = 1000000000000, tpm = 1000000000000, rpd = 1000000000000 }
TOML
REQUEST='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to ratelab."}],"max_tokens":16}'

RUST_LOG=warn "$RATELAB" serve --addr 127.0.0.1:0 --config "$WORK/serve.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
SERVER_URL=$(wait_for_url "$WORK/server.out")

curl -sf -X POST "$SERVER_URL/v1/chat/completions" -H 'authorization: Bearer sk-bench-000000' \
  -H 'content-type: application/json' -d "$REQUEST" >"$WORK/body.json"
"$BARE" --addr 127.0.0.1:0 --body-file "$WORK/body.json" >"$WORK/bare.out" 2>&1 &
PIDS+=("$!")
BARE_URL=$(wait_for_url "$WORK/bare.out")

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$REQUEST'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-000000"
LUA
cat >"$WORK/keys.lua" <<LUA
local counter = 0
request = function()
  counter = counter + 1
  local key = string.format("sk-bench-%06d", counter % $KEYS)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key}, '$REQUEST')
end
LUA

# Runs wrk and prints "requests_per_second p50 p99 non2xx total_requests".
load() {
  local url=$1 script=$2 duration=$3
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency -s "$script" "$url/v1/chat/completions")
  echo "$out" >>"$WORK/wrk.log"
  local rps p50 p99 non2xx total
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0} $total"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

echo "warming up"
wrk -t1 -c4 -d2s -s "$WORK/post.lua" "$BARE_URL/v1/chat/completions" >/dev/null
wrk -t1 -c4 -d2s -s "$WORK/post.lua" "$SERVER_URL/v1/chat/completions" >/dev/null

echo "bare axum handler: $DURATION"
read -r BARE_RPS BARE_P50 BARE_P99 BARE_NON2XX _ < <(load "$BARE_URL" "$WORK/post.lua" "$DURATION")
echo "mock server (limiting on): $DURATION"
read -r SERVER_RPS SERVER_P50 SERVER_P99 SERVER_NON2XX _ < <(load "$SERVER_URL" "$WORK/post.lua" "$DURATION")

RSS_BEFORE=$(rss_kib "$SERVER_PID")
echo "mock server, $KEYS rotating keys: $MEMORY_DURATION"
read -r KEYS_RPS _ KEYS_P99 KEYS_NON2XX KEYS_TOTAL < <(load "$SERVER_URL" "$WORK/keys.lua" "$MEMORY_DURATION")
RSS_AFTER=$(rss_kib "$SERVER_PID")

RATIO=$(awk -v s="$SERVER_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.1f", 100 * s / b}')
MACHINE="$(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), \
$(free -g | awk '/^Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"

if ! grep -q '^## server$' "$REPORT" 2>/dev/null; then
  {
    echo
    echo "## server"
    echo
    echo "Loopback throughput of \`ratelab serve\` (limiter on every request, limits set far above"
    echo "the reachable rate so all are admitted) against a bare axum handler returning the same"
    echo "bytes, both loaded by wrk in one run; then the server's RSS across a run rotating"
    echo "through many distinct API keys. Command: \`bash benches/server-throughput.sh\`."
  } >>"$REPORT"
fi
{
  echo
  echo "### run $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $MACHINE; $(rustc --version). wrk: $THREADS threads, $CONNECTIONS connections,"
  echo "$DURATION per throughput run; wrk shares the cores with the server under test."
  echo
  echo "| target | requests/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|"
  echo "| bare axum handler | $BARE_RPS | $BARE_P50 | $BARE_P99 | $BARE_NON2XX |"
  echo "| ratelab mock server | $SERVER_RPS | $SERVER_P50 | $SERVER_P99 | $SERVER_NON2XX |"
  echo
  echo "Mock server throughput: **$RATIO%** of the bare handler (target: at least 80%)."
  echo "Memory: $KEYS_TOTAL requests over $KEYS distinct keys in $MEMORY_DURATION ($KEYS_RPS/s,"
  echo "p99 $KEYS_P99, non-2xx $KEYS_NON2XX): RSS ${RSS_BEFORE} KiB before, ${RSS_AFTER} KiB after."
} >>"$REPORT"
echo "appended to $REPORT"
tail -n 20 "$REPORT"
