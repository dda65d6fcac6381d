#!/usr/bin/env bash
# Side-by-side benchmarks of Quiver against its limits; rewrites docs/benchmarks/RESULTS.md and
# docs/benchmarks/results.svg. One command:
#
#   benchmarks/run.sh            full mode  (≈20 min: 3 repeats, 3 s windows, wide sweeps, full JMH)
#   benchmarks/run.sh --quick    quick mode (≈5 min: 2 repeats, 1 s windows, short sweeps, short JMH)
#
# Options: --repeats N   interleaved repeats (default 3 full, 2 quick)
#          --no-build    use the jars already built (server/target, benchmarks/target)
#          --no-jmh      skip the JMH suite
#          --keep        keep the work directory (models, logs, raw JSON results)
#          --cuda [DEV]  also run the CUDA execution-provider case (see below); never runs by default
#
# What it does: builds the server and benchmarks jars when missing, writes the benchmark models with
# the example generator (identity_fp32, mlp_784, cnn_small; mlp_784 with max_batch_size 0 for "batching
# off"; two mlp_784 copies with and without a latency target; one with a small queue) into a temp dir,
# starts the bare gRPC echo server and Quiver servers as separate JVMs pinned to CPU 1 (taskset), runs
# `quiver perf` pinned to CPU 0, every JVM with the same flags, and runs the cases (a)-(f) of
# docs/benchmarks/README.md, alternating which side goes first in each repeat.
#
# CUDA case (--cuda): for a machine with an NVIDIA GPU, CUDA 12 and cuDNN 9. Runs the in-process
# ONNX Runtime baseline with the CUDA execution provider over batch sizes. It needs ONNX Runtime's
# GPU build: set ORT_GPU_JAR=/path/to/onnxruntime_gpu-1.23.2.jar (Maven: com.microsoft.onnxruntime:
# onnxruntime_gpu); it replaces the CPU onnxruntime jar on the class path. Quiver itself serves models
# on GPUs (instance_group KIND_GPU, CUDA/TensorRT execution providers): the Quiver-side GPU benchmark
# and how to run it are in docs/benchmarks/gpu.md.
#
# Environment: BENCH_JVM_FLAGS (default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC"), BENCH_PORT_BASE (18100;
# ports BASE+1..BASE+16 are used).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=full REPEATS="" BUILD=1 JMH=1 KEEP=0 CUDA=-1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --repeats) REPEATS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --no-jmh) JMH=0 ;;
    --keep) KEEP=1 ;;
    --cuda) CUDA=0; if [[ "${2:-}" =~ ^[0-9]+$ ]]; then CUDA="$2"; shift; fi ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

if [ "$MODE" = quick ]; then
  REPEATS=${REPEATS:-2} WINDOW_MS=1000 WARMUP_MS=1000 MAX_WINDOWS=4
  CONC_A="1:64:x4" CONC_B="16:64:x4" CONC_D=64 STEP_MS=1000
  ORT_BATCHES="1,4,16,64" ORT_SECONDS=1.5
  JMH_OPTS=(-wi 1 -i 2 -w 1s -r 1s -f 1 -p elements=16,784 -p queueDelayMicros=100)
else
  REPEATS=${REPEATS:-3} WINDOW_MS=3000 WARMUP_MS=2000 MAX_WINDOWS=6
  CONC_A="1:256:x4" CONC_B="16:128:x2" CONC_D=64 STEP_MS=3000
  ORT_BATCHES="1,2,4,8,16,32,64" ORT_SECONDS=3
  JMH_OPTS=(-wi 3 -i 5 -w 1s -r 1s -f 1)
fi

BENCH_JAR="$ROOT/benchmarks/target/quiver-benchmarks.jar"
SERVER_JAR="$ROOT/server/target/quiver-server.jar"
if [ "$BUILD" = 1 ] && { [ ! -f "$BENCH_JAR" ] || [ ! -f "$SERVER_JAR" ]; }; then
  echo "run.sh: building server and benchmarks..." >&2
  (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am install) >&2
fi
[ -f "$BENCH_JAR" ] && [ -f "$SERVER_JAR" ] || { echo "run.sh: missing $BENCH_JAR or $SERVER_JAR" >&2; exit 1; }
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# Same flags for every JVM (servers, client, ORT harness).
read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
if "$JAVA_BIN" --enable-native-access=ALL-UNNAMED -version >/dev/null 2>&1; then
  JVM_FLAGS+=(--enable-native-access=ALL-UNNAMED)
fi
source "$ROOT/benchmarks/lib.sh" # its functions only (bench_await_jit); the settings above are run.sh's own
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-bench.XXXXXX")"
RES="$WORK/results" LOGS="$WORK/logs"
mkdir -p "$RES" "$LOGS" "$WORK/dist/server" "$WORK/dist/bench"
# Run from copies: a rebuild in the work tree during the run must not pull jars out from under
# running JVMs (NoClassDefFoundError mid-benchmark).
cp -r "$SERVER_JAR" "$ROOT/server/target/lib" "$WORK/dist/server/"
cp -r "$BENCH_JAR" "$ROOT/benchmarks/target/lib" "$WORK/dist/bench/"
SERVER_JAR="$WORK/dist/server/quiver-server.jar"
BENCH_JAR="$WORK/dist/bench/quiver-benchmarks.jar"
CP="$BENCH_JAR:$WORK/dist/bench/lib/*"
PORT_BASE=${BENCH_PORT_BASE:-18100}
ECHO_PORT=$((PORT_BASE + 1)) QUIVER_PORT=$((PORT_BASE + 2)) NOBATCH_PORT=$((PORT_BASE + 3))
QUIVER_REST_PORT=$((PORT_BASE + 4))
# Echo servers with mlp_784's and cnn_small's request payloads (case (b)'s limit), ports BASE+14, BASE+15.
ECHO_MLP_PORT=$((PORT_BASE + 14)) ECHO_CNN_PORT=$((PORT_BASE + 15))
# The bare REST echo (case (g)'s baseline), on the gRPC echo's server: port BASE+16.
ECHO_REST_PORT=$((PORT_BASE + 16))
# Cases (e) and (f) run after the others, on their own servers (ports BASE+8.. BASE+13).
ADAPTIVE_PORT=$((PORT_BASE + 8)) OVERLOAD_PORT=$((PORT_BASE + 11))
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "run.sh: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Every command that produces a number is logged, with the work dir written as $WORK.
log_cmd() { printf '%s\n' "$*" | sed "s#$WORK#\$WORK#g; s#$ROOT/##g" >> "$WORK/commands.txt"; }
run() { log_cmd "$@"; "$@"; }

{
  echo "cores: $(nproc) ($(grep -c ^processor /proc/cpuinfo) in /proc/cpuinfo)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|fma|avx512f' | sort -u | tr '\n' ' ')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "jdk: $("$JAVA_BIN" -version 2>&1 | head -2 | tr '\n' ' ')"
  echo "jvm flags (every JVM): ${JVM_FLAGS[*]}"
  echo "pinning: server ${SERVER_PIN[*]:-none}, client ${CLIENT_PIN[*]:-none}"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "mode: $MODE, repeats: $REPEATS, window ${WINDOW_MS} ms, warm-up ${WARMUP_MS} ms, max windows $MAX_WINDOWS"
} > "$WORK/machine.txt"
echo "$MODE" > "$WORK/mode.txt"
date -u '+%Y-%m-%d %H:%M UTC' > "$WORK/date.txt"

echo "run.sh: $MODE mode, $REPEATS repeats; work dir $WORK" >&2
run "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/models" >&2

start_server() { # name command...; sets LAST_PID (taskset execs, so it is the JVM's pid)
  local name="$1"; shift
  log_cmd "${SERVER_PIN[@]}" "$@" "&"
  "${SERVER_PIN[@]}" "$@" > "$LOGS/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
# The echo also serves the bare REST echo (case (g)'s baseline) on the same event loops.
start_server echo "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "$ECHO_PORT" \
  --http-port "$ECHO_REST_PORT"
ECHO_PID=$LAST_PID
start_server echo-mlp "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "$ECHO_MLP_PORT" \
  --input INPUT0:FP32:-1,784
ECHO_MLP_PID=$LAST_PID
start_server echo-cnn "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "$ECHO_CNN_PORT" \
  --input INPUT0:FP32:-1,3,64,64
ECHO_CNN_PID=$LAST_PID
# Quiver as deployed: REST and the metrics exporter on, on their own ports (they idle here).
start_server quiver "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models/batching" --grpc-port "$QUIVER_PORT" \
  --http-port "$QUIVER_REST_PORT" --metrics-port $((PORT_BASE + 5)) --control-port -1
QUIVER_PID=$LAST_PID
start_server quiver-no-batching "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models/no-batching" --grpc-port "$NOBATCH_PORT" \
  --http-port $((PORT_BASE + 6)) --metrics-port $((PORT_BASE + 7)) --control-port -1
NOBATCH_PID=$LAST_PID

perf_run() { # json-name args... (not "perf": that would shadow the perf binary used by syscalls)
  local out="$1"; shift
  echo "run.sh: perf $out" >&2
  run "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain \
    -p "$WINDOW_MS" --warmup "$WARMUP_MS" --max-windows "$MAX_WINDOWS" --wait-ready 120 \
    --json "$RES/$out.json" "$@" >> "$LOGS/perf.out" 2>> "$LOGS/perf.err" \
    || { echo "run.sh: perf $out failed or saw errors (see $LOGS/perf.err)" >&2; tail -5 "$LOGS/perf.err" >&2; }
}
# syscalls JSON-NAME (PORT PID LABEL)...: for each server, a closed-loop run at c=64 with perf stat counting
# the server's system calls and context switches for 4 s inside it; per request = count / (its req/s × 4 s).
syscalls() {
  local out="$1"; shift
  if ! command -v perf >/dev/null || ! perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    echo "run.sh: perf cannot count syscalls here; skipping $out" >&2
    return
  fi
  local rows=""
  while [ $# -ge 3 ]; do
    local port="$1" pid="$2" label="$3"; shift 3
    "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 \
      -u "localhost:$port" --concurrency-range 64 -p 8000 --warmup 2000 --max-windows 1 --wait-ready 120 \
      --json "$RES/$out-$label-perf.json" >> "$LOGS/perf.out" 2>> "$LOGS/perf.err" &
    local client=$!
    sleep 4
    log_cmd perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -- sleep 4
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -- sleep 4 2> "$WORK/$out-$label.perf" || true
    wait "$client" || true
    local calls switches rps
    calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$WORK/$out-$label.perf")
    switches=$(awk -F, '/context-switches/ {print $1}' "$WORK/$out-$label.perf")
    rps=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$RES/$out-$label-perf.json")
    rows="$rows${rows:+,}{\"server\":\"$label\",\"syscalls\":${calls:-null},\"context_switches\":${switches:-null},\"rps\":${rps:-null},"
    rows="$rows\"syscalls_per_req\":$(awk -v c="${calls:-0}" -v r="${rps:-0}" 'BEGIN {if (r > 0 && c > 0) printf "%.4f", c / (r * 4); else print "null"}')}"
  done
  echo "{\"results\":[$rows]}" > "$RES/$out.json"
}

ort() { # json-name model
  echo "run.sh: ort-baseline $1" >&2
  run "${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.ort.OrtBaseline \
    --model "$WORK/models/batching/$2" --batch-sizes "$ORT_BATCHES" --seconds "$ORT_SECONDS" \
    --json "$RES/$1.json" >> "$LOGS/ort.out" 2>&1
}

# Warm every server's JIT on every path a case measures before anything is recorded (a cold JVM pinned to
# one core compiles for tens of seconds: C2 threads still took 25-50% of the server's CPU 10-15 s into a
# run, 14% at 24-32 s on a REST path never warmed, and /proc charges them to the server's CPU per
# request). Each warm-up is closed-loop load until the server's compiler threads used at most 4% of a
# core over 2 s, after at least WARM_MIN_S and at most WARM_MAX_S; machine.txt says how long each took and
# whether it settled. These runs are not reported.
echo "run.sh: warming up the servers" >&2
WARM_MIN_S=6 WARM_MAX_S=40
warm() { # port server-pid model concurrency [more perf options]
  local port="$1" pid="$2" model="$3" conc="$4" client
  shift 4
  "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m "$model" -u "localhost:$port" \
    --concurrency-range "$conc" -p $(( (WARM_MAX_S + 130) * 1000 )) --warmup 0 --max-windows 1 --wait-ready 120 "$@" \
    >> "$LOGS/warm-up.out" 2>&1 &
  client=$!
  bench_await_jit "$pid" "$WARM_MIN_S" "$WARM_MAX_S" "$client" "$port"
  kill -0 "$client" 2>/dev/null || echo "run.sh: warm-up of $model on port $port ended early (see $LOGS/warm-up.out)" >&2
  kill "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  echo "warm-up: $model on port $port${*:+ ($*)}: $JIT_WAITED s serving (after $JIT_START_WAITED s to start), JIT settled: $JIT_SETTLED (compiler ticks in its last 2 s: $JIT_LAST_TICKS)" \
    >> "$WORK/machine.txt"
}
warm "$ECHO_PORT" "$ECHO_PID" identity_fp32 16
warm "$ECHO_REST_PORT" "$ECHO_PID" identity_fp32 64 -i http --http-connections 64
warm "$ECHO_MLP_PORT" "$ECHO_MLP_PID" mlp_784 64
warm "$ECHO_CNN_PORT" "$ECHO_CNN_PID" cnn_small 64
warm "$QUIVER_PORT" "$QUIVER_PID" identity_fp32 16
warm "$QUIVER_REST_PORT" "$QUIVER_PID" identity_fp32 64 -i http --http-connections 64 --grpc-url "localhost:$QUIVER_PORT"
warm "$QUIVER_REST_PORT" "$QUIVER_PID" identity_fp32 64 -i http --http2 --grpc-url "localhost:$QUIVER_PORT"
warm "$QUIVER_PORT" "$QUIVER_PID" mlp_784 64
warm "$QUIVER_PORT" "$QUIVER_PID" cnn_small 64
warm "$NOBATCH_PORT" "$NOBATCH_PID" mlp_784 64

for r in $(seq 1 "$REPEATS"); do
  echo "run.sh: repeat $r/$REPEATS" >&2
  # (a) protocol overhead; alternate which side runs first.
  a_echo() { perf_run "a-echo-r$r" -m identity_fp32 -u "localhost:$ECHO_PORT" --concurrency-range "$CONC_A" --server-pid "$ECHO_PID"; }
  a_quiver() { perf_run "a-quiver-r$r" -m identity_fp32 -u "localhost:$QUIVER_PORT" --concurrency-range "$CONC_A" --server-pid "$QUIVER_PID"; }
  if [ $((r % 2)) = 1 ]; then a_echo; a_quiver; else a_quiver; a_echo; fi
  # Syscalls per request at c=64 (perf stat during a run of its own), when perf can count them here.
  syscalls "a-syscalls-r$r" "$QUIVER_PORT" "$QUIVER_PID" quiver "$ECHO_PORT" "$ECHO_PID" echo
  # (g) REST with the binary tensor extension at c=64 (HTTP/1.1 and HTTP/2), the same server as (a), and the bare REST echo.
  g_quiver() { perf_run "g-rest-r$r" -i http -m identity_fp32 -u "localhost:$QUIVER_REST_PORT" --grpc-url "localhost:$QUIVER_PORT" \
    --concurrency-range 64 --http-connections 64 --server-pid "$QUIVER_PID"; }
  g_echo() { perf_run "g-rest-echo-r$r" -i http -m identity_fp32 -u "localhost:$ECHO_REST_PORT" \
    --concurrency-range 64 --http-connections 64 --server-pid "$ECHO_PID"; }
  # REST over HTTP/2 (h2c prior knowledge): the 64 requests as streams of one connection, as gRPC's.
  g_h2() { perf_run "g-rest-h2-r$r" -i http --http2 -m identity_fp32 -u "localhost:$QUIVER_REST_PORT" \
    --grpc-url "localhost:$QUIVER_PORT" --concurrency-range 64 --server-pid "$QUIVER_PID"; }
  if [ $((r % 2)) = 1 ]; then g_echo; g_quiver; g_h2; else g_h2; g_quiver; g_echo; fi
  # (b) compute efficiency per CPU-second: in-process ORT (pinned like the server) vs Quiver, and the echo
  # with the same request payload (the protocol's share of the limit).
  for model in mlp_784 cnn_small; do
    b_ort() { ort "b-ort-$model-r$r" "$model"; }
    b_quiver() { perf_run "b-quiver-$model-r$r" -m "$model" -u "localhost:$QUIVER_PORT" --concurrency-range "$CONC_B" --server-pid "$QUIVER_PID"; }
    if [ "$model" = mlp_784 ]; then ep=$ECHO_MLP_PORT epid=$ECHO_MLP_PID; else ep=$ECHO_CNN_PORT epid=$ECHO_CNN_PID; fi
    b_echo() { perf_run "b-echo-$model-r$r" -m "$model" -u "localhost:$ep" --concurrency-range 64 --server-pid "$epid"; }
    if [ $((r % 2)) = 1 ]; then b_ort; b_quiver; b_echo; else b_echo; b_quiver; b_ort; fi
  done
  # (c) open-loop tails at 50% and 80% of this repeat's saturation (Poisson arrivals).
  SAT=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$RES/a-quiver-r$r.json")
  R50=$((SAT / 2)) R80=$((SAT * 8 / 10))
  # --client-warmup: a fresh client JVM compiles for seconds on its one core; unwarmed, the first
  # rate is client-bound (quiver perf flags such rows and Report gives them no verdict).
  c_quiver() { perf_run "c-tails-r$r" -m identity_fp32 -u "localhost:$QUIVER_PORT" --request-rate-range "$R50,$R80" \
    --request-distribution poisson --seed "$r" --server-pid "$QUIVER_PID" --client-warmup 8000; }
  # The echo at the same absolute rates, the same client: its p99 is the floor the client sets.
  c_echo() { perf_run "c-tails-echo-r$r" -m identity_fp32 -u "localhost:$ECHO_PORT" --request-rate-range "$R50,$R80" \
    --request-distribution poisson --seed "$r" --server-pid "$ECHO_PID" --client-warmup 8000; }
  if [ $((r % 2)) = 1 ]; then c_quiver; c_echo; else c_echo; c_quiver; fi
  # (d) batching on vs off, mlp_784 at concurrency 64. "Off" is max_batch_size 0 (a config that only
  # drops dynamic_batching gets an empty one back from auto-complete and still batches).
  d_on() { perf_run "d-on-r$r" -m mlp_784 -u "localhost:$QUIVER_PORT" --concurrency-range "$CONC_D" --server-pid "$QUIVER_PID"; }
  d_off() { perf_run "d-off-r$r" -m mlp_784 -u "localhost:$NOBATCH_PORT" --concurrency-range "$CONC_D" --server-pid "$NOBATCH_PID"; }
  if [ $((r % 2)) = 1 ]; then d_on; d_off; else d_off; d_on; fi
done

for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

# (e) latency target, issue 3: open-loop rate stepped up then down (one window per step, no warm-up
# between steps, so the controller carries its state across them), with and without the target.
# Steps are fractions of mlp_784's saturation measured in (d) (batching on, last repeat).
start_server adaptive "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models/adaptive" --grpc-port "$ADAPTIVE_PORT" \
  --http-port $((ADAPTIVE_PORT + 1)) --metrics-port $((ADAPTIVE_PORT + 2)) --control-port -1
ADAPTIVE_PID=$LAST_PID
warm "$ADAPTIVE_PORT" "$ADAPTIVE_PID" mlp_784_fixed 64
warm "$ADAPTIVE_PORT" "$ADAPTIVE_PID" mlp_784_target 64
SAT_D=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$RES/d-on-r$REPEATS.json")
STEPS=""
for pct in 5 10 25 45 65 80 65 45 25 10 5; do STEPS="$STEPS${STEPS:+,}$((SAT_D * pct / 100 > 0 ? SAT_D * pct / 100 : 1))"; done
ramp() { # json-name model
  echo "run.sh: ramp $1" >&2
  run "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain \
    -p "$STEP_MS" --warmup 0 --max-windows 1 --wait-ready 120 --request-distribution poisson \
    --json "$RES/$1.json" -m "$2" -u "localhost:$ADAPTIVE_PORT" --request-rate-range "$STEPS" --server-pid "$ADAPTIVE_PID" \
    >> "$LOGS/perf.out" 2>> "$LOGS/perf.err" || echo "run.sh: ramp $1 saw errors (see $LOGS/perf.err)" >&2
}
ramp e-fixed-r1 mlp_784_fixed
ramp e-target-r1 mlp_784_target
kill "$ADAPTIVE_PID" 2>/dev/null || true; wait "$ADAPTIVE_PID" 2>/dev/null || true

# (f) overload, issue 7: mlp_784 with max_queue_size 32, open loop at 1x, 2x and 3x its saturation.
start_server overload "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models/overload" --grpc-port "$OVERLOAD_PORT" \
  --http-port $((OVERLOAD_PORT + 1)) --metrics-port $((OVERLOAD_PORT + 2)) --control-port -1
OVERLOAD_PID=$LAST_PID
warm "$OVERLOAD_PORT" "$OVERLOAD_PID" mlp_784_bounded 32
# Saturation is measured after the warm-up (the warm-up's own figure is a cold server's), at
# concurrency 32 = the queue bound: the most the server can batch without rejecting. Open loop at
# "1x" can then form batches as large as closed loop did.
perf_run f-saturation-r1 -m mlp_784_bounded -u "localhost:$OVERLOAD_PORT" --concurrency-range 32 --server-pid "$OVERLOAD_PID"
SAT_F=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$RES/f-saturation-r1.json")
perf_run f-overload-r1 -m mlp_784_bounded -u "localhost:$OVERLOAD_PORT" --request-rate-range "$SAT_F,$((2 * SAT_F)),$((3 * SAT_F))" \
  --request-distribution poisson --request-timeout 2000 --server-pid "$OVERLOAD_PID" --client-warmup 3000
kill "$OVERLOAD_PID" 2>/dev/null || true; wait "$OVERLOAD_PID" 2>/dev/null || true

if [ "$CUDA" -ge 0 ]; then
  if ! command -v nvidia-smi >/dev/null || [ -z "${ORT_GPU_JAR:-}" ]; then
    echo "run.sh: --cuda needs nvidia-smi and ORT_GPU_JAR=/path/to/onnxruntime_gpu-<version>.jar; skipping" >&2
  else
    GPU_CP="$BENCH_JAR:$ORT_GPU_JAR:$(ls "$WORK"/dist/bench/lib/*.jar | grep -v '/onnxruntime-[0-9]' | tr '\n' ':')"
    for model in mlp_784 cnn_small; do
      run "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$GPU_CP" io.quiver.bench.ort.OrtBaseline --cuda "$CUDA" \
        --model "$WORK/models/batching/$model" --batch-sizes "1,8,64" --seconds "$ORT_SECONDS" \
        --json "$RES/cuda-ort-$model-r1.json" >> "$LOGS/ort.out" 2>&1 || echo "run.sh: CUDA case failed (see $LOGS/ort.out)" >&2
    done
  fi
fi

if [ "$JMH" = 1 ]; then
  echo "run.sh: JMH suite" >&2
  run "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" org.openjdk.jmh.Main "${JMH_OPTS[@]}" -prof gc \
    -rf json -rff "$RES/jmh.json" 'io\.quiver\.bench\.jmh\..*' > "$LOGS/jmh.out" 2>&1 \
    || echo "run.sh: JMH failed (see $LOGS/jmh.out)" >&2
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$WORK/machine.txt"
mkdir -p "$ROOT/docs/benchmarks"
"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.Report "$WORK" "$ROOT/docs/benchmarks/RESULTS.md" "$ROOT/docs/benchmarks/results.svg"
