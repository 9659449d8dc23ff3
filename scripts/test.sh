#!/usr/bin/env bash
# Set up (if needed) and run every test: Python (pytest) and the QuPath extension's Java core (JUnit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m pytest -q -ra "$@" || status=$?
bash scripts/java_test.sh || status=$?
exit $status
