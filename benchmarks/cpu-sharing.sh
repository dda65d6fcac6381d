#!/usr/bin/env bash
# The event loops' CPU policy under overload: SCHED_BATCH against the default, alternating in one run.
# Writes docs/benchmarks/cpu-sharing.md (or the file given with --out).
#
#   benchmarks/cpu-sharing.sh [--model cnn_16px|mlp_784] [--phases N] [--phase-s S] [--load X | --concurrency C]
#                             [--no-build] [--out FILE]
#
# One server pinned to CPU 1 (its event loop and compute thread share that core) serves cnn_16px with a
# 64-deep queue, as benchmarks/overload.sh sets it up (or mlp_784, a fast model on the compute pool, with
# its default queue); one open-loop client on CPU 0 offers X times (default 3) the saturation measured
# closed loop at concurrency 64, for N phases of S seconds (default 16 x 8); with --concurrency, a closed-loop
# client at concurrency C instead. Between
# phases the script switches the server's event-loop threads between SCHED_OTHER and SCHED_BATCH with
# chrt(1), so both policies meet the same client, the same JIT state and the same offered load, phase by
# phase. Per phase: answered requests per second (the server's nv_inference_request_success), the event
# loops' CPU time and time slices (/proc/PID/task/TID/schedstat), and the p99 of admitted and refused calls
# in server time (quiver_grpc_server_call_duration_seconds; the upper bound of the bucket it falls in).
# The first second of each phase is not counted.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PHASES=16 PHASE_S=8 LOAD=3 BUILD=1 BASE_MODEL=cnn_16px CONCURRENCY= OUT="$ROOT/docs/benchmarks/cpu-sharing.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) BASE_MODEL="$2"; shift 2 ;;
    --phases) PHASES="$2"; shift 2 ;;
    --phase-s) PHASE_S="$2"; shift 2 ;;
    --load) LOAD="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "cpu-sharing.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
command -v chrt >/dev/null || { echo "cpu-sharing.sh: needs chrt (util-linux)" >&2; exit 1; }
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup cpu-sharing
mkdir -p "$WORK/models" "$WORK/results"

"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/generated" > /dev/null
case "$BASE_MODEL" in
  cnn_16px)
    MODEL=cnn_16px_q64
    cp -r "$WORK/generated/overload-cnn/cnn_16px" "$WORK/models/$MODEL"
    sed -i "s/name: \"cnn_16px\"/name: \"$MODEL\"/; s/^dynamic_batching {/dynamic_batching {\n  default_queue_policy { max_queue_size: 64 }/" \
      "$WORK/models/$MODEL/config.pbtxt"
    grep -q "max_queue_size: 64" "$WORK/models/$MODEL/config.pbtxt" || { echo "cpu-sharing.sh: could not bound the queue" >&2; exit 1; } ;;
  mlp_784)
    MODEL=mlp_784
    cp -r "$WORK/generated/batching/mlp_784" "$WORK/models/$MODEL" ;;
  *) echo "cpu-sharing.sh: --model is cnn_16px or mlp_784" >&2; exit 64 ;;
esac

PORT=$(( ${BENCH_PORT_BASE:-18500} + 11 ))
METRICS_PORT=$(( ${BENCH_PORT_BASE:-18500} + 12 ))
# Started under the default policy; the phases below set each one.
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models" --grpc-port "$PORT" --http-port -1 --metrics-port "$METRICS_PORT" --control-port -1 \
  --event-loop-scheduling normal > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
perf() { # json-name args...
  local out="$1"; shift
  "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m "$MODEL" -u "127.0.0.1:$PORT" \
    --warmup 2000 --wait-ready 120 --server-pid "$SERVER_PID" --json "$WORK/results/$out.json" --label "$out" "$@" \
    >> "$WORK/perf.out" 2>> "$WORK/perf.err" || true
}
perf warm-up --concurrency-range 64 -p 20000 --max-windows 1
perf saturation --concurrency-range 64 -p 3000 --max-windows 4
SAT=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$WORK/results/saturation.json")
RATE=$(python3 -c "print(int($LOAD * $SAT))")
# Client warm-up (its JIT, then the level itself) before the phases start.
if [ -n "$CONCURRENCY" ]; then
  LOAD_ARGS=(--concurrency-range "$CONCURRENCY")
  OFFERED="closed loop at concurrency $CONCURRENCY" LOAD_FLAG="--concurrency $CONCURRENCY"
else
  LOAD_ARGS=(--request-rate-range "$RATE" --request-distribution poisson --request-timeout 2000 --max-inflight 4096)
  OFFERED="open loop (Poisson) at ${LOAD}x saturation, $RATE req/s" LOAD_FLAG="--load $LOAD"
fi
perf phases "${LOAD_ARGS[@]}" --client-warmup 6000 --max-windows 1 -p $(( PHASES * PHASE_S * 1000 + 30000 )) &
CLIENT=$!
PIDS+=("$CLIENT")
sleep 20
LOOPS=()
for t in /proc/"$SERVER_PID"/task/*; do
  [[ "$(cat "$t/comm")" == grpc-worker* ]] && LOOPS+=("$(basename "$t")")
done
[ ${#LOOPS[@]} -gt 0 ] || { echo "cpu-sharing.sh: no grpc-worker threads found" >&2; exit 1; }
snapshot() { # file
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$1.prom"
  for t in "${LOOPS[@]}"; do echo "$t $(cat /proc/"$SERVER_PID"/task/"$t"/schedstat)"; done > "$1.sched"
  date +%s%N > "$1.time"
}
for p in $(seq 1 "$PHASES"); do
  if [ $((p % 2)) = 1 ]; then policy=other; flag=-o; else policy=batch; flag=-b; fi
  for t in "${LOOPS[@]}"; do chrt "$flag" -p 0 "$t"; done
  sleep 1
  snapshot "$WORK/results/p$p-$policy.begin"
  sleep $(( PHASE_S - 1 ))
  snapshot "$WORK/results/p$p-$policy.end"
done
wait "$CLIENT" || true
LOAD_AVG="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results" "$OUT" "$PHASES" "$PHASE_S" "$OFFERED" "$LOAD_FLAG" "$SAT" "$LOAD_AVG" "$BASE_MODEL" \
  "$("$JAVA_BIN" -version 2>&1 | head -1)" "${JVM_FLAGS[*]}" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" <<'PY'
import datetime, glob, os, statistics, sys
res, out, phases, phase_s, offered, load_flag, sat, loadavg, model, jdk, flags, tree = sys.argv[1:13]
shape = ("cnn_16px with a 64-deep queue (as benchmarks/overload.sh)" if model == "cnn_16px"
         else "mlp_784 (a fast model: its batches run on the compute pool) with its default queue")
CALLS = "quiver_grpc_server_call_duration_seconds_bucket"

def prom(path):
    success, ok, refused = 0.0, {}, {}
    for line in open(path):
        if line.startswith("nv_inference_request_success{"):
            success += float(line.rsplit(" ", 1)[1])
        elif line.startswith(CALLS + "{") and 'method="ModelInfer"' in line:
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            if 'code="OK"' in line:
                ok[bound] = ok.get(bound, 0.0) + float(value)
            elif 'code="RESOURCE_EXHAUSTED"' in line or 'code="UNAVAILABLE"' in line:
                refused[bound] = refused.get(bound, 0.0) + float(value)
    return success, ok, refused

def p99(before, after):
    cumulative = sorted((b, after[b] - before.get(b, 0.0)) for b in after)
    if not cumulative or cumulative[-1][1] <= 0:
        return float("nan")
    total = cumulative[-1][1]
    return next(b for b, c in cumulative if c >= 0.99 * total) * 1000

def sched(path):
    run = slices = 0
    for line in open(path):
        _, ns, _, n = line.split()
        run += int(ns); slices += int(n)
    return run, slices

rows = []
for p in range(1, int(phases) + 1):
    policy = "other" if p % 2 else "batch"
    b, e = f"{res}/p{p}-{policy}.begin", f"{res}/p{p}-{policy}.end"
    seconds = (int(open(e + ".time").read()) - int(open(b + ".time").read())) / 1e9
    s0, ok0, r0 = prom(b + ".prom"); s1, ok1, r1 = prom(e + ".prom")
    (run0, sl0), (run1, sl1) = sched(b + ".sched"), sched(e + ".sched")
    rows.append(dict(phase=p, policy=policy, goodput=(s1 - s0) / seconds, loop_cpu=(run1 - run0) / seconds / 1e7,
                     slices=(sl1 - sl0) / seconds, ok99=p99(ok0, ok1), refused99=p99(r0, r1)))

def med(policy, key):
    return statistics.median(r[key] for r in rows if r["policy"] == policy)

pairs = [(rows[i], rows[i + 1]) for i in range(0, len(rows) - 1, 2)]
ratios = [b["goodput"] / a["goodput"] for a, b in pairs]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [f"# Event loops under SCHED_BATCH or the default policy: {model}, {offered.split(',')[0]}",
"",
"Why the policy exists and when the server uses it: docs/batching.md, \"Event loops beside compute threads\"",
"(`--event-loop-scheduling`). This run alternates the two policies on one server under one client.",
"",
f"Machine: a {os.cpu_count()}-core VM, load average {loadavg} at the end (the two JVMs account for about 2). Server",
f"pinned to CPU 1 with its event loop and compute thread; client on CPU 0. {jdk}; JVM flags `{flags}`. Tree: `{tree}`.",
f"Run on {now}. Model {shape}; saturation measured closed",
f"loop at concurrency 64: {float(sat):.0f} req/s; offered: {offered}; {phases} phases of {phase_s} s, the",
"policy switched with chrt(1) between phases; the first second of each phase is not counted.",
"",
"## Summary (median over phases)",
"",
"| policy | goodput req/s | goodput / saturation | event-loop CPU (share of its core) | event-loop time slices/s | admitted p99 ms (server) | refusal p99 ms (server) |",
"|---|---|---|---|---|---|---|"]
for policy, name in (("other", "SCHED_OTHER (default)"), ("batch", "SCHED_BATCH")):
    lines.append(f"| {name} | {med(policy, 'goodput'):.0f} | {med(policy, 'goodput') / float(sat):.2f} | {med(policy, 'loop_cpu'):.1f}% | "
                 f"{med(policy, 'slices'):.0f} | <= {med(policy, 'ok99'):g} | <= {med(policy, 'refused99'):g} |")
lines += ["",
f"Goodput of each SCHED_BATCH phase against the SCHED_OTHER phase before it: median {statistics.median(ratios):.2f} "
f"(range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} pairs). p99 figures are the upper bounds of the histogram buckets "
"(docs/metrics.md) they fall in, from the transport reading a call's headers to its stream closing.",
"",
"## Every phase",
"",
"| phase | policy | goodput req/s | event-loop CPU | time slices/s | admitted p99 ms | refusal p99 ms |",
"|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['phase']} | {r['policy']} | {r['goodput']:.0f} | {r['loop_cpu']:.1f}% | {r['slices']:.0f} | <= {r['ok99']:g} | <= {r['refused99']:g} |")
lines += ["", "## Command", "", "```", f"benchmarks/cpu-sharing.sh --model {model} --phases {phases} --phase-s {phase_s} {load_flag}", "```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
