#!/usr/bin/env bash
# Overload (issue 12, item 4): cnn_16px with a 64-deep queue, open loop at 2x and 3x its saturation.
# Writes docs/benchmarks/overload.md (or the file given with --out).
#
#   benchmarks/overload.sh [--repeats N] [--queue N] [--window-ms MS] [--model cnn_16px|cnn_small]
#                          [--client-warmup-ms MS] [--no-build] [--out FILE]
#
# One server JVM pinned to CPU 1 (taskset), the client pinned to CPU 0, as benchmarks/run.sh does.
# cnn_16px (≈100 MFLOP per row for a 3 KiB request) so that one client core can offer 3x what one server
# core computes; cnn_small (≈13 MFLOP for 48 KiB) is the earlier choice, whose requests one client core
# cannot send fast enough. Each repeat measures saturation closed loop at concurrency = the queue bound (the most the
# server can batch without rejecting), then offers 2x and 3x that rate open loop (Poisson arrivals,
# latency from the intended send time, so coordinated omission is counted), then measures saturation
# again. Per point: goodput (answers per second) against the repeat's own saturation (the mean of the
# runs before and after), the admitted requests' p99 against saturation's, and
# the rejections per second (RESOURCE_EXHAUSTED/UNAVAILABLE) and how fast they come back (p99 from
# send to refusal, timed by the client). OVERLOAD_SERVER_FLAGS adds `serve` flags (e.g.
# "--event-loop-scheduling normal", to measure the policy the server had before; the page says which).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPEATS=3 QUEUE=64 WINDOW_MS=3000 BUILD=1 BASE_MODEL=cnn_16px CLIENT_WARMUP_MS=6000 OUT="$ROOT/docs/benchmarks/overload.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --queue) QUEUE="$2"; shift 2 ;;
    --window-ms) WINDOW_MS="$2"; shift 2 ;;
    --model) BASE_MODEL="$2"; shift 2 ;;
    --client-warmup-ms) CLIENT_WARMUP_MS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "overload.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup overload-bench
mkdir -p "$WORK/models" "$WORK/results" "$WORK/logs"

"$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BenchModels "$WORK/generated" > /dev/null
case "$BASE_MODEL" in
  cnn_16px) SOURCE="$WORK/generated/overload-cnn/cnn_16px" ;;
  cnn_small) SOURCE="$WORK/generated/batching/cnn_small" ;;
  *) echo "overload.sh: --model is cnn_16px or cnn_small" >&2; exit 64 ;;
esac
MODEL=${BASE_MODEL}_q$QUEUE
cp -r "$SOURCE" "$WORK/models/$MODEL"
# The generated config with its name changed and a bounded default queue inside dynamic_batching.
sed -i "s/name: \"$BASE_MODEL\"/name: \"$MODEL\"/; s/^dynamic_batching {/dynamic_batching {\n  default_queue_policy { max_queue_size: $QUEUE }/" \
  "$WORK/models/$MODEL/config.pbtxt"
grep -q "max_queue_size: $QUEUE" "$WORK/models/$MODEL/config.pbtxt" || { echo "overload.sh: could not bound the queue" >&2; exit 1; }

PORT=$(( ${BENCH_PORT_BASE:-18500} + 1 ))
METRICS_PORT=$(( ${BENCH_PORT_BASE:-18500} + 2 ))
# Both JVMs log their GC pauses (wall-clock ms), read for the pauses inside each point's measured windows.
"${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" "-Xlog:gc:file=$WORK/logs/server-gc.log:timemillis" -jar "$SERVER_JAR" serve \
  --model-repository "$WORK/models" --grpc-port "$PORT" --http-port -1 --metrics-port "$METRICS_PORT" --control-port -1 \
  ${OVERLOAD_SERVER_FLAGS:-} > "$WORK/logs/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
# The server CPU's own speed beside it (benchmarks/vcpu-speed.c; docs/benchmarks/PROFILE.md, "What moves with
# the levels"), read for each point's measured windows, where a C compiler exists.
bench_vcpu_probe "$WORK/logs/vcpu.txt" 86400

COMMANDS=()
perf() { # json-name args...
  local out="$1"; shift
  local cmd=("${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" "-Xlog:gc:file=$WORK/logs/client-gc-$out.log:timemillis"
    -cp "$CP" io.quiver.bench.PerfMain -q -m "$MODEL"
    -u "127.0.0.1:$PORT" -p "$WINDOW_MS" --warmup 2000 --max-windows 4 --wait-ready 120 --server-pid "$SERVER_PID"
    --json "$WORK/results/$out.json" --label "$out" "$@")
  [[ "$out" == *-r1 ]] && COMMANDS+=("$(printf '%s ' "${cmd[@]}" | sed "s#$WORK#\$WORK#g; s#$ROOT/##g")")
  # The server's own call-time histogram, scraped once the client is past its warm-up (closed loop, then
  # open loop at half rate, each CLIENT_WARMUP_MS, then the 2 s level warm-up) and again at the end: the
  # difference is the point's measured part. A cold client sends a call's message long after its headers,
  # which the server's headers-to-close time would count.
  # Only open-loop points are read this way; closed-loop ones refuse nothing.
  local open=0
  [[ " $* " == *" --request-rate-range "* ]] && open=1
  "${cmd[@]}" >> "$WORK/logs/perf.out" 2>> "$WORK/logs/perf.err" &
  local client=$!
  if [ "$open" = 1 ]; then
    sleep "$(( (2 * CLIENT_WARMUP_MS + 2000) / 1000 + 1 ))"
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/results/$out.before.prom" || true
  fi
  wait "$client" || echo "overload.sh: perf $out saw errors (expected under overload: rejections)" >&2
  date +%s%3N > "$WORK/results/$out.end-ms"
  if [ "$open" = 1 ]; then
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/results/$out.after.prom" || true
  fi
}
# Warm-up, not reported (a cold JVM pinned to one core compiles for tens of seconds). With only the closed
# loop (8 s, then 20 s), the first repeat's saturation run came out 20-40% low in four runs of four;
# with a 3 s open-loop warm-up too, 10-20% low in two runs of three; with 15 s, in line (one run).
perf warm-up --concurrency-range "$QUEUE" -p 20000 --max-windows 1
# And the overload path itself (full batches, refusals), open loop at twice a closed-loop rate measured here.
perf warm-up-rate --concurrency-range "$QUEUE"
WARM_RATE=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$WORK/results/warm-up-rate.json")
perf warm-up-open --request-rate-range "$((2 * WARM_RATE))" --request-distribution poisson --request-timeout 2000 \
  --max-inflight 4096 --client-warmup 2000 --max-windows 1 -p 15000
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$REPEATS"); do
  echo "overload.sh: repeat $r/$REPEATS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  perf "sat-r$r" --concurrency-range "$QUEUE"
  SAT=$("$JAVA_BIN" -cp "$CP" io.quiver.bench.tools.BestThroughput "$WORK/results/sat-r$r.json")
  for x in 2 3; do
    perf "x$x-r$r" --request-rate-range "$((x * SAT))" --request-distribution poisson --request-timeout 2000 \
      --max-inflight 4096 --client-warmup "$CLIENT_WARMUP_MS"
  done
  # Saturation again after the overload points: the closed-loop rate moves between runs by more than the
  # goodput target's margin, so each repeat's goodput is read against saturation on both sides of it.
  perf "sat-post-r$r" --concurrency-range "$QUEUE"
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results" "$WORK/logs" "$OUT" "$REPEATS" "$QUEUE" "$WINDOW_MS" "$LOAD_START" "$LOAD_END" "$(nproc)" \
  "$("$JAVA_BIN" -version 2>&1 | head -1)" "${JVM_FLAGS[*]}" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$BASE_MODEL" \
  "$CLIENT_WARMUP_MS" "${OVERLOAD_SERVER_FLAGS:-(none)}" "${COMMANDS[@]}" <<'EOF'
import json, statistics, sys, datetime
res, logs, out, repeats, queue, window, load0, load1, cores, jdk, flags, tree, model, client_warmup, server_flags = sys.argv[1:16]
commands = sys.argv[16:]
shapes = {
    "cnn_16px": "INPUT0 FP32 [-1,3,16,16], 3 KiB a row; Conv 3→96, Conv 96→96 twice, MaxPool, Conv 96→128, MaxPool, "
                "Gemm 2048→10, ≈100 MFLOP a row",
    "cnn_small": "INPUT0 FP32 [-1,3,64,64], 48 KiB a row; Conv-Relu-MaxPool twice, Gemm 8192→10, ≈13 MFLOP a row",
}
repeats = int(repeats)

def row(name):
    with open(f"{res}/{name}.json") as f:
        rows = json.load(f)["results"]
    return rows[0]

def num(v):
    return float("nan") if v is None else float(v)

CALLS = "quiver_grpc_server_call_duration_seconds_bucket"

def buckets(path):
    """ModelInfer refusals (RESOURCE_EXHAUSTED, UNAVAILABLE) by upper bound, from one scrape."""
    found = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return found
    for line in lines:
        if not line.startswith(CALLS + "{") or 'method="ModelInfer"' not in line:
            continue
        if 'code="RESOURCE_EXHAUSTED"' not in line and 'code="UNAVAILABLE"' not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        le = labels.split('le="', 1)[1].split('"', 1)[0]
        bound = float("inf") if le == "+Inf" else float(le)
        found[bound] = found.get(bound, 0.0) + float(value)
    return found

def server_refusals(name):
    """This point's refusals in the server's own histogram: (count, share within 5 ms, p99 upper bound in ms)."""
    before, after = buckets(f"{res}/{name}.before.prom"), buckets(f"{res}/{name}.after.prom")
    cumulative = sorted((b, after[b] - before.get(b, 0.0)) for b in after)
    if not cumulative or cumulative[-1][1] <= 0:
        return 0, float("nan"), float("nan")
    total = cumulative[-1][1]
    within5 = next((c for b, c in cumulative if b >= 0.005), total) / total
    p99 = next(b for b, c in cumulative if c >= 0.99 * total)
    return total, within5, p99 * 1000

def gc_pauses(log, name, measured_s):
    """Stop-the-world pauses in a point's measured windows (the measured_s before its client exited):
    (ms paused, longest ms); nan when a log is missing."""
    try:
        end = float(open(f"{res}/{name}.end-ms").read())
        lines = open(log).read().splitlines()
    except (OSError, ValueError):
        return float("nan"), float("nan")
    start = end - measured_s * 1000
    total = longest = 0.0
    for line in lines:
        if "Pause" not in line or not line.startswith("["):
            continue
        t = float(line[1:line.index("ms]")])
        if start <= t <= end:
            ms = float(line.rsplit(" ", 1)[1].rstrip("ms"))
            total += ms
            longest = max(longest, ms)
    return total, longest

def vcpu_cell(name, point):
    """Median ns per iteration of benchmarks/vcpu-speed.c on the server's CPU in the point's measured windows."""
    try:
        end_ns = float(open(f"{res}/{name}.end-ms").read()) * 1e6
        samples = [line.split() for line in open(f"{logs}/vcpu.txt")]
    except (OSError, ValueError):
        return "-"
    start_ns = end_ns - num(point.get("measured_s")) * 1e9
    inside = [float(v) for t, v in samples if start_ns <= float(t) <= end_ns]
    return f"{statistics.median(inside):.3f}" if inside else "-"

def gc_cell(name, point):
    measured = num(point.get("measured_s"))
    c_total, c_long = gc_pauses(f"{logs}/client-gc-{name}.log", name, measured)
    s_total, s_long = gc_pauses(f"{logs}/server-gc.log", name, measured)
    return f"{c_total/measured:.1f} / {c_long:.1f} | {s_total/measured:.1f} / {s_long:.1f}"

table = []
per = {"2": [], "3": []}
drift = []
for r in range(1, repeats + 1):
    sat = row(f"sat-r{r}")
    post = row(f"sat-post-r{r}")
    s_rps, s_p99 = num(sat["throughput_rps"]), num(sat["p99_us"])
    a_rps = num(post["throughput_rps"])
    # The repeat's saturation: the mean of the closed-loop runs before and after its overload points.
    both = (s_rps + a_rps) / 2
    drift.append(a_rps / s_rps)
    table.append(f"| {r} | saturation before (closed loop, c={queue}) | {s_rps:.0f} | {s_rps:.0f} | - | 0 | - | - | - | {s_p99/1000:.1f} | 1.00 | {num(sat['mean_batch']):.1f} | {gc_cell(f'sat-r{r}', sat)} | {vcpu_cell(f'sat-r{r}', sat)} |")
    for x in ("2", "3"):
        p = row(f"x{x}-r{r}")
        good, p99 = num(p["throughput_rps"]), num(p["p99_us"])
        g, l = good / both, p99 / s_p99
        rej99 = num(p.get("rejection_p99_us"))
        n, within5, srv99 = server_refusals(f"x{x}-r{r}")
        per[x].append((g, l, num(p["rejected_rps"]), num(p["send_rate_ratio"]), rej99, within5, srv99, good / s_rps, good / a_rps))
        table.append(f"| {r} | {x}x open loop (Poisson) | {num(p['offered_rps']):.0f} | {good:.0f} | {g:.2f} ({good / s_rps:.2f} / {good / a_rps:.2f}) | "
                     f"{num(p['rejected_rps']):.0f} | {rej99/1000:.2f} | {within5*100:.2f}% | <= {srv99:g} | {p99/1000:.1f} | {l:.2f} | {num(p['mean_batch']):.1f} | {gc_cell(f'x{x}-r{r}', p)} | {vcpu_cell(f'x{x}-r{r}', p)} |")
    table.append(f"| {r} | saturation after (closed loop, c={queue}) | {a_rps:.0f} | {a_rps:.0f} | - | 0 | - | - | - | {num(post['p99_us'])/1000:.1f} | {num(post['p99_us'])/s_p99:.2f} | {num(post['mean_batch']):.1f} | {gc_cell(f'sat-post-r{r}', post)} | {vcpu_cell(f'sat-post-r{r}', post)} |")

def med(values):
    return statistics.median(values)

def spread(values):
    return f"{min(values):.2f}-{max(values):.2f}"

summary = []
for x in ("2", "3"):
    g = [v[0] for v in per[x]]
    l = [v[1] for v in per[x]]
    s = [v[3] for v in per[x]]
    j = [v[4] / 1000 for v in per[x]]
    w = [v[5] * 100 for v in per[x]]
    gb = [v[7] for v in per[x]]
    ga = [v[8] for v in per[x]]
    summary.append(f"| {x}x | {med(g):.2f} ({spread(g)}) | {med(gb):.2f} / {med(ga):.2f} | >= 0.9 | {med(l):.2f} ({spread(l)}) | <= 2 | "
                   f"{med(w):.2f}% ({min(w):.2f}-{max(w):.2f}) | >= 99% | {med(j):.2f} ({spread(j)}) | {med(s):.2f} |")

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
text = f"""# Overload: {model} at 2x and 3x saturation

Issue 12, item 4: when a model's queue is full a request is refused before its tensors are decoded,
and a request whose deadline the queue would outlast is refused at admission (docs/hardening.md,
"Early admission"). This measures what that buys under sustained overload.

Machine: a {cores}-core VM; load average {load0} at the start, {load1} at the end (the benchmark's own
two JVMs account for about 2; more means something else ran). Ratios are within one run. Server pinned to CPU 1, client to CPU 0; {jdk}; JVM flags `{flags}`. Tree: `{tree}`.
Run on {now}: {repeats} repeats, {window} ms windows. Extra server flags: {server_flags}.

Model: {model} ({shapes[model]}; dynamic batching) with
`default_queue_policy {{ max_queue_size: {queue} }}`. Each repeat measures saturation closed loop at
concurrency {queue} (the queue bound), then offers 2x and 3x that rate open loop with Poisson arrivals
and a 2 s client timeout; each open-loop client first warms its own JIT, unmeasured ({client_warmup} ms
closed loop, {client_warmup} ms open loop at half the rate, then the 2 s level warm-up: a client that starts
cold on its one core sends late and slowly for its first seconds). Goodput = answered requests per second; p99 is of the admitted (answered)
requests, measured from the intended send time (coordinated omission counted). After the overload
points the repeat measures saturation again; goodput is compared with the mean of the two saturation
runs (and, in brackets in the table, with each), p99 with the first.

## Summary (median of {repeats} repeats, spread in brackets)

| offered | goodput / saturation (mean of before and after) | the same against before / after alone | target | admitted p99 / saturation p99 | target | refusals within 5 ms, server time | target | rejection p99 ms, client-measured | client send-rate ratio |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(summary) + f"""

Saturation after the overload points / before them, per repeat: {", ".join(f"{d:.2f}" for d in drift)}.
""" + """

Refusal times, two ways. *Server time* is the server's own histogram
`quiver_grpc_server_call_duration_seconds{method="ModelInfer",code="RESOURCE_EXHAUSTED"|"UNAVAILABLE"}`
(docs/metrics.md), scraped once the point's client is past its warm-up and again at its end: from the
transport reading the call's headers to
its stream closing, so it leaves out the time a request waited in the kernel's socket buffer before the
event loop read it; its p99 is the upper bound of the histogram bucket it falls in. *Client-measured* is
`quiver perf`'s `rejection_p99_us`, from the send to the RESOURCE_EXHAUSTED answer: everything, the
client's own event loop included, so an upper bound of the server's time. A send-rate ratio below 1
means the client core could not offer the intended rate, so the point offered less than its label says.
The GC columns come from each JVM's `-Xlog:gc`: the stop-the-world pauses inside the point's measured
windows (the `measured_s` before its client exited), as milliseconds paused per second and the longest.
*Server vCPU ns/it* is how long a fixed register-only loop (`benchmarks/vcpu-speed.c`, beside the server on
its CPU) took per iteration in those windows, median: a higher figure means the vCPU itself ran slower
(docs/benchmarks/PROFILE.md, "What moves with the levels"); "-" where no C compiler was found.

## Every point

| repeat | point | offered req/s | goodput req/s | goodput / sat | rejected/s | rejection p99 ms (client) | refusals within 5 ms (server) | refusal p99 ms (server, bucket bound) | p99 ms | p99 / sat p99 | mean batch | client GC ms paused per s / longest ms | server GC ms paused per s / longest ms | server vCPU ns/it |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(table) + """

## Commands

`benchmarks/overload.sh --repeats """ + str(repeats) + " --model " + model + " --client-warmup-ms " + client_warmup + """` ran (first repeat's commands; `$WORK` is its temp dir):

```
""" + "\n".join(commands) + """
```
"""
with open(out, "w") as f:
    f.write(text)
print(text)
EOF
