#!/usr/bin/env bash
# Same-run A/B of two Quiver builds against the bare echo: the way a change to the hot path is judged
# before it lands (docs/benchmarks/PROFILE.md quotes its tables).
#
#   benchmarks/ab-servers.sh [--rounds N] [--conc RANGE] [--model M] [--protocol P] BEFORE AFTER
#
# P is grpc (default), http (REST, binary tensor extension, one keep-alive connection per slot) or h2
# (REST over HTTP/2, every request a stream of one connection); REST sweeps of the echo use its bare
# REST echo for http and its gRPC echo for h2 (the bare echo speaks no HTTP/2 REST).
# M is one of the benchmark models (identity_fp32, mlp_784, cnn_small; default identity_fp32); the echo
# is given its input, so it answers the same payload. BEFORE and AFTER are directories that each hold
# quiver-server.jar and lib/ (a copy of server/target after `./mvnw -q -pl server -am package
# -DskipTests`; for an older commit, build it in a `git worktree`). The echo and the example models come
# from this checkout's benchmarks jar.
#
# What it does: writes the benchmark models (BenchModels), starts the echo and both servers pinned to
# CPU 1, warms each with one sweep at c=16 and 64, then runs N rounds (default 3). In each round a fresh
# `quiver perf` JVM on CPU 0 warms its own JIT for 8 s (a cold client is slower than the server), then
# sweeps RANGE (default 1:256:x4, 3 s windows) against each server, in an order that alternates between
# rounds. Every sweep's table is printed under its label and its JSON kept
# in the work directory. Nothing is compared for you: read the rows of one round side by side, and
# trust only differences larger than the spread between rounds.
#
# Environment: BENCH_JVM_FLAGS (default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC"), AB_PORT_BASE (18300),
# AB_BEFORE_ARGS and AB_AFTER_ARGS (extra `serve` flags for each side: BEFORE and AFTER may then be the
# same build, to compare one flag's two settings).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS=3 CONC="1:256:x4" MODEL=identity_fp32 PROTOCOL=grpc
while [ $# -gt 2 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --conc) CONC="$2"; shift ;;
    --model) MODEL="$2"; shift ;;
    --protocol) PROTOCOL="$2"; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "ab-servers.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done
[ $# = 2 ] || { sed -n '2,26p' "$0" >&2; exit 64; }
BEFORE="$(cd "$1" && pwd)" AFTER="$(cd "$2" && pwd)"
for d in "$BEFORE" "$AFTER"; do
  [ -f "$d/quiver-server.jar" ] && [ -d "$d/lib" ] || { echo "ab-servers.sh: $d lacks quiver-server.jar or lib/" >&2; exit 1; }
done
BENCH_JAR="$ROOT/benchmarks/target/quiver-benchmarks.jar"
[ -f "$BENCH_JAR" ] || { echo "ab-servers.sh: build the benchmarks first (see benchmarks/README.md)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-ab.XXXXXX")"
mkdir -p "$WORK/before" "$WORK/after" "$WORK/bench"
# Copies, so a rebuild during the run cannot pull jars out from under the JVMs.
cp -r "$BEFORE/quiver-server.jar" "$BEFORE/lib" "$WORK/before/"
cp -r "$AFTER/quiver-server.jar" "$AFTER/lib" "$WORK/after/"
cp -r "$BENCH_JAR" "$ROOT/benchmarks/target/lib" "$WORK/bench/"
CP="$WORK/bench/quiver-benchmarks.jar:$WORK/bench/lib/*"
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
fi
# The echo advertises the model's input, so quiver perf sends it the same payload (as run.sh's echoes do).
case "$MODEL" in
  mlp_784*) ECHO_INPUT="INPUT0:FP32:-1,784" ;;
  cnn_small*) ECHO_INPUT="INPUT0:FP32:-1,3,64,64" ;;
  *) ECHO_INPUT="INPUT0:FP32:-1,16" ;;
esac
BASE=${AB_PORT_BASE:-18300}
declare -A PORT=([before]=$((BASE + 1)) [after]=$((BASE + 11)) [echo]=$((BASE + 21)))
declare -A PID=()
cleanup() {
  for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "ab-servers.sh: results kept in $WORK" >&2
}
trap cleanup EXIT

"$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/models" >&2
for side in before after; do
  p=${PORT[$side]}
  extra=()
  if [ "$side" = before ]; then read -r -a extra <<< "${AB_BEFORE_ARGS:-}"; else read -r -a extra <<< "${AB_AFTER_ARGS:-}"; fi
  "${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$WORK/$side/quiver-server.jar" serve \
    --model-repository "$WORK/models/batching" --grpc-port "$p" --http-port $((p + 1)) --metrics-port $((p + 2)) \
    --control-port -1 "${extra[@]}" > "$WORK/$side.log" 2>&1 &
  PID[$side]=$!
done
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "${PORT[echo]}" \
  --http-port $((PORT[echo] + 1)) --input "$ECHO_INPUT" > "$WORK/echo.log" 2>&1 &
PID[echo]=$!

sweep() { # label side range
  local target=(-u "localhost:${PORT[$2]}")
  if [ "$PROTOCOL" = http ] || { [ "$PROTOCOL" = h2 ] && [ "$2" != echo ]; }; then
    target=(-i http -u "localhost:$((PORT[$2] + 1))" --grpc-url "localhost:${PORT[$2]}")
    [ "$PROTOCOL" = h2 ] && target+=(--http2)
  fi
  "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -m "$MODEL" \
    "${target[@]}" --concurrency-range "$3" -p 3000 --warmup 2000 --max-windows 3 --wait-ready 120 --client-warmup 8000 \
    --server-pid "${PID[$2]}" --json "$WORK/$1.json" > "$WORK/$1.txt" 2>> "$WORK/perf.err" \
    || echo "ab-servers.sh: sweep $1 failed or saw errors (see $WORK/perf.err)" >&2
}
echo "ab-servers.sh: warming up (work dir $WORK)" >&2
for side in before after echo; do sweep "warm-$side" "$side" 16:64:x4; done
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="before after echo"; else order="echo after before"; fi
  for side in $order; do
    sweep "$side-r$r" "$side" "$CONC"
    echo "== $side, round $r ($MODEL, $PROTOCOL, c=$CONC)"
    cat "$WORK/$side-r$r.txt"
  done
done
