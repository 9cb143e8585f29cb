#!/usr/bin/env bash
# A local check of index.html at 4, 24 and 50 runs in headless Chromium (Debian's `chromium`
# package: `apt-get install -y chromium`): it renders traffic-spike three ways and takes a
# screenshot of each at 1,400 px wide, for a person to look at: the scoreboard shows every column
# without a horizontal scroll bar, chart legends sit below the plots, no label is cut, coinciding
# curves are dashed and listed. It also fails on any console message (the page has no scripts,
# so there should be none).
#
# Too slow and too visual for CI; CI runs the structural tests of crates/report/tests/it/html.rs instead.
#
#   docs/checks/html-screenshots.sh [OUT_DIR]      (default /tmp/ratelab-screenshots)
set -euo pipefail

cd "$(dirname "$0")/../.."
out="${1:-/tmp/ratelab-screenshots}"
mkdir -p "$out"
cargo build --release -p ratelab-cli
ratelab=./target/release/ratelab

# Twelve strategies, none labelled, so the short default labels are what the charts show.
strategies=(
  --strategy none --strategy openai-python@2.52 --strategy openai-node@6.26
  --strategy 'full-jitter:base=1s,cap=60s' --strategy 'exponential:base=1s'
  --strategy 'decorrelated-jitter:base=500ms'
  --strategy 'honour-retry-after:inner=(decorrelated-jitter:base=500ms,cap=30s,max-attempts=8),jitter=0.5'
  --strategy 'stacked:outer=(tenacity@9:min=1s,max=60s,max-attempts=6),inner=(openai-python@2.52)'
  --strategy 'token-bucket:rpm=480,tpm=190000,inner=(openai-python@2.52)'
  --strategy 'header-pacing:inner=(full-jitter:base=1s,cap=60s,max-attempts=8)'
  --strategy 'circuit-breaker:inner=(full-jitter:base=1s,cap=60s,max-attempts=8)'
  --strategy 'aws-adaptive:inner=(full-jitter:base=1s,cap=60s,max-attempts=8)'
)

# 4 runs: two strategies x two variants (tier-1 under both rejection rules).
sed -e 's/^compare_tiers = .*/compare_tiers = []/' scenarios/traffic-spike.toml >"$out/spike-2.toml"
"$ratelab" run "$out/spike-2.toml" --strategy none --strategy openai-python@2.52 --out "$out/runs-4" >/dev/null
# 24 runs: twelve strategies x two variants.
"$ratelab" run "$out/spike-2.toml" "${strategies[@]}" --out "$out/runs-24" >/dev/null
# 50 runs: ten strategies x five tiers.
sed -e 's/^compare_tiers = .*/compare_tiers = ["tier-2", "tier-3", "tier-4", "tier-5"]/' \
  -e '/^compare_rejections/d' scenarios/traffic-spike.toml >"$out/spike-5.toml"
"$ratelab" run "$out/spike-5.toml" "${strategies[@]:0:20}" --out "$out/runs-50" >/dev/null

status=0
for runs in 4 24 50; do
  for height in 3000 12000; do
    shot="$out/runs-$runs-$height.png"
    log="$out/runs-$runs-$height.log"
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$(mktemp -d)" --enable-logging=stderr --v=0 \
      --screenshot="$shot" --window-size=1400,"$height" \
      "file://$(realpath "$out/runs-$runs/index.html")" 2>"$log" || status=1
    if grep -q 'CONSOLE' "$log"; then
      echo "console messages in runs-$runs:" >&2
      grep 'CONSOLE' "$log" >&2
      status=1
    fi
    echo "$shot"
  done
done
exit "$status"
