#!/usr/bin/env bash
# Does the web console cost inference anything when nobody is watching? Two Quiver servers on the same
# models, REST on in both, one with the console (the default) and one with --no-console, both pinned to
# the same core. Each measurement runs `quiver perf` against both AT THE SAME TIME (two clients pinned
# to the other core, the same closed-loop load), so whatever else the machine is doing hits both sides
# alike and the per-repeat ratio on/off stays meaningful on a shared machine. Cases: gRPC; REST (where
# the console's route hook sits); REST while a viewer polls the console-on server's live view once a
# second, as an open tab does. Writes the table to stdout and, with --write, into
# docs/benchmarks/console.md.
#
#   benchmarks/console-cost.sh [--repeats N] [--concurrency C] [--no-build] [--write]
#
# Environment: BENCH_JVM_FLAGS (default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC"), BENCH_PORT_BASE (18200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS=5 CONC=16 BUILD=1 WRITE=0 WINDOW_MS=2000 WARMUP_MS=1000 MAX_WINDOWS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift ;;
    --concurrency) CONC="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --write) WRITE=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "console-cost.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
BENCH_JAR="$ROOT/benchmarks/target/quiver-benchmarks.jar"
SERVER_JAR="$ROOT/server/target/quiver-server.jar"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am package) >&2
fi
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-console-cost.XXXXXX")"
RES="$WORK/results" LOGS="$WORK/logs"
mkdir -p "$RES" "$LOGS" "$WORK/dist/server" "$WORK/dist/bench"
cp -r "$SERVER_JAR" "$ROOT/server/target/lib" "$WORK/dist/server/"
cp -r "$BENCH_JAR" "$ROOT/benchmarks/target/lib" "$WORK/dist/bench/"
SERVER_JAR="$WORK/dist/server/quiver-server.jar"
CP="$WORK/dist/bench/quiver-benchmarks.jar:$WORK/dist/bench/lib/*"
BASE=${BENCH_PORT_BASE:-18200}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

"$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/models" >&2
start_server() { # name grpc-port http-port extra-flags...
  local name="$1" grpc="$2" http="$3"; shift 3
  "${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve --model-repository "$WORK/models/batching" \
    --grpc-port "$grpc" --http-port "$http" --metrics-port -1 --control-port -1 --host 127.0.0.1 "$@" \
    > "$LOGS/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
start_server on $((BASE + 1)) $((BASE + 2))
ON_PID=$LAST_PID
start_server off $((BASE + 3)) $((BASE + 4)) --no-console
OFF_PID=$LAST_PID

perf() { # json-name url protocol pid
  "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 \
    -u "$2" -i "$3" --concurrency-range "$CONC" -p "$WINDOW_MS" --warmup "$WARMUP_MS" --max-windows "$MAX_WINDOWS" \
    --wait-ready 120 --server-pid "$4" --json "$RES/$1.json" >> "$LOGS/perf.out" 2>> "$LOGS/perf.err" \
    || echo "console-cost.sh: perf $1 failed (see $LOGS/perf.err)" >&2
}
# Warm both servers' JIT on both protocols (not recorded).
for side in on off; do
  if [ "$side" = on ]; then g=$((BASE + 1)) h=$((BASE + 2)) pid=$ON_PID; else g=$((BASE + 3)) h=$((BASE + 4)) pid=$OFF_PID; fi
  perf "warm-grpc-$side" "127.0.0.1:$g" grpc "$pid"
  perf "warm-http-$side" "127.0.0.1:$h" http "$pid"
done
watcher() { # polls the live view as an open console tab does, once a second
  while true; do
    curl -s -o /dev/null "http://127.0.0.1:$((BASE + 2))/console/api/live?model=identity_fp32" || true
    sleep 1
  done
}
pair() { # case protocol on-url off-url: both sides at once
  perf "$1-on-r$r" "$3" "$2" "$ON_PID" &
  local a=$!
  perf "$1-off-r$r" "$4" "$2" "$OFF_PID" &
  local b=$!
  wait "$a" "$b"
}
for r in $(seq 1 "$REPEATS"); do
  echo "console-cost.sh: repeat $r/$REPEATS" >&2
  pair grpc grpc "127.0.0.1:$((BASE + 1))" "127.0.0.1:$((BASE + 3))"
  pair http http "127.0.0.1:$((BASE + 2))" "127.0.0.1:$((BASE + 4))"
  watcher & WATCHER=$!
  pair http+viewer http "127.0.0.1:$((BASE + 2))" "127.0.0.1:$((BASE + 4))"
  kill "$WATCHER" 2>/dev/null || true
  wait "$WATCHER" 2>/dev/null || true
done
TABLE="$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.ConsoleCost "$RES" grpc http http+viewer)"
REPORT="$(cat <<END
Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),
$("$JAVA_BIN" -version 2>&1 | head -1); load average at start ${LOAD_START}, at end $(cut -d' ' -f1-3 /proc/loadavg).
Both servers pinned to CPU 1 (${SERVER_PIN[*]:-no pinning}), both clients to CPU 0, each pair measured at the same
time; identity_fp32 (FP32[16]), closed loop at concurrency ${CONC} per client, ${REPEATS} repeats, windows of
${WINDOW_MS} ms (up to ${MAX_WINDOWS}) after ${WARMUP_MS} ms of warm-up; REST over HTTP/1.1 keep-alive with the binary
tensor extension; "http+viewer": the console-on server's live view polled once a second meanwhile. Medians (min–max)
over the repeats; the ratio is the median of the per-repeat ratios on/off.

${TABLE}
END
)"
echo "$REPORT"
if [ "$WRITE" = 1 ]; then
  echo "$REPORT" > "$WORK/table.md"
  sed -i "/^<!-- console-cost:begin -->/,/^<!-- console-cost:end -->/{//!d}" "$ROOT/docs/benchmarks/console.md"
  sed -i "/^<!-- console-cost:begin -->/r $WORK/table.md" "$ROOT/docs/benchmarks/console.md"
fi
