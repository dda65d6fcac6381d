#!/usr/bin/env bash
# Who delays a serving thread's wake-up (issue 17): `LifecycleBench hot-cold` (open loop) with a kernel
# scheduler trace of one churn phase and one quiet phase. For each traced phase it prints the wake-up
# latency of the serving threads (the compute pool's and the bench's hot sender), grouped by what the CPU
# they were woken on was running at that moment: from the sched_wakeup event to the sched_switch that puts
# the thread on a CPU.
#
#   benchmarks/wakeup-latency.sh [--trace-seconds S] [--no-build] [--out FILE] [-- hot-cold options...]
#
# A p99 of a 10 s phase moves with every stall of the platform (docs/benchmarks/lifecycle.md, "What sets the
# quiet phases' tails"); this measures the mechanism instead: a thread that wakes on a core held by another
# thread of normal priority waits until that thread's scheduler slice ends (about 3 ms here), one that wakes
# on an idle core or beside a SCHED_IDLE thread runs at once. Both phases carry the same tracing cost
# (perf's own thread shows up as "other processes").
#
# Needs perf (Debian: linux-perf) and the right to record sched tracepoints system-wide (root, or
# kernel.perf_event_paranoid <= -1). The two traced phases are the third and fourth measured ones of
# --pairs 2 (churn, then quiet: the second pair starts with its churn phase), each traced from 1 s after
# it starts, for S seconds (default 7).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TRACE_S=7 BUILD=1 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --trace-seconds) TRACE_S="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "wakeup-latency.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
command -v perf >/dev/null || { echo "wakeup-latency.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup wakeup-latency

"$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.lifecycle.LifecycleBench hot-cold --pairs 2 \
  --hot-rate 10000 --concurrency 64 "$@" --out "$WORK/summary.txt" > "$WORK/bench.out" 2> "$WORK/bench.err" &
BENCH_PID=$!
PIDS+=("$BENCH_PID")
# The poll starts no process (it must not add load): bash builtins only, and it waits by reading with a
# timeout on a FIFO nobody writes. (Not a process substitution: its short-lived subshell can run this
# script's EXIT trap, which stops the bench and removes $WORK mid-run.)
mkfifo "$WORK/nap"
exec {NAP}<> "$WORK/nap"
nap() { read -r -t "$1" -u "$NAP" _ || true; }
traced=0
while [ "$traced" -lt 2 ] && kill -0 "$BENCH_PID" 2>/dev/null; do
  # Phase-start lines on the bench's stderr ("phase KIND starts at JVM uptime ..."): the warm-up, then the
  # measured phases in order.
  starts=()
  while IFS= read -r line; do
    [[ "$line" == *"starts at JVM uptime"* ]] && starts+=("$line")
  done < "$WORK/bench.err"
  if [ "${#starts[@]}" -ge $((4 + traced)) ]; then
    read -r _ kind _ <<< "${starts[$((3 + traced))]}"
    nap 1
    perf record -q -k CLOCK_MONOTONIC -e sched:sched_switch -e sched:sched_wakeup -e sched:sched_wakeup_new -a \
      -o "$WORK/$kind.data" -- sleep "$TRACE_S" > /dev/null 2>&1
    traced=$((traced + 1))
  fi
  nap 0.2
done
wait "$BENCH_PID"
for kind in churn quiet; do
  perf script -i "$WORK/$kind.data" -F comm,tid,cpu,time,event,trace > "$WORK/$kind.txt" 2>/dev/null
done

python3 - "$WORK" "$TRACE_S" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" "$*" <<'EOF' | tee "${OUT:-/dev/null}"
import collections, re, sys
work, trace_s, tree, extra = sys.argv[1:5]
EVENT = re.compile(r'\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)')
SWITCH = re.compile(r'prev_comm=(.*) prev_pid=(\d+) .*next_comm=(.*) next_pid=(\d+)')
WAKE = re.compile(r'comm=(.*) pid=(\d+) prio=(\d+) target_cpu=(\d+)')

def serving(comm):
    return comm.startswith('quiver-compute') or comm == 'hot-sender'

def group(comm):
    if comm.startswith('swapper'):
        return 'idle CPU'
    if serving(comm):
        return 'another serving thread'
    if comm.startswith('quiver-model-lo'):
        return 'a load (quiver-model-load, SCHED_IDLE)'
    if comm.startswith('quiver-ondemand'):
        return 'on-demand loader (quiver-ondemand)'
    if 'CompilerThre' in comm:
        return 'JIT compiler thread'
    if comm.startswith('GC Thread') or comm.startswith('G1') or comm == 'VM Thread':
        return 'GC / VM thread'
    if comm.startswith('quiver-') or comm in ('cold-sender', 'hiccup-meter'):
        return 'other thread of the bench'
    return 'other processes (kernel threads, perf, ...)'

def analyse(kind):
    events = []
    with open(f"{work}/{kind}.txt") as f:
        for line in f:
            m = EVENT.match(line)
            if m:
                events.append((float(m.group(4)), int(m.group(3)), m.group(5), m.group(6)))
    events.sort()
    current, woken = {}, {}
    latency = collections.defaultdict(list)
    for t, cpu, name, rest in events:
        if name == 'sched:sched_switch':
            m = SWITCH.search(rest)
            if not m:
                continue
            current[cpu] = m.group(3)
            tid = int(m.group(4))
            if tid in woken:
                at, who = woken.pop(tid)
                latency[who].append(t - at)
        elif name.startswith('sched:sched_wakeup'):
            m = WAKE.search(rest)
            if m and serving(m.group(1)):
                woken[int(m.group(2))] = (t, group(current.get(int(m.group(4)), 'swapper')))
    return latency

print(f"# Serving threads' wake-up latency by what their CPU was running (tree {tree}; hot-cold {extra or 'defaults'}; {trace_s} s traced per phase)")
print()
with open(f"{work}/summary.txt") as f:
    summary = f.read().strip().splitlines()
for kind in ('churn', 'quiet'):
    latency = analyse(kind)
    total = sum(len(v) for v in latency.values())
    print(f"## {kind} phase: {total} wake-ups of serving threads")
    print()
    print("| the CPU was running | wake-ups | share | p50 us | p99 us | max us | over 1 ms |")
    print("|---|---|---|---|---|---|---|")
    for who, values in sorted(latency.items(), key=lambda kv: -len(kv[1])):
        values.sort()
        n = len(values)
        over = sum(1 for v in values if v > 0.001)
        print(f"| {who} | {n} | {100 * n / total:.1f}% | {1e6 * values[n // 2]:.0f} | {1e6 * values[min(n - 1, int(n * 0.99))]:.0f} | "
              f"{1e6 * values[-1]:.0f} | {over} ({100 * over / n:.1f}%) |")
    print()
print("The run's own summary (all phases; the traced ones carry perf's cost):")
print()
print("```")
print("\n".join(summary))
print("```")
EOF
