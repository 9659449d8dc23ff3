#!/usr/bin/env bash
# Compile the QuPath extension's core (pure Java 17, no QuPath/JavaFX) and run its JUnit 5 tests
# without Gradle or the internet: javac --release 17 against Debian's Gson (libgoogle-gson-java) and
# the JUnit console launcher (junit5). The integration tests start the repository's own server
# (.venv/bin/hubseg serve) on 127.0.0.1. Last line: "N passed, N failed, N skipped"; exit 1 on failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORE="$ROOT/qupath-extension/core"
BUILD="$ROOT/qupath-extension/build/java-test"
GSON_JAR="${GSON_JAR:-/usr/share/java/gson.jar}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"

fail() {
  echo "java_test: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

command -v javac >/dev/null || fail "javac not found; install a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
[ -f "$GSON_JAR" ] || fail "$GSON_JAR missing; apt-get install libgoogle-gson-java (or set GSON_JAR)"
[ -f "$JUNIT_JAR" ] || fail "$JUNIT_JAR missing; apt-get install junit5 (or set JUNIT_JAR)"

rm -rf "$BUILD"
mkdir -p "$BUILD/main" "$BUILD/test" "$BUILD/reports"

echo "== javac --release 17: core main"
find "$CORE/src/main/java" -name '*.java' > "$BUILD/main-sources.txt"
javac --release 17 -encoding UTF-8 -Xlint:all -Werror -cp "$GSON_JAR" -d "$BUILD/main" @"$BUILD/main-sources.txt" \
  || fail "core does not compile"

# The core must stay free of QuPath and JavaFX so it compiles and tests here.
if grep -rlE '^import (qupath\.lib|qupath\.fx|javafx)\.' "$CORE/src" >/dev/null; then
  fail "core imports QuPath or JavaFX: $(grep -rlE '^import (qupath\.lib|qupath\.fx|javafx)\.' "$CORE/src" | tr '\n' ' ')"
fi

echo "== javac --release 17: core tests"
find "$CORE/src/test/java" -name '*.java' > "$BUILD/test-sources.txt"
javac --release 17 -encoding UTF-8 -cp "$BUILD/main:$GSON_JAR:$JUNIT_JAR" -d "$BUILD/test" @"$BUILD/test-sources.txt" \
  || fail "core tests do not compile"

echo "== JUnit 5"
java -Dhubseg.repo="$ROOT" -jar "$JUNIT_JAR" \
  --class-path "$BUILD/test:$BUILD/main:$GSON_JAR" \
  --select-package qupath.ext.hubseg.core \
  --disable-banner --disable-ansi-colors --details=tree --reports-dir "$BUILD/reports" 2>&1 | tee "$BUILD/junit.log"
status=${PIPESTATUS[0]}

count() { sed -n "s/.*\[ *\([0-9][0-9]*\) tests $1 *\].*/\1/p" "$BUILD/junit.log" | tail -1; }
passed=$(count successful); failed=$(count failed); skipped=$(count skipped); aborted=$(count aborted)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}; aborted=${aborted:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the launcher itself failed (e.g. a container initialisation error)
fi
skipped=$((skipped + aborted))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
