# What the benchmark scripts share; sourced by them after they set ROOT and read their options.
#
#   bench_build        packages server and benchmarks (quietly) unless BUILD=0
#   bench_setup NAME   sets JAVA_BIN; JVM_FLAGS (BENCH_JVM_FLAGS, default "-Xms1g -Xmx2g -XX:+UseParallelGC");
#                      SERVER_PIN and CLIENT_PIN (taskset to CPU 1 and CPU 0 where taskset and two CPUs exist);
#                      WORK, a fresh temp directory holding copies of the jars (a rebuild during the run must
#                      not pull jars out from under running JVMs); SERVER_JAR; CP, the benchmarks' class
#                      path; PIDS, the processes to stop at exit. The EXIT trap stops every PID in PIDS and
#                      removes WORK, or keeps it and says where when KEEP_WORK=1.

bench_build() {
  if [ "${BUILD:-1}" = 1 ]; then
    (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am package) >&2
  fi
}

bench_setup() {
  JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx2g -XX:+UseParallelGC}"
  SERVER_PIN=() CLIENT_PIN=()
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 1) CLIENT_PIN=(taskset -c 0)
  fi
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-$1.XXXXXX")"
  mkdir -p "$WORK/dist/server" "$WORK/dist/bench"
  cp -r "$ROOT/server/target/quiver-server.jar" "$ROOT/server/target/lib" "$WORK/dist/server/"
  cp -r "$ROOT/benchmarks/target/quiver-benchmarks.jar" "$ROOT/benchmarks/target/lib" "$WORK/dist/bench/"
  SERVER_JAR="$WORK/dist/server/quiver-server.jar"
  CP="$WORK/dist/bench/quiver-benchmarks.jar:$WORK/dist/bench/lib/*"
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "$(basename "$0"): work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
