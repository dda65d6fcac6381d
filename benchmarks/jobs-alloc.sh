#!/usr/bin/env bash
# What a batch job allocates per record in the server (issue 19: the job's allocation sets how often the
# server's young collections stop online requests). One server, no online traffic: a warm-up job, then a
# measured job of N records of the worked example's input (mlp_classifier, 16 FP32 values a line) under a
# JFR recording that starts and ends with a full collection.
#
#   benchmarks/jobs-alloc.sh [--records N] [--top K] [--no-build]
#
# Prints the job's records/s; the bytes the whole server allocated per record, exact, from the heap's
# occupancy before each collection less after the one before it (JFR's GCHeapSummary); how that splits
# over the threads and the K sites allocating most (JFR's allocation samples: statistical, their
# per-thread weights are estimates); and the job's reader thread's own exact figure (JFR's
# ThreadAllocationStatistics, which the committer, ending with the job, does not reach).
# Needs python3 and the JDK's jfr and jcmd. The server runs pinned to CPU 1 (benchmarks/lib.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS=1000000 TOP=15 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS="$2"; shift ;;
    --top) TOP="$2"; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "jobs-alloc.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup jobs-alloc
JDK_BIN="$(dirname "$(readlink -f "$(command -v "$JAVA_BIN")")")"
for tool in jfr jcmd; do
  [ -x "$JDK_BIN/$tool" ] || { echo "jobs-alloc.sh: $JDK_BIN/$tool is missing (a JDK, not a JRE, is needed)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "jobs-alloc.sh: needs python3" >&2; exit 1; }
bench_jobs_server "${BENCH_PORT_BASE:-28800}" --metrics-port -1
bench_mlp_requests "$RECORDS" "$WORK/data/input.jsonl"
job() { bench_jobs_cli submit mlp_classifier --input "$WORK/data/input.jsonl" --output "$WORK/out/$1" --wait >/dev/null; }
job warm-up # the job path compiled before anything is measured
"$JDK_BIN/jcmd" "$SERVER_PID" JFR.start name=alloc settings=profile filename="$WORK/alloc.jfr" >/dev/null
"$JDK_BIN/jcmd" "$SERVER_PID" GC.run >/dev/null
START=$(date +%s%N)
job measured
END=$(date +%s%N)
"$JDK_BIN/jcmd" "$SERVER_PID" GC.run >/dev/null
"$JDK_BIN/jcmd" "$SERVER_PID" JFR.stop name=alloc >/dev/null
"$JDK_BIN/jfr" print --json --events jdk.GCHeapSummary "$WORK/alloc.jfr" > "$WORK/heap.json"
"$JDK_BIN/jfr" print --json --events jdk.ThreadAllocationStatistics "$WORK/alloc.jfr" > "$WORK/threads.json"
"$JDK_BIN/jfr" print --json --stack-depth 4 --events jdk.ObjectAllocationSample "$WORK/alloc.jfr" > "$WORK/samples.json"

echo "jobs-alloc.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $RECORDS records of mlp_classifier"
python3 - "$WORK" "$RECORDS" "$(( (END - START) / 1000000 ))" "$TOP" <<'EOF'
import collections, json, re, sys
work, records, millis, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def events(name):
    return json.load(open(f"{work}/{name}.json"))["recording"]["events"]

# Exact: allocation is what the heap gained between one collection's end and the next one's start.
summaries = sorted(events("heap"), key=lambda e: (e["values"]["gcId"], e["values"]["when"] != "Before GC"))
allocated, after = 0, None
for e in summaries:
    v = e["values"]
    if v["when"] == "Before GC" and after is not None:
        allocated += v["heapUsed"] - after
    elif v["when"] == "After GC":
        after = v["heapUsed"]
collections_ = sum(1 for e in summaries if e["values"]["when"] == "Before GC") - 2  # less the two forced ones
print(f"job: {records / (millis / 1000):,.0f} records/s ({millis} ms)")
print(f"server allocation: {allocated / records:,.0f} bytes per record, exact "
      f"({allocated / 1e9:.2f} GB; {collections_} collections during the job)")

def role(thread):
    if re.fullmatch(r"quiver-job-\d+", thread): return "job reader"
    if thread.startswith("quiver-job-") and thread.endswith("-commit"): return "job committer"
    if thread.startswith("quiver-compute"): return "model instance"
    return "other"

threads = collections.defaultdict(list)
for e in events("threads"):
    t = e["values"]["thread"]
    threads[t["javaName"] if t else "?"].append(e["values"]["allocated"])
readers = [max(v) - min(v) for t, v in threads.items() if role(t) == "job reader" and len(v) > 1]
if readers:
    print(f"job reader thread: {max(readers) / records:,.0f} bytes per record, exact")

PRIMITIVES = {"B": "byte", "C": "char", "I": "int", "J": "long", "S": "short", "Z": "boolean", "F": "float", "D": "double"}
def simple(name):  # JFR's internal names: "[Ljava/lang/String;" -> "String[]", "java/util/ArrayList" -> "ArrayList"
    dims = len(name) - len(name.lstrip("["))
    name = name[dims:]
    name = PRIMITIVES.get(name, name.rstrip(";").lstrip("L") if dims else name)
    return name.split("/")[-1] + "[]" * dims

by_role, by_site, sampled = collections.Counter(), collections.Counter(), 0
for e in events("samples"):
    v = e["values"]
    weight = v["weight"]
    sampled += weight
    thread = v["eventThread"]["javaName"] if v.get("eventThread") else "?"
    by_role[role(thread)] += weight
    frames = (v.get("stackTrace") or {}).get("frames") or []
    site = " < ".join(f'{simple(f["method"]["type"]["name"])}.{f["method"]["name"]}' for f in frames[:3])
    by_site[(simple(v["objectClass"]["name"]), role(thread), site)] += weight
print("by thread (sampled share): " + ", ".join(f"{r} {w / sampled:.0%}" for r, w in by_role.most_common()))
print(f"top {top} sites (sampled, bytes per record scaled to the exact total):")
for (cls, r, site), w in by_site.most_common(top):
    print(f"  {w / sampled * allocated / records:6,.0f}  {cls:<26} {r:<15} {site}")
EOF
