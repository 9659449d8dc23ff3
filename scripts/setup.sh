#!/usr/bin/env bash
# Create .venv and install hubseg with its test extras; fetch JavaFX for the QuPath extension (Maven Central).
# Torch is pinned to the build this machine serves from local disk; elsewhere pip takes these versions from PyPI.
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu installs torch from that index instead (CPU-only
# machines: no 3 GB of CUDA libraries); see docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  .venv/bin/python -m pip install -q torch torchvision --index-url "$TORCH_INDEX_URL"
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[test]" "torch==2.14.1" "torchvision==0.29.1"
fi
echo "hubseg installed in .venv ($(.venv/bin/hubseg --version))"
# JavaFX 23.0.2 (linux) from Maven Central for the extension's build and dialog tests (.cache/javafx; once)
. scripts/java_env.sh
if command -v mvn >/dev/null; then
  javafx_classpath "$PWD" >/dev/null && echo "JavaFX $JAVAFX_VERSION in $(javafx_dir "$PWD")" \
    || echo "setup: JavaFX not fetched (see above); scripts/java_test.sh will say why" >&2
else
  echo "setup: no mvn: JavaFX for the extension's tests not fetched (apt-get install maven)" >&2
fi
