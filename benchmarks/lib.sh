# What the benchmark scripts share; sourced by them after they set ROOT and read their options.
#
#   bench_build        packages server and benchmarks (quietly) unless BUILD=0
#   bench_setup NAME   sets JAVA_BIN; JVM_FLAGS (BENCH_JVM_FLAGS, default "-Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC");
#                      SERVER_JVM_FLAGS, the server's alone under bench_serve (BENCH_SERVER_JVM_FLAGS, default
#                      JVM_FLAGS: to vary the server's collector or heap without changing the load client's);
#                      SERVER_PIN and CLIENT_PIN (taskset to CPU 1 and CPU 0 where taskset and two CPUs exist;
#                      BENCH_SERVER_CPU and BENCH_CLIENT_CPU choose others, e.g. two separate physical cores);
#                      WORK, a fresh temp directory holding copies of the jars (a rebuild during the run must
#                      not pull jars out from under running JVMs); SERVER_JAR; CP, the benchmarks' class
#                      path; PIDS, the processes to stop at exit. The EXIT trap stops every PID in PIDS and
#                      removes WORK, or keeps it and says where when KEEP_WORK=1. With BENCH_DIST set, the jars
#                      come from BENCH_DIST/server/{quiver-server.jar,lib} and BENCH_DIST/bench/{quiver-
#                      benchmarks.jar,lib} (a copy carried to another machine: benchmarks/device/) instead
#                      of the repository's target folders, and bench_build builds nothing
#   bench_serve ARGS...         starts the server pinned, with SERVER_JVM_FLAGS and its GC log in $WORK/server-gc.log
#                               (wall-clock milliseconds), as `serve ARGS`, output in $WORK/server.log; waits until
#                               it serves gRPC; sets SERVER_PID (added to PIDS)
#   bench_jobs_server PORT_BASE ARGS...  bench_serve for the jobs scripts: mlp_classifier (examples/models) in
#                               $WORK/models, job input and output roots $WORK/data and $WORK/out (made here);
#                               gRPC, REST and control ports PORT_BASE+1..+3 (sets GRPC, REST, CONTROL); ARGS
#                               go to `serve` after those (the metrics port, extra flags). With a metrics port it
#                               requests /metrics once before returning: that first request loads a few hundred
#                               classes, which under ParallelGC can cost a full collection (metadata threshold,
#                               48-66 ms here) and must not land in a measured window
#   bench_mlp_perf ARGS...      `quiver perf` against mlp_classifier, pinned to the client's CPU, with JVM_FLAGS
#   bench_jobs_cli ARGS...      the server's `quiver jobs` CLI against CONTROL (submit, status, cancel, list)
#   bench_gc_pauses FROM TO     the server's stop-the-world pauses between two wall-clock times (ms):
#                               "count total_ms longest_ms"
#   bench_json_field FILE NAME  the first numeric value of NAME in a `quiver perf` JSON result
#   bench_thread_ticks [PID]    one line per thread of PID (default SERVER_PID): "name|CPU ticks so far" (user + system)
#   bench_jit_ticks PID         CPU ticks so far of PID's JIT compiler threads (C1, C2)
#   bench_vcpu_probe FILE SECONDS   where a C compiler exists, runs benchmarks/vcpu-speed.c on the server's CPU
#                               for SECONDS (added to PIDS), its lines ("REALTIME_NS NS_PER_ITERATION") in FILE;
#                               FILE is left empty otherwise
#   bench_await_jit PID MIN_S MAX_S [LOAD_PID] [PORT]   while something loads PID, waits until its JIT compiler
#                               threads used at most 4% of a core over 2 s, after at least MIN_S, at most MAX_S (or
#                               until LOAD_PID exits), counted from the moment PID starts serving: its threads other
#                               than the compilers used 0.1 s of CPU since the call or, with PORT, since a client
#                               first held a connection to PORT (a server still starting up also uses CPU). A load
#                               client's own JVM start is not a quiet JIT;
#                               sets JIT_WAITED (seconds serving), JIT_SETTLED (yes/no), JIT_LAST_TICKS (compiler
#                               ticks in the last 2 s) and JIT_START_WAITED (seconds until serving began). A fixed
#                               warm-up is not enough: on one CPU a cold server's compilers still took 25-60% of it
#                               3-15 s into a run
#   bench_scrape_infer_buckets METRICS_PORT   once a second until killed, one line: the wall-clock ms and the
#                               server's cumulative ModelInfer (code OK) call-duration buckets as "le=count"
#                               (quiver_grpc_server_call_duration_seconds: from reading a call's headers to
#                               closing it; no load client's own delays)
#   bench_server_p99 FILE FROM_MS TO_MS   from such a scrape file: the bucket bound (ms) holding the 99th
#                               percentile of the calls between the first scrape at or after FROM_MS and the
#                               last one at or before TO_MS ("-" without calls, "> 10000" past the last bound)
#   bench_mlp_requests N FILE   N KServe v2 REST requests for mlp_classifier, one per line (the same N every time)

bench_build() {
  if [ "${BUILD:-1}" = 1 ] && [ -z "${BENCH_DIST:-}" ]; then
    (cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am package) >&2
  fi
}

bench_setup() {
  JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  read -r -a JVM_FLAGS <<< "${BENCH_JVM_FLAGS:--Xms1g -Xmx1g -XX:+AlwaysPreTouch -XX:+UseParallelGC}"
  read -r -a SERVER_JVM_FLAGS <<< "${BENCH_SERVER_JVM_FLAGS:-${JVM_FLAGS[*]}}"
  SERVER_PIN=() CLIENT_PIN=()
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c "${BENCH_SERVER_CPU:-1}") CLIENT_PIN=(taskset -c "${BENCH_CLIENT_CPU:-0}")
  fi
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/quiver-$1.XXXXXX")"
  mkdir -p "$WORK/dist/server" "$WORK/dist/bench"
  local server="$ROOT/server/target" bench="$ROOT/benchmarks/target"
  if [ -n "${BENCH_DIST:-}" ]; then
    server="$BENCH_DIST/server" bench="$BENCH_DIST/bench"
  fi
  cp -r "$server/quiver-server.jar" "$server/lib" "$WORK/dist/server/"
  cp -r "$bench/quiver-benchmarks.jar" "$bench/lib" "$WORK/dist/bench/"
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

bench_serve() {
  "${SERVER_PIN[@]}" "$JAVA_BIN" "${SERVER_JVM_FLAGS[@]}" "-Xlog:gc:file=$WORK/server-gc.log:timemillis" -jar "$SERVER_JAR" \
    serve "$@" > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local _
  for _ in $(seq 1 120); do
    grep -q "serving gRPC" "$WORK/server.log" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  tail -5 "$WORK/server.log" >&2
  echo "$(basename "$0"): the server did not start (ports in use? set BENCH_PORT_BASE)" >&2
  exit 1
}

bench_jobs_server() {
  GRPC=$(($1 + 1)) REST=$(($1 + 2)) CONTROL=$(($1 + 3))
  shift
  mkdir -p "$WORK/models" "$WORK/data" "$WORK/out"
  cp -r "$ROOT/examples/models/mlp_classifier" "$WORK/models/"
  bench_serve --model-repository "$WORK/models" --host 127.0.0.1 --grpc-port "$GRPC" --http-port "$REST" \
    --control-port "$CONTROL" --jobs-input-root "$WORK/data" --jobs-output-root "$WORK/out" "$@"
  local metrics=""
  while [ $# -gt 0 ]; do
    [ "$1" != --metrics-port ] || metrics=${2:-}
    shift
  done
  if [ -n "$metrics" ] && [ "$metrics" -gt 0 ]; then
    curl -s --max-time 10 "127.0.0.1:$metrics/metrics" > /dev/null || true
  fi
}

bench_mlp_perf() {
  "${CLIENT_PIN[@]}" "$JAVA_BIN" "${JVM_FLAGS[@]}" -cp "$CP" io.quiver.bench.PerfMain -q -m mlp_classifier "$@"
}

bench_thread_ticks() {
  local t comm stat
  for t in /proc/"${1:-$SERVER_PID}"/task/*; do
    { read -r comm < "$t/comm" && read -r stat < "$t/stat"; } 2>/dev/null || continue # the thread ended
    stat=${stat##*) } # the fields after the ")" that ends the name: utime and stime are the 12th and 13th
    set -- $stat
    echo "$comm|$(( ${12} + ${13} ))"
  done
}

bench_jit_ticks() {
  bench_thread_ticks "$1" | awk -F'|' '$1 ~ /^C[12] CompilerThre/ {s += $2} END {print s + 0}'
}

bench_serving_ticks() { # ticks of PID's threads other than the JIT's compilers
  bench_thread_ticks "$1" | awk -F'|' '$1 !~ /^C[12] CompilerThre/ {s += $2} END {print s + 0}'
}

bench_connected() { # PORT: whether a TCP connection to local PORT is established (true where ss is missing)
  ! command -v ss > /dev/null || [ -n "$(ss -Htn state established "( sport = :$1 )" 2>/dev/null | head -1)" ]
}

bench_await_jit() {
  local pid="$1" min="$2" max="$3" load="${4:-}" port="${5:-}" prev cur hz start polls=0
  hz=$(getconf CLK_TCK)
  JIT_WAITED=0 JIT_SETTLED=no JIT_LAST_TICKS=-1 JIT_START_WAITED=0
  # The windows start once the server serves: before that, a quiet JIT says only that no load arrived yet.
  start=""
  while true; do
    if [ -z "$port" ] || [ -n "$start" ] || bench_connected "$port"; then
      [ -n "$start" ] || start=$(bench_serving_ticks "$pid") # counted from the first connection
      [ $(( $(bench_serving_ticks "$pid") - start )) -lt $(( (hz + 9) / 10 )) ] || break
    fi
    if [ $((polls / 4)) -ge "$max" ] || { [ -n "$load" ] && ! kill -0 "$load" 2>/dev/null; }; then
      JIT_START_WAITED=$((polls / 4))
      return
    fi
    sleep 0.25
    polls=$((polls + 1))
  done
  JIT_START_WAITED=$((polls / 4))
  prev=$(bench_jit_ticks "$pid")
  while [ "$JIT_WAITED" -lt "$max" ] && { [ -z "$load" ] || kill -0 "$load" 2>/dev/null; }; do
    sleep 2
    JIT_WAITED=$((JIT_WAITED + 2))
    cur=$(bench_jit_ticks "$pid")
    JIT_LAST_TICKS=$((cur - prev)) prev=$cur
    if [ "$JIT_WAITED" -ge "$min" ] && [ "$JIT_LAST_TICKS" -le $((2 * hz * 4 / 100)) ]; then
      JIT_SETTLED=yes
      return
    fi
  done
}

bench_vcpu_probe() {
  : > "$1"
  if command -v cc > /dev/null && cc -O2 -o "$WORK/vcpu-speed" "$ROOT/benchmarks/vcpu-speed.c" 2> /dev/null; then
    "${SERVER_PIN[@]}" "$WORK/vcpu-speed" "$2" > "$1" &
    PIDS+=("$!")
  fi
}

bench_jobs_cli() {
  "$JAVA_BIN" -jar "$SERVER_JAR" jobs --control "127.0.0.1:$CONTROL" "$@"
}

bench_gc_pauses() {
  awk -v from="$1" -v to="$2" '
    /Pause/ { t = substr($1, 2) + 0; if (t >= from && t <= to) { ms = $NF; sub(/ms$/, "", ms); ms += 0; n++; sum += ms; if (ms > max) max = ms } }
    END { printf "%d %.1f %.1f", n, sum, max }' "$WORK/server-gc.log"
}

bench_json_field() {
  grep -o "\"$2\" *: *[0-9.eE+-]*" "$1" | head -1 | sed 's/.*: *//'
}

bench_mlp_requests() {
  awk -v n="$1" 'BEGIN { srand(7); for (i = 0; i < n; i++) { printf "{\"id\":\"r%d\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[", i;
    for (k = 0; k < 16; k++) printf "%s%.4f", (k ? "," : ""), rand() * 4 - 2; print "]}]}" } }' > "$2"
}

bench_scrape_infer_buckets() {
  while :; do
    printf '%s' "$(date +%s%3N)"
    curl -s --max-time 1 "127.0.0.1:$1/metrics" | awk '/quiver_grpc_server_call_duration_seconds_bucket[{]/ && /ModelInfer/ && /code="OK"/ {
      match($0, /le="[^"]+"/); printf " %s=%s", substr($0, RSTART + 4, RLENGTH - 5), $NF }'
    echo
    sleep 1
  done
}

bench_server_p99() {
  awk -v from="$2" -v to="$3" '
    $1 >= from && a == "" { a = $0 }
    $1 <= to { b = $0 }
    END {
      n = split(a, x, " "); split(b, y, " ")
      if (n < 2) { print "-"; exit }
      total = 0
      for (i = 2; i <= n; i++) { split(x[i], p, "="); split(y[i], q, "="); le[i] = p[1]; d[i] = q[2] - p[2] }
      total = d[n]
      if (total <= 0) { print "-"; exit }
      for (i = 2; i <= n; i++) if (d[i] >= 0.99 * total) { print (le[i] == "+Inf" ? "> 10000" : le[i] * 1000); exit }
    }' "$1"
}
