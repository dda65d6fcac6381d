#!/usr/bin/env bash
# What a CPU-bound neighbour on the server's core costs online latency, by the neighbour's policy.
#
#   benchmarks/loop-neighbour.sh [--rate R] [--rounds N] [--no-build] [-- extra serve flags]
#
# One Quiver server serving mlp_classifier (examples/models) pinned to CPU 1, one `quiver perf` open loop
# on CPU 0 at R req/s (default 34000) for two 5 s windows per line. Each round measures three lines: the
# server's core with nothing else on it ("idle"), with a busy loop (`sh -c 'while :; do :; done'`) pinned
# beside it at nice 19 ("nice19"), and with the same loop under SCHED_IDLE ("schedidle"). Each line
# gives the client's p50 and p99, the server's own p99 for ModelInfer in the same windows (lib.sh's
# bench_server_p99: a bucket bound, from reading a call's headers to closing it) and its GC pauses.
# Extra serve flags after "--", e.g. `-- --event-loop-scheduling normal` to compare the loops' policies
# (the server picks SCHED_BATCH for its loops here: one core, loops and a compute thread).
# Results: docs/benchmarks/batch-jobs.md (fourth session) and docs/benchmarks/cpu-sharing.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RATE=34000 ROUNDS=3 BUILD=1 WINDOW_MS=5000 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "loop-neighbour.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup loop-neighbour
PORT_BASE=${BENCH_PORT_BASE:-28700}
METRICS=$((PORT_BASE + 4))
bench_jobs_server "$PORT_BASE" --metrics-port "$METRICS" "${EXTRA[@]}"
bench_scrape_infer_buckets "$METRICS" > "$WORK/scrape.txt" &
PIDS+=($!)
echo "loop-neighbour.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); open loop at $RATE req/s; serve flags: ${EXTRA[*]:-(none)}; $(grep -o 'event loop(s) under [A-Za-z_ ]* beside [0-9]* compute thread(s)' "$WORK/server.log" | head -1); JVM: ${JVM_FLAGS[*]}"
# The server's compiled paths and the client's first, as in the other scripts.
bench_mlp_perf -u "127.0.0.1:$GRPC" --concurrency-range 64 -p 3000 --max-windows 2 --client-warmup 3000 >/dev/null
echo "| round | neighbour | client p50 us | client p99 us | server's own p99 ms | server GC pauses in the windows (count, total ms, longest ms) |"
echo "|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  for mode in idle nice19 schedidle; do
    NEIGHBOUR=""
    case "$mode" in
      nice19) taskset -c 1 nice -n 19 sh -c 'while :; do :; done' & NEIGHBOUR=$! ;;
      schedidle) taskset -c 1 chrt -i 0 sh -c 'while :; do :; done' & NEIGHBOUR=$! ;;
    esac
    [ -z "$NEIGHBOUR" ] || PIDS+=("$NEIGHBOUR")
    bench_mlp_perf -u "127.0.0.1:$GRPC" --request-rate-range "$RATE" -p "$WINDOW_MS" --max-windows 2 --client-warmup 4000 \
      --json "$WORK/$mode-$r.json" >/dev/null
    END=$(date +%s%3N)
    sleep 1.1 # the scrape after the windows' end
    [ -z "$NEIGHBOUR" ] || kill "$NEIGHBOUR"
    echo "| $r | $mode | $(bench_json_field "$WORK/$mode-$r.json" p50_us) | $(bench_json_field "$WORK/$mode-$r.json" p99_us) | $(bench_server_p99 "$WORK/scrape.txt" $((END - 2 * WINDOW_MS)) "$END") | $(bench_gc_pauses $((END - 2 * WINDOW_MS)) "$END") |"
  done
done
