"""`hubseg project` from the command line, where QuPath is not installed: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]


def hubseg(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hubseg", *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)


@pytest.mark.parametrize("action", [["status"], ["export", "-o", "OUT"], ["predict"]])
def test_without_qupath_every_action_exits_2_with_one_line_saying_how_to_point_at_it(tmp_path, action):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "project.qpproj").write_text("{}")
    no_qupath = tmp_path / "no-qupath"  # paquo looks only here (no search of /opt etc.) and finds nothing
    no_qupath.mkdir()
    env = {**os.environ, "PAQUO_QUPATH_DIR": str(no_qupath)}
    args = [a.replace("OUT", str(tmp_path / "out")) for a in action]
    result = hubseg("project", args[0], str(project / "project.qpproj"), *args[1:], env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "QuPath not found" in lines[0] and "PAQUO_QUPATH_DIR" in lines[0]
    assert not (tmp_path / "out").exists()


def test_missing_project_file_is_a_clear_error(tmp_path):
    result = hubseg("project", "status", str(tmp_path / "nowhere.qpproj"))
    assert result.returncode == 2
    assert "no QuPath project at" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_lists_the_three_actions():
    result = hubseg("project", "--help")
    assert result.returncode == 0
    for action in ("predict", "export", "status"):
        assert action in result.stdout
