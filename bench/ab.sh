#!/usr/bin/env bash
# Two builds of pyre, interleaved, in one run: is a change within its
# performance budget? Each build is a pyrebench binary (it embeds the
# server), so "before" is pyrebench built from the old commit's channel/
# with today's cmd/pyrebench client, and both sides are driven by the same
# load client:
#
#   git worktree add /tmp/pyre-old <old commit>
#   (cd /tmp/pyre-old && git checkout main -- cmd/ internal/brokertest && go build -o /tmp/pb-old ./cmd/pyrebench)
#   git worktree remove --force /tmp/pyre-old
#   go build -o bin/pyrebench ./cmd/pyrebench
#   bench/ab.sh /tmp/pb-old bin/pyrebench        # REPS=3: ~12 min on 2 cores
#
# It runs the two headline rows of BENCHMARKS.md (idle at IDLE_N joined
# connections; fan-out with the server pinned to CPU 0, N subscribers,
# SIZE bytes, RATE msg/s) as A B A B ..., a fresh server every run, and
# prints each run and the medians, with B/A ratios per pair as median
# (min-max). Raw JSON lines go to OUT (default bench/results/ab-<time>).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh OLD_PYREBENCH NEW_PYREBENCH}
B=${2:?usage: bench/ab.sh OLD_PYREBENCH NEW_PYREBENCH}
REPS=${REPS:-3}
IDLE_N=${IDLE_N:-19000}
N=${N:-10000}
SIZE=${SIZE:-128}
RATE=${RATE:-24}
WAIT_IDLE=${WAIT_IDLE:-80}
OUT=${OUT:-bench/results/ab-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RAW="$OUT/raw.jsonl"
log() { echo "[$(date -u +%T)] $*" >&2; }

for pair in $(seq 1 "$REPS"); do
	for side in A B; do
		bin=$A
		[ "$side" = B ] && bin=$B
		log "pair $pair: $side idle"
		timeout 600 "$bin" idle -n "$IDLE_N" -tag "$side" -pair "$pair" -json "$RAW" -wait-idle "$WAIT_IDLE" -wait-idle-max 60s >>"$OUT/tables.md" 2>>"$OUT/stderr.log"
	done
	for side in A B; do
		bin=$A
		[ "$side" = B ] && bin=$B
		log "pair $pair: $side fanout"
		timeout 600 "$bin" fanout -pin -n "$N" -size "$SIZE" -rate "$RATE" -tag "$side" -pair "$pair" -json "$RAW" -wait-idle "$WAIT_IDLE" -wait-idle-max 60s >>"$OUT/tables.md" 2>>"$OUT/stderr.log"
	done
done

python3 - "$RAW" <<'EOF' | tee "$OUT/report.md"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = {
    "idle": ["rss_kb_per_conn", "heap_kb_per_conn", "stack_kb_per_conn", "goroutines_per_conn"],
    "fanout": ["deliveries_per_s", "p50_ms", "p99_ms", "server_cpu_s_per_m", "server_cpu_pct", "frames_per_write"],
}
for scen, keys in rows.items():
    rs = [r for r in runs if r["scenario"] == scen]
    if not rs:
        continue
    print(f"\n## {scen}\n")
    print("| metric | A runs | B runs | A median | B median | B/A per pair: median (min-max) |")
    print("|---|---|---|---|---|---|")
    for k in keys:
        a = {r["pair"]: r[k] for r in rs if r["tag"] == "A" and k in r}
        b = {r["pair"]: r[k] for r in rs if r["tag"] == "B" and k in r}
        if not a or not b:
            continue
        ratios = [b[p] / a[p] for p in a if p in b and a[p]]
        fmt = lambda v: f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
        rr = f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})" if ratios else "-"
        print(f"| {k} | {', '.join(fmt(a[p]) for p in sorted(a))} | {', '.join(fmt(b[p]) for p in sorted(b))} | "
              f"{fmt(statistics.median(a.values()))} | {fmt(statistics.median(b.values()))} | {rr} |")
EOF
log "raw: $RAW"
