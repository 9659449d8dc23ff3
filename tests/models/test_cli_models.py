import json

from hubseg.cli import main
from hubseg.models.registry import ModelRegistry
from hubseg.models.testing import make_threshold_model, make_tiny_model


def test_models_list_show_activate(tmp_path, capsys):
    data = tmp_path / "data"
    make_tiny_model(data)
    make_threshold_model(data)
    assert main(["models", "--data-dir", str(data), "activate", "tiny-test-v1"]) == 0
    assert "active model: tiny-test-v1" in capsys.readouterr().out
    assert main(["models", "--data-dir", str(data), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("* tiny-test-v1") for line in lines)
    assert any("threshold-test-v1" in line and not line.startswith("*") for line in lines)
    assert main(["models", "--data-dir", str(data), "show", "threshold-test-v1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "threshold-test-v1" and shown["architecture"]["kind"] == "test-threshold"
    assert main(["models", "--data-dir", str(data), "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) >= 2
    assert ModelRegistry(data).active_name() == "tiny-test-v1"


def test_unknown_model_is_a_one_line_error(tmp_path, capsys):
    data = tmp_path / "data"
    make_tiny_model(data)
    assert main(["models", "--data-dir", str(data), "activate", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "valid names:" in err and "tiny-test-v1" in err
