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

Measured, in the same run: the build with native decoding, the same build through the
``osgconv`` path (``--decoder osgconv``: one osgconv run per file, the reference), and a native
build with Draco geometry and JPEG q75 textures (size before/after). For each: wall time →
input MB/s, CPU seconds, and peak memory as the largest sum of RSS over the benchmark process
and all its descendants (workers and osgconv), sampled every 50 ms from /proc. The native and
osgconv outputs are compared file by file: vertex positions (ECEF), triangle and texture
counts. Targets (issue #19): ≥ 50 MB/s native, vertices within 1 mm of the osgconv path,
equal counts, < 2 GB peak.
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
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import Polygon, box

from bench.common import console
from cadastre.settings import PROJECT_ROOT
from tiles.demo.scene import TILE, Block, _lod, _node
from tiles.threed.compress import Compression
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


def _cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _tree_rss(root: int, skip: int, pss: bool = False, cpu: dict[int, int] | None = None
              ) -> int:
    """Summed RSS (or PSS) of ``root`` and its descendants; with ``cpu``, also notes each
    descendant's CPU ticks so far."""
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
            if cpu is not None and pid != root:
                cpu[pid] = _cpu_ticks(pid)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(p) for p in f.read().split()]
        except (OSError, IndexError, ValueError):
            pass
    return total


def _sampler(root: int, peak: Any, peak_pss: Any, cpu_ticks: Any, stop: Any,
             interval: float) -> None:
    me = os.getpid()
    tick = 0
    seen: dict[int, int] = {}
    while not stop.is_set():
        peak.value = max(peak.value, _tree_rss(root, me, cpu=seen))
        cpu_ticks.value = sum(seen.values())
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
    really holds. ``cpu_seconds``: user + system CPU of the tree while inside (descendants
    started inside, as last sampled: at most one interval short each)."""

    def __init__(self, interval: float = 0.05) -> None:
        ctx = mp.get_context("fork")
        self._peak, self._stop = ctx.Value("q", 0), ctx.Event()
        self._peak_pss, self._ticks = ctx.Value("q", 0), ctx.Value("q", 0)
        self._proc = ctx.Process(
            target=_sampler, args=(os.getpid(), self._peak, self._peak_pss, self._ticks,
                                   self._stop, interval),
            daemon=True
        )
        self.peak = self.peak_pss = 0
        self.cpu_seconds = 0.0
        self._cpu0 = 0.0

    def __enter__(self) -> TreeMemory:
        self._cpu0 = _cpu_ticks(os.getpid()) / os.sysconf("SC_CLK_TCK")
        self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join()
        self.peak = int(self._peak.value)
        self.peak_pss = int(self._peak_pss.value)
        # CPU: this process's since entering, its descendants' (workers) as last sampled
        me = _cpu_ticks(os.getpid()) / os.sysconf("SC_CLK_TCK")
        self.cpu_seconds = me - self._cpu0 + self._ticks.value / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """User + system CPU of this process and of every descendant that has been waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_build(folder: Path, out: Path, workers: int | None, **options: Any
              ) -> tuple[float, float, Any, int]:
    """Wall seconds, CPU seconds (all processes), the dataset info, peak tree RSS."""
    from tiles.threed.build import build_dataset

    shutil.rmtree(out, ignore_errors=True)
    started, cpu0 = time.monotonic(), cpu_seconds()
    with TreeMemory() as mem:
        info = build_dataset(out, folder, "bench", replace=True, workers=workers, **options)
    return time.monotonic() - started, cpu_seconds() - cpu0, info, mem.peak


def _glb_summary(path: Path, matrix: np.ndarray) -> tuple[np.ndarray, int, int]:
    """ECEF vertices (float64), triangles and images of one uncompressed glb."""
    data = path.read_bytes()
    jlen = int.from_bytes(data[12:16], "little")
    doc = json.loads(data[20:20 + jlen])
    binary = memoryview(data)[28 + jlen:]
    t = np.asarray(doc["nodes"][0].get("translation", [0, 0, 0]), dtype=np.float64)
    pts, tris = [], 0
    for prim in doc["meshes"][0]["primitives"]:
        acc = doc["accessors"][prim["attributes"]["POSITION"]]
        view = doc["bufferViews"][acc["bufferView"]]
        p = np.frombuffer(binary, "<f4", acc["count"] * 3, view["byteOffset"]).reshape(-1, 3)
        p = p.astype(np.float64) + t
        pts.append(np.column_stack([p[:, 0], -p[:, 2], p[:, 1]]))
        tris += doc["accessors"][prim["indices"]]["count"] // 3
    enu = np.vstack(pts)
    return enu @ matrix[:3, :3].T + matrix[:3, 3], tris, len(doc.get("images", []))


def compare_outputs(a: Path, b: Path) -> dict[str, Any]:
    """Largest vertex distance (m) between two builds of the same production, and whether the
    glb files, triangle and texture counts are the same."""
    def matrix(folder: Path) -> np.ndarray:
        root = json.loads((folder / "tileset.json").read_text())["root"]
        return np.asarray(root["transform"], dtype=np.float64).reshape(4, 4).T

    ma, mb = matrix(a), matrix(b)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.glb"))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*.glb"))
    worst, tris, tex, same = 0.0, [0, 0], [0, 0], files_a == files_b
    for rel in files_a if same else []:
        pa, ta, ia = _glb_summary(a / rel, ma)
        pb, tb, ib = _glb_summary(b / rel, mb)
        same = same and pa.shape == pb.shape
        if pa.shape == pb.shape:
            worst = max(worst, float(np.linalg.norm(pa - pb, axis=1).max()))
        tris[0] += ta
        tris[1] += tb
        tex[0] += ia
        tex[1] += ib
    return {"glb_files": [len(files_a), len(files_b)], "same_files": same,
            "max_vertex_distance_m": worst, "triangles": tris, "textures": tex}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=520, help="production size to generate (MB)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-peer", action="store_true", help="skip the osgconv-path build")
    ap.add_argument("--no-compress", action="store_true", help="skip the compressed build")
    ap.add_argument("--profile", action="store_true", help="cProfile the build (one worker)")
    args = ap.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    folder = generate(args.mb, args.workers)
    size = production_size(folder)
    n_files = sum(1 for _ in (folder / "Data").rglob("*.osgb"))
    console.print(f"production: {folder} — {size / 1e6:.0f} MB in {n_files} .osgb files")
    out = BENCH_DIR / "osgb-out"
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_build(folder, out, 1)  # workers are forked: the profile shows the main process
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    runs: dict[str, dict[str, Any]] = {}
    mb = size / 1e6
    cores = min(args.workers, os.cpu_count() or 1)
    plans = [("native", {}), ("osgconv", {"decoder": "osgconv"})]
    if not args.no_compress:
        plans.append(("native+draco", {"compression": Compression("draco", texture_quality=75)}))
    for label, options in plans:
        if label == "osgconv" and args.no_peer:
            continue
        out = BENCH_DIR / f"osgb-out-{label.replace('+', '-')}"
        wall, cpu, info, peak = run_build(folder, out, args.workers, **options)
        runs[label] = {"seconds": round(wall, 2), "mb_per_s": round(mb / wall, 2),
                       "cpu_seconds": round(cpu, 1), "mb_per_cpu_s": round(mb / cpu, 2),
                       "peak_tree_mib": round(peak / 2**20), "tiles": info.tiles,
                       "bytes_out": info.bytes_out, "warnings": len(info.warnings),
                       "osgconv_fallbacks": info.extra.get("osgconv_fallbacks", 0)}
        console.print(f"[bold]{label}[/]: {mb:.0f} MB in {wall:.1f} s = [bold]{mb / wall:.1f} "
                      f"MB/s[/] ({args.workers} workers; CPU {cpu:.1f} s → ≤ "
                      f"{cores * mb / cpu:.1f} MB/s on {cores} idle cores); peak "
                      f"{peak / 2**20:.0f} MiB; {info.bytes_out / 1e6:.0f} MB out; "
                      f"{info.extra.get('osgconv_fallbacks', 0)} osgconv fallbacks")
    result: dict[str, Any] = {"input_mb": round(mb, 1), "files": n_files, "runs": runs,
                              "workers": args.workers,
                              "load_average": [round(x, 2) for x in os.getloadavg()]}
    if "osgconv" in runs:
        cmp = compare_outputs(BENCH_DIR / "osgb-out-native" / "3dtiles" / "bench",
                              BENCH_DIR / "osgb-out-osgconv" / "3dtiles" / "bench")
        result["native_vs_osgconv"] = cmp
        result["speedup"] = round(runs["osgconv"]["seconds"] / runs["native"]["seconds"], 2)
        console.print(f"native vs osgconv path: {result['speedup']}× faster; max vertex "
                      f"distance {cmp['max_vertex_distance_m'] * 1000:.3f} mm; triangles "
                      f"{cmp['triangles']}, textures {cmp['textures']}, same files "
                      f"{cmp['same_files']}")
    if "native+draco" in runs:
        ratio = runs["native+draco"]["bytes_out"] / runs["native"]["bytes_out"]
        result["compressed_size_ratio"] = round(ratio, 3)
        console.print(f"draco + JPEG q75: {runs['native']['bytes_out'] / 1e6:.0f} MB → "
                      f"{runs['native+draco']['bytes_out'] / 1e6:.0f} MB ({ratio:.1%})")
    native = runs["native"]
    console.print(f"targets: ≥ 50 MB/s native ({'met' if native['mb_per_s'] >= 50 else 'NOT met'}"
                  f"), < 2 GiB peak ({'met' if native['peak_tree_mib'] < 2048 else 'NOT met'}); "
                  "2 shared cores: numbers are noisy while other work runs")
    console.print_json(json.dumps(result))


if __name__ == "__main__":
    main()
