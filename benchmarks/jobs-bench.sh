#!/usr/bin/env bash
# Batch jobs against online traffic (issue 19), one command; prints the figures and writes them to
# docs/benchmarks/batch-jobs.md's raw table (stdout; paste or redirect):
#
#   benchmarks/jobs-bench.sh [--repeats N] [--window-ms MS] [--online-rate R] [--no-build]
#
# 1. Saturation: closed loop (gRPC, concurrency 64) against mlp_classifier -> S req/s.
# 2. Online p99 at 50% load, N repeats: saturation S measured again, then open loop at 0.5 x S for
#    one window without a job and one window with a batch job running (a large JSONL input, cancelled
#    after the window). Ratio = median of the per-repeat p99 ratios. --online-rate R offers R req/s
#    instead of half the saturation (where half is more than the one-core client sends on time: the
#    line says which fraction of saturation R was).
# 3. Job throughput with no online traffic: a 100,000-record job's records/s, against a closed-loop
#    client sending the same kind of records (REST JSON, concurrency 64) at full speed; also the gRPC
#    closed loop for reference. Interleaved N times.
# The server runs pinned to CPU 1 and the client to CPU 0 (taskset), as benchmarks/run.sh does
# (BENCH_PIN=0: unpinned). JOBS_SERVER_FLAGS adds flags to `serve` (an A/B of a server option).
# Each repeat's line also counts the server's GC pauses inside the measured windows (its GC log), and gives
# the server's own p99 for ModelInfer over them (the bound of the bucket holding it, from the server's call
# histogram scraped once a second: bench_server_p99 in lib.sh). The load client is one JVM on one core; at
# tens of thousands of requests a second its own stalls reach its p99, and the server's p99 says which side
# of the socket a change is on. The table gives both ratios.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEATS=3 WINDOW_MS=5000 BUILD=1 ONLINE_RATE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) REPEATS="$2"; shift ;;
    --window-ms) WINDOW_MS="$2"; shift ;;
    --online-rate) ONLINE_RATE="$2"; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "jobs-bench.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
source "$ROOT/benchmarks/lib.sh"
bench_build
bench_setup jobs-bench
# BENCH_PIN=0 leaves placement to the kernel (on a shared machine whose other users pin to the same CPUs).
if [ "${BENCH_PIN:-1}" != 1 ]; then
  SERVER_PIN=() CLIENT_PIN=()
fi
METRICS=$(( ${BENCH_PORT_BASE:-28600} + 4 ))
bench_jobs_server "${BENCH_PORT_BASE:-28600}" --metrics-port "$METRICS" ${JOBS_SERVER_FLAGS:-}
bench_scrape_infer_buckets "$METRICS" > "$WORK/scrape.txt" &
PIDS+=($!)
# The records (as in docs/batch-jobs.md). 2M outlasts the measured windows at ≈ 100k records/s (the
# job is cancelled after them); the warm-up job reads the first 100k.
bench_mlp_requests 2000000 "$WORK/data/2m.jsonl"
head -100000 "$WORK/data/2m.jsonl" > "$WORK/data/100k.jsonl"

now_ms() { date +%s%3N; }
client_bound() { grep -o '"client_bound" *: *[a-z0-9]*' "$1" | head -1 | sed 's/.*: *//'; }
# The server's pauses in the measured windows of a perf run that ended at END_MS (its last 2 windows).
gc_pauses() { bench_gc_pauses "$(( $1 - 2 * WINDOW_MS ))" "$1"; }
# The server's own ModelInfer p99 (ms, bucket bound) in the same windows.
own_p99() { bench_server_p99 "$WORK/scrape.txt" "$(( $1 - 2 * WINDOW_MS ))" "$1"; }

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; pinned: ${SERVER_PIN[*]:-no}; extra server flags: ${JOBS_SERVER_FLAGS:-(none)}; $(date -u)"
bench_mlp_perf -u "127.0.0.1:$GRPC" --concurrency-range 64 -p "$WINDOW_MS" --max-windows 2 --client-warmup 3000 >/dev/null
# One job run to completion first: the server's job path (reader, JSON parsing, encoding, commits) is
# then compiled, as on any server that has run a job before. Without it the first measured job window
# is the JIT compiling that path on the server's one core (C2 at nice 0 beside the event loop).
bench_jobs_cli submit mlp_classifier --input "$WORK/data/100k.jsonl" --output "$WORK/out/warm-up" --wait >/dev/null

# Each repeat measures saturation first (the machine is shared: capacity moves), then one window at
# half of it without a job and one with a job running.
declare -a P99_NO P99_JOB RATIOS OWN_NO OWN_JOB
for r in $(seq 1 "$REPEATS"); do
  # A warmed client (4 s closed loop first): a cold client JVM on one core measured anything from 8.6k to
  # 29.9k req/s here, and half of that is the open loop's rate.
  bench_mlp_perf -u "127.0.0.1:$GRPC" --concurrency-range 64 -p "$WINDOW_MS" --max-windows 2 --client-warmup 4000 \
    --json "$WORK/sat-$r.json" >/dev/null
  SAT=$(bench_json_field "$WORK/sat-$r.json" throughput_rps)
  RATE=${ONLINE_RATE:-$(awk -v s="$SAT" 'BEGIN { printf "%d", s / 2 }')}
  # Each open-loop client first warms its JIT (4 s closed loop, 4 s open loop at half the rate; a cold
  # client on one core stalls and its own backlog would be the p99), then 2 s of warm-up, then the windows.
  OPEN=(-u "127.0.0.1:$GRPC" --request-rate-range "$RATE" -p "$WINDOW_MS" --max-windows 2 --client-warmup 4000)
  bench_mlp_perf "${OPEN[@]}" --json "$WORK/no-$r.json" >/dev/null
  END_NO=$(now_ms)
  sleep 1.1 # the scrape after the windows' end
  GC_NO=$(gc_pauses "$END_NO")
  OWN_NO+=("$(own_p99 "$END_NO")")
  P99_NO+=("$(bench_json_field "$WORK/no-$r.json" p99_us)")
  bench_mlp_perf "${OPEN[@]}" --json "$WORK/job-$r.json" >/dev/null &
  PERF_PID=$!
  sleep 9 # the client is at the end of its JIT warm-up: the job runs through its warm-up and windows
  # Submitted with curl, not the CLI: a CLI JVM starting here would take CPU from both cores during
  # the client's first measured window.
  id=$(curl -sS -X POST "127.0.0.1:$REST/v2/jobs" -d "{\"model\": \"mlp_classifier\", \"input_uri\": \"$WORK/data/2m.jsonl\", \"output_uri\": \"$WORK/out/online-$r\"}" \
    | grep -o '"job-[0-9a-f]*"' | head -1 | tr -d '"')
  wait "$PERF_PID"
  END_JOB=$(now_ms)
  sleep 1.1
  GC_JOB=$(gc_pauses "$END_JOB")
  OWN_JOB+=("$(own_p99 "$END_JOB")")
  P99_JOB+=("$(bench_json_field "$WORK/job-$r.json" p99_us)")
  RATIOS+=("$(awk -v a="${P99_JOB[-1]}" -v b="${P99_NO[-1]}" 'BEGIN { printf "%.2f", a / b }')")
  echo "repeat $r: saturation $SAT req/s, open loop at $RATE req/s ($(awk -v r="$RATE" -v s="$SAT" 'BEGIN { printf "%.0f", 100 * r / s }')% of it): p99 without job ${P99_NO[-1]} us, with job ${P99_JOB[-1]} us (x${RATIOS[-1]}); server's own p99 without / with job ${OWN_NO[-1]} / ${OWN_JOB[-1]} ms; client-bound windows without / with job: $(client_bound "$WORK/no-$r.json") / $(client_bound "$WORK/job-$r.json"); server GC pauses in the windows (count, total ms, longest ms) without job: $GC_NO, with job: $GC_JOB; job after the window: $(bench_jobs_cli status "$id" | head -1); load $(cut -d' ' -f1 /proc/loadavg)"
  bench_jobs_cli cancel "$id" >/dev/null
  sleep 1
done

declare -a JOB_RPS REST_RPS GRPC_RPS
for r in $(seq 1 "$REPEATS"); do
  id=$(bench_jobs_cli submit mlp_classifier --input "$WORK/data/100k.jsonl" --output "$WORK/out/alone-$r" --wait | tail -1 | awk '{print $1}')
  JOB_RPS+=("$(bench_jobs_cli status "$id" | head -1 | grep -o '[0-9]* rec/s' | awk '{print $1}')")
  bench_mlp_perf -i http --http-json -u "127.0.0.1:$REST" --grpc-url "127.0.0.1:$GRPC" --concurrency-range 64 -p "$WINDOW_MS" \
    --max-windows 3 --json "$WORK/rest-$r.json" >/dev/null
  REST_RPS+=("$(bench_json_field "$WORK/rest-$r.json" throughput_rps)")
  bench_mlp_perf -u "127.0.0.1:$GRPC" --concurrency-range 64 -p "$WINDOW_MS" --max-windows 3 --json "$WORK/grpc-$r.json" >/dev/null
  GRPC_RPS+=("$(bench_json_field "$WORK/grpc-$r.json" throughput_rps)")
  echo "repeat $r: job ${JOB_RPS[-1]} rec/s, REST JSON closed loop ${REST_RPS[-1]} req/s, gRPC closed loop ${GRPC_RPS[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
M_NO=$(median "${P99_NO[@]}") M_JOB=$(median "${P99_JOB[@]}") M_RATIO=$(median "${RATIOS[@]}")
declare -a OWN_RATIOS
for i in "${!OWN_NO[@]}"; do
  OWN_RATIOS+=("$(awk -v a="${OWN_JOB[$i]}" -v b="${OWN_NO[$i]}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }')")
done
M_JOBRPS=$(median "${JOB_RPS[@]}") M_REST=$(median "${REST_RPS[@]}") M_GRPC=$(median "${GRPC_RPS[@]}")
echo
echo "| what | median (all repeats) | ratio | goal |"
echo "|---|---|---|---|"
LOAD_LABEL="50% load"
[ -n "$ONLINE_RATE" ] && LOAD_LABEL="$ONLINE_RATE req/s (--online-rate)"
echo "| online p99 at $LOAD_LABEL, without / with a job | ${M_NO} us / ${M_JOB} us (${P99_NO[*]} / ${P99_JOB[*]}) | median of per-repeat ratios ${M_RATIO}x (${RATIOS[*]}) | <= 1.2x |"
echo "| server's own ModelInfer p99 (bucket bound), without / with a job | $(median "${OWN_NO[@]}") ms / $(median "${OWN_JOB[@]}") ms (${OWN_NO[*]} / ${OWN_JOB[*]}) | median of per-repeat ratios $(median "${OWN_RATIOS[@]}")x (${OWN_RATIOS[*]}) | (which side of the socket) |"
echo "| job throughput / REST JSON closed loop | ${M_JOBRPS} / ${M_REST} rec/s (${JOB_RPS[*]} / ${REST_RPS[*]}) | $(awk -v a="$M_JOBRPS" -v b="$M_REST" 'BEGIN { printf "%.2f", a / b }') | >= 0.9 |"
echo "| job throughput / gRPC closed loop (binary tensors) | ${M_JOBRPS} / ${M_GRPC} rec/s (${GRPC_RPS[*]}) | $(awk -v a="$M_JOBRPS" -v b="$M_GRPC" 'BEGIN { printf "%.2f", a / b }') | (reference) |"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
