#!/usr/bin/env python
"""Load benchmark of ``hubseg serve``: concurrent clients against a real local server, then a SIGKILL/restart.

N client threads run for a bounded time: health pollers (latency measured while inference runs), detection
submitters (submit → poll → fetch result) and label posters. A background slow detection keeps the worker
busy so health is measured *during inference*. Afterwards label posting continues while the server is killed
with SIGKILL and restarted; every label set the server acknowledged (201) must still be there.

Then a burst of concurrent large PNG uploads measures the server's memory (peak and kept RSS, sampled from
/proc) and how long each upload takes.

Prints one table (markdown). Exit status 1 if there were errors or lost labels.

    .venv/bin/python scripts/bench_server.py --clients 8 --duration 20

``--compare TREE`` runs the same bench, alternately, against the server code of another source tree (e.g. a
``git worktree`` of the previous main) ``--repeats`` times each and prints both side by side: median and
min–max of every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

PIXEL_SIZE_UM = 0.5


def write_slide(path: Path, width: int, height: int, disks) -> None:
    import tifffile

    image = np.empty((height, width, 3), np.uint8)
    image[:] = (232, 182, 204)
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, r in disks:
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (84, 40, 112)
    options = dict(tile=(256, 256), photometric="rgb", compression="zlib")
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=1, resolution=(1e4 / PIXEL_SIZE_UM,) * 2, resolutionunit="CENTIMETER", **options)
        tif.write(np.ascontiguousarray(image[::2, ::2]), subfiletype=1, **options)


class Server:
    def __init__(self, data_dir: Path, slides_root: Path, tree: Path | None = None):
        self.data_dir, self.slides_root, self.tree = data_dir, slides_root, tree
        self.process = None
        self.url = ""

    def start(self) -> "Server":
        command = [sys.executable, "-m", "hubseg_server", "--port", "0", "--data-dir", str(self.data_dir),
                   "--slides-root", str(self.slides_root), "--torch-threads", "1", "--threads", "16"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        env.pop("HUBSEG_TOKEN", None)
        if self.tree is not None:  # the server code of that source tree (hubseg and hubseg_server)
            env["PYTHONPATH"] = f"{self.tree}{os.pathsep}{self.tree / 'server'}"
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.process.stdout.readline()
        if not line.startswith("hubseg server listening on "):
            raise SystemExit(f"server did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.health_busy_ms: list[float] = []
        self.health_idle_ms: list[float] = []
        self.jobs_done = 0
        self.labels_acked: list[str] = []
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                print("error:", message[:300], file=sys.stderr)
            self.errors.append(message)


def square(x, y, size):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}


def label_document(slide: Path, i: int) -> dict:
    return {"format": "hubseg-labelset/1", "image": {"path": str(slide)}, "pixel_size_um": PIXEL_SIZE_UM,
            "regions": [square(0, 0, 300)], "source": "api",
            "features": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "geometry": square(10 + i % 50, 10, 60),
                 "properties": {"classification": {"name": "Glomerulus"}}}]}}


def health_client(url: str, stop: threading.Event, stats: Stats) -> None:
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = session.get(url + "/v1/health", timeout=10)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                stats.error(f"health {response.status_code}")
                continue
            busy = response.json()["queue_length"] > 0
            with stats.lock:
                (stats.health_busy_ms if busy else stats.health_idle_ms).append(elapsed)
        except requests.RequestException as error:
            stats.error(f"health: {error}")
        time.sleep(0.02)


def detection_client(url: str, slide: Path, stop: threading.Event, stats: Stats) -> None:
    session = requests.Session()
    while not stop.is_set():
        try:
            response = session.post(url + "/v1/detections", json={"image": {"path": str(slide)}}, timeout=30)
            if response.status_code != 202:
                stats.error(f"detect {response.status_code} {response.text[:200]}")
                continue
            job_id = response.json()["id"]
            while True:
                job = session.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            if job["state"] != "succeeded":
                stats.error(f"job {job_id} {job['state']}: {job['error']}")
                continue
            result = session.get(f"{url}/v1/jobs/{job_id}/result", timeout=30)
            if result.status_code != 200 or result.json()["type"] != "FeatureCollection":
                stats.error(f"result {result.status_code}")
                continue
            with stats.lock:
                stats.jobs_done += 1
        except requests.RequestException as error:
            stats.error(f"detect: {error}")


def label_client(url_of, slide: Path, stop: threading.Event, stats: Stats, tolerate_down: threading.Event) -> None:
    session = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        try:
            response = session.post(url_of() + "/v1/labels", json=label_document(slide, i), timeout=10)
            if response.status_code == 201:
                with stats.lock:
                    stats.labels_acked.append(response.json()["id"])
            else:
                stats.error(f"labels {response.status_code} {response.text[:200]}")
        except requests.RequestException as error:
            if not tolerate_down.is_set():
                stats.error(f"labels: {error}")
            time.sleep(0.05)
        time.sleep(0.02)


def busy_worker(url: str, big: Path, stop: threading.Event, stats: Stats) -> None:
    """Keep one slow whole-slide detection queued or running; cancel what is left at the end."""
    session = requests.Session()
    job_id = None
    while not stop.is_set():
        if job_id is None or session.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()["state"] not in ("queued", "running"):
            response = session.post(url + "/v1/detections", json={"image": {"path": str(big)}, "model": "tiny-test-v1"},
                                    timeout=30)
            if response.status_code != 202:
                stats.error(f"slow detect {response.status_code}")
                return
            job_id = response.json()["id"]
        time.sleep(0.2)
    if job_id:
        session.delete(f"{url}/v1/jobs/{job_id}", timeout=30)
        while session.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()["state"] in ("queued", "running"):
            time.sleep(0.1)


def wait_running(url: str, job_id: str) -> None:
    while True:
        job = requests.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
        if job["state"] == "running" and job["progress"]["done"] > 0:
            return
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[index]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def upload_burst(server: "Server", png: bytes, count: int, stats: Stats) -> dict:
    """``count`` concurrent uploads of ``png``; the server's RSS is sampled every 20 ms meanwhile."""
    pid = server.process.pid
    before = rss_mb(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.02)

    seconds: list[float] = []

    def one():
        started = time.perf_counter()
        response = requests.post(server.url + "/v1/uploads", files={"image": ("big.png", png)},
                                 data={"pixel_size_um": "0.5"}, timeout=300)
        if response.status_code not in (201, 503):
            stats.error(f"upload: {response.status_code} {response.text[:200]}")
        with stats.lock:
            seconds.append(time.perf_counter() - started)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    time.sleep(1.0)  # let the server return memory after the last response
    done.set()
    sampler.join(5)
    return {"peak": peak[0] - before, "kept": rss_mb(pid) - before, "seconds": max(seconds) if seconds else float("nan")}


def big_png(megapixels: float) -> bytes:
    """A flat-colour RGB PNG of ``megapixels``: a few hundred KiB on the wire, ~3 bytes/px once decoded."""
    import io

    from PIL import Image

    side = int((megapixels * 1e6) ** 0.5)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (232, 182, 204)).save(buffer, "PNG")
    return buffer.getvalue()


def run_once(args, tree: Path | None, png: bytes) -> list[tuple[str, float]]:
    """One full bench against the server code of ``tree`` (None: this checkout); returns (metric, value)."""
    from hubseg.models.testing import make_threshold_model, make_tiny_model

    workdir = Path(tempfile.mkdtemp(prefix="hubseg-bench-"))
    try:
        slides = workdir / "slides"
        slides.mkdir()
        small = slides / "small.tif"
        big = slides / "big.tif"
        write_slide(small, 512, 512, [(120, 120, 50), (360, 300, 60)])
        write_slide(big, 2048, 2048, [(600, 600, 80)])
        data = workdir / "data"
        make_threshold_model(data, pixel_size_um=1.0, tile_size=64, activate=True)
        make_tiny_model(data, name="tiny-test-v1", pixel_size_um=PIXEL_SIZE_UM, tile_size=64)
        return _load_phases(args, Server(data, slides, tree).start(), data, slides, small, big, png, tree)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _load_phases(args, server, data, slides, small, big, png, tree) -> list[tuple[str, float]]:
    stats = Stats()
    down = threading.Event()
    current_url = [server.url]
    n_health = max(1, args.clients // 2)
    n_detect = max(1, (args.clients - n_health) // 2)
    n_labels = max(1, args.clients - n_health - n_detect)
    label_stop = threading.Event()
    label_threads = [threading.Thread(target=label_client, args=(lambda: current_url[0], small, label_stop,
                                                                  stats, down)) for _ in range(n_labels)]
    for thread in label_threads:
        thread.start()

    # phase 1 (half the time): health latency while the worker runs whole-slide inference (tiny U-Net)
    stop = threading.Event()
    busy_stop = threading.Event()
    busy = threading.Thread(target=busy_worker, args=(server.url, big, busy_stop, stats))
    busy.start()
    threads = [threading.Thread(target=health_client, args=(server.url, stop, stats)) for _ in range(n_health)]
    for thread in threads:
        thread.start()
    time.sleep(args.duration / 2)
    stop.set()
    busy_stop.set()
    for thread in threads + [busy]:
        thread.join(120)

    # phase 2 (half the time): throughput of small detection jobs, health and labels still running
    stop = threading.Event()
    threads = [threading.Thread(target=health_client, args=(server.url, stop, stats)) for _ in range(n_health)]
    threads += [threading.Thread(target=detection_client, args=(server.url, small, stop, stats))
                for _ in range(n_detect)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(args.duration / 2)
    stop.set()
    for thread in threads:
        thread.join(120)
    elapsed = time.perf_counter() - started

    burst = upload_burst(server, png, args.uploads, stats) if args.uploads else None

    lost, unreadable, interrupted = _kill_and_restart(server, data, slides, big, tree, stats, down, current_url,
                                                      label_stop, label_threads)

    busy = stats.health_busy_ms
    rows = [
        ("health requests during inference", len(busy)),
        ("health p50 during inference (ms)", percentile(busy, 50)),
        ("health p99 during inference (ms)", percentile(busy, 99)),
        ("health max during inference (ms)", max(busy) if busy else float("nan")),
        ("detection jobs completed (submit→poll→result)", stats.jobs_done),
        ("jobs/s", stats.jobs_done / elapsed),
        ("label sets acknowledged (201)", len(stats.labels_acked)),
        ("errors", len(stats.errors)),
        ("label sets lost after SIGKILL + restart", len(lost)),
        ("label sets unreadable after restart (last 20 checked)", unreadable),
        ("interrupted jobs marked failed (server_restarted)", len(interrupted)),
    ]
    if burst is not None:
        rows += [(f"{args.uploads} concurrent {args.upload_mp:g} MP PNG uploads: server RSS peak (+MB)", burst["peak"]),
                 ("  RSS kept 1 s after the last upload (+MB)", burst["kept"]),
                 ("  slowest upload (s)", burst["seconds"])]
    return rows


def _kill_and_restart(server, data, slides, big, tree, stats, down, current_url, label_stop, label_threads):
    """SIGKILL mid-job while label clients keep posting, then restart on the same data dir: (lost label ids,
    unreadable of the last 20, jobs marked server_restarted)."""
    slow = requests.post(server.url + "/v1/detections", json={"image": {"path": str(big)}, "model": "tiny-test-v1"},
                         timeout=30).json()
    wait_running(server.url, slow["id"])
    down.set()
    server.kill()
    restarted = Server(data, slides, tree).start()
    current_url[0] = restarted.url
    time.sleep(1.0)
    label_stop.set()
    for thread in label_threads:
        thread.join(60)
    stored = requests.get(restarted.url + "/v1/labels", timeout=30).json()["label_sets"]
    stored_ids = {s["id"] for s in stored}
    lost = [i for i in stats.labels_acked if i not in stored_ids]
    unreadable = 0
    for label_id in stats.labels_acked[-20:]:
        if requests.get(f"{restarted.url}/v1/labels/{label_id}", timeout=30).status_code != 200:
            unreadable += 1
    failed = requests.get(restarted.url + "/v1/jobs?state=failed", timeout=30).json()["jobs"]
    interrupted = [j for j in failed if (j["error"] or {}).get("code") == "server_restarted"]
    restarted.stop()
    return lost, unreadable, interrupted


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}" if isinstance(values[0], float) else f"{values[0]}"
    low, high = min(values), max(values)
    return f"{statistics.median(values):.1f} ({low:.1f}–{high:.1f})"


def print_table(columns: dict[str, list[list[tuple[str, float]]]]) -> None:
    """One markdown table: a row per metric, a column per tree (median and min–max over its runs)."""
    names = [name for name, _ in next(iter(columns.values()))[0]]
    print("| metric | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for index, name in enumerate(names):
        cells = [_cell([run[index][1] for run in runs]) for runs in columns.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="client threads in total (default 8)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (default 20)")
    parser.add_argument("--uploads", type=int, default=3, help="concurrent large uploads at the end (default 3; 0: none)")
    parser.add_argument("--upload-mp", type=float, default=25.0, help="megapixels of each upload (default 25)")
    parser.add_argument("--compare", type=Path, help="another source tree whose server to bench alternately")
    parser.add_argument("--repeats", type=int, default=1, help="runs per tree (default 1)")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args()
    if args.clients < 3:
        parser.error("--clients must be >= 3 (health, detection and label clients)")
    png = big_png(args.upload_mp)
    trees = {"this checkout": None}
    if args.compare is not None:
        trees[f"{args.compare}"] = args.compare.resolve()
    columns: dict[str, list] = {name: [] for name in trees}
    for _ in range(args.repeats):  # alternate, so slow drifts of the machine's load hit both alike
        for name, tree in trees.items():
            columns[name].append(run_once(args, tree, png))
    clients = args.clients // 2, (args.clients - args.clients // 2) // 2
    print(f"{args.clients} clients ({clients[0]} health, {clients[1]} detect, the rest labels), "
          f"{args.duration:g} s of load, {args.repeats} run(s) per column: median (min–max)\n")
    print_table(columns)
    if args.json:
        print(json.dumps(columns, ensure_ascii=False))
    bad = [value for runs in columns.values() for run in runs for name, value in run
           if name in ("errors", "label sets lost after SIGKILL + restart") and value]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
