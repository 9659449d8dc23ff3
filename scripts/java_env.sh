# Sourced by scripts/java_test.sh, scripts/build_extension.sh, .ci/run and scripts/setup.sh (and called by
# tests/project/conftest.py): finds a JDK >= 21, the user's QuPath installation and the JavaFX jars from Maven
# Central. Every rule about where QuPath lives is written here once.

# The feature version of the JDK at $1 (e.g. 25), or nothing.
jdk_major() {
  local v=""
  [ -f "$1/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")
  [ -z "$v" ] && [ -x "$1/bin/java" ] && v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java.specification.version = //p')
  echo "$v"
}

# Prints the home of a JDK >= 21 (QuPath 0.6/0.7 and JavaFX 23 need Java 21) that has javac, jar and java:
# $HUBSEG_JDK, $JAVA_HOME, then /usr/lib/jvm/* (newest first); status 1 when there is none. QuPath's own
# runtime has no javac, so it is never picked.
pick_jdk21() {
  local c m
  for c in ${HUBSEG_JDK:-} ${JAVA_HOME:-} $(ls -d "${HUBSEG_JDK_SEARCH:-/usr/lib/jvm}"/*/ 2>/dev/null | sort -rV); do
    c=${c%/}
    [ -x "$c/bin/javac" ] && [ -x "$c/bin/jar" ] || continue
    m=$(jdk_major "$c")
    [ -n "$m" ] && [ "$m" -ge 21 ] && { echo "$c"; return 0; }
  done
  return 1
}

# The folder of QuPath's jars inside installation $1 (QuPath's own packages: Linux QuPath/lib/app, macOS
# QuPath.app/Contents/app, Windows QuPath\app; the Linux archive unpacks to QuPath-<v>/QuPath/lib/app), or
# nothing. Only QuPath 0.6 and 0.7 count (qupath-gui-fx-0.6.*.jar / 0.7.*).
qupath_app_dir() {
  local d=${1%/} a
  for a in "$d/lib/app" "$d/Contents/app" "$d/app" "$d/QuPath/lib/app" "$d/QuPath.app/Contents/app" "$d"; do
    if compgen -G "$a/qupath-gui-fx-0.[67].*.jar" >/dev/null; then
      echo "$a"
      return 0
    fi
  done
  return 1
}

# The places searched when neither QUPATH_HOME nor PAQUO_QUPATH_DIR is set: paquo's defaults (the folders
# named qupath* in /opt, /Applications, C:/Program Files, /usr/local, ~/Applications, ~/AppData/Local and ~,
# newest name first) and the conda package's folder.
qupath_candidates() {
  local base e
  for base in /opt /Applications "/c/Program Files" "C:/Program Files" /usr/local "$HOME/Applications" \
              "$HOME/AppData/Local" "$HOME"; do
    [ -d "$base" ] || continue
    ls -1 "$base" 2>/dev/null | grep -i '^qupath' | sort -rf | while IFS= read -r e; do echo "$base/$e"; done
  done
  if [ -n "${CONDA_PREFIX:-}" ]; then
    echo "$CONDA_PREFIX/opt/QuPath"; echo "$CONDA_PREFIX/bin/QuPath.app"; echo "$CONDA_PREFIX/Library/QuPath"
  fi
}

# Prints the QuPath 0.6/0.7 installation to use: $QUPATH_HOME, else $PAQUO_QUPATH_DIR, else the first of
# qupath_candidates with QuPath's jars. The printed folder is the one paquo calls qupath_dir (it holds
# lib/app, Contents/app or app). Status 1 with the reason on stderr when there is none, or when QUPATH_HOME
# is set but holds no QuPath 0.6/0.7 (a wrong setting is an error, never a silent fall-back).
qupath_home() {
  local c app
  for c in "${QUPATH_HOME:-}" "${PAQUO_QUPATH_DIR:-}"; do
    [ -n "$c" ] || continue
    if app=$(qupath_app_dir "$c"); then
      echo "${app%/lib/app}" | sed -e 's#/Contents/app$##' -e 's#/app$##'
      return 0
    fi
    echo "$c holds no QuPath 0.6 or 0.7 (no qupath-gui-fx-0.6/0.7 jar in lib/app, Contents/app or app)" >&2
    return 1
  done
  while IFS= read -r c; do
    if app=$(qupath_app_dir "$c"); then
      echo "${app%/lib/app}" | sed -e 's#/Contents/app$##' -e 's#/app$##'
      return 0
    fi
  done < <(qupath_candidates)
  echo "no QuPath 0.6/0.7 installation found; set QUPATH_HOME to one (e.g. /opt/QuPath, /Applications/QuPath.app)" >&2
  return 1
}

# JavaFX 23.0.2 (what QuPath 0.6 ships), linux classifier, from Maven Central: compiles the adapter without
# QuPath and runs the dialog tests. Kept in .cache/javafx (git-ignored); fetched once with mvn.
JAVAFX_VERSION=23.0.2
JAVAFX_MODULES="base graphics controls"
javafx_dir() {
  echo "$1/.cache/javafx"
}

# The JavaFX jars as a class path (fetches them when missing); status 1 with the reason on stderr.
javafx_classpath() {
  local dir m jar cp=""
  dir=$(javafx_dir "$1")
  for m in $JAVAFX_MODULES; do
    jar="$dir/javafx-$m-$JAVAFX_VERSION-linux.jar"
    if [ ! -s "$jar" ]; then
      command -v mvn >/dev/null || { echo "mvn not found: apt-get install maven (fetches $jar)" >&2; return 1; }
      mkdir -p "$dir"
      mvn -q -B dependency:copy -Dartifact="org.openjfx:javafx-$m:$JAVAFX_VERSION:jar:linux" \
        -DoutputDirectory="$dir" >"$dir/mvn.log" 2>&1 \
        || { echo "mvn could not fetch org.openjfx:javafx-$m:$JAVAFX_VERSION (see $dir/mvn.log)" >&2; return 1; }
    fi
    cp="$cp:$jar"
  done
  echo "${cp#:}"
}

# QuPath's jars in installation $1 as a class path (javac and java do not expand "dir/*" for every tool).
qupath_classpath() {
  local app j cp=""
  app=$(qupath_app_dir "$1") || return 1
  for j in "$app"/*.jar; do cp="$cp:$j"; done
  echo "${cp#:}"
}
