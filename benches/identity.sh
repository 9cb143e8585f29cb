#!/usr/bin/env bash
# Byte identity of the simulator's results: runs every shipped scenario (scenarios/*.toml) and
# every bench scenario (benches/scenarios/*.toml) through `ratelab run --trace` and prints the
# sha256 of every file each run writes (report.json, trace.jsonl, summary.md, the SVGs).
# Run it with the binary before a change and after it, and compare the two printouts: a change
# that should not alter results (an optimisation) must print the same lines.
#
# Usage: bash benches/identity.sh [RATELAB_BINARY] > hashes.txt
#   default binary: target/release/ratelab (build it with `cargo build --release -p ratelab-cli`)
# The day-long bench scenario runs without its trace (43 million attempts would write gigabytes);
# the trace goes through a pipe into sha256sum, so nothing large touches the disk. Every other
# scenario also runs untraced (its files under untraced/), the path where the simulator merges
# unobserved successes' completions into their admissions.
set -euo pipefail
cd "$(dirname "$0")/.."
RATELAB=${1:-target/release/ratelab}
if [ "$RATELAB" = "--help" ] || [ "$RATELAB" = "-h" ]; then
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
  exit 0
fi
if [ ! -x "$RATELAB" ]; then
  echo "identity.sh: $RATELAB is not an executable ratelab binary (build one with" \
    "\`cargo build --release -p ratelab-cli\`, or pass its path)" >&2
  exit 2
fi
WORK=$(mktemp -d)
# A run that fails never opens its trace's pipe: stop the reader waiting on it.
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

for scenario in scenarios/*.toml benches/scenarios/*.toml; do
  name=$(basename "$scenario" .toml)
  dir="$WORK/$name"
  mkdir -p "$dir"
  if [ "$name" = "day-30k-rpm" ]; then
    "$RATELAB" run "$scenario" --out "$dir" --jobs 1 --force >/dev/null
  else
    # trace.jsonl is a named pipe read by sha256sum while the run writes it.
    mkfifo "$dir/trace.jsonl"
    sha256sum <"$dir/trace.jsonl" >"$WORK/$name.trace.sha" &
    reader=$!
    "$RATELAB" run "$scenario" --out "$dir" --trace --jobs 1 --force >/dev/null
    wait "$reader"
    echo "$(cut -d' ' -f1 "$WORK/$name.trace.sha")  $name/trace.jsonl"
    rm "$dir/trace.jsonl"
    # Untraced too: the simulator's merged completions apply only there.
    "$RATELAB" run "$scenario" --out "$WORK/untraced/$name" --jobs 1 --force >/dev/null
  fi
  (cd "$WORK" && find "$name" -type f | sort | xargs sha256sum)
done
(cd "$WORK" && find untraced -type f | sort | xargs sha256sum)
