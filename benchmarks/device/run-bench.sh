#!/usr/bin/env bash
# Runs a 2-core benchmark of this repository on the device machine, whose cores are its own, from the bundle
# that benchmarks/device/bundle.sh made: the checks that the shared 2-vCPU development VM cannot decide
# because its vCPUs slow each other down (docs/benchmarks/PROFILE.md, "What moves with the levels").
# Everything is pinned to CPUs on separate physical cores (prepare.sh's device_separate_cores); results
# come back under $OUT. From this repository's root, through the device tool:
#   run(command="benchmarks/device/run-bench.sh overload", carry=[".dev"], timeout_s=600)
#
#   run-bench.sh overload [overload.sh options]   issue 12's overload check (default --repeats 3, ≈5 min):
#                                                 server on one core, client on another; $OUT/overload.md
#   run-bench.sh hot-cold [hot-cold options]      issue 17's hot set beside a churning cold tail, the bench
#                                                 JVM on two separate cores (default --pairs 6 --hot-rate 10000
#                                                 --concurrency 64, ≈2.5 min: the open-loop hot set below
#                                                 saturation, the case that misses on the 2-vCPU VM);
#                                                 $OUT/hot-cold.txt
#   run-bench.sh hot-cold-control [options]       the same with the control in the churn phases instead of the
#                                                 cold tail (benchmarks/duty-load.c, 114 ms of CPU a second
#                                                 under SCHED_IDLE, on the same two cores; lifecycle.md, "A
#                                                 control"): the gap between the two runs is Quiver's own
#                                                 part; $OUT/hot-cold-control.txt
# BENCH_TIMEOUT bounds the benchmark (default 540 s) so that what it wrote still comes back.
set -uo pipefail
what="${1:-}"
shift || true
case "$what" in
  overload|hot-cold|hot-cold-control) ;;
  *) echo "run-bench.sh: overload, hot-cold or hot-cold-control, then that benchmark's options" >&2; exit 2 ;;
esac
source benchmarks/device/prepare.sh
CPUS=$(device_separate_cores 2)
echo "CPUs on separate cores: $CPUS" | tee -a "$OUT/machine-info.txt"
args=("$@")
case "$what" in
  overload)
    [ "${#args[@]}" -gt 0 ] || args=(--repeats 3)
    BENCH_DIST=/tmp/q BENCH_CLIENT_CPU=${CPUS%,*} BENCH_SERVER_CPU=${CPUS#*,} timeout "${BENCH_TIMEOUT:-540}" \
      benchmarks/overload.sh --no-build --out "$OUT/overload.md" "${args[@]}" > "$OUT/log.txt" 2>&1
    rc=$?
    ;;
  hot-cold|hot-cold-control)
    [ "${#args[@]}" -gt 0 ] || args=(--pairs 6 --hot-rate 10000 --concurrency 64)
    [ "$what" = hot-cold ] || args+=(--churn-command "/tmp/q/tools/duty-load 285 32 1024")
    timeout "${BENCH_TIMEOUT:-540}" taskset -c "$CPUS" "$JAVA_HOME/bin/java" -Xms512m -Xmx1g \
      -cp "/tmp/q/bench/quiver-benchmarks.jar:/tmp/q/bench/lib/*" io.quiver.bench.lifecycle.LifecycleBench hot-cold \
      --out "$OUT/$what.txt" "${args[@]}" > "$OUT/$what-log.txt" 2>&1
    rc=$?
    ;;
esac
echo "exit $rc after $(( $(date +%s) - DEVICE_T0 )) s" | tee -a "$OUT/log.txt"
