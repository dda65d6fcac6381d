#!/usr/bin/env bash
# Where an online request's time goes in open loop, from the server's own metrics (one check, no job).
#
#   [BUILD=0] benchmarks/queue-wait.sh [RATE...] [-- serve flags]   (default 17000 34000; BUILD=0 uses the
#   jars built; needs python3)
#
# One Quiver server serving mlp_classifier (examples/models) pinned to CPU 1 (lib.sh), one `quiver perf`
# client on CPU 0: a closed loop at concurrency 64 first (warm-up; its req/s is printed), then per RATE an
# open loop (4 s closed-loop client warm-up, 4 s open, then two 5 s windows). Over 8 s inside the windows
# it takes Prometheus snapshots before and after and the server's per-thread CPU (/proc), and prints per
# histogram (ModelInfer call time, request time, queue wait, batch rows, batch run time) the bucket bounds
# of p50, p90, p99 and p99.9 over those 8 s, and the CPU of each thread as % of one core.
# Results: docs/benchmarks/batch-jobs.md (fourth session).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" WINDOW_MS=5000 BUILD=${BUILD:-1}
RATES=() EXTRA=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; EXTRA=("$@"); break; fi
  RATES+=("$1"); shift
done
[ ${#RATES[@]} -gt 0 ] || RATES=(17000 34000)
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup queue-wait
METRICS=$(( ${BENCH_PORT_BASE:-28800} + 4 ))
bench_jobs_server "${BENCH_PORT_BASE:-28800}" --metrics-port "$METRICS" "${EXTRA[@]}"
bench_mlp_perf -u "127.0.0.1:$GRPC" --concurrency-range 64 -p 3000 --max-windows 2 --client-warmup 3000 --json "$WORK/sat.json" >/dev/null
echo "closed loop c=64: $(bench_json_field "$WORK/sat.json" throughput_rps) req/s"
ticks() { bench_thread_ticks | awk -F'|' '{ g[$1] += $2 } END { for (k in g) print k "|" g[k] }' | sort; }
for rate in ${RATES[*]}; do
  bench_mlp_perf -u "127.0.0.1:$GRPC" --request-rate-range "$rate" -p "$WINDOW_MS" --max-windows 2 --client-warmup 4000 --json "$WORK/open-$rate.json" >/dev/null &
  P=$!
  sleep 10.5  # 4 s closed-loop + 4 s open warm-up + ~2 s warm-up window
  curl -s "127.0.0.1:$METRICS/metrics" > "$WORK/m0"; ticks > "$WORK/t0"; T0=$(date +%s%3N)
  sleep 8
  curl -s "127.0.0.1:$METRICS/metrics" > "$WORK/m1"; ticks > "$WORK/t1"; T1=$(date +%s%3N)
  wait $P
  echo "== rate $rate, serve flags: ${EXTRA[*]:-(none)}: client p50 $(bench_json_field "$WORK/open-$rate.json" p50_us) p99 $(bench_json_field "$WORK/open-$rate.json" p99_us) max $(bench_json_field "$WORK/open-$rate.json" max_us) us; in-flight limit hit: $(grep -o '"inflight_limited" *: *[a-z]*' "$WORK/open-$rate.json" | sed 's/.*: *//'); client-bound: $(grep -o '"client_bound" *: *[a-z]*' "$WORK/open-$rate.json" | sed 's/.*: *//'); server GC pauses in the 8 s (count, total ms, longest ms): $(bench_gc_pauses $T0 $T1)"
  python3 - "$WORK/m0" "$WORK/m1" "$WORK/t0" "$WORK/t1" $((T1 - T0)) <<'PY'
import sys, re, collections
def load(p):
    d = {}
    for line in open(p):
        if line.startswith('#'): continue
        m = re.match(r'(\S+?)(\{.*\})? (\S+)$', line.strip())
        if m: d[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
hist = collections.defaultdict(list)
for (name, labels), v in b.items():
    if name.endswith('_bucket') and 'mlp_classifier' in labels + ('ModelInfer' if 'ModelInfer' in labels else ''):
        le = re.search(r'le="([^"]+)"', labels).group(1)
        key = name[:-7] + re.sub(r',?le="[^"]+"', '', labels)
        hist[key].append((float('inf') if le == '+Inf' else float(le), v - a.get((name, labels), 0)))
    if name.endswith('_bucket') and 'ModelInfer' in labels and 'code="OK"' in labels:
        pass
for (name, labels), v in b.items():
    if name.startswith('quiver_grpc_server_call_duration_seconds_bucket') and 'ModelInfer' in labels and 'code="OK"' in labels:
        le = re.search(r'le="([^"]+)"', labels).group(1)
        hist['grpc ModelInfer OK'].append((float('inf') if le == '+Inf' else float(le), v - a.get((name, labels), 0)))
for k, bs in sorted(hist.items()):
    bs.sort(); total = bs[-1][1]
    if total <= 0: continue
    out = []
    for q in (0.5, 0.9, 0.99, 0.999):
        for le, c in bs:
            if c >= q * total: out.append(f"p{q*100:g}<={le*1000 if 'batch' not in k else le:g}"); break
    print(f"  {k}: n={total:.0f} " + " ".join(out))
ta = dict(l.strip().split('|') for l in open(sys.argv[3])); tb = dict(l.strip().split('|') for l in open(sys.argv[4]))
ms = float(sys.argv[5])
print("  server CPU % of one core over the window: " + ", ".join(f"{k} {100*(int(tb[k])-int(ta.get(k,0)))*10/ms:.0f}" for k in sorted(tb) if int(tb[k])-int(ta.get(k,0)) > 0))
PY
done
