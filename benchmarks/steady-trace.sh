#!/usr/bin/env bash
# A per-second trace of one long closed-loop run: how a server process's cost per request moves over time.
#
#   benchmarks/steady-trace.sh [--model M] [--concurrency C] [--seconds S] [--no-build] [-- extra serve flags]
#
# One Quiver server pinned to CPU 1 (benchmark models, as run.sh serves them), one `quiver perf` client on
# CPU 0 at concurrency C (default 256) for S seconds (default 150). About once a second it prints, for the
# interval since the previous line: requests per second (the server's nv_inference_request_success), the
# mean batch (requests / nv_inference_exec_count), and CPU per request of the server's event loops, of the
# whole server and of the client (/proc/PID/task/*/schedstat), and the server CPU's own speed (nanoseconds
# of CPU time per iteration of a fixed register-only loop, benchmarks/vcpu-speed.c, run beside the server on
# its CPU; "-" without a C compiler). Made to watch the c=256 levels that
# docs/benchmarks/PROFILE.md describes: a process that runs at one cost per request for a while and then
# at another. BENCH_JVM_FLAGS sets both JVMs' flags (default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC", as
# run.sh); the server also writes its GC log (-Xlog:gc) to the work directory, which is kept and named.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL=identity_fp32 CONC=256 SECONDS_TOTAL=150 BUILD=1 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --concurrency) CONC="$2"; shift 2 ;;
    --seconds) SECONDS_TOTAL="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "steady-trace.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
source "$ROOT/benchmarks/lib.sh"
bench_build
KEEP_WORK=1 # the GC log and the server's output stay for reading
bench_setup steady-trace
"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/models" > /dev/null
PORT=$(( ${BENCH_PORT_BASE:-18500} + 21 )) METRICS_PORT=$(( ${BENCH_PORT_BASE:-18500} + 22 ))
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" "-Xlog:gc:file=$WORK/gc.log:uptime" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models/batching" --grpc-port "$PORT" --http-port -1 --metrics-port "$METRICS_PORT" \
  --control-port -1 "${EXTRA[@]}" > "$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
"${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m "$MODEL" -u "127.0.0.1:$PORT" \
  --wait-ready 120 --concurrency-range "$CONC" --warmup 1000 --max-windows 1 -p $(( SECONDS_TOTAL * 1000 )) \
  > "$WORK/perf.out" 2>&1 &
CLIENT=$!
PIDS+=("$CLIENT")
# The server CPU's own speed beside it (benchmarks/vcpu-speed.c), where a C compiler exists.
VCPU="$WORK/vcpu.txt"
bench_vcpu_probe "$VCPU" $(( SECONDS_TOTAL + 150 ))
cpu_ns() { # pid [comm-prefix]: summed run time of the process's threads (those named comm-prefix*)
  local total=0 t run name
  for t in /proc/"$1"/task/*; do # builtins only: a fork per thread per sample would load the measured cores
    name=""
    [ -z "${2:-}" ] || read -r name < "$t/comm" 2>/dev/null || continue
    if [ -z "${2:-}" ] || [[ "$name" == "$2"* ]]; then
      read -r run _ < "$t/schedstat" 2>/dev/null || continue
      total=$((total + run))
    fi
  done
  echo "$total"
}
sample() {
  local m
  m=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" || true)
  echo "$(date +%s%N) $(awk '/^nv_inference_request_success\{/ {s+=$2} END {printf "%.0f", s}' <<< "$m") \
$(awk '/^nv_inference_exec_count\{/ {s+=$2} END {printf "%.0f", s}' <<< "$m") $(cpu_ns "$SERVER" grpc-worker) \
$(cpu_ns "$SERVER") $(cpu_ns "$CLIENT")"
}
echo "  time  req/s   batch  loop-us/req  server-us/req  client-us/req  vcpu-ns/it"
START=$(date +%s%N)
prev=$(sample)
while kill -0 "$CLIENT" 2>/dev/null; do
  sleep 1
  kill -0 "$CLIENT" 2>/dev/null || break
  cur=$(sample)
  read -r t0 s0 e0 l0 a0 c0 <<< "$prev"
  read -r t1 s1 e1 l1 a1 c1 <<< "$cur"
  v=$(awk -v from="$t0" -v to="$t1" '$1 >= from && $1 < to {s += $2; k++} END {if (k) printf "%.3f", s / k; else print "-"}' "$VCPU")
  awk -v t="$(( (t1 - START) / 1000000 ))" -v dt="$(( t1 - t0 ))" -v n="$((s1 - s0))" -v b="$((e1 - e0))" \
    -v l="$((l1 - l0))" -v a="$((a1 - a0))" -v c="$((c1 - c0))" -v v="$v" 'BEGIN {
      if (n <= 0) { printf "%6.1f  (no answers)\n", t / 1000; exit }
      printf "%6.1f %6.0f %7.1f %12.2f %14.2f %14.2f %11s\n", t / 1000, n / (dt / 1e9), (b > 0 ? n / b : 0), l / n / 1000, a / n / 1000, c / n / 1000, v }'
  prev=$cur
done
