#!/usr/bin/env bash
# Set up (if needed) and run every test: Python (pytest) and the QuPath extension (JUnit: core, adapter on real
# QuPath code, the jar built by scripts/build_extension.sh; see scripts/java_test.sh).
# Ends with one line adding both up: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
.venv/bin/python -m pytest -q -ra --junitxml="$work/pytest.xml" "$@" || status=$?
bash scripts/java_test.sh | tee "$work/java.log" || status=$?
.venv/bin/python - "$work/pytest.xml" "$work/java.log" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
try:
    root = ET.parse(sys.argv[1]).getroot()
    for suite in root.iter("testsuite"):
        tests, fails = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skips = int(suite.get("skipped", 0))
        passed += tests - fails - skips
        failed += fails
        skipped += skips
except (OSError, ET.ParseError):
    failed += 1  # pytest did not get as far as writing its report
java = re.findall(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", open(sys.argv[2]).read(), re.M)
if java:
    p, f, s = java[-1]
    passed, failed, skipped = passed + int(p), failed + int(f), skipped + int(s or 0)
else:
    failed += 1  # the Java run printed no summary
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
