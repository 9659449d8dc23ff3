"""CLI hardening (items 13–18): every bad argument is one line and exit 2 before any work; outputs,
signals, temp files, permissions, the overlay legend, the review list and undefined metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hubseg.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from hubseg.models.testing import make_threshold_model

    folder = tmp_path_factory.mktemp("hubseg-data")
    make_threshold_model(folder, pixel_size_um=1.0, tile_size=64)
    return folder


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory, tiff_writer, tissue_image):
    image = tissue_image(400, 500, disks=[(100, 100, 40, 40), (350, 250, 50, 100)])
    return tiff_writer(tmp_path_factory.mktemp("slides") / "slide.ome.tif", image, 0.5)


def detect_args(data_dir, slide_path, *extra):
    return ["detect", str(slide_path), "--model", "threshold-test-v1", "--data-dir", str(data_dir), "--device", "cpu",
            "--quiet", *extra]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- 13: output paths are checked before any work -------------------------------------------------------
@pytest.mark.parametrize("flag", ["-o", "--overlay"])
def test_unwritable_output_is_refused_before_any_work(data_dir, slide_path, tmp_path, capsys, flag):
    # The model named does not exist: had detection started, that would be the error instead.
    args = ["detect", str(slide_path), "--model", "no-such-model", "--data-dir", str(data_dir), "--quiet"]
    args += ["-o", "/proc/a.geojson"] if flag == "-o" else ["-o", str(tmp_path / "ok.geojson"), "--overlay", "/proc/a.png"]
    assert cli_main(args) == 2
    line = one_error_line(capsys)
    assert flag in line and "/proc" in line and "cannot write" in line
    assert not (tmp_path / "ok.geojson").exists()


def test_output_under_a_file_and_output_that_is_a_folder(data_dir, slide_path, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(blocker / "out.geojson"))) == 2
    assert f"{blocker} is a file, not a folder" in one_error_line(capsys)
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path))) == 2
    assert "is a folder" in one_error_line(capsys)


def test_missing_output_folder_is_refused_with_the_mkdir_command(data_dir, slide_path, tmp_path, capsys):
    target = tmp_path / "results" / "case 1" / "out.geojson"
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(target))) == 2
    line = one_error_line(capsys)
    assert f"mkdir -p '{target.parent}'" in line
    assert not target.parent.exists()  # never created silently


def test_same_file_for_geojson_and_overlay_is_refused(data_dir, slide_path, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert cli_main(detect_args(data_dir, slide_path, "-o", out, "--overlay", out)) == 2
    assert "name the same file" in one_error_line(capsys)


# ---- 14: pixel size range and tested band --------------------------------------------------------------
def _limit_memory():  # run in the child: a regression must fail with MemoryError, not exhaust the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))


@pytest.mark.parametrize("value", ["0.0001", "1e9", "1e-300"])
def test_absurd_pixel_size_is_one_line_naming_flag_and_range(data_dir, slide_path, tmp_path, value):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "server")]), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hubseg", *detect_args(data_dir, slide_path, "--pixel-size", value,
                                                       "-o", str(tmp_path / "o.geojson"))],
        env=env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--pixel-size" in lines[0] and "between 0.05 and 20" in lines[0]
    assert not (tmp_path / "o.geojson").exists()


@pytest.mark.parametrize("value", ["nan", "0", "-1", "25"])
def test_impossible_pixel_size_names_the_range(data_dir, slide_path, tmp_path, capsys, value):
    assert cli_main(detect_args(data_dir, slide_path, "--pixel-size", value, "-o", str(tmp_path / "o.geojson"))) == 2
    assert "--pixel-size must be between 0.05 and 20" in one_error_line(capsys)


def test_pixel_size_outside_tested_band_warns_once_and_runs(data_dir, slide_path, tmp_path, capsys):
    out = tmp_path / "o.geojson"
    assert cli_main(detect_args(data_dir, slide_path, "--pixel-size", "0.1", "-o", str(out))) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "warning" in err[0] and "--pixel-size" in err[0] and "0.2–4" in err[0]
    assert json.loads(out.read_text())["properties"]["pixel_size_um"] == 0.1


def test_evaluate_and_train_check_the_pixel_size_too(data_dir, tmp_path, capsys):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    assert cli_main(["evaluate", str(tmp_path / "i"), str(tmp_path / "m"), "--pixel-size", "1e9",
                     "--data-dir", str(data_dir)]) == 2
    assert "--pixel-size must be between" in one_error_line(capsys)
    assert cli_main(["train", str(tmp_path / "i"), "--pixel-size", "0.001", "--data-dir", str(data_dir)]) == 2
    assert "--pixel-size must be between" in one_error_line(capsys)


# ---- 15: temporary map files are removed on every catchable signal; stale ones swept --------------------
def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_killed_detect_leaves_no_map_files(data_dir, tmp_path_factory, tiff_writer, tissue_image, tmp_path, signame):
    # 3200×3200 px at the model's 1 µm/px: above the 8 MP in-memory limit, so the maps go to disk.
    big = tmp_path_factory.getbasetemp() / "big.ome.tif"
    if not big.exists():
        tiff_writer(big, tissue_image(3200, 3200, disks=[(800, 800, 300)]), 1.0, levels=2, tile=256)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "server")]),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hubseg", *detect_args(data_dir, big, "--batch-size", "1", "--tta", "all",
                                                       "-o", str(tmp_path / "o.geojson"))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        maps = lambda: list(scratch.glob("hubseg-maps-*/*.f32"))  # noqa: E731
        assert _wait_for(lambda: len(maps()) == 2 or process.poll() is not None, 120), "maps never appeared"
        assert process.poll() is None, "detection finished before the signal; make the slide bigger"
        assert all(f"hubseg-maps-{process.pid}-" in str(p) for p in maps())
        process.send_signal(getattr(signal, signame))
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + getattr(signal, signame)
    assert f"stopped by {signame}" in err and "Traceback" not in err
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "o.geojson").exists()


def test_stale_map_folders_of_dead_processes_are_swept(tmp_path, monkeypatch):
    from hubseg.tempmaps import make_map_dir

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"hubseg-maps-{dead.pid}-abc"
    live = tmp_path / f"hubseg-maps-{os.getppid()}-def"  # our parent is alive
    legacy_old, legacy_new = tmp_path / "hubseg-maps-old1", tmp_path / "hubseg-maps-new1"
    for folder in (stale, live, legacy_old, legacy_new):
        folder.mkdir()
        (folder / "energy.f32").write_bytes(b"\0" * 16)
    long_ago = time.time() - 3 * 24 * 3600
    os.utime(legacy_old / "energy.f32", (long_ago, long_ago))
    os.utime(legacy_old, (long_ago, long_ago))
    unrelated = tmp_path / "hubseg-mapsX"
    unrelated.mkdir()
    fresh = Path(make_map_dir())
    assert fresh.parent == tmp_path and fresh.name.startswith(f"hubseg-maps-{os.getpid()}-")
    assert not stale.exists() and not legacy_old.exists()
    assert live.exists() and legacy_new.exists() and unrelated.exists() and fresh.exists()


# ---- 16: data dir, negative regions, flag names, overlay format, permissions ----------------------------
@pytest.mark.parametrize("command", [["models", "list"], ["detect", "s.tif", "-o", "x.geojson"]])
def test_unusable_data_dir_is_one_line(tmp_path, capsys, command, slide_path):
    argv = [command[0], "--data-dir", "/proc/x", *command[1:]]
    if command[0] == "detect":
        argv = ["detect", str(slide_path), "--data-dir", "/proc/x", "-o", str(tmp_path / "x.geojson"), "--quiet"]
    assert cli_main(argv) == 2
    line = one_error_line(capsys)
    assert "cannot use data directory /proc/x" in line and "--data-dir" in line


def test_negative_region_coordinates_are_accepted(data_dir, slide_path, tmp_path):
    out = tmp_path / "neg.geojson"
    assert cli_main(detect_args(data_dir, slide_path, "--region", "-5,-5,205,205", "-o", str(out))) == 0
    properties = json.loads(out.read_text())["properties"]
    assert properties["region"][:2] in ([-5, -5], [0, 0])  # clipped to the slide or kept, never an argparse error
    out2 = tmp_path / "neg2.geojson"
    assert cli_main(detect_args(data_dir, slide_path, "--region=-5,-5,205,205", "-o", str(out2))) == 0


@pytest.mark.parametrize("extra, flag", [(["--min-area", "-5"], "--min-area"), (["--threshold", "1.5"], "--threshold"),
                                         (["--batch-size", "0"], "--batch-size"), (["--review", "-1"], "--review")])
def test_bad_values_name_the_cli_flag(data_dir, slide_path, tmp_path, capsys, extra, flag):
    assert cli_main(detect_args(data_dir, slide_path, *extra, "-o", str(tmp_path / "x.geojson"))) == 2
    line = one_error_line(capsys)
    assert flag in line and "_um2" not in line


@pytest.mark.parametrize("suffix, magic", [(".jpg", b"\xff\xd8\xff"), (".jpeg", b"\xff\xd8\xff"), (".png", b"\x89PNG"),
                                           (".tif", b"II*\x00")])
def test_overlay_is_written_in_the_format_its_suffix_names(data_dir, slide_path, tmp_path, suffix, magic):
    overlay = tmp_path / f"overlay{suffix}"
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path / "x.geojson"), "--overlay", str(overlay))) == 0
    assert overlay.read_bytes().startswith(magic)


def test_overlay_with_unknown_suffix_is_refused_before_work(data_dir, slide_path, tmp_path, capsys):
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path / "x.geojson"), "--overlay",
                                str(tmp_path / "a.gif"))) == 2
    line = one_error_line(capsys)
    assert "--overlay" in line and ".jpg" in line and ".png" in line
    assert not (tmp_path / "x.geojson").exists()


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_outputs_respect_the_umask(data_dir, slide_path, tmp_path, umask, tuberlin_free_model_path):
    old = os.umask(umask)
    try:
        out, overlay = tmp_path / "x.geojson", tmp_path / "x.png"
        assert cli_main(detect_args(data_dir, slide_path, "-o", str(out), "--overlay", str(overlay))) == 0
        user_data = tmp_path / "data"
        assert cli_main(["models", "--data-dir", str(user_data), "import", str(tuberlin_free_model_path),
                         "--format", "deepflash2", "--name", "perm-v1"]) == 0
    finally:
        os.umask(old)
    for path in (out, overlay, user_data / "models" / "perm-v1" / "card.json",
                 user_data / "models" / "perm-v1" / "weights.safetensors"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    assert (user_data / "models" / "perm-v1").stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.fixture(scope="module")
def tuberlin_free_model_path(tmp_path_factory):
    """A small deepflash2-layout checkpoint (smp U-Net, efficientnet-b2) for the permission test."""
    import torch

    from hubseg.models.architectures import build_module

    torch.manual_seed(0)
    module = build_module({"kind": "smp", "arch": "Unet", "encoder": "efficientnet-b2", "classes": 2})
    path = tmp_path_factory.mktemp("ckpt") / "df2.pth"
    torch.save({"model": module.state_dict(), "stats": ([0.7, 0.55, 0.75], [0.15, 0.2, 0.12])}, path)
    return path


def test_atomic_write_keeps_0600_for_secrets_only(tmp_path):
    from hubseg.paths import atomic_write_text

    old = os.umask(0o022)
    try:
        assert atomic_write_text(tmp_path / "token", "s3cret", mode=0o600).stat().st_mode & 0o777 == 0o600
        assert atomic_write_text(tmp_path / "result.json", "{}").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# ---- 17: overlay legend ---------------------------------------------------------------------------------
def _legend(image: Image.Image, slide_height: int) -> np.ndarray:
    return np.asarray(image)[slide_height:]


def test_overlay_legend_uses_a_scalable_font_sized_to_the_picture(data_dir, slide_path, tmp_path):
    from PIL import ImageFont

    from hubseg.overlay import font_size_for, legend_font, legend_text, render_overlay_image
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.models.registry import ModelRegistry
    from hubseg.slide import open_slide

    assert isinstance(legend_font(20), ImageFont.FreeTypeFont)
    assert font_size_for(2048, 1500) >= 2 * font_size_for(500, 400)
    model = ModelRegistry(data_dir).load("threshold-test-v1", device="cpu")
    with open_slide(slide_path) as slide:
        result = detect(slide, model, options=DetectionOptions())
        small = render_overlay_image(slide, result, max_size=2048)  # 500×400
        text = legend_text(result)
        assert text.isascii() and "2 objects" in text and "review first" in text
        legend = _legend(small, 400)
        assert legend.shape[0] >= 2 * font_size_for(500, 400) > 22  # taller than the old 22 px strip
        dark = (legend.max(axis=-1) < 80).any(axis=1)
        assert dark.sum() >= 8  # text glyphs several px tall
        red = (legend[..., 0] > 200) & (legend[..., 1] < 80)
        assert red.any()  # the energy colour scale is drawn


def test_overlay_without_objects_says_no_objects_and_draws_no_scale(data_dir, tmp_path):
    from hubseg.overlay import legend_text, render_overlay_image
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.models.registry import ModelRegistry
    from hubseg.slide import open_slide

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 235, np.uint8)).save(blank)
    model = ModelRegistry(data_dir).load("threshold-test-v1", device="cpu")
    with open_slide(blank, pixel_size_um=1.0) as slide:
        result = detect(slide, model, options=DetectionOptions())
        assert result.count == 0 and legend_text(result) == "no objects"
        legend = _legend(render_overlay_image(slide, result), 300)
    colourful = (legend.max(axis=-1).astype(int) - legend.min(axis=-1)) > 60
    assert not colourful.any()  # no 0.00…1.00 colour scale
    assert (legend.max(axis=-1) < 80).any()  # but text


# ---- 18: review list from detect; evaluate prints full names and n/a --------------------------------------
def test_detect_prints_the_review_list(data_dir, slide_path, tmp_path, capsys):
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path / "x.geojson"))) == 0
    out = capsys.readouterr().out
    assert "Review list (most uncertain first)" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "Glomerulus" in line]
    assert len(rows) == 2
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path / "x.geojson"), "--review", "1")) == 0
    out = capsys.readouterr().out
    assert "first 1 of 2" in out
    assert len([line for line in out.splitlines() if "Glomerulus" in line]) == 1
    assert cli_main(detect_args(data_dir, slide_path, "-o", str(tmp_path / "x.geojson"), "--review", "0")) == 0
    assert "Review list" not in capsys.readouterr().out


def test_evaluate_prints_full_names_and_na_for_undefined_precision(data_dir, tmp_path, capsys, tissue_image):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    name = "a_rather_long_biopsy_name_from_the_lab_0001"
    Image.fromarray(np.full((128, 128, 3), 235, np.uint8)).save(images / f"{name}.png")  # nothing to detect
    mask = np.zeros((128, 128), np.uint8)
    yy, xx = np.mgrid[:128, :128]
    mask[(xx - 64) ** 2 + (yy - 64) ** 2 < 30**2] = 255
    Image.fromarray(mask).save(masks / f"{name}.png")
    base = ["evaluate", str(images), str(masks), "--pixel-size", "1.0", "--model", "threshold-test-v1",
            "--data-dir", str(data_dir), "--quiet", "--min-area", "0"]
    assert cli_main(base) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith(name))
    assert row.split()[0] == f"{name}.png"  # not cut at 24 characters
    assert row.split()[7] == "n/a" and row.split()[8] == "0.000"  # precision undefined, recall 0
    assert cli_main(base + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] is None and report["recall"] == 0.0 and report["f1"] == 0.0
    assert report["images"][0]["precision"] is None


# ---- the limits every route has hold for hubseg adapt; token file messages --------------------------------
@pytest.mark.parametrize("value", ["1e-300", "0.001", "21", "1000"])
def test_adapt_pixel_size_has_detections_range(data_dir, slide_path, capsys, value):
    args = ["adapt", str(slide_path), "--model", "threshold-test-v1", "--data-dir", str(data_dir), "--pixel-size", value]
    assert cli_main(args) == 2
    line = one_error_line(capsys)
    assert "--pixel-size" in line and "0.05" in line and "20" in line, line


def test_adapt_refuses_an_image_over_the_tile_budget_before_the_teacher_runs(data_dir, slide_path, capsys):
    # the threshold model has no energy gate: had the teacher pass started, that would be the error instead
    args = ["adapt", str(slide_path), "--model", "threshold-test-v1", "--data-dir", str(data_dir), "--max-tiles", "5"]
    assert cli_main(args) == 2
    line = one_error_line(capsys)
    assert slide_path.name in line and "limit of 5" in line and "hubseg adapt --max-tiles" in line, line


def test_missing_token_file_names_the_file_and_how_to_make_one(tmp_path, capsys):
    missing = tmp_path / "no-such-token"
    assert cli_main(["serve", "--token-file", str(missing), "--port", "0", "--data-dir", str(tmp_path / "d")]) == 2
    line = one_error_line(capsys)
    assert str(missing) in line and f"hubseg serve --make-token {missing}" in line, line
