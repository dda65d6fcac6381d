#!/usr/bin/env bash
# Cost of model monitoring (issue 20): mlp_classifier with monitoring off, at sample rate 0.1 and at
# 1.0, in one run, interleaved. Writes docs/benchmarks/monitoring.md (or the file given with --out).
#
#   benchmarks/monitoring.sh [--repeats N] [--concurrency C] [--window-ms MS] [--no-build] [--out FILE]
#
# Two server JVMs pinned to CPU 1 (taskset), the client pinned to CPU 0, as benchmarks/run.sh does:
#   off:  mlp_classifier as shipped (no monitoring parameter: its scheduler is not even wrapped);
#   on:   two copies of it, mlp_mon_0_1 (sample_rate 0.1) and mlp_mon_1_0 (sample_rate 1.0), default
#         window (300 s) and reference capture (first 1000 rows, during the warm-up).
# Each repeat runs the three cases in a rotated order; the idle server meanwhile costs nothing
# (its monitoring thread backs off to one wake-up per 100 ms). quiver perf: gRPC ModelInfer, batch 1,
# closed loop at the given concurrency, random FP32 inputs, warm-up then windows until three agree.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPEATS=5 CONCURRENCY=32 WINDOW_MS=2000 BUILD=1 OUT="$ROOT/docs/benchmarks/monitoring.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --window-ms) WINDOW_MS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "monitoring.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup monitoring-bench
mkdir -p "$WORK/off" "$WORK/on" "$WORK/results" "$WORK/logs"

SRC="$ROOT/examples/models/mlp_classifier"
cp -r "$SRC" "$WORK/off/mlp_classifier"
for rate in 0.1 1.0; do
  name="mlp_mon_${rate/./_}"
  mkdir -p "$WORK/on/$name"
  cp -r "$SRC/1" "$WORK/on/$name/1"
  sed "s/mlp_classifier/$name/" "$SRC/config.pbtxt" > "$WORK/on/$name/config.pbtxt"
  printf 'parameters {\n  key: "quiver.monitoring"\n  value { string_value: "true" }\n}\nparameters {\n  key: "quiver.monitoring.sample_rate"\n  value { string_value: "%s" }\n}\n' \
    "$rate" >> "$WORK/on/$name/config.pbtxt"
done
PORT_BASE=${BENCH_PORT_BASE:-18300}
start_server() { # name repository grpc-port metrics-port
  "${SERVER_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -jar "$SERVER_JAR" serve \
    --model-repository "$2" --grpc-port "$3" --http-port -1 --metrics-port "$4" --control-port -1 \
    > "$WORK/logs/$1.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
start_server off "$WORK/off" $((PORT_BASE + 1)) $((PORT_BASE + 3)); OFF_PID=$LAST_PID
start_server on "$WORK/on" $((PORT_BASE + 2)) $((PORT_BASE + 4)); ON_PID=$LAST_PID

# CPU accounting per case, independent of the windows: nanoseconds on CPU from /proc/PID/task/*/schedstat
# (all threads, and the monitoring threads, whose names the kernel cuts to "quiver-monitori"), and the
# requests the server answered (its Prometheus counter), read before and after each quiver perf run.
cpu_ns() { # pid [thread-name-prefix]
  local total=0 t name ns
  for t in /proc/"$1"/task/*; do
    name="$(cat "$t/comm" 2>/dev/null || true)"
    if [ -z "${2:-}" ] || [[ "$name" == "$2"* ]]; then
      ns="$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null || echo 0)"
      total=$((total + ns))
    fi
  done
  echo "$total"
}
answered() { # metrics-port model
  { curl -s "http://127.0.0.1:$1/metrics" || true; } | awk -v m="model=\"$2\"" \
    '$1 ~ /^quiver_inference_success_total/ && index($1, m) {sum += $2} END {printf "%d", sum}'
}

for port in $((PORT_BASE + 3)) $((PORT_BASE + 4)); do # both servers up (the exporter starts after the models load)
  for _ in $(seq 1 240); do curl -s -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.5; done
done
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CASES=("off:mlp_classifier:$((PORT_BASE + 1)):$OFF_PID:$((PORT_BASE + 3))"
  "0.1:mlp_mon_0_1:$((PORT_BASE + 2)):$ON_PID:$((PORT_BASE + 4))"
  "1.0:mlp_mon_1_0:$((PORT_BASE + 2)):$ON_PID:$((PORT_BASE + 4))")
COMMANDS=()
for r in $(seq 1 "$REPEATS"); do
  for k in 0 1 2; do
    IFS=: read -r label model port pid mport <<< "${CASES[$(( (k + r) % 3 ))]}"
    cmd=("${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -m "$model"
      -u "127.0.0.1:$port" --concurrency-range "$CONCURRENCY" -p "$WINDOW_MS" --warmup 3000 --max-windows 6
      --server-pid "$pid" --wait-ready 60 -q --json "$WORK/results/$label-$r.json" --label "$label")
    [ "$r" = 1 ] && COMMANDS+=("$(printf '%s ' "${cmd[@]}" | sed "s#$WORK#\$WORK#g; s#$ROOT/##g")")
    echo "monitoring.sh: repeat $r, sample rate $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    before_all=$(cpu_ns "$pid") before_mon=$(cpu_ns "$pid" quiver-monitori) before_n=$(answered "$mport" "$model")
    "${cmd[@]}" > "$WORK/logs/perf-$label-$r.txt" 2>&1 || { cat "$WORK/logs/perf-$label-$r.txt" >&2; exit 1; }
    after_all=$(cpu_ns "$pid") after_mon=$(cpu_ns "$pid" quiver-monitori) after_n=$(answered "$mport" "$model")
    echo "$label $r $((after_all - before_all)) $((after_mon - before_mon)) $((after_n - before_n))" >> "$WORK/results/cpu.txt"
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
MON_LOG="$(grep -h -o 'monitoring [0-9]* tensor(s)[^"]*' "$WORK/logs/on.log" | head -2 | tr '\n' ';' || true)"

python3 - "$WORK/results" "$OUT" "$REPEATS" "$CONCURRENCY" "$WINDOW_MS" "$LOAD_START" "$LOAD_END" "$(nproc)" \
  "$("$JAVA_BIN" -version 2>&1 | head -1)" "${JVM_FLAGS[*]}" "$MON_LOG" "${COMMANDS[@]}" <<'EOF'
import json, glob, os, statistics, sys, datetime
res, out, repeats, conc, window, load0, load1, cores, jdk, flags, monlog = sys.argv[1:12]
commands = sys.argv[12:]
rows = {}
cpu = {}
for line in open(os.path.join(res, 'cpu.txt')):
    label, r, all_ns, mon_ns, n = line.split()
    cpu.setdefault(label, []).append((int(all_ns), int(mon_ns), int(n)))
for f in sorted(glob.glob(os.path.join(res, '*.json'))):
    label = os.path.basename(f).rsplit('-', 1)[0]
    data = json.load(open(f))
    r = data['results'][0] if isinstance(data, dict) and 'results' in data else (data[0] if isinstance(data, list) else data)
    rows.setdefault(label, []).append(r)
def pick(r, *names):
    for n in names:
        if n in r and r[n] is not None:
            return float(r[n])
    return float('nan')
def summary(label, key, *names):
    v = [pick(r, *names) for r in rows[label]]
    return statistics.median(v), min(v), max(v), v
lines = []
lines.append('# Model monitoring: cost on mlp_classifier (issue 20)\n')
lines.append('Produced by `benchmarks/monitoring.sh --repeats %s --concurrency %s` on %s.\n'
             % (repeats, conc, datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')))
lines.append('**Taken on a shared machine**: %s cores, load average %s at the start and %s at the end (other agents '
             'building and testing on the same 2 vCPUs). Absolute numbers are not comparable with '
             'docs/benchmarks/RESULTS.md; the ratios are between cases measured minutes apart in one run, each '
             'repeat running the three cases in a rotated order.\n' % (cores, load0, load1))
lines.append('Setup: two server JVMs pinned to CPU 1 (`off`: mlp_classifier as shipped; `on`: two copies with '
             '`quiver.monitoring` true and `sample_rate` 0.1 and 1.0, every input and output monitored, default '
             'window and a reference captured from the first 1000 rows during the warm-up), client pinned to CPU 0; '
             '%s; JVM flags `%s`. `quiver perf`: gRPC ModelInfer, batch 1, closed loop at concurrency %s, random '
             'FP32[16] inputs, 3 s warm-up, %s ms windows until three agree (at most 6). Server log: %s\n'
             % (jdk, flags, conc, window, monlog or '-'))
lines.append('| sample rate | req/s median (min–max) | vs off | p99 µs median (min–max) | vs off | server CPU µs/req median (min–max) | vs off | n |')
lines.append('|---|---|---|---|---|---|---|---|')
base_t = summary('off', 't', 'throughput_rps')[0]
base_p = summary('off', 'p', 'p99_us')[0]
base_c = summary('off', 'c', 'server_cpu_us_per_req')[0]
verdict = {}
for label in ['off', '0.1', '1.0']:
    if label not in rows:
        continue
    t = summary(label, 't', 'throughput_rps')
    p = summary(label, 'p', 'p99_us')
    c = summary(label, 'c', 'server_cpu_us_per_req')
    verdict[label] = t[0] / base_t
    lines.append('| %s | %.0f (%.0f–%.0f) | %.3f | %.0f (%.0f–%.0f) | %.2f | %.1f (%.1f–%.1f) | %.3f | %d |' % (
        label, t[0], t[1], t[2], t[0] / base_t, p[0], p[1], p[2], p[0] / base_p, c[0], c[1], c[2], c[0] / base_c,
        len(t[3])))
lines.append('')
lines.append('Goal (issue 20): throughput loss ≤ 3%% at 0.1 (measured %.1f%%), ≤ 10%% at 1.0 (measured %.1f%%).\n'
             % (100 * (1 - verdict.get('0.1', float('nan'))), 100 * (1 - verdict.get('1.0', float('nan')))))
lines.append('CPU per answered request over each whole case (warm-up included), from the server threads\' '
             '`/proc/PID/task/*/schedstat` and the server\'s `quiver_inference_success_total`: less sensitive '
             'to the machine\'s load than throughput, since it counts CPU used rather than time waited. '
             '"monitoring threads" are `quiver-monitoring` (summarising) and `quiver-monitoring-io`; the copy '
             'on the request path is inside "all threads".\n')
lines.append('| sample rate | all threads µs/req median (min–max) | monitoring threads µs/req median (min–max) | monitoring share |')
lines.append('|---|---|---|---|')
for label in ['off', '0.1', '1.0']:
    if label in cpu:
        a = [x[0] / 1e3 / max(1, x[2]) for x in cpu[label]]
        m = [x[1] / 1e3 / max(1, x[2]) for x in cpu[label]]
        share = statistics.median([x[1] / max(1, x[0]) for x in cpu[label]])
        lines.append('| %s | %.1f (%.1f–%.1f) | %.2f (%.2f–%.2f) | %.1f%% |' % (label, statistics.median(a), min(a), max(a),
            statistics.median(m), min(m), max(m), 100 * share))
lines.append('')
lines.append('Per repeat (req/s, p99 µs), in run order per repeat:\n')
lines.append('| case | ' + ' | '.join('repeat %d' % (i + 1) for i in range(int(repeats))) + ' |')
lines.append('|---|' + '---|' * int(repeats))
for label in ['off', '0.1', '1.0']:
    if label in rows:
        lines.append('| %s | ' % label + ' | '.join('%.0f, %.0f' % (pick(r, 'throughput_rps'), pick(r, 'p99_us'))
                                                   for r in rows[label]) + ' |')
lines.append('\nCommands of the first repeat (`$WORK` is the run\'s temp dir):\n')
lines.append('```')
lines.extend(commands)
lines.append('```')
open(out, 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
EOF
