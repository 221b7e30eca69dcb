"""OSGB → 3D Tiles benchmark: input MB/s and peak memory of ``cadastre 3d build``.

    python -m bench.osgb --mb 520            # generate (once, cached) and build
    python -m bench.osgb --mb 40 --profile   # small run under cProfile (top functions)

The production is synthetic but laid out and encoded like a ContextCapture delivery (see
``tiles/demo/scene.py``, whose atlas/terrain/block generators it reuses): a grid of 200 m
tiles in CGCS2000 3° GK zone 40, each ``Tile_x.osgb`` (PagedLOD, 256 px atlas) →
``Tile_x_L1_0.osgb`` (four quadrant PagedLODs, 512 px) → ``Tile_x_L2_q.osgb`` (leaves, 1024 px),
with random building blocks and a denser terrain grid than the demo (real leaves carry tens of
thousands of vertices). Files are authored as osgt and encoded by ``osgconv`` (JPEGs embedded),
so the build runs exactly the path of a real production. It is cached under
``var/bench/osgb-<MB>mb`` (a ``complete.json`` marks a finished generation).

Measured: wall time of ``build_dataset`` → input MB/s; peak memory as the largest sum of RSS
over the benchmark process and all its descendants (workers and osgconv), sampled every 50 ms
from /proc, plus ``ru_maxrss`` of self and of the largest child. Peer in the same run:
``osgconv x.osgb x.osgt`` alone over every file with the same number of parallel processes (the
decoding floor of a pipeline built on osgconv). Targets (issue #7): ≥ 10 MB/s, < 2 GB peak.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import multiprocessing as mp
import os
import pstats
import random
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon, box

from bench.common import console
from cadastre.settings import PROJECT_ROOT
from tiles.demo.scene import TILE, Block, _lod, _node
from tiles.threed.osgb.author import write_osgb

BENCH_DIR = PROJECT_ROOT / "var" / "bench"
SRS, ORIGIN = "EPSG:4528", (40_500_000.0, 3_350_000.0, 0.0)
DENSITY = (24, 48, 96)  # terrain grid cells per side: root, L1 quadrant, L2 leaf
ATLAS = (256, 512, 1024)


def _blocks(tile_box: Polygon, rng: random.Random) -> list[Block]:
    x0, y0, _, _ = tile_box.bounds
    out = []
    for i in range(4):
        for j in range(4):
            if rng.random() < 0.25:
                continue
            w, d = rng.uniform(14, 40), rng.uniform(10, 18)
            bx, by = x0 + 10 + i * 48 + rng.uniform(0, 4), y0 + 10 + j * 48 + rng.uniform(0, 20)
            fp = box(bx, by, bx + w, by + d)
            if rng.random() < 0.3:  # an L-shaped block
                fp = fp.union(box(bx, by, bx + d, by + w))
            out.append(Block(f"B{i}{j}", fp, 5.0, rng.choice([9.0, 18.0, 33.0, 54.0])))
    return out


def _write_tile(args: tuple[Path, int, int, int]) -> int:
    folder, ti, tj, seed = args
    rng = random.Random(seed)
    tile_box = box(ti * TILE, tj * TILE, (ti + 1) * TILE, (tj + 1) * TILE)
    blocks = _blocks(tile_box, rng)
    name = f"Tile_+{ti:03d}_+{tj:03d}"
    d = folder / "Data" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (n0, n1, n2), (s0, s1, s2) = DENSITY, ATLAS
    root = _node(d, f"{name}_L0", tile_box, blocks, n0, s0, 5.0, rng)
    write_osgb(d / f"{name}.osgb", [_lod(tile_box, blocks, root, 0, f"{name}_L1_0.osgb")])
    quads = []
    for q, (qx, qy) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        x0, y0 = tile_box.bounds[0] + qx * TILE / 2, tile_box.bounds[1] + qy * TILE / 2
        qbox = box(x0, y0, x0 + TILE / 2, y0 + TILE / 2)
        qb = [b for b in blocks if b.footprint.centroid.within(qbox)]
        mid = _node(d, f"{name}_L1_{q}", qbox, qb, n1, s1, 5.0, rng)
        quads.append(_lod(qbox, qb, mid, 1, f"{name}_L2_{q}.osgb"))
        fine = _node(d, f"{name}_L2_{q}", qbox, qb, n2, s2, 5.0, rng)
        write_osgb(d / f"{name}_L2_{q}.osgb", leaf=fine)
    write_osgb(d / f"{name}_L1_0.osgb", quads)
    for jpg in d.glob("*.jpg"):
        jpg.unlink()
    return sum(f.stat().st_size for f in d.glob("*.osgb"))


def production_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in (folder / "Data").rglob("*.osgb"))


def generate(target_mb: float, workers: int = 2) -> Path:
    """A production of at least ``target_mb`` MB (cached)."""
    folder = BENCH_DIR / f"osgb-{int(target_mb)}mb"
    marker = folder / "complete.json"
    if marker.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "Data").mkdir(parents=True)
    (folder / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<ModelMetadata version="1">\n'
        f"    <SRS>{SRS}</SRS>\n    <SRSOrigin>{ORIGIN[0]:.3f},{ORIGIN[1]:.3f},0</SRSOrigin>\n"
        "</ModelMetadata>\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    sample = _write_tile((folder, 0, 0, 0))  # size of one tile → grid size
    side = max(1, math.ceil(math.sqrt(target_mb * 1e6 / sample)))
    jobs = [(folder, i, j, i * 1000 + j) for i in range(side) for j in range(side) if i or j]
    done = sample
    with ProcessPoolExecutor(workers) as pool:
        for k, size in enumerate(pool.map(_write_tile, jobs), start=2):
            done += size
            if k % 20 == 0 or k == side * side:
                console.print(f"  generated {k}/{side * side} tiles, {done / 1e6:.0f} MB")
    info = {"tiles": side * side, "bytes": production_size(folder),
            "seconds": round(time.monotonic() - started, 1)}
    marker.write_text(json.dumps(info))
    return folder


def _pss(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes that map them."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_rss(root: int, skip: int, pss: bool = False) -> int:
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid == skip:
            continue
        try:
            if pss:
                total += _pss(pid)
            else:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(p) for p in f.read().split()]
        except (OSError, IndexError, ValueError):
            pass
    return total


def _sampler(root: int, peak: Any, peak_pss: Any, stop: Any, interval: float) -> None:
    me = os.getpid()
    tick = 0
    while not stop.is_set():
        peak.value = max(peak.value, _tree_rss(root, me))
        if tick % 20 == 0:    # PSS costs the kernel a walk of every mapping: once a second
            peak_pss.value = max(peak_pss.value, _tree_rss(root, me, pss=True))
        tick += 1
        stop.wait(interval)


class TreeMemory:
    """Peak of the summed RSS of this process and all its descendants, sampled from /proc every
    50 ms by a separate process (a sampling *thread* would make the build use the ``spawn``
    start method, as it does inside a threaded server, instead of the CLI's ``fork``). RSS
    counts a library or file page once per process that maps it; ``peak_pss`` (proportional
    set size, sampled once a second) shares such pages out, so it sums to the memory the tree
    really holds."""

    def __init__(self, interval: float = 0.05) -> None:
        ctx = mp.get_context("fork")
        self._peak, self._stop = ctx.Value("q", 0), ctx.Event()
        self._peak_pss = ctx.Value("q", 0)
        self._proc = ctx.Process(
            target=_sampler, args=(os.getpid(), self._peak, self._peak_pss, self._stop, interval),
            daemon=True
        )
        self.peak = self.peak_pss = 0

    def __enter__(self) -> TreeMemory:
        self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join()
        self.peak = int(self._peak.value)
        self.peak_pss = int(self._peak_pss.value)


def _osgconv_one(path: Path) -> int:
    """One file to osgt in tmpfs, as the build does (no batching: the floor of a per-file
    pipeline)."""
    with tempfile.TemporaryDirectory(prefix="bench-osgt-", dir="/dev/shm") as tmp:
        subprocess.run(["osgconv", "-O", "WriteImageHint=UseExternal", str(path),
                        str(Path(tmp) / "x.osgt")], check=True, capture_output=True)
    return path.stat().st_size


def cpu_seconds() -> float:
    """User + system CPU of this process and of every descendant that has been waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def osgconv_floor(folder: Path, workers: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``osgconv x.osgb x.osgt`` over every file (one run per file)."""
    files = sorted((folder / "Data").rglob("*.osgb"))
    started, cpu0 = time.monotonic(), cpu_seconds()
    with ProcessPoolExecutor(workers) as pool:
        sum(pool.map(_osgconv_one, files, chunksize=8))
    return time.monotonic() - started, cpu_seconds() - cpu0


def run_build(folder: Path, out: Path, workers: int | None) -> tuple[float, float, object, int]:
    """Wall seconds, CPU seconds (all processes), the dataset info, peak tree RSS."""
    from tiles.threed.build import build_dataset

    shutil.rmtree(out, ignore_errors=True)
    started, cpu0 = time.monotonic(), cpu_seconds()
    with TreeMemory() as mem:
        info = build_dataset(out, folder, "bench", replace=True, workers=workers)
    return time.monotonic() - started, cpu_seconds() - cpu0, info, mem.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=520, help="production size to generate (MB)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-peer", action="store_true", help="skip the osgconv-only floor")
    ap.add_argument("--profile", action="store_true", help="cProfile the build (one worker)")
    ap.add_argument("--batch-files", type=int, default=None,
                    help="files per osgconv run (1 = the former one-run-per-file pipeline)")
    args = ap.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    folder = generate(args.mb, args.workers)
    size = production_size(folder)
    n_files = sum(1 for _ in (folder / "Data").rglob("*.osgb"))
    console.print(f"production: {folder} — {size / 1e6:.0f} MB in {n_files} .osgb files")
    out = BENCH_DIR / "osgb-out"
    if args.batch_files:
        from tiles.threed.osgb import production

        production.BATCH_FILES = args.batch_files  # inherited by the forked workers
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_build(folder, out, 1)  # workers are forked: the profile shows the main process
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    wall, cpu, info, peak = run_build(folder, out, args.workers)
    self_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    mb = size / 1e6
    mbps = mb / wall
    cores = min(args.workers, os.cpu_count() or 1)
    console.print(f"[bold]cadastre 3d build[/]: {mb:.0f} MB in {wall:.1f} s = "
                  f"[bold]{mbps:.1f} MB/s[/] input ({args.workers} workers; "
                  f"{info.tiles} tiles, {info.bytes_out / 1e6:.0f} MB out, "
                  f"{len(info.warnings)} warnings)")
    console.print(f"  CPU {cpu:.1f} s (all processes) = {mb / cpu:.2f} MB per CPU-second; "
                  f"{cores} idle cores would give ≤ {cores * mb / cpu:.1f} MB/s")
    console.print(f"peak memory: {peak / 2**20:.0f} MiB (sum of RSS, process tree); "
                  f"ru_maxrss self {self_max / 2**20:.0f} MiB, "
                  f"largest child {child_max / 2**20:.0f} MiB")
    result = {"input_mb": round(mb, 1), "files": n_files, "seconds": round(wall, 2),
              "mb_per_s": round(mbps, 2), "cpu_seconds": round(cpu, 1),
              "mb_per_cpu_s": round(mb / cpu, 2),
              "cpu_bound_mb_per_s": round(cores * mb / cpu, 2),
              "peak_tree_mib": round(peak / 2**20),
              "maxrss_self_mib": round(self_max / 2**20),
              "maxrss_child_mib": round(child_max / 2**20), "workers": args.workers,
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    if not args.no_peer:
        floor_s, floor_cpu = osgconv_floor(folder, args.workers)
        result["osgconv_only_s"] = round(floor_s, 2)
        result["osgconv_only_mb_per_s"] = round(mb / floor_s, 2)
        result["osgconv_only_mb_per_cpu_s"] = round(mb / floor_cpu, 2)
        console.print(f"peer: osgconv .osgb→.osgt alone (one run per file), {args.workers} "
                      f"processes: {floor_s:.1f} s = {mb / floor_s:.1f} MB/s; "
                      f"{mb / floor_cpu:.2f} MB per CPU-second")
    console.print(f"targets: ≥ 10 MB/s ({'met' if mbps >= 10 else 'NOT met'}), "
                  f"< 2 GiB peak ({'met' if peak < 2 * 2**30 else 'NOT met'}); "
                  "2 shared cores: numbers are noisy while other work runs")
    console.print_json(json.dumps(result))


if __name__ == "__main__":
    main()
