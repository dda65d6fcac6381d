#!/usr/bin/env bash
# Runs benchmarks/scaling.sh on the 16-core device machine from the bundle that benchmarks/device/bundle.sh
# made (.dev/bundle.tar.xz: a jlinked JDK 17 runtime, the server and benchmarks jars); the results come
# back under $OUT (scaling.md, log.txt, scaling-results.tgz with every client's JSON and the server logs).
# From this repository's root, through the device tool:
#   run(command="benchmarks/device/run-scaling.sh", carry=[".dev"], timeout_s=600)
# SCALING_ARGS passes options to scaling.sh (default: none, i.e. --cores 1,2,4,8 and 4 open-loop
# clients, ≈7 min); SCALING_TIMEOUT bounds it (default 560 s) so that the results still come back.
#   benchmarks/device/run-scaling.sh --smoke   one point (1 server CPU, no open loop, ≈1.5 min): whether the
#                                              bundle runs there at all, before a full call. The first full
#                                              call ever made (2026-12-05) ended with "the device machine
#                                              stopped answering" after ≈9 min and brought nothing back.
#   benchmarks/device/run-scaling.sh --target  only the two points item 7's target compares (1 and 8 server
#                                              CPUs, no open loop, ≈3 min), so that one call well inside the
#                                              limit decides it; --rest then measures 2 and 4 CPUs and the
#                                              open-loop tails (≈4 min) on the same warm machine.
set -uo pipefail
case "${1:-}" in
  --smoke)
    SCALING_ARGS="--cores 1 --open-loop-clients 0 --windows 1 --warmup-ms 3000 --server-warmup-s 2,4"
    SCALING_TIMEOUT=150 ;;
  --target) SCALING_ARGS="--cores 1,8 --open-loop-clients 0" SCALING_TIMEOUT=${SCALING_TIMEOUT:-330} ;;
  --rest) SCALING_ARGS="--cores 2,4" SCALING_TIMEOUT=${SCALING_TIMEOUT:-400} ;;
  "") ;;
  *) echo "run-scaling.sh: unknown option $1 (--smoke, --target, --rest, or none for everything)" >&2; exit 2 ;;
esac
source benchmarks/device/prepare.sh
SC=/tmp/sc.$(date +%s)
timeout "${SCALING_TIMEOUT:-560}" benchmarks/scaling.sh --dist /tmp/q ${SCALING_ARGS:-} --out "$SC" 2>&1 | tee "$OUT/log.txt"
cp "$SC/scaling.md" "$OUT/" 2>/dev/null
tar -C "$SC" -czf "$OUT/scaling-results.tgz" results logs machine.txt commands.txt date.txt 2>/dev/null
echo "total $(( $(date +%s) - DEVICE_T0 )) s"
