"""The import contract (pyproject.toml, [tool.importlinter]): layers, no cycles, the library never imports the
server. import-linter builds the graph with grimp, which reads every import statement, function-level ones too."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import importlinter.cli as importlinter_cli  # the test extra

ROOT = Path(__file__).resolve().parents[1]


def test_import_contract_is_kept():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = output.getvalue()
    assert "BROKEN" not in report, report
    assert status == importlinter_cli.EXIT_STATUS_SUCCESS, report
    assert report.count(" KEPT") == 5, report  # every contract ran
