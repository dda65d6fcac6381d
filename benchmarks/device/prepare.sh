# Sourced by the device runners (run-scaling.sh, run-bench.sh) on the device machine, from the repository's
# root: records the machine in $OUT/machine-info.txt, puts a taskset stand-in on PATH where util-linux is
# missing, unpacks .dev/bundle.tar.xz (benchmarks/device/bundle.sh) into /tmp/q and sets JAVA_HOME to its
# runtime. Sets DEVICE_T0 (seconds since the epoch, at the start).
#
#   device_separate_cores N   prints N CPUs, comma-separated, each the first hardware thread of a different
#                             physical core (from /sys topology), or the first N CPUs where no topology is given
DEVICE_T0=$(date +%s)
{ date -u; nproc; lscpu; free -g; cat /proc/loadavg
  for c in taskset awk getconf xz lscpu timeout cc; do command -v $c >/dev/null || echo "missing: $c"; done; } > "$OUT/machine-info.txt" 2>&1
if ! command -v taskset >/dev/null; then # util-linux's taskset -c, through Python's sched_setaffinity
  mkdir -p /tmp/shim && cat > /tmp/shim/taskset <<'PY'
#!/usr/bin/env python3
import os, sys
a = sys.argv[1:]
if len(a) < 3 or a[0] != "-c":
    sys.exit("taskset stand-in: only 'taskset -c LIST CMD...'")
cpus = set()
for p in a[1].split(","):
    lo, _, hi = p.partition("-")
    cpus.update(range(int(lo), int(hi or lo) + 1))
os.sched_setaffinity(0, cpus)
os.execvp(a[2], a[2:])
PY
  chmod +x /tmp/shim/taskset && export PATH="/tmp/shim:$PATH"
fi
mkdir -p /tmp/q
if [ ! -x /tmp/q/jre/bin/java ]; then
  if command -v xz >/dev/null; then tar -C /tmp/q -xJf .dev/bundle.tar.xz
  else python3 -c "import tarfile; tarfile.open('.dev/bundle.tar.xz').extractall('/tmp/q')"; fi
fi
echo "bundle ready in $(( $(date +%s) - DEVICE_T0 )) s"
export JAVA_HOME=/tmp/q/jre
"$JAVA_HOME/bin/java" -version 2>&1 | head -1

device_separate_cores() {
  local want="$1" cpu first seen="" out=()
  for cpu in $(ls -d /sys/devices/system/cpu/cpu[0-9]* 2>/dev/null | sed 's/.*cpu//' | sort -n); do
    first=$(cut -d, -f1 "/sys/devices/system/cpu/cpu$cpu/topology/thread_siblings_list" 2>/dev/null | cut -d- -f1)
    [ -n "$first" ] || first=$cpu
    case " $seen " in *" $first "*) continue ;; esac
    seen="$seen $first"
    out+=("$cpu")
    [ "${#out[@]}" -ge "$want" ] && break
  done
  [ "${#out[@]}" -ge "$want" ] || out=($(seq 0 $((want - 1))))
  (IFS=,; echo "${out[*]}")
}
