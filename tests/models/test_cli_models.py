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


def test_models_delete_refuses_shipped_and_active_and_removes_a_user_model(tmp_path, capsys):
    from hubseg.models.registry import DEFAULT_MODEL_NAME

    data = tmp_path / "data"
    make_tiny_model(data)
    make_threshold_model(data)
    assert main(["models", "activate", "tiny-test-v1", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["models", "delete", DEFAULT_MODEL_NAME, "--yes", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "shipped" in err
    assert main(["models", "delete", "tiny-test-v1", "--yes", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert "active model" in err and "hubseg models activate" in err
    assert main(["models", "delete", "nope", "--yes", "--data-dir", str(data)]) == 2
    assert "threshold-test-v1" in capsys.readouterr().err  # lists what can be deleted
    assert main(["models", "delete", "threshold-test-v1", "--yes", "--data-dir", str(data)]) == 0
    assert "deleted model threshold-test-v1" in capsys.readouterr().out
    registry = ModelRegistry(data)
    assert "threshold-test-v1" not in registry.names() and "tiny-test-v1" in registry.names()
    assert not (data / "models" / "threshold-test-v1").exists()
    assert [p.name for p in (data / "models").iterdir()] == ["tiny-test-v1"]  # nothing half-deleted left
    assert registry.is_shipped(DEFAULT_MODEL_NAME) and DEFAULT_MODEL_NAME in registry.names()
