# Sourced by scripts/java_test.sh and scripts/build_extension.sh: finds a JDK >= 21 and the QuPath kit.
# QuPath 0.6/0.7 run on Java 21+, and the kit's class files are version 65+, which a JDK 17 javac cannot read,
# so the JDK is picked the way the kit's make-runtime.sh picks it: $QPK_JDK, $JAVA_HOME, then /usr/lib/jvm/*
# (newest first), the first that is Java 21 or newer.

# The feature version of the JDK at $1 (e.g. 25), or nothing.
jdk_major() {
  local v=""
  [ -f "$1/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")
  [ -z "$v" ] && [ -x "$1/bin/java" ] && v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java.specification.version = //p')
  echo "$v"
}

# Prints the home of a JDK >= 21 that has javac, jar and java; status 1 when there is none.
pick_jdk21() {
  local c m
  for c in ${QPK_JDK:-} ${JAVA_HOME:-} $(ls -d "${QPK_JDK_SEARCH:-/usr/lib/jvm}"/*/ 2>/dev/null | sort -rV); do
    c=${c%/}
    [ -x "$c/bin/javac" ] && [ -x "$c/bin/jar" ] || continue
    m=$(jdk_major "$c")
    [ -n "$m" ] && [ "$m" -ge 21 ] && { echo "$c"; return 0; }
  done
  return 1
}

# The QuPath 0.6.0 kit (real QuPath compiled from source; see its README): $QUPATH_KIT or ../shared/qupath-kit.
qupath_kit() {
  local root=$1
  echo "${QUPATH_KIT:-$root/../shared/qupath-kit}"
}

# Class path to compile against: the kit's jars + Debian JavaFX + Debian error-prone annotations (only so that
# javac -Xlint:all finds the annotation types gson 2.13's class files refer to, instead of warning).
# Prints the reason on stderr and returns 3 when something is missing.
kit_compile_classpath() {
  local kit=$1
  [ -x "$kit/compile-classpath.sh" ] || { echo "no QuPath kit at $kit (compile-classpath.sh missing)" >&2; return 3; }
  QPK_EXTRA_DEBIAN_JARS="error_prone_annotations ${QPK_EXTRA_DEBIAN_JARS:-}" "$kit/compile-classpath.sh"
}

# Debian jars QuPath's code needs at run time besides the kit (kit README, section 2).
KIT_RUNTIME_JARS="/usr/share/java/guava.jar:/usr/share/java/commons-math3.jar:/usr/share/java/picocli.jar"

# A class path with "DIR/*" entries replaced by DIR's jars (the JUnit console launcher does not expand them).
expand_classpath() {
  local out="" e j
  local IFS=:
  for e in $1; do
    if [ "${e##*/}" = "*" ]; then
      for j in "${e%/*}"/*.jar; do out="$out:$j"; done
    else
      out="$out:$e"
    fi
  done
  echo "${out#:}"
}
