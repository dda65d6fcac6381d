#!/usr/bin/env bash
# Packs what benchmarks/scaling.sh needs on a machine with no JDK and no network (the 16-core device
# machine) into one file, .dev/bundle.tar.xz (ignored by git; ≈46 MB, under the device tool's 64 MiB):
# a jlink'ed JDK 17 runtime (the modules jdeps finds in the server and benchmarks jars, native libraries
# stripped), the server and benchmarks jars with their libraries, TensorFlow's 150 MB native jar left
# out (scaling serves only ONNX models) and ONNX Runtime's jar cut to its linux-x64 library. Every jar
# is re-stored uncompressed so that xz compresses across all of them.
#
#   benchmarks/device/bundle.sh          then, on the device: benchmarks/device/run-scaling.sh
#
# Environment: JDK17 (default /usr/lib/jvm/java-17-openjdk-amd64).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
JDK17="${JDK17:-/usr/lib/jvm/java-17-openjdk-amd64}"
for tool in xz zip unzip strip gcc; do command -v "$tool" >/dev/null || { echo "bundle.sh: needs $tool" >&2; exit 1; }; done
(cd "$ROOT" && ./mvnw -B -q -DskipTests -pl server,benchmarks -am install) >&2
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/quiver-bundle.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/server/lib" "$STAGE/bench/lib"
cp "$ROOT/server/target/quiver-server.jar" "$STAGE/server/"
cp "$ROOT/server/target/lib/"*.jar "$STAGE/server/lib/"
cp "$ROOT/benchmarks/target/quiver-benchmarks.jar" "$STAGE/bench/"
rm -f "$STAGE"/server/lib/tensorflow-core-native-*-linux-x86_64.jar
# Stored (uncompressed) jars: xz then compresses the classes of all of them together.
restore() {
  local jar="$1" dir
  dir="$(mktemp -d "$STAGE/x.XXXXXX")"
  (cd "$dir" && unzip -q "$jar" && rm -f "$jar" && zip -q -0 -r -X "$jar" .)
  rm -rf "$dir"
}
zip -q -d "$STAGE"/server/lib/onnxruntime-*.jar 'ai/onnxruntime/native/osx*' 'ai/onnxruntime/native/win*' \
  'ai/onnxruntime/native/linux-aarch64/*' || true
for jar in "$STAGE"/server/lib/*.jar "$STAGE"/server/quiver-server.jar "$STAGE"/bench/quiver-benchmarks.jar; do
  restore "$jar"
done
# The benchmarks' libraries: the server's copy where it has one (a hard link: tar stores it once).
for jar in "$ROOT"/benchmarks/target/lib/*.jar; do
  name="$(basename "$jar")"
  if [ -f "$STAGE/server/lib/$name" ]; then
    ln "$STAGE/server/lib/$name" "$STAGE/bench/lib/$name"
  elif [[ "$name" != tensorflow-core-native-*-linux-x86_64.jar ]]; then
    cp "$jar" "$STAGE/bench/lib/" && restore "$STAGE/bench/lib/$name"
  fi
done
MODULES=$("$JDK17/bin/jdeps" --print-module-deps --ignore-missing-deps --multi-release 17 \
  --class-path "$ROOT/benchmarks/target/lib/*" "$ROOT/benchmarks/target/quiver-benchmarks.jar" "$ROOT"/server/target/lib/quiver-*.jar)
# Plus what jdeps cannot see: JMX over the Attach API (server probes), TLS curves, zip file systems.
MODULES="$MODULES,java.management.rmi,jdk.management.agent,jdk.crypto.ec,jdk.zipfs,java.logging,java.xml"
"$JDK17/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=0 --output "$STAGE/jre"
strip --strip-unneeded "$STAGE"/jre/lib/server/libjvm.so "$STAGE"/jre/lib/*.so 2>/dev/null || true
# The hot-cold control process (run-bench.sh hot-cold-control), linked statically: the device may have no compiler.
mkdir -p "$STAGE/tools"
gcc -O2 -static -o "$STAGE/tools/duty-load" "$ROOT/benchmarks/duty-load.c"
mkdir -p "$ROOT/.dev"
tar -C "$STAGE" -cf - jre server bench tools | xz -T0 -9 > "$ROOT/.dev/bundle.tar.xz"
echo "bundle.sh: $(du -h "$ROOT/.dev/bundle.tar.xz" | cut -f1) in .dev/bundle.tar.xz (modules: $MODULES)" >&2
