from hubseg.cli import main
from hubseg.models.registry import ModelRegistry


def test_hubseg_train_registers_and_activates(image_folder, tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["train", str(image_folder), "--pixel-size", "1.0", "--model-pixel-size", "2.0", "--encoder", "mobilenet_v2",
            "--no-imagenet", "--epochs", "1", "--batch-size", "4", "--train-tile", "64", "--family", "cli",
            "--val-fraction", "0.25", "--device", "cpu", "--threads", "1", "--activate", "--data-dir", str(data)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "registered cli-v1" in out and "validation:" in out
    # how the gate was calibrated is always printed, and a warning when it was not fitted on held-out regions
    calibration = ModelRegistry(data).card("cli-v1").metrics["calibration"]
    assert calibration["message"] in out and out.count("calibration:") == 1
    if calibration["method"] != "held-out regions" or calibration["rule"].startswith("thin"):
        # a tiny from-scratch model's held-out image has a handful of objects: thin evidence, said loudly
        assert "WARNING: calibration:" in captured.err
    registry = ModelRegistry(data)
    assert registry.active_name() == "cli-v1"
    assert registry.card("cli-v1").provenance["epochs"] == 1


def test_hubseg_train_without_held_out_regions_says_so_loudly(image_folder, tmp_path, capsys):
    data = tmp_path / "data"
    argv = ["train", str(image_folder), "--pixel-size", "1.0", "--model-pixel-size", "2.0", "--encoder", "mobilenet_v2",
            "--no-imagenet", "--epochs", "1", "--batch-size", "4", "--train-tile", "64", "--family", "cli",
            "--val-fraction", "0", "--device", "cpu", "--threads", "1", "--data-dir", str(data)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "WARNING: calibration: NONE" in captured.err and "nothing will be marked uncertain" in captured.err
    assert ModelRegistry(data).card("cli-v1").metrics["calibration"]["method"] == "none"


def test_image_folder_without_pixel_size_is_explained(image_folder, tmp_path, capsys):
    assert main(["train", str(image_folder), "--data-dir", str(tmp_path / "d")]) == 2
    assert "--pixel-size" in capsys.readouterr().err
