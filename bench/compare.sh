#!/usr/bin/env bash
# pyre against centrifuge, interleaved, in one run: the tables BENCHMARKS.md
# quotes for the side-by-side claims. Both servers are driven by the same
# load client (cmd/pyrebench), a fresh server process per run, the servers
# alternating (pyre, centrifuge, pyre, centrifuge, ...) at every step, and
# the whole plan repeated REPS times (pair 1, pair 2, ...). Ratios are
# computed within each pair and summarised as median (min–max).
#
#   make bench-compare                 # the full plan: ~20 min on 2 cores, at most ~30 (every run is bounded)
#   REPS=1 RATES="10 20" N=1000 IDLE_N=1000 FANOUT_SECONDS=2 WAIT_IDLE=0 bench/compare.sh   # smoke
#
# Sections (SECTIONS, all by default):
#   idle   IDLE_N joined idle connections: server RSS (and Go heap) per connection
#   ramp   server pinned to CPU 0, clients on CPU 1 (polling, never blocking in
#          epoll_wait), N subscribers, SIZE-byte messages, at each rate of RATES:
#          deliveries/s, p99, CPU %, CPU s/M, and each server's ceiling (the
#          highest rate it kept with p99 <= 150 ms). PLACEMENT=spill leaves the
#          clients unpinned at nice 19: they get CPU 1 and whatever the server
#          leaves of CPU 0 (use it when the ceiling table shows the clients'
#          core at ~100 % before the server's)
#   nodes  NODES nodes x N/NODES subscribers on one Redis (both servers) and on
#          one NATS (pyre; centrifuge has no NATS broker), at each rate of
#          NODE_RATES msg/s, unpinned: CPU s/M per node, the broker's CPU,
#          broker traffic per broadcast. The default rates are 6 (both servers
#          keep the schedule: CPU per delivery compares like with like) and
#          12 (centrifuge falls behind on this 2-core VM; a server that lags
#          packs late frames into shared writes, which lowers its CPU per
#          delivery, so read that ratio with its p99)
#
# Output in OUT (default bench/results/<UTC time>): raw.jsonl (one JSON line
# per run), report.md (the tables to paste), tables.md (pyrebench's own
# per-run tables), machine.txt, logs/. Every target is on 127.0.0.1 and every
# run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
SECTIONS=${SECTIONS:-"idle ramp nodes"}
IDLE_N=${IDLE_N:-19000}
N=${N:-10000}
SIZE=${SIZE:-128}
RATES=${RATES:-"24 36 48 60 72 96"}
FANOUT_SECONDS=${FANOUT_SECONDS:-10}
DRAIN=${DRAIN:-10s}           # longest wait for deliveries after a publish window (a server further behind missed the rate anyway)
CLIENT_POLL=${CLIENT_POLL:-1ms}
CLIENT_RING=${CLIENT_RING:-true} # false: the clients read with one read(2) per ready connection (pyrebench -client-ring)
PLACEMENT=${PLACEMENT:-pin}   # pin: clients on CPU 1; spill: clients anywhere at nice 19
NODES=${NODES:-2}
NODE_RATES=${NODE_RATES:-${NODE_RATE:-"6 12"}}
REDIS=${REDIS:-redis://127.0.0.1:6379}
NATS=${NATS:-nats://127.0.0.1:4222}
WAIT_IDLE=${WAIT_IDLE:-80}   # start a run only when the machine was this % idle over 3 s (0: never wait)
WAIT_IDLE_MAX=${WAIT_IDLE_MAX:-60s}
P99_MAX=${P99_MAX:-150}
case $PLACEMENT in
pin) RAMP_PIN=(-pin) ;;
spill) RAMP_PIN=(-pin -client-cpus all -client-nice 19) ;;
*) echo "PLACEMENT must be pin or spill" >&2; exit 2 ;;
esac
OUT=${OUT:-bench/results/$(date -u +%Y%m%d-%H%M%S)}
BIN=${BIN:-bin}

mkdir -p "$OUT/logs" "$BIN"
RAW="$OUT/raw.jsonl"
log() { echo "[$(date -u +%T)] $*" >&2; }

log "building $BIN/pyrebench and $BIN/centrifuge-anchor"
go build -o "$BIN/pyrebench" ./cmd/pyrebench
(cd bench/anchors && go build -o "../../$BIN/centrifuge-anchor" ./centrifuge)

{
	echo "date: $(date -u -Is)"
	echo "pyre: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
	echo "centrifuge: $(cd bench/anchors && go list -m -f '{{.Version}}' github.com/centrifugal/centrifuge)"
	echo "go: $(go version)"
	echo "nproc: $(nproc)   $(grep -m1 'model name' /proc/cpuinfo || true)"
	echo "kernel: $(uname -r)"
	echo "ulimit -n: $(ulimit -Sn)/$(ulimit -Hn)"
	echo "loadavg before: $(cat /proc/loadavg)"
	echo "plan: REPS=$REPS SECTIONS='$SECTIONS' IDLE_N=$IDLE_N N=$N SIZE=$SIZE RATES='$RATES' FANOUT_SECONDS=$FANOUT_SECONDS DRAIN=$DRAIN CLIENT_POLL=$CLIENT_POLL CLIENT_RING=$CLIENT_RING PLACEMENT=$PLACEMENT NODES=$NODES NODE_RATES='$NODE_RATES' REDIS=$REDIS NATS=$NATS WAIT_IDLE=$WAIT_IDLE"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

FAILED=0
# run TAG PAIR SERVER SCENARIO ARGS...: one measurement, one fresh server.
run() {
	local tag=$1 pair=$2 server=$3 scenario=$4
	shift 4
	log "pair $pair: $tag $server $scenario $*"
	if ! timeout 600 "$BIN/pyrebench" "$scenario" -server "$server" -tag "$tag" -pair "$pair" -json "$RAW" \
		-logdir "$OUT/logs" -wait-idle "$WAIT_IDLE" -wait-idle-max "$WAIT_IDLE_MAX" "$@" \
		>>"$OUT/tables.md" 2>>"$OUT/logs/pyrebench.stderr"; then
		FAILED=$((FAILED + 1))
		log "FAILED (see $OUT/logs/pyrebench.stderr)"
	fi
}

has() { [[ " $SECTIONS " == *" $1 "* ]]; }

start=$(date +%s)
for pair in $(seq 1 "$REPS"); do
	if has idle; then
		for s in pyre centrifuge; do
			run idle "$pair" "$s" idle -n "$IDLE_N"
		done
	fi
	if has ramp; then
		for rate in $RATES; do
			for s in pyre centrifuge; do
				run ramp "$pair" "$s" fanout "${RAMP_PIN[@]}" -client-poll "$CLIENT_POLL" -client-ring="$CLIENT_RING" -n "$N" -size "$SIZE" \
					-rate "$rate" -seconds "$FANOUT_SECONDS" -drain "$DRAIN"
			done
		done
	fi
	if has nodes; then
		for rate in $NODE_RATES; do
			for s in pyre centrifuge; do
				run nodes-redis "$pair" "$s" fanout -nodes "$NODES" -pubsub "$REDIS" -client-poll "$CLIENT_POLL" -client-ring="$CLIENT_RING" \
					-n "$N" -size "$SIZE" -rate "$rate" -seconds "$FANOUT_SECONDS" -drain "$DRAIN"
			done
			run nodes-nats "$pair" pyre fanout -nodes "$NODES" -pubsub "$NATS" -client-poll "$CLIENT_POLL" -client-ring="$CLIENT_RING" \
				-n "$N" -size "$SIZE" -rate "$rate" -seconds "$FANOUT_SECONDS" -drain "$DRAIN"
		done
	fi
done

{
	echo "# pyre and centrifuge, interleaved ($(date -u +%F), $REPS pairs)"
	echo
	echo '```'
	cat "$OUT/machine.txt"
	echo '```'
	echo
	"$BIN/pyrebench" report -p99-max "$P99_MAX" "$RAW"
} >"$OUT/report.md"
log "done in $(( $(date +%s) - start ))s, $FAILED failed run(s): $OUT/report.md"
[ "$FAILED" = 0 ]
