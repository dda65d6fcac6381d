#!/usr/bin/env bash
# Online p99 beside a batch job (issue 19), measured inside one server process: phases of an open-loop
# client at a fixed rate, alternately without and with a job running, so both kinds of phase meet the
# same server, JIT state and heap. Prints one line per phase and a summary.
#
#   benchmarks/jobs-phases.sh [--rate R] [--rounds N] [--job-records N] [--toggle-loop-policy] [--no-build]
#
# Each round: one phase against the bare gRPC echo server (benchmarks' EchoServer, pinned to the server's
# CPU, with Quiver idle beside it: the floor this client and machine give at the same rate), two phases
# without a job, then four with one (a fresh job of --job-records records, 4M by default, per phase;
# it should run through the whole phase: at 150k records/s a 4M-record job ends within one). Each phase is its own `quiver perf` run: 4 s closed loop and 4 s open
# loop to warm the client's JIT, 2 s of warm-up, then 2 windows of 4 s at R req/s (Poisson; latency from
# the intended send time). Per phase: p50, p99, the client's send-rate ratio, the server's GC pauses in
# the windows (its -Xlog:gc), the event loops' scheduling policy at the phase's end (0 = SCHED_OTHER,
# 3 = SCHED_BATCH), the job's records/s during the phase, and the server's CPU over the phase by thread
# group (% of one core, from /proc/PID/task/*/stat): event loops, model instances (compute), job threads,
# the JVM's collector and VM threads, its JIT compilers, the rest; and the load client's own state (how
# far behind its schedule the sender was at the end, whether a window was client-bound: a client that
# stalls and then sends its backlog in a burst measures its own stall); and the server's own p99 for
# ModelInfer over the windows (its quiver_grpc_server_call_duration_seconds histogram, scraped once a
# second: the bound of the bucket holding the 99th percentile, from reading a call's headers to closing
# it), which places a latency on one side of the socket or the other; and the event loops' mean wait on
# the run queue per time slice over the phase (schedstat: how long a woken loop waits for the CPU); and
# the peak minor page-fault rate of the server and of the client over 0.5 s steps in the windows (a JVM
# whose heap resizes faults its pages back in: about 14 µs each on this VM, docs/benchmarks/README.md).
#
# --toggle-loop-policy sets the event loops' policy with chrt(1) before each phase, alternating
# SCHED_BATCH and SCHED_OTHER (overriding the server's own choice), to compare the two with a job running.
# The server runs pinned to CPU 1, the client to CPU 0 (benchmarks/lib.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RATE=8000 ROUNDS=2 TOGGLE=0 BUILD=1 JOB_RECORDS=4000000
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --job-records) JOB_RECORDS="$2"; shift ;; # each job phase's job; it should outlast the phase
    --toggle-loop-policy) TOGGLE=1 ;;
    --no-build) BUILD=0 ;;
    *) echo "jobs-phases.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup jobs-phases
[ "$TOGGLE" = 0 ] || command -v chrt >/dev/null || { echo "jobs-phases.sh: --toggle-loop-policy needs chrt" >&2; exit 1; }
PORT_BASE="${BENCH_PORT_BASE:-28700}"
METRICS=$((PORT_BASE + 4)) ECHO=$((PORT_BASE + 5))
bench_jobs_server "$PORT_BASE" --metrics-port "$METRICS"
bench_mlp_requests "$JOB_RECORDS" "$WORK/data/job.jsonl"
head -100000 "$WORK/data/job.jsonl" > "$WORK/data/100k.jsonl"

"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --host 127.0.0.1 \
  --grpc-port "$ECHO" --input features:FP32:-1,16 > "$WORK/echo.log" 2>&1 &
PIDS+=($!)
TARGET=$GRPC
perf() { bench_mlp_perf -u "127.0.0.1:$TARGET" "$@" 2>>"$WORK/perf.err"; }
job_done() { curl -s "127.0.0.1:$REST/v2/jobs/$1" | grep -oE '"records_succeeded": *"?[0-9]*' | grep -oE '[0-9]+$' || echo 0; }
# Warm-up, not reported: the online path, then one whole job (the job path compiled, as on any server
# that has run one before).
perf --concurrency-range 64 -p 5000 --max-windows 2 --client-warmup 3000 >/dev/null
bench_jobs_cli submit mlp_classifier --input "$WORK/data/100k.jsonl" \
  --output "$WORK/out/warm-up" --wait >/dev/null
LOOPS=()
for t in /proc/"$SERVER_PID"/task/*; do
  read -r name < "$t/comm"
  [[ "$name" == grpc-worker* ]] && LOOPS+=("$(basename "$t")")
done
[ ${#LOOPS[@]} -gt 0 ] || { echo "jobs-phases.sh: no grpc-worker threads found" >&2; exit 1; }

POLICY_NOTE="the server's own"
[ "$TOGGLE" = 0 ] || POLICY_NOTE="set with chrt before each phase"
echo "jobs-phases.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); open loop at $RATE req/s; server JVM: ${SERVER_JVM_FLAGS[*]}; client JVM: ${JVM_FLAGS[*]}; load average $(cut -d' ' -f1-3 /proc/loadavg); loop policy: $POLICY_NOTE"
echo "| phase | job | loops forced to | p50 us | p99 us | send-rate ratio | server GC pauses in the windows (count, ms, longest ms) | loop policy at the end | job records/s | server CPU %: loops / compute / job / gc+vm / jit / other | client: send lag ms, client-bound windows | server's own p99 for ModelInfer, ms (bucket bound) | event loops' mean wait to run, us per time slice | peak minor faults/s in the windows: server, client |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
# The event loops' summed run-queue wait (ns) and time slices so far (/proc/PID/task/TID/schedstat)
loop_wait() {
  local t
  for t in "${LOOPS[@]}"; do cat /proc/"$SERVER_PID"/task/"$t"/schedstat; done | awk '{ w += $2; n += $3 } END { print w, n }'
}
# Every 0.5 s: the wall-clock ms and the minor page faults so far of the server and of the running load
# client (/proc/PID/stat's 10th field; a JVM faults when its heap grows into pages it has not touched or
# has given back)
faults_loop() {
  local client="" stat s c now
  while :; do
    [ -n "$client" ] && [ -e /proc/"$client" ] || client=$(pgrep -n -f io.quiver.bench.PerfMain || true)
    read -r stat < /proc/"$SERVER_PID"/stat; stat=${stat##*) }; set -- $stat; s=$8
    c=0
    if [ -n "$client" ] && read -r stat < /proc/"$client"/stat 2>/dev/null; then stat=${stat##*) }; set -- $stat; c=$8; fi
    now=${EPOCHREALTIME/./}
    echo "${now:0:-3} $s $c"
    sleep 0.5
  done
}
# The largest minor-fault rate (faults/s over one 0.5 s step) of the server and of the client between FROM_MS
# and TO_MS: fault_peaks FILE FROM_MS TO_MS
fault_peaks() {
  awk -v from="$2" -v to="$3" '
    $1 >= from && $1 <= to && t != "" && $1 > t {
      dt = ($1 - t) / 1000; a = ($2 - s) / dt; if (a > ms) ms = a
      if ($3 >= c && c > 0) { b = ($3 - c) / dt; if (b > mc) mc = b }
    }
    { t = $1; s = $2; c = $3 }
    END { printf "%.0f, %.0f", ms, mc }' "$1"
}
# CPU ticks so far of each server thread group (loops compute job gc jit other)
cpu_ticks() {
  bench_thread_ticks | awk -F'|' '
    $1 ~ /^grpc-worker|^quiver-rest|^quiver-http/ { g[1] += $2; next }
    $1 ~ /^quiver-compute/ { g[2] += $2; next }
    $1 ~ /^quiver-job/ { g[3] += $2; next }
    $1 ~ /GC|^G1 |^VM |^Z|^Shenandoah|^Conc/ { g[4] += $2; next }
    $1 ~ /^C[12] / { g[5] += $2; next }
    { g[6] += $2 }
    END { printf "%d %d %d %d %d %d", g[1], g[2], g[3], g[4], g[5], g[6] }'
}
TICKS_PER_S=$(getconf CLK_TCK)
JOB="" N=0 PHASE=0
declare -a P99_NO P99_JOB P99_ECHO
phase() { # job|none batch|other
  PHASE=$((PHASE + 1))
  if [ "$1" = job ]; then
    [ -z "$JOB" ] || { curl -s -X POST "127.0.0.1:$REST/v2/jobs/$JOB/cancel" >/dev/null; sleep 1; }
    N=$((N + 1))
    JOB=$(curl -sS -X POST "127.0.0.1:$REST/v2/jobs" -d "{\"model\": \"mlp_classifier\", \"input_uri\": \"$WORK/data/job.jsonl\", \"output_uri\": \"$WORK/out/job-$N\"}" \
      | grep -o '"job-[0-9a-f]*"' | head -1 | tr -d '"')
  fi
  local forced="-"
  TARGET=$GRPC
  [ "$1" != echo ] || TARGET=$ECHO
  if [ "$TOGGLE" = 1 ] && [ "$1" != echo ]; then
    forced="$2"
    for t in "${LOOPS[@]}"; do chrt "-${2:0:1}" -p 0 "$t"; done
  fi
  local before=0 t0
  [ "$1" != job ] || before=$(job_done "$JOB")
  t0=$(date +%s%3N)
  local ticks0 scraper wait0
  ticks0=$(cpu_ticks)
  wait0=$(loop_wait)
  bench_scrape_infer_buckets "$METRICS" > "$WORK/scrape-$PHASE.txt" &
  scraper=$!
  faults_loop > "$WORK/faults-$PHASE.txt" &
  local faulter=$!
  perf --request-rate-range "$RATE" --request-distribution poisson --request-timeout 2000 --max-inflight 4096 \
    -p 4000 --max-windows 2 --client-warmup 4000 --json "$WORK/phase-$PHASE.json" >/dev/null
  local end measured p99 rate="-"
  end=$(date +%s%3N)
  kill "$scraper" "$faulter" 2>/dev/null; wait "$scraper" "$faulter" 2>/dev/null || true
  local waited
  waited=$(awk -v a="$wait0" -v b="$(loop_wait)" 'BEGIN { split(a, x, " "); split(b, y, " ");
    n = y[2] - x[2]; if (n > 0) printf "%.0f", (y[1] - x[1]) / n / 1000; else print "-" }')
  local cpu
  cpu=$(awk -v a="$ticks0" -v b="$(cpu_ticks)" -v ms="$((end - t0))" -v hz="$TICKS_PER_S" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 1; i <= n; i++) printf "%s%.0f", (i > 1 ? " / " : ""), (y[i] - x[i]) * 100000 / hz / ms }')
  measured=$(bench_json_field "$WORK/phase-$PHASE.json" measured_s)
  p99=$(bench_json_field "$WORK/phase-$PHASE.json" p99_us)
  if [ "$1" = job ]; then
    P99_JOB+=("$p99")
    rate=$(( ($(job_done "$JOB") - before) * 1000 / (end - t0) ))
  elif [ "$1" = echo ]; then
    P99_ECHO+=("$p99")
  else
    P99_NO+=("$p99")
  fi
  local own="-"
  [ "$1" = echo ] || own=$(bench_server_p99 "$WORK/scrape-$PHASE.txt" "$(( end - ${measured%.*} * 1000 ))" "$end")
  echo "| $PHASE | $1 | $forced | $(bench_json_field "$WORK/phase-$PHASE.json" p50_us) | $p99 | $(bench_json_field "$WORK/phase-$PHASE.json" send_rate_ratio) | $(bench_gc_pauses "$(( end - ${measured%.*} * 1000 ))" "$end") | $(awk '{ print $41 }' /proc/"$SERVER_PID"/task/"${LOOPS[0]}"/stat) | $rate | $cpu | $(bench_json_field "$WORK/phase-$PHASE.json" send_lag_us | awk '{ printf "%.1f", $1 / 1000 }'), $(grep -o '"client_bound" *: *[a-z0-9]*' "$WORK/phase-$PHASE.json" | head -1 | sed 's/.*: *//') | $own | $waited | $(fault_peaks "$WORK/faults-$PHASE.txt" "$(( end - ${measured%.*} * 1000 ))" "$end") |"
}
for _ in $(seq 1 "$ROUNDS"); do
  phase echo -
  phase none batch; phase none other
  phase job batch; phase job other; phase job batch; phase job other
  curl -s -X POST "127.0.0.1:$REST/v2/jobs/$JOB/cancel" >/dev/null
  JOB=""
  sleep 1
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
M_NO=$(median "${P99_NO[@]}") M_JOB=$(median "${P99_JOB[@]}") M_ECHO=$(median "${P99_ECHO[@]}")
echo
echo "median p99 without a job $M_NO us (${#P99_NO[@]} phases), with a job $M_JOB us (${#P99_JOB[@]} phases): $(awk -v a="$M_JOB" -v b="$M_NO" 'BEGIN { printf "%.2f", a / b }')x (goal <= 1.2x); the bare echo's (the floor of this client and machine) $M_ECHO us (${#P99_ECHO[@]} phases); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
