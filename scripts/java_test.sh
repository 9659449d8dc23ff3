#!/usr/bin/env bash
# Compile the QuPath extension and run its JUnit 5 tests without Gradle.
#  - With a QuPath 0.6/0.7 installation (QUPATH_HOME, else PAQUO_QUPATH_DIR, else the usual places; see
#    scripts/java_env.sh): scripts/build_extension.sh compiles core + adapter against its jars and writes the
#    jar; every test then runs in one JVM on QuPath's own jars, including the adapter tests on real QuPath and
#    the check of our compile-only declarations against QuPath's classes.
#  - Without QuPath (CI): the adapter is compiled against our compile-only declarations
#    (qupath-extension/compile-api: only for javac, never on a run-time class path) and JavaFX 23.0.2 from
#    Maven Central; the core tests and the dialog tests (qupath-extension/adapter/src/fxtest: real JavaFX
#    windows, no QuPath) run; the adapter tests that need QuPath are counted as skipped, with the reason.
# Dialog windows need a display: $DISPLAY, else xvfb-run (Debian's xvfb). The server tests start the
# repository's own server (.venv/bin/hubseg serve) on 127.0.0.1.
# Needs: a JDK >= 21, mvn (once, for JavaFX), junit5, libgoogle-gson-java, libslf4j-java, xvfb.
# JAVA_TEST_SELECT (JUnit console selectors, e.g. "--select-class qupath.ext.hubseg.ReviewPanelFxTest") runs a part.
# The line before the last: "java_test: N tests found = P passed + F failed + S skipped" (N counts every test
# JUnit found, those of classes skipped or failed as a whole included, and the QuPath tests not compiled);
# last line: "P passed, F failed, S skipped" (scripts/test.sh reads it); exit 1 on failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/java_env.sh"
EXT="$ROOT/qupath-extension"
CORE="$EXT/core"
ADAPTER="$EXT/adapter"
BUILD="$EXT/build/java-test"
GSON_JAR="${GSON_JAR:-/usr/share/java/gson.jar}"
SLF4J_JAR="${SLF4J_JAR:-/usr/share/java/slf4j-api.jar}"
JUNIT_JAR="${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"
# the server tests start .venv/bin/hubseg: make it run this checkout's Python code, whatever the venv's
# editable install points at
export PYTHONPATH="$ROOT:$ROOT/server${PYTHONPATH:+:$PYTHONPATH}"

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
# The dialog tests run without QuPath: they may not import it.
if grep -rlE '^import (static )?(qupath\.lib|qupath\.fx|qupath\.imagej)\.' "$ADAPTER/src/fxtest" >/dev/null; then
  fail "a test in adapter/src/fxtest imports QuPath: $(grep -rlE '^import (static )?(qupath\.lib|qupath\.fx)\.' "$ADAPTER/src/fxtest" | tr '\n' ' ')"
fi
JDK=$(pick_jdk21) || fail "no JDK >= 21 found (JavaFX 23 and QuPath 0.6 need Java 21); install one or set HUBSEG_JDK"
JAVAC=("$JDK/bin/javac" --release 21 -encoding UTF-8)
fx_err=$(mktemp)
FX=$(javafx_classpath "$ROOT" 2>"$fx_err") || fail "no JavaFX jars: $(cat "$fx_err")"
rm -f "$fx_err"
if [ -n "${DISPLAY:-}" ]; then
  WITH_DISPLAY=()
elif command -v xvfb-run >/dev/null; then
  WITH_DISPLAY=(xvfb-run -a -s "-screen 0 1280x1024x24")
else
  fail "no display for the dialog tests: apt-get install xvfb (or set DISPLAY)"
fi

rm -rf "$BUILD"
mkdir -p "$BUILD/compile-api" "$BUILD/test-core" "$BUILD/test-fx" "$BUILD/test-adapter" "$BUILD/reports" "$BUILD/prefs"

# Our declarations are always compiled: the adapter compiles against them without QuPath, and with QuPath
# CompileApiTest compares them (javap) with QuPath's real classes. They go on no run-time class path.
echo "== javac: compile-only declarations of the QuPath API (qupath-extension/compile-api)"
"${JAVAC[@]}" -cp "$FX:$GSON_JAR" -d "$BUILD/compile-api" $(find "$EXT/compile-api/src" -name '*.java') \
  || fail "the compile-only declarations do not compile"

QUPATH_JARS=""
if QUPATH=$(qupath_home 2>"$BUILD/qupath.err"); then
  bash "$ROOT/scripts/build_extension.sh" "$BUILD/main" || fail "the extension does not compile against QuPath in $QUPATH"
  QUPATH_JARS=$(qupath_classpath "$QUPATH")
  LIBS="$QUPATH_JARS"
  compgen -G "$(qupath_app_dir "$QUPATH")/javafx-controls*.jar" >/dev/null || LIBS="$LIBS:$FX"
  JAR=$(ls "$ROOT"/dist/qupath-extension-hubseg-*.jar | head -1)
  qupath_reason=""
else
  qupath_reason=$(cat "$BUILD/qupath.err")
  for j in "$GSON_JAR" "$SLF4J_JAR"; do
    [ -f "$j" ] || fail "$j missing; apt-get install libgoogle-gson-java libslf4j-java"
  done
  mkdir -p "$BUILD/main/core" "$BUILD/main/adapter"
  echo "== javac -Xlint:all -Werror: core (against Debian Gson)"
  "${JAVAC[@]}" -Xlint:all -Werror -cp "$GSON_JAR" -d "$BUILD/main/core" $(find "$CORE/src/main/java" -name '*.java') \
    || fail "core does not compile"
  echo "== javac -Xlint:all -Werror: adapter, against the compile-only declarations + JavaFX $JAVAFX_VERSION"
  "${JAVAC[@]}" -Xlint:all -Werror -cp "$BUILD/main/core:$BUILD/compile-api:$FX:$GSON_JAR:$SLF4J_JAR" \
    -d "$BUILD/main/adapter" $(find "$ADAPTER/src/main/java" -name '*.java') \
    || fail "the adapter does not compile against the declarations in qupath-extension/compile-api"
  cp -r "$ADAPTER/src/main/resources/." "$BUILD/main/adapter/"
  LIBS="$FX:$GSON_JAR:$SLF4J_JAR"   # no QuPath, and never the declarations
  JAR=""
fi
MAIN="$BUILD/main/core:$BUILD/main/adapter"

echo "== javac: core tests, dialog tests"
"${JAVAC[@]}" -cp "$MAIN:$LIBS:$JUNIT_JAR" -d "$BUILD/test-core" $(find "$CORE/src/test/java" -name '*.java') \
  || fail "core tests do not compile"
"${JAVAC[@]}" -cp "$BUILD/test-core:$MAIN:$LIBS:$JUNIT_JAR" -d "$BUILD/test-fx" \
  $(find "$ADAPTER/src/fxtest/java" -name '*.java') || fail "dialog tests do not compile"
TESTS="$BUILD/test-fx:$BUILD/test-core"
qupath_tests=0
if [ -z "$qupath_reason" ]; then
  echo "== javac: adapter tests on real QuPath"
  "${JAVAC[@]}" -cp "$TESTS:$MAIN:$LIBS:$JUNIT_JAR" -d "$BUILD/test-adapter" \
    $(find "$ADAPTER/src/test/java" -name '*.java') || fail "adapter tests do not compile"
  TESTS="$BUILD/test-adapter:$TESTS"
else
  # not compiled without QuPath; each of their test methods counts as skipped, never as passed
  qupath_tests=$(cat $(find "$ADAPTER/src/test/java" -name '*Test.java') | grep -cE '^\s*@(Test|ParameterizedTest|RepeatedTest|TestFactory)\b')
fi

echo "== JUnit 5 (dialogs under ${WITH_DISPLAY[0]:-DISPLAY=$DISPLAY})"
# Everything on the JVM's own class path, as in QuPath: PathIO only deserialises classes of the system class
# loader, so the launcher's --class-path (a child class loader) would make QuPath reject its own .qpdata files.
# Java preferences (QuPath's PathPrefs) go to the build folder, not ~/.java; JavaFX renders in software.
"${WITH_DISPLAY[@]}" "$JDK/bin/java" -Djava.util.prefs.userRoot="$BUILD/prefs" -Dprism.order=sw \
  --enable-native-access=ALL-UNNAMED \
  -Dhubseg.repo="$ROOT" -Dhubseg.jar="$JAR" -Dhubseg.screenshots="$EXT/build/screenshots" \
  -Dhubseg.compileApi="$BUILD/compile-api" -Dhubseg.adapterClasses="$BUILD/main/adapter" \
  -Dhubseg.qupathJars="$QUPATH_JARS" -Dhubseg.qupathMissing="$qupath_reason" \
  -cp "$JUNIT_JAR:$TESTS:$MAIN:$LIBS" \
  org.junit.platform.console.ConsoleLauncher \
  ${JAVA_TEST_SELECT:---select-package qupath.ext.hubseg} \
  --disable-banner --disable-ansi-colors --details=tree --reports-dir "$BUILD/reports" 2>&1 | tee "$BUILD/junit.log"
status=${PIPESTATUS[0]}

# JUnit's XML reports count every test found, also those of a class that failed or was skipped as a whole
# (never started, so missing from the console summary): a failed class's tests are errors, a skipped one's skipped.
attr() { cat "$BUILD"/reports/TEST-*.xml 2>/dev/null | sed -n "s/.*<testsuite [^>]* $1=\"\([0-9]*\)\".*/\1/p" \
  | awk '{ s += $1 } END { print s + 0 }'; }
found=$(attr tests); skipped=$(attr skipped); failed=$(( $(attr failures) + $(attr errors) ))
passed=$((found - skipped - failed))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1; found=$((found + 1))  # the launcher itself failed before any report
fi
skipped=$((skipped + qupath_tests))
found=$((found + qupath_tests))
[ -n "$qupath_reason" ] && echo "java_test: $qupath_tests adapter test(s) on real QuPath SKIPPED: $qupath_reason"
echo "java_test: screenshots in $EXT/build/screenshots"
echo "java_test: $found tests found = $passed passed + $failed failed + $skipped skipped"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
