#!/usr/bin/env bash
# Which garbage collector the launcher gives the server: each candidate GC configuration serves
# identity_fp32 under the same open-loop Poisson load (default 80% of a closed-loop saturation measured
# first, on the first configuration), interleaved over repeats; prints p50/p99/p99.9, server CPU and
# bytes per request, and the young-pause count, total and maximum from each server's GC log.
#
#   benchmarks/gc-compare.sh [--repeats N] [--rate R] [--seconds S]
#
# Server pinned to CPU 1, client to CPU 0 (as run.sh). Writes docs/benchmarks/gc.md with the command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS=3 RATE="" SECONDS_PER=8
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift ;;
    --rate) RATE="$2"; shift ;;
    --seconds) SECONDS_PER="$2"; shift ;;
    *) echo "gc-compare.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
SERVER_JAR="$ROOT/server/target/quiver-server.jar"
CP="$ROOT/benchmarks/target/quiver-benchmarks.jar:$ROOT/benchmarks/target/lib/*"
[ -f "$SERVER_JAR" ] && [ -f "$ROOT/benchmarks/target/quiver-benchmarks.jar" ] \
  || (cd "$ROOT" && ./mvnw -B -q -DskipTests package -pl server,benchmarks -am)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-gc.XXXXXX")"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
PORT=${BENCH_PORT_BASE:-18400}
COMMON=(-Xms1g -Xmx1g -XX:+AlwaysPreTouch)
declare -a NAMES=(parallel parallel-young512 g1 zgc)
declare -A FLAGS=(
  [parallel]="-XX:+UseParallelGC"
  [parallel-young512]="-XX:+UseParallelGC -Xmn512m"
  [g1]="-XX:+UseG1GC"
  [zgc]="-XX:+UseZGC"
)
"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/models" >/dev/null

serve() { # name -> sets SPID
  local name="$1"
  # shellcheck disable=SC2086
  taskset -c 1 "$JAVA_BIN" "${COMMON[@]}" ${FLAGS[$name]} -Xlog:gc,gc+phases=info:file="$WORK/$name-$2.gc.log" -jar "$SERVER_JAR" serve \
    --model-repository "$WORK/models/batching" --grpc-port "$PORT" --http-port -1 --metrics-port -1 --control-port -1 \
    > "$WORK/$name-$2.log" 2>&1 &
  SPID=$!
}
perf() { # out args...
  local out="$1"; shift
  taskset -c 0 "$JAVA_BIN" "${COMMON[@]}" -XX:+UseParallelGC -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 \
    -u "localhost:$PORT" --wait-ready 120 --json "$out" "$@" > /dev/null 2>> "$WORK/perf.err"
}

if [ -z "$RATE" ]; then
  serve parallel sat
  perf "$WORK/sat.json" --concurrency-range 64 -p 3000 --warmup 8000 --max-windows 2 --server-pid "$SPID"
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
  RATE=$(( $("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$WORK/sat.json") * 8 / 10 ))
fi
echo "gc-compare.sh: open loop at $RATE req/s, $REPEATS repeats" >&2
for r in $(seq 1 "$REPEATS"); do
  order=("${NAMES[@]}")
  if [ $((r % 2)) = 0 ]; then order=($(printf '%s\n' "${NAMES[@]}" | tac)); fi
  for name in "${order[@]}"; do
    serve "$name" "r$r"
    # Warm the JIT closed loop first (unmeasured), then the measured open-loop windows.
    perf "$WORK/warm.json" --concurrency-range 64 -p 3000 --warmup 5000 --max-windows 1
    : > "$WORK/$name-r$r.gc.log.mark"
    marker=$(wc -l < "$WORK/$name-r$r.gc.log")
    perf "$WORK/$name-r$r.json" --request-rate-range "$RATE" --request-distribution poisson --seed "$r" \
      -p $((SECONDS_PER * 1000)) --warmup 2000 --max-windows 1 --server-pid "$SPID"
    tail -n +"$((marker + 1))" "$WORK/$name-r$r.gc.log" > "$WORK/$name-r$r.gc.measured"
    kill "$SPID"; wait "$SPID" 2>/dev/null || true
  done
done
"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.GcReport "$WORK" "$RATE" "$REPEATS" "${NAMES[@]}" \
  | tee "$ROOT/docs/benchmarks/gc.md"
echo "gc-compare.sh: work directory $WORK" >&2
