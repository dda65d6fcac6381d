#!/usr/bin/env bash
# Multi-core scaling of the tiny-model path (issue 11, item 7), against the bare gRPC echo at each size,
# and open-loop tails with a client that has more than one core. Needs a machine with at least
# 2 × max(--cores) CPUs (the 16-core device machine for 1,2,4,8); run.sh covers the 2-core case.
#
#   benchmarks/scaling.sh [--cores 1,2,4,8] [--open-loop-clients K] [--out DIR] [--dist DIR] [--no-build]
#
# What it does, for each N in --cores: starts the echo and then Quiver (serving only identity_fp32,
# FP32[16], as in run.sh's case (a)) pinned to N CPUs with default flags (one event loop and one
# compute thread per CPU it may use), and N `quiver perf` clients, each a JVM pinned to a CPU of its
# own (not one of the server's), each with one connection at concurrency 64, all started together:
# warm-up, then --windows windows. The server's CPU comes from /proc/PID/stat, read while every client is
# inside its measured windows. "N cores" in the table is N server CPUs + N client CPUs, so N=1 is the
# 2-core machine of run.sh and N=8 the 16-core one: the target is Quiver(8) ≥ 0.8 × 8 × Quiver(1).
# Which side runs first alternates with N.
#
# Open loop (--open-loop-clients K, default 4; 0 skips it): the server on one CPU as in run.sh, K client
# JVMs on K other CPUs, so the client is not the bottleneck it is on 2 cores. Saturation = the K
# clients' summed closed-loop throughput at concurrency 64 each; then Poisson arrivals at 50% and 80%
# of it (each client at rate/K with its own seed: the sum of independent Poisson streams is Poisson),
# on Quiver and on the echo at the same absolute rates. Each client reports its own p99; the table
# gives their median and range (each client samples the same server, so each p99 estimates the same
# quantile).
#
# CPUs are taken in the order of /sys topology: the first hardware thread of every core before any
# second one, so small N never shares a physical core between server and client; machine.txt records
# the topology and the pinning of every point.
#
# Options: --cores LIST          server CPU counts (default 1,2,4,8)
#          --open-loop-clients K client JVMs for the open-loop section (default 4; 0 = skip)
#          --windows N           measured windows per point (default 2), --window-ms MS (default 3000)
#          --server-warmup-s MIN,MAX  before each point, closed-loop load until the server's JIT compilers
#                                settle (≤ 4% of a core over 2 s), at least MIN and at most MAX seconds (4,20)
#          --warmup-ms MS        then, the measured clients' own warm-up (default 12000: each is a new JVM on one
#                                CPU, and with 6 s a client still spent 90-117 µs of CPU per request)
#          --dist DIR            use DIR/server/{quiver-server.jar,lib} and DIR/bench/{quiver-benchmarks.jar,lib}
#                                instead of the repository's target folders (a copy carried to another machine)
#          --no-build            do not build missing jars
#          --out DIR             where results go (default: a new temp dir); the summary is DIR/scaling.md
# Environment: JAVA_HOME, BENCH_JVM_FLAGS (default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC", as run.sh),
#              BENCH_PORT_BASE (18300).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/benchmarks/lib.sh" # bench_await_jit
CORES="1,2,4,8" OL_CLIENTS=4 WINDOWS=2 WINDOW_MS=3000 WARMUP_MS=12000 DIST="" BUILD=1 OUT=""
WARM_MIN_S=4 WARM_MAX_S=20 OL_CLIENT_WARMUP_MS=5000 OL_WARMUP_MS=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) CORES="$2"; shift ;;
    --open-loop-clients) OL_CLIENTS="$2"; shift ;;
    --windows) WINDOWS="$2"; shift ;;
    --window-ms) WINDOW_MS="$2"; shift ;;
    --warmup-ms) WARMUP_MS="$2"; shift ;;
    --server-warmup-s) WARM_MIN_S="${2%,*}" WARM_MAX_S="${2#*,}"; shift ;;
    --dist) DIST="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "scaling.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

if [ -z "$DIST" ]; then
  SERVER_JAR="$ROOT/server/target/quiver-server.jar" BENCH_JAR="$ROOT/benchmarks/target/quiver-benchmarks.jar"
  if [ "$BUILD" = 1 ] && { [ ! -f "$BENCH_JAR" ] || [ ! -f "$SERVER_JAR" ]; }; then
    (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am install) >&2
  fi
  BENCH_LIB="$ROOT/benchmarks/target/lib"
else
  SERVER_JAR="$DIST/server/quiver-server.jar" BENCH_JAR="$DIST/bench/quiver-benchmarks.jar" BENCH_LIB="$DIST/bench/lib"
fi
[ -f "$BENCH_JAR" ] && [ -f "$SERVER_JAR" ] || { echo "scaling.sh: missing $BENCH_JAR or $SERVER_JAR" >&2; exit 1; }
CP="$BENCH_JAR:$BENCH_LIB/*"
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
command -v taskset >/dev/null || { echo "scaling.sh: needs taskset" >&2; exit 1; }

# CPUs, first hardware thread of each core first.
mapfile -t CPU_ORDER < <(for d in /sys/devices/system/cpu/cpu[0-9]*; do
  c=${d##*cpu}
  [ -r "$d/topology/thread_siblings_list" ] || { echo "0 $c"; continue; }
  first=$(sed 's/[,-].*//' "$d/topology/thread_siblings_list")
  echo "$([ "$first" = "$c" ] && echo 0 || echo 1) $c"
done | sort -n -k1,1 -k2,2 | awk '{print $2}' | while read -r c; do
  taskset -c "$c" true 2>/dev/null && echo "$c"; done)
IFS=, read -r -a SIZES <<< "$CORES"
NEED=0
for n in "${SIZES[@]}"; do [ $((2 * n)) -gt "$NEED" ] && NEED=$((2 * n)); done
[ $((1 + OL_CLIENTS)) -gt "$NEED" ] && NEED=$((1 + OL_CLIENTS))
[ "${#CPU_ORDER[@]}" -ge "$NEED" ] || { echo "scaling.sh: needs $NEED usable CPUs, has ${#CPU_ORDER[@]}" >&2; exit 1; }

OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/quiver-scaling.XXXXXX")}"
RES="$OUT/results" LOGS="$OUT/logs"
mkdir -p "$RES" "$LOGS"
PORT_BASE=${BENCH_PORT_BASE:-18300}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
log_cmd() { printf '%s\n' "$*" | sed "s#$OUT#\$OUT#g; s#$ROOT/##g" >> "$OUT/commands.txt"; }
csv() { local IFS=,; echo "$*"; }

{
  echo "cpus: $(nproc) usable, order ${CPU_ORDER[*]}"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "threads per core: $(lscpu 2>/dev/null | awk -F: '/Thread\(s\) per core/ {gsub(/ /,"",$2); print $2}')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "jdk: $("$JAVA_BIN" -version 2>&1 | head -2 | tr '\n' ' ')"
  echo "jvm flags (every JVM): ${JVM_FLAGS[*]}"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "windows: $WINDOWS × $WINDOW_MS ms after $WARMUP_MS ms of warm-up"
} > "$OUT/machine.txt"
date -u '+%Y-%m-%d %H:%M UTC' > "$OUT/date.txt"

# Only identity_fp32: every point starts a server, and loading the other benchmark models would only slow that.
"$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.tools.BenchModels "$OUT/models" > "$LOGS/models.log" 2>&1
mkdir -p "$OUT/repo" && cp -r "$OUT/models/batching/identity_fp32" "$OUT/repo/"

start_server() { # kind port cpu-list; sets SERVER_PID
  local kind="$1" port="$2" cpus="$3" cmd
  if [ "$kind" = echo ]; then
    cmd=("$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "$port")
  else
    cmd=("$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve --model-repository "$OUT/repo" --grpc-port "$port"
      --http-port $((port + 1)) --metrics-port $((port + 2)) --control-port -1)
  fi
  log_cmd taskset -c "$cpus" "${cmd[@]}" "&"
  taskset -c "$cpus" "${cmd[@]}" > "$LOGS/$kind-$port.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Per-thread CPU ticks of a process: "tid ticks name" (the JVM names its threads in /proc).
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    [ -r "$t/stat" ] && printf '%s %s %s\n' "${t##*/}" "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)" "$(tr ' ' _ < "$t/comm" 2>/dev/null)"
  done 2>/dev/null
}

# clients NAME PORT SECONDS-UNTIL-MEASURED CPU... -- PERF-ARGS...: one client JVM per CPU, all at once; reads
# the server's CPU over the middle of the measured windows into $RES/NAME.cpu ("ticks hz seconds") and,
# by thread group, into $RES/NAME.threads ("cpu-seconds name").
clients() {
  local name="$1" port="$2" lead="$3"; shift 3
  local cpus=() i=0 pids=()
  while [ "$1" != -- ]; do cpus+=("$1"); shift; done
  shift
  for c in "${cpus[@]}"; do
    local cmd=(taskset -c "$c" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32
      -u "localhost:$port" --wait-ready 120 --seed $((i + 1)) --json "$RES/$name-c$i.json" "$@")
    log_cmd "${cmd[@]}" "&"
    "${cmd[@]}" >> "$LOGS/perf.out" 2>> "$LOGS/perf.err" &
    pids+=($!)
    i=$((i + 1))
  done
  # Wait for the model to answer, then for the warm-up to end, then read the server's CPU over most of the windows.
  local measure_s=$(( (WINDOWS * WINDOW_MS - 2000) / 1000 ))
  sleep "$lead"
  local t0 c0 t1 c1
  thread_ticks "$SERVER_PID" > "$RES/$name.threads0"
  t0=$(date +%s.%N) c0=$(cpu_ticks "$SERVER_PID")
  sleep "$measure_s"
  t1=$(date +%s.%N) c1=$(cpu_ticks "$SERVER_PID")
  thread_ticks "$SERVER_PID" > "$RES/$name.threads1"
  local hz
  hz=$(getconf CLK_TCK)
  echo "$((c1 - c0)) $hz $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" > "$RES/$name.cpu"
  # Server CPU seconds by thread group over the same interval (thread names without their trailing numbers).
  awk -v hz="$hz" 'NR == FNR {before[$1] = $2; next}
    {d = $2 - before[$1]; if (d > 0) {n = $3; sub(/[-_#]?[0-9]+$/, "", n); sum[n] += d}}
    END {for (n in sum) printf "%.2f %s\n", sum[n] / hz, n}' "$RES/$name.threads0" "$RES/$name.threads1" \
    | sort -rn > "$RES/$name.threads"
  rm -f "$RES/$name.threads0" "$RES/$name.threads1"
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" = 0 ] || echo "scaling.sh: a client of $name saw errors (see $LOGS/perf.err)" >&2
}
# Seconds from the clients' start to 1 s inside their first window: JVM start (≈1 s; the server is
# already answering) + warm-up + 1.
lead_s() { echo $(( 1 + $1 / 1000 + 1 )); }
wait_ready() { # port: a short closed-loop call until the server answers (excluded from everything); stops
  # the run when the server exits first
  "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 -u "localhost:$1" \
    --concurrency-range 1 -p 200 --warmup 0 --max-windows 1 --wait-ready 120 > /dev/null 2>> "$LOGS/ready.err" &
  local probe=$!
  while kill -0 "$probe" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      kill "$probe" 2>/dev/null || true
      echo "scaling.sh: the server on port $1 exited before it answered:" >&2
      tail -20 "$LOGS"/*-"$1".log >&2
      exit 1
    fi
    sleep 0.2
  done
  wait "$probe" || { echo "scaling.sh: the server on port $1 never answered" >&2; exit 1; }
}

# warm_server NAME PORT CPU...: closed-loop load from one client per CPU until the server's JIT has settled
# (lib.sh's bench_await_jit: at most 4% of a core over 2 s, after at least WARM_MIN_S), at most WARM_MAX_S.
warm_server() {
  local name="$1" port="$2"; shift 2
  local pids=() c
  for c in "$@"; do
    taskset -c "$c" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 \
      -u "localhost:$port" --concurrency-range 64 -p 120000 --warmup 0 --max-windows 1 --wait-ready 120 \
      > /dev/null 2>> "$LOGS/warm-up.err" &
    pids+=($!)
  done
  bench_await_jit "$SERVER_PID" "$WARM_MIN_S" "$WARM_MAX_S" "" "$port"
  kill "${pids[@]}" 2>/dev/null || true
  for c in "${pids[@]}"; do wait "$c" 2>/dev/null || true; done
  echo "warm-up of $name: $JIT_WAITED s serving (after $JIT_START_WAITED s to start), JIT settled: $JIT_SETTLED (compiler ticks in the last 2 s: $JIT_LAST_TICKS)" >> "$OUT/machine.txt"
}

point=0
for n in "${SIZES[@]}"; do
  server_cpus=$(csv "${CPU_ORDER[@]:0:$n}")
  client_cpus=("${CPU_ORDER[@]:$n:$n}")
  echo "pinning n=$n: server $server_cpus, clients ${client_cpus[*]}" >> "$OUT/machine.txt"
  order=(echo quiver)
  [ $((point % 2)) = 1 ] && order=(quiver echo)
  for kind in "${order[@]}"; do
    echo "scaling.sh: $kind on $n CPUs" >&2
    port=$((PORT_BASE + 10 * point))
    [ "$kind" = quiver ] && port=$((port + 5))
    start_server "$kind" "$port" "$server_cpus"
    wait_ready "$port"
    warm_server "$kind-n$n" "$port" "${client_cpus[@]}"
    clients "scale-$kind-n$n" "$port" "$(lead_s "$WARMUP_MS")" "${client_cpus[@]}" -- \
      --concurrency-range 64 -p "$WINDOW_MS" --warmup "$WARMUP_MS" --max-windows "$WINDOWS"
    stop_server
  done
  point=$((point + 1))
done

if [ "$OL_CLIENTS" -gt 0 ]; then
  server_cpus="${CPU_ORDER[0]}"
  client_cpus=("${CPU_ORDER[@]:1:$OL_CLIENTS}")
  echo "pinning open loop: server $server_cpus, clients ${client_cpus[*]}" >> "$OUT/machine.txt"
  declare -A OL_PORT=([echo]=$((PORT_BASE + 90)) [quiver]=$((PORT_BASE + 95))) OL_PID=()
  for kind in quiver echo; do
    start_server "$kind" "${OL_PORT[$kind]}" "$server_cpus"
    OL_PID[$kind]=$SERVER_PID
    wait_ready "${OL_PORT[$kind]}"
    warm_server "$kind-open-loop" "${OL_PORT[$kind]}" "${client_cpus[@]}"
  done
  # Saturation of Quiver on one CPU with the K clients (closed loop, concurrency 64 each).
  SERVER_PID=${OL_PID[quiver]}
  echo "scaling.sh: open loop: Quiver's saturation on 1 CPU" >&2
  clients "ol-saturation" "${OL_PORT[quiver]}" "$(lead_s "$WARMUP_MS")" "${client_cpus[@]}" -- \
    --concurrency-range 64 -p "$WINDOW_MS" --warmup "$WARMUP_MS" --max-windows "$WINDOWS"
  SAT=0
  for f in "$RES"/ol-saturation-c*.json; do
    SAT=$((SAT + $("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$f")))
  done
  echo "open-loop saturation (Quiver, 1 CPU, $OL_CLIENTS clients): $SAT req/s" >> "$OUT/machine.txt"
  for pct in 50 80; do
    per_client=$((SAT * pct / 100 / OL_CLIENTS))
    order=(quiver echo)
    [ "$pct" = 80 ] && order=(echo quiver)
    for kind in "${order[@]}"; do
      echo "scaling.sh: open loop $pct% on $kind ($OL_CLIENTS × $per_client req/s)" >&2
      SERVER_PID=${OL_PID[$kind]}
      # --client-warmup runs closed loop for that long, then as long again open loop, before the level's warm-up.
      clients "ol-$kind-$pct" "${OL_PORT[$kind]}" "$(lead_s $((2 * OL_CLIENT_WARMUP_MS + OL_WARMUP_MS)))" \
        "${client_cpus[@]}" -- --request-rate-range "$per_client" --request-distribution poisson \
        --client-warmup "$OL_CLIENT_WARMUP_MS" -p "$WINDOW_MS" --warmup "$OL_WARMUP_MS" --max-windows "$WINDOWS"
    done
  done
fi
cleanup
PIDS=()
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
if "$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.ScalingReport "$OUT" "$OUT/scaling.md" 2>> "$LOGS/report.err"; then
  echo "scaling.sh: summary in $OUT/scaling.md" >&2
else
  echo "scaling.sh: results in $OUT/results (no summary: see $LOGS/report.err)" >&2
fi
