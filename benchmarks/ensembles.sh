#!/usr/bin/env bash
# Ensembles and the response cache (issue 16), in one run, cases interleaved:
#   chain:    the client calls preprocess_scale, then mlp_classifier with its output (two round trips)
#   ensemble: the client calls mlp_pipeline (the same two steps inside the server)
#   pre, mlp: each step model alone (the server CPU an ensemble's steps cost by themselves)
#   echo:     the bare grpc-java echo (benchmarks' EchoServer), FP32 [1,16]
#   identity: identity_fp32 (no cache), FP32 [1,16]
#   hit:      identity_cached = identity_fp32 with response_cache, local cache; every request is the same, so hits
# Prints a Markdown table of medians (and min-max) over the repeats; the caller writes it into
# docs/benchmarks/ensembles.md.
#
#   benchmarks/ensembles.sh [--repeats N] [--concurrency "1 32"] [--window-ms MS] [--no-build]
#
# Servers pinned to CPU 1 (taskset), the client to CPU 0, as benchmarks/run.sh does. ChainBench
# (io.quiver.bench.tools.ChainBench) drives every case with the same closed-loop client code.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPEATS=3 CONCURRENCY="1 32" WINDOW_MS=4000 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --window-ms) WINDOW_MS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "ensembles.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am package) >&2
fi
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-ensembles-bench.XXXXXX")"
CP="$ROOT/benchmarks/target/quiver-benchmarks.jar:$ROOT/benchmarks/target/lib/*"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/models"
for m in preprocess_scale mlp_classifier mlp_pipeline identity_fp32; do cp -r "$ROOT/examples/models/$m" "$WORK/models/"; done
mkdir -p "$WORK/models/identity_cached"
cp -r "$ROOT/examples/models/identity_fp32/1" "$WORK/models/identity_cached/1"
sed 's/identity_fp32/identity_cached/' "$ROOT/examples/models/identity_fp32/config.pbtxt" > "$WORK/models/identity_cached/config.pbtxt"
echo 'response_cache { enable: true }' >> "$WORK/models/identity_cached/config.pbtxt"

PORT_BASE=${BENCH_PORT_BASE:-18600}
QUIVER_PORT=$((PORT_BASE + 1)) ECHO_PORT=$((PORT_BASE + 2))
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$ROOT/server/target/quiver-server.jar" serve \
  --model-repository "$WORK/models" --grpc-port "$QUIVER_PORT" --http-port -1 --metrics-port -1 --control-port -1 \
  --no-console --cache-config local,size=64M > "$WORK/quiver.log" 2>&1 &
QUIVER_PID=$!; PIDS+=("$QUIVER_PID")
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port "$ECHO_PORT" \
  > "$WORK/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")

CASES=("chain:preprocess_scale,mlp_classifier:quiver" "ensemble:mlp_pipeline:quiver" "pre:preprocess_scale:quiver"
  "mlp:mlp_classifier:quiver" "echo:INPUT:echo" "identity:identity_fp32:quiver" "hit:identity_cached:quiver")
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
: > "$WORK/results.txt"
for r in $(seq 1 "$REPEATS"); do
  for c in $CONCURRENCY; do
    n=${#CASES[@]}
    for k in $(seq 0 $((n - 1))); do
      IFS=: read -r label models server <<< "${CASES[$(( (k + r) % n ))]}"
      if [ "$server" = echo ]; then port=$ECHO_PORT pid=$ECHO_PID; else port=$QUIVER_PORT pid=$QUIVER_PID; fi
      echo "ensembles.sh: repeat $r, c=$c, $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      line="$("${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.tools.ChainBench \
        "127.0.0.1:$port" "$pid" "$c" "$WINDOW_MS" "$label" "$models")"
      echo "$c $line" >> "$WORK/results.txt"
    done
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results.txt" "$REPEATS" "$WINDOW_MS" "$LOAD_START" "$LOAD_END" "$(nproc)" \
  "$("$JAVA_BIN" -version 2>&1 | head -1)" <<'EOF'
import sys, statistics, collections
path, repeats, window, load0, load1, cores, jdk = sys.argv[1:8]
rows = collections.defaultdict(list)
for line in open(path):
    c, label, rps, p50, p99, scpu, ccpu = line.split()
    rows[(int(c), label)].append((float(rps), float(p50), float(p99), float(scpu), float(ccpu)))
def med(vals, i):
    xs = [v[i] for v in vals]
    return statistics.median(xs), min(xs), max(xs)
print(f"Run: {repeats} repeats interleaved, {window} ms windows after 2 s warm-up; {cores} cores; {jdk}; "
      f"load average {load0} at start, {load1} at end.\n")
print("| c | case | req/s | p50 µs | p99 µs | server CPU µs/req | client CPU µs/req |")
print("|---|---|---|---|---|---|---|")
for (c, label), vals in sorted(rows.items(), key=lambda kv: (kv[0][0], ["chain","ensemble","pre","mlp","echo","identity","hit"].index(kv[0][1]))):
    cells = []
    for i in range(5):
        m, lo, hi = med(vals, i)
        cells.append(f"{m:.0f} ({lo:.0f}-{hi:.0f})" if i == 0 else f"{m:.1f} ({lo:.1f}-{hi:.1f})")
    print(f"| {c} | {label} | " + " | ".join(cells) + " |")
print()
for c in sorted({k[0] for k in rows}):
    g = lambda l, i: statistics.median(v[i] for v in rows[(c, l)]) if (c, l) in rows else float('nan')
    print(f"c={c}: ensemble/chain end-to-end p50 {g('ensemble',1)/g('chain',1):.2f}, throughput "
          f"{g('ensemble',0)/g('chain',0):.2f}; server CPU ensemble − (pre + mlp) = "
          f"{g('ensemble',3) - g('pre',3) - g('mlp',3):.1f} µs per request, so ensemble overhead per step ≈ "
          f"(that + echo) / 2 = {(g('ensemble',3) - g('pre',3) - g('mlp',3) + g('echo',3)) / 2:.1f} µs; "
          f"cache hit / echo: p50 {g('hit',1)/g('echo',1):.2f}, server CPU {g('hit',3)/g('echo',3):.2f}; "
          f"hit / identity server CPU {g('hit',3)/g('identity',3):.2f}")
EOF
