#!/usr/bin/env python3
"""Instructions per attempt by part of ratelab, from a callgrind profile of `profile_run`.

Each instruction is attributed to the innermost ratelab source file of its inline chain
(`addr2line -i`), so standard-library code counts where ratelab called it (a `VecDeque` push
inlined into the storm tracker counts as the storm tracker's), then files are grouped into the
parts of reports/benchmarks.md ("Where it stops").

    cd benches/scenarios
    valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \\
        --callgrind-out-file=/tmp/cg.out PROFILE_RUN jitter-over-limit.toml 0 1 full
    python3 ../attribute.py /tmp/cg.out PROFILE_RUN 222751 [--files]

The third argument is the run's attempt count (profile_run prints it); `--files` lists the
files instead of the parts.
"""

import collections
import os
import re
import subprocess
import sys

PARTS = [
    ("server model and limiter", [r"crates/sim/src/server\.rs", r"crates/model/", r"crates/quota/"]),
    ("engine", [r"crates/sim/src/engine\.rs", r"crates/sim/src/lib\.rs"]),
    ("event queue", [r"crates/sim/src/queue\.rs"]),
    ("workload draws", [r"crates/scenario/", r"lib:libm", r"dep:rand"]),
    ("metrics: the storm share", [r"crates/results/src/storm\.rs"]),
    ("metrics: counters, bins, analysis, histogram", [r"crates/results/", r"dep:hdrhistogram"]),
    ("strategy", [r"crates/retry/"]),
]


def instruction_costs(profile, binary_name):
    """Self instructions by (object, address); calls' inclusive lines are skipped."""
    costs = collections.Counter()
    obj, skip_next = None, False
    with open(profile) as lines:
        for line in lines:
            if line.startswith("ob="):
                obj = line[3:].strip()
            elif line.startswith("calls="):
                skip_next = True
            elif line.startswith("0x"):
                if skip_next:
                    skip_next = False
                    continue
                fields = line.split()
                if len(fields) >= 3:
                    costs[(obj, int(fields[0], 16))] += int(fields[2])
    own = {address: cost for (obj, address), cost in costs.items()
           if obj and os.path.basename(obj) == binary_name}
    libraries = collections.Counter()
    for (obj, _), cost in costs.items():
        if not (obj and os.path.basename(obj) == binary_name):
            libraries["lib:" + os.path.basename(obj or "?")] += cost
    return own, libraries


def inline_chains(binary, addresses):
    """The inline chain (innermost first) of each address, as (function, file:line) pairs."""
    output = subprocess.run(
        ["addr2line", "-i", "-f", "-C", "-a", "-e", binary],
        input="\n".join(hex(address) for address in addresses),
        capture_output=True, text=True, check=True).stdout.splitlines()
    chains, current, index = {}, None, 0
    while index < len(output):
        line = output[index]
        if line.startswith("0x"):
            current = int(line, 16)
            chains[current] = []
            index += 1
        else:
            location = output[index + 1] if index + 1 < len(output) else ""
            chains[current].append((line, location))
            index += 2
    return chains


def source_of(chain):
    """The innermost ratelab file of a chain, else the dependency or 'std/other'."""
    for _, location in chain:
        found = re.search(r"/(crates/[\w-]+/src/[\w/]+\.rs)", location)
        if found:
            return found.group(1)
    location = chain[0][1] if chain else ""
    dependency = re.search(r"registry/src/[^/]+/([\w-]+?)-\d", location)
    return "dep:" + dependency.group(1) if dependency else "std/other"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    profile, binary, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
    own, libraries = instruction_costs(profile, os.path.basename(binary))
    chains = inline_chains(binary, sorted(own))
    by_file = collections.Counter(libraries)
    for address, cost in own.items():
        by_file[source_of(chains.get(address, []))] += cost
    if "--files" in sys.argv:
        rows = by_file.most_common()
    else:
        by_part = collections.Counter()
        for name, cost in by_file.items():
            part = next((label for label, patterns in PARTS
                         if any(re.search(pattern, name) for pattern in patterns)), "other")
            by_part[part] += cost
        rows = by_part.most_common()
    for name, cost in rows:
        print(f"{cost / attempts:8.1f}  {name}")
    print(f"{sum(by_file.values()) / attempts:8.1f}  total")


if __name__ == "__main__":
    main()
