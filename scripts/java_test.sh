#!/usr/bin/env bash
# Compile the QuPath extension and run its JUnit 5 tests without Gradle or the internet.
#  - With the QuPath 0.6.0 kit (../shared/qupath-kit or $QUPATH_KIT; always in CI) and a JDK >= 21:
#    scripts/build_extension.sh compiles core + adapter with javac --release 21 -Xlint:all -Werror against real
#    QuPath and writes the jar; the core tests and the adapter tests then run in one JVM on the kit's real QuPath
#    classes (headless; Debian guava/commons-math3/picocli at run time).
#  - Without the kit: the core alone, against Debian's Gson; the adapter counts as 1 skipped, never passed.
# The server tests start the repository's own server (.venv/bin/hubseg serve) on 127.0.0.1.
# Needs: junit5, libgoogle-gson-java, and for the adapter libopenjfx-java liberror-prone-java libguava-java
# libcommons-math3-java libpicocli-java. Last line: "N passed, N failed, N skipped"; exit 1 on failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/java_env.sh"
EXT="$ROOT/qupath-extension"
CORE="$EXT/core"
ADAPTER="$EXT/adapter"
BUILD="$EXT/build/java-test"
GSON_JAR="${GSON_JAR:-/usr/share/java/gson.jar}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"

fail() {
  echo "java_test: $1" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
}

[ -f "$JUNIT_JAR" ] || fail "$JUNIT_JAR missing; apt-get install junit5 (or set JUNIT_JAR)"
# The core must stay free of QuPath and JavaFX so that it compiles and is tested without them.
if grep -rlE '^import (static )?(qupath\.lib|qupath\.fx|qupath\.imagej|javafx)\.' "$CORE/src" >/dev/null; then
  fail "core imports QuPath or JavaFX: $(grep -rlE '^import (static )?(qupath\.lib|qupath\.fx|qupath\.imagej|javafx)\.' "$CORE/src" | tr '\n' ' ')"
fi

rm -rf "$BUILD"
mkdir -p "$BUILD/test-core" "$BUILD/test-adapter" "$BUILD/reports" "$BUILD/prefs"
extra_skipped=0
adapter_reason=""
KIT=$(qupath_kit "$ROOT")
if ! JDK=$(pick_jdk21); then
  adapter_reason="no JDK >= 21 (QuPath 0.6 needs Java 21; set QPK_JDK)"
elif ! [ -d "$KIT" ]; then
  adapter_reason="no QuPath kit at $KIT (set QUPATH_KIT); CI has one"
elif ! KIT_CP=$(kit_compile_classpath "$KIT" 2>"$BUILD/kit.err"); then
  fail "the QuPath kit needs Debian jars: $(cat "$BUILD/kit.err")"
fi

if [ -z "$adapter_reason" ]; then
  for j in ${KIT_RUNTIME_JARS//:/ }; do
    [ -f "$j" ] || fail "$j missing; apt-get install libguava-java libcommons-math3-java libpicocli-java"
  done
  bash "$ROOT/scripts/build_extension.sh" "$BUILD/main" || fail "the extension does not compile against QuPath"
  JAVAC=("$JDK/bin/javac" --release 21 -encoding UTF-8)
  JAVA="$JDK/bin/java"
  MAIN="$BUILD/main/core:$BUILD/main/adapter"
  LIBS="$(expand_classpath "$KIT_CP"):$KIT_RUNTIME_JARS"
  JAR=$(ls "$ROOT"/dist/qupath-extension-hubseg-*.jar | head -1)
else
  extra_skipped=1  # reported once, next to the summary line
  [ -f "$GSON_JAR" ] || fail "$GSON_JAR missing; apt-get install libgoogle-gson-java (or set GSON_JAR)"
  if JDK=$(pick_jdk21); then
    JAVAC=("$JDK/bin/javac" --release 21 -encoding UTF-8); JAVA="$JDK/bin/java"
  else
    command -v javac >/dev/null || fail "javac not found; install a JDK 21+"
    JAVAC=(javac --release 17 -encoding UTF-8); JAVA=java   # the core alone is plain Java 17
  fi
  mkdir -p "$BUILD/main/core"
  echo "== javac ${JAVAC[1]} ${JAVAC[2]} -Xlint:all -Werror: core (against Debian Gson)"
  "${JAVAC[@]}" -Xlint:all -Werror -cp "$GSON_JAR" -d "$BUILD/main/core" $(find "$CORE/src/main/java" -name '*.java') \
    || fail "core does not compile"
  MAIN="$BUILD/main/core"
  LIBS="$GSON_JAR"
  JAR=""
fi

echo "== javac: core tests"
"${JAVAC[@]}" -cp "$MAIN:$LIBS:$JUNIT_JAR" -d "$BUILD/test-core" $(find "$CORE/src/test/java" -name '*.java') \
  || fail "core tests do not compile"
TESTS="$BUILD/test-core"
if [ -z "$adapter_reason" ]; then
  echo "== javac: adapter tests"
  "${JAVAC[@]}" -cp "$TESTS:$MAIN:$LIBS:$JUNIT_JAR" -d "$BUILD/test-adapter" \
    $(find "$ADAPTER/src/test/java" -name '*.java') || fail "adapter tests do not compile"
  TESTS="$BUILD/test-adapter:$TESTS"
fi

echo "== JUnit 5"
# Everything on the JVM's own class path, as in QuPath: PathIO only deserialises classes of the system class
# loader, so the launcher's --class-path (a child class loader) would make QuPath reject its own .qpdata files.
# Headless; Java preferences (QuPath's PathPrefs) go to the build folder, not ~/.java.
"$JAVA" -Djava.awt.headless=true -Djava.util.prefs.userRoot="$BUILD/prefs" \
  -Dhubseg.repo="$ROOT" -Dhubseg.jar="$JAR" -cp "$JUNIT_JAR:$TESTS:$MAIN:$LIBS" \
  org.junit.platform.console.ConsoleLauncher \
  --select-package qupath.ext.hubseg \
  --disable-banner --disable-ansi-colors --details=tree --reports-dir "$BUILD/reports" 2>&1 | tee "$BUILD/junit.log"
status=${PIPESTATUS[0]}

count() { sed -n "s/.*\[ *\([0-9][0-9]*\) tests $1 *\].*/\1/p" "$BUILD/junit.log" | tail -1; }
passed=$(count successful); failed=$(count failed); skipped=$(count skipped); aborted=$(count aborted)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}; aborted=${aborted:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the launcher itself failed (e.g. a container initialisation error)
fi
skipped=$((skipped + aborted + extra_skipped))
[ -n "$adapter_reason" ] && echo "java_test: adapter SKIPPED: $adapter_reason"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
