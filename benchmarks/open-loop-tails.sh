#!/usr/bin/env bash
# Case (c) of benchmarks/run.sh alone (issue 11): open-loop tails (Poisson) at 50% and 80% of Quiver's
# closed-loop saturation (best of c=64 and c=256, measured per repeat), Quiver (identity_fp32) against the
# bare grpc-java echo at the same absolute rates with the same client, 3 interleaved repeats. As run.sh:
# servers pinned to CPU 1, quiver perf to CPU 0, -Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC. Needs the jars built
# (./mvnw -B -q -DskipTests package -pl server,benchmarks -am). Raw JSON in $OUT (a temp dir by default).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CP="$ROOT/benchmarks/target/quiver-benchmarks.jar:$ROOT/benchmarks/target/lib/*"
JF=(-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC)
OUT=${OUT:-$(mktemp -d)}; mkdir -p "$OUT"
W=$(mktemp -d); mkdir -p $W/models; cp -r $ROOT/examples/models/identity_fp32 $W/models/
taskset -c 1 java "${JF[@]}" -cp "$CP" io.quiver.bench.echo.EchoServer --grpc-port 18701 > $W/echo.log 2>&1 & EPID=$!
taskset -c 1 java "${JF[@]}" -jar $ROOT/server/target/quiver-server.jar serve --model-repository $W/models \
  --grpc-port 18702 --http-port 18703 --metrics-port 18704 --control-port -1 > $W/quiver.log 2>&1 & QPID=$!
trap 'kill $EPID $QPID 2>/dev/null' EXIT
sleep 8
perf() { local out=$1; shift; taskset -c 0 java "${JF[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m identity_fp32 \
  -p 3000 --warmup 2000 --max-windows 3 --wait-ready 60 --json $OUT/$out.json "$@" > /dev/null 2>>$OUT/perf.err || echo "perf $out: errors" >&2; }
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in 1 2 3; do
  perf sat-r$r -u localhost:18702 --server-pid $QPID --concurrency-range 64,256 --client-warmup 3000
  SAT=$(java -cp "$CP" io.quiver.bench.tools.BestThroughput $OUT/sat-r$r.json)
  R50=$((SAT / 2)) R80=$((SAT * 8 / 10))
  q() { perf q-r$r -u localhost:18702 --server-pid $QPID --request-rate-range "$R50,$R80" --request-distribution poisson --seed $r --client-warmup 8000; }
  e() { perf e-r$r -u localhost:18701 --server-pid $EPID --request-rate-range "$R50,$R80" --request-distribution poisson --seed $r --client-warmup 8000; }
  if [ $((r % 2)) = 1 ]; then q; e; else e; q; fi
  echo "repeat $r: saturation $SAT, rates $R50 $R80, load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - $OUT <<'PY'
import json,sys,statistics
out=sys.argv[1]
def rows(n): return json.load(open(f"{out}/{n}.json"))["results"]
for r in (1,2,3):
    q=rows(f"q-r{r}"); e=rows(f"e-r{r}")
    for a,b in zip(q,e):
        print(f"r{r} {a['load']:.0f}/s: quiver sent/offered {a['offered_rps']/a['load']:.3f} p50 {a['p50_us']:.0f} p99 {a['p99_us']:.0f} us srv {a['server_cpu_us_per_req']:.2f} cli {a['client_cpu_us_per_req']:.2f} bound={a['client_bound']} limited={a['inflight_limited']} | echo p50 {b['p50_us']:.0f} p99 {b['p99_us']:.0f} us srv {b['server_cpu_us_per_req']:.2f} cli {b['client_cpu_us_per_req']:.2f} bound={b['client_bound']} limited={b['inflight_limited']} | p99 ratio {a['p99_us']/b['p99_us']:.2f}")
PY
