#!/usr/bin/env bash
# Build the installable QuPath extension without Gradle or the internet, against the user's own QuPath:
#   javac --release 21 -Xlint:all -Werror, core + adapter, against the jars of a QuPath 0.6/0.7 installation
#   (QUPATH_HOME, else PAQUO_QUPATH_DIR, else the usual places; scripts/java_env.sh)
#   ->  dist/qupath-extension-hubseg-<version>.jar
# The jar holds only the extension (classes, resources, the QuPathExtension services entry): QuPath provides
# QuPath, JavaFX, Gson, JTS and slf4j. Java 21 bytecode (class-file major 65) loads in QuPath 0.6 and 0.7.
# usage:  bash scripts/build_extension.sh [CLASSES_DIR]    (keeps the compiled classes there; java_test.sh uses it)
# exit:   0 built; 1 compile error; 3 no QuPath or no JDK >= 21 (one line on stderr saying what to do)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/java_env.sh"
EXT="$ROOT/qupath-extension"

JDK=$(pick_jdk21) || { echo "build_extension: no JDK >= 21 found; install one or set HUBSEG_JDK (QuPath 0.6 needs Java 21)" >&2; exit 3; }
QUPATH=$(qupath_home 2>&1) || { echo "build_extension: $QUPATH" >&2; exit 3; }
CP=$(qupath_classpath "$QUPATH")
# QuPath's packages carry JavaFX as jars in the same folder; only if one does not, take Maven Central's
if ! compgen -G "$(qupath_app_dir "$QUPATH")/javafx-controls*.jar" >/dev/null; then
  FX=$(javafx_classpath "$ROOT") || exit 3
  CP="$CP:$FX"
fi
VERSION=$(sed -n "s/^ *version *= *'\([^']*\)'.*/\1/p" "$ROOT/build.gradle" | head -1)
[ -n "$VERSION" ] || { echo "build_extension: no version = '...' in build.gradle" >&2; exit 1; }

CLASSES=${1:-$EXT/build/extension-classes}
rm -rf "$CLASSES"
mkdir -p "$CLASSES/core" "$CLASSES/adapter"
JAVAC=("$JDK/bin/javac" --release 21 -encoding UTF-8 -Xlint:all -Werror)
echo "== javac --release 21 -Xlint:all -Werror (JDK $(jdk_major "$JDK")): core"
"${JAVAC[@]}" -cp "$CP" -d "$CLASSES/core" $(find "$EXT/core/src/main/java" -name '*.java') || exit 1
echo "== javac --release 21 -Xlint:all -Werror: adapter, against QuPath in $QUPATH"
"${JAVAC[@]}" -cp "$CLASSES/core:$CP" -d "$CLASSES/adapter" $(find "$EXT/adapter/src/main/java" -name '*.java') || exit 1
cp -r "$EXT/adapter/src/main/resources/." "$CLASSES/adapter/"

mkdir -p "$ROOT/dist"
JAR="$ROOT/dist/qupath-extension-hubseg-$VERSION.jar"
MANIFEST=$(mktemp)
trap 'rm -f "$MANIFEST"' EXIT
printf 'Implementation-Title: qupath-extension-hubseg\nImplementation-Version: %s\nAutomatic-Module-Name: io.github.hubseg.qupath\n' \
  "$VERSION" > "$MANIFEST"
rm -f "$JAR"
# fixed entry dates: the same sources give the same jar
"$JDK/bin/jar" --create --file "$JAR" --manifest "$MANIFEST" --date=2026-01-01T00:00:00Z \
  -C "$CLASSES/core" . -C "$CLASSES/adapter" .
echo "build_extension: wrote $JAR ($(find "$CLASSES" -name '*.class' | wc -l) classes)"
