"""Does PLG localise events? For a trained ATGNN and generated clips whose event times are
known, the share of a true label's PLG neighbour patches that lie inside that label's event
time span, next to the share expected by chance.

The clips are those of a generated FSD50K-format data set
(:mod:`gnn_audio.data.synthetic.fsd50k`). Its files do not store event times, so each clip is
generated again here by the generator itself, which reports every event's start and end; the
regenerated audio must equal the wav file (to 16-bit rounding) and the labels the listing,
or the script stops: the times belong to exactly those files.

For every window the model takes (``fbank.target_length`` frames, every ``--window-hop`` of
a window, as evaluation windows a clip) and every true label of the clip with event time in
the window (a *pair*), the PLG graph of each MLG block (as the model built it: forward
hooks, see :mod:`gnn_audio.viz.graph_trace`) gives the label node's ``k`` patch nodes. A
patch node is *inside* when the time centre of its cell lies in the label's span: the union
of the label's events and those of its descendants (a parent label is present because of
its children's events). Chance:

* ``chance (grid)``: the share of the stage's patch nodes (cells) inside, the expected share
  for ``k`` patch nodes drawn at random from the window (padding included; an event shorter
  than a cell may hold no cell centre: chance 0, and nothing of it can be inside);
* ``chance (time)``: the span's share of the window's real audio (the "span's share of the
  clip"; padded frames are outside every span, so for clips shorter than a window this is
  higher than the grid chance).

Pairs whose span covers the whole window (chance 1: nothing to localise) are left out and
counted. Rows per block: all windows; windows without padding (where both chances agree, and
avoiding padding cannot pass for localising); those of them where the model detects the label
(score >= 0.5); and a specificity control, ``other labels' spans``: the share of label
``i``'s neighbours inside the span of another true label ``j`` of the window that is neither
``i``'s ancestor nor descendant, next to ``j``'s chance: a PLG that finds events but not
*its* events scores alike on both.

    python benchmarks/plg_localisation.py --checkpoint /tmp/smoke/ex3/best.pt \\
        --data-dir ~/.cache/gnn_audio/datasets/synthetic_fsd50k_v1 [--split eval] [--json out]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch

from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.synthetic import fsd50k as gen_module
from gnn_audio.data.synthetic.fsd50k import MANIFEST_NAME, SyntheticFSD50KConfig
from gnn_audio.data.features import pad_value
from gnn_audio.data.windows import Windowing
from gnn_audio.viz.graph_trace import check_atgnn, trace_graphs
from gnn_audio.viz.inputs import file_logmel, label_names_of, load_checkpoint_model, model_fbank
from gnn_audio.zoo import bundle_of

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import write_json  # noqa: E402

Span = Tuple[float, float]
#: the rows of a block, in print order
GROUPS = ("all windows", "windows without padding",
          "windows without padding, label detected (score >= 0.5)",
          "all windows: other labels' spans", "windows without padding: other labels' spans")


@dataclass(frozen=True)
class GeneratedClip:
    """A generated clip with its event times.

    Attributes:
        fname, path: the listing's fname and the wav file.
        duration: seconds.
        labels: class indices of the clip (leaves and ancestors).
        spans: class index -> ``[(start, end)]`` seconds of the events that make the label
            present (its own and its descendants').
    """

    fname: str
    path: str
    duration: float
    labels: Tuple[int, ...]
    spans: Dict[int, List[Span]]


def _regenerate(gen, plan, index: int) -> Tuple[np.ndarray, List[int], List[Tuple[int, int, int]]]:
    """The generator's own clip with the events it placed: ``(audio, labels, events)``,
    events as ``(class, start sample, end sample)``."""
    events: List[Tuple[int, int, int]] = []
    audio = gen.clip(plan, index, events=events)
    return audio, list(plan.labels), events


def _merge(spans: Sequence[Span]) -> List[Span]:
    out: List[List[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def data_set_generator(data_dir: os.PathLike):
    """The generator (``_Generator``) of a data set written by ``make_fsd50k_like``, from its
    manifest (``ValueError`` naming the file for anything else)."""
    manifest_path = Path(data_dir) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ValueError(f"{data_dir}: no {MANIFEST_NAME}; not a data set written by "
                         "make_fsd50k_like")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("version") != gen_module._VERSION:
        raise ValueError(f"{manifest_path}: generator version {manifest.get('version')}, this "
                         f"script reconstructs version {gen_module._VERSION}")
    return gen_module._Generator(SyntheticFSD50KConfig(**manifest["config"]))


def generated_clips(data_dir: os.PathLike, split: str = "eval",
                    max_clips: Optional[int] = None) -> List[GeneratedClip]:
    """The clips of one split of a generated data set with their event times, each checked
    against its wav file and listing (``ValueError`` naming the file otherwise)."""
    root = Path(data_dir)
    gen = data_set_generator(root)
    config = gen.config
    listing = {c.clip_id: c for c in read_fsd50k(root, split).clips}
    plans = gen_module._plan_splits(config)
    out = []
    for index, plan in enumerate(plans):
        if plan.split != split:
            continue
        if max_clips is not None and len(out) >= max_clips:
            break
        clip = listing[str(plan.fname)]
        audio, labels, events = _regenerate(gen, plan, index)
        stored, sr = sf.read(clip.path, dtype="float32")
        if sr != config.sample_rate or stored.shape != audio.shape or \
                float(np.abs(stored - audio).max()) > 2.0 / 32768:
            raise ValueError(f"{clip.path}: the regenerated audio differs from the file; the "
                             "event times cannot be trusted (generator changed?)")
        if sorted(labels) != sorted(clip.labels):
            raise ValueError(f"{clip.source}: labels {sorted(clip.labels)} differ from the "
                             f"regenerated {sorted(labels)}")
        spans: Dict[int, List[Span]] = {}
        for u, a, b in events:
            for c in [u] + gen.ancestors(u):
                spans.setdefault(c, []).append((a / sr, b / sr))
        out.append(GeneratedClip(clip.clip_id, clip.path, len(audio) / sr, tuple(labels),
                                 {c: _merge(s) for c, s in spans.items()}))
    return out


def _inside(times: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    hit = np.zeros(times.shape, dtype=bool)
    for a, b in spans:
        hit |= (times >= a) & (times < b)
    return hit


def _summary(r: dict) -> dict:
    """Means over the pairs, and the excess over the grid chance with a 95 % interval (normal
    approximation over pairs; pairs of one window are not independent, so read it as a
    rough guide)."""
    n = r["pairs"]
    excess = (r["inside"] - r["grid"]) / n
    var = max(0.0, r["sq"] / n - excess ** 2) / max(1, n - 1)
    return dict(pairs=n, inside=r["inside"] / n, chance_grid=r["grid"] / n,
                chance_time=r["time"] / n, above_chance=r["above"] / n, excess=excess,
                excess_ci95=1.96 * var ** 0.5)


def _spans_of(clip: GeneratedClip, c: int, lo_t: float, hi_t: float) -> List[Span]:
    """Label ``c``'s spans cut to the window ``[lo_t, hi_t)``."""
    return [(max(a, lo_t), min(e, hi_t)) for a, e in clip.spans.get(c, [])
            if e > lo_t and a < hi_t]


def _related(gen_ancestors: Dict[int, List[int]], i: int, j: int) -> bool:
    return i == j or j in gen_ancestors.get(i, []) or i in gen_ancestors.get(j, [])


def measure(model: torch.nn.Module, clips: Sequence[GeneratedClip],
            ancestors: Dict[int, List[int]], window_hop: float = 0.5,
            batch_size: int = 8) -> Dict[str, dict]:
    """Per MLG block (``"stage s block b"``): sums over (window, true label) pairs of the
    share of the label's PLG neighbours inside its span and of both chances, plus the same
    for windows without padding and the specificity control. See the module docstring."""
    fb = model_fbank(model)
    frames = bundle_of(model).frames
    windowing = Windowing.from_fraction(frames, window_hop)
    shift, half = fb.frame_shift_ms / 1000.0, fb.frame_length_ms / 2000.0
    windows = []  # (clip, start frame, valid frames, log-mel window)
    for clip in clips:
        logmel = file_logmel(clip.path, fb)
        for s in windowing.starts(logmel.size(0)):
            valid = windowing.end(s, logmel.size(0)) - s
            windows.append((clip, s, valid, windowing.cut(logmel, s, pad_value(fb))))
    stats: Dict[str, dict] = {}

    def add(key: str, name: str, inside: float, grid: float, share: float) -> None:
        row = stats.setdefault(key, {}).setdefault(name, dict(pairs=0, inside=0.0, grid=0.0,
                                                                time=0.0, above=0, sq=0.0))
        row["pairs"] += 1
        row["sq"] += (inside - grid) ** 2
        row["inside"] += inside
        row["grid"] += grid
        row["time"] += share
        row["above"] += int(inside > grid)

    full_cover: Dict[str, int] = {}
    padding_hits: Dict[str, List[float]] = {}
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        trace = trace_graphs(model, torch.stack([w for _, _, _, w in chunk]))
        scores = torch.sigmoid(trace.logits.float()).numpy()
        for g in trace.plg:
            key = f"stage {g.stage + 1} block {g.block + 1}"
            geo = g.geometry
            boxes = geo.boxes(np.arange(geo.num_nodes))
            centre_frames = (boxes[:, 0] + boxes[:, 1] - 1) / 2.0
            for b, (clip, start, valid, _) in enumerate(chunk):
                t_nodes = (start + centre_frames) * shift + half
                real = centre_frames < valid
                lo_t, hi_t = start * shift, (start + valid) * shift
                padding_hits.setdefault(key, []).append(
                    float((~real[g.index[b].numpy()]).mean()))
                present = []  # labels with event time in this window
                for c in clip.labels:
                    spans = _spans_of(clip, c, lo_t, hi_t)
                    inside_nodes = _inside(t_nodes, spans) & real
                    share = sum(e - a for a, e in spans) / (hi_t - lo_t)
                    if share > 0.0:  # (an event shorter than a cell may hold no cell centre)
                        present.append((c, inside_nodes, float(inside_nodes.mean()), share))
                for c, inside_nodes, chance, share in present:
                    if chance >= 1.0 - 1e-9:  # the span covers the window: nothing to localise
                        full_cover[key] = full_cover.get(key, 0) + 1
                        continue
                    neighbours = g.index[b, c].numpy()
                    frac = float(inside_nodes[neighbours].mean())
                    groups = ["all windows"] + (["windows without padding"] if valid == frames
                                                else [])
                    if valid == frames and scores[b, c] >= 0.5:
                        groups.append("windows without padding, label detected (score >= 0.5)")
                    for name in groups:
                        add(key, name, frac, chance, share)
                    for o, other_nodes, other_chance, other_share in present:
                        if _related(ancestors, c, o) or other_chance >= 1.0 - 1e-9:
                            continue
                        other = float(other_nodes[neighbours].mean())
                        add(key, "all windows: other labels' spans", other, other_chance,
                            other_share)
                        if valid == frames:
                            add(key, "windows without padding: other labels' spans", other,
                                other_chance, other_share)
    result: Dict[str, dict] = {}
    for key in padding_hits:  # every MLG block, in forward order
        rows = stats.get(key, {})
        result[key] = {name: _summary(r) for name, r in rows.items()}
        result[key]["neighbours in padding"] = float(np.mean(padding_hits[key]))
        result[key]["pairs covering the window (left out)"] = full_cover.get(key, 0)
    result["_windows"] = len(windows)
    return result


def print_table(result: Dict[str, dict]) -> None:
    print("| MLG block | pairs | inside own span | chance (grid) | chance (time) | lift "
          "| inside - chance (grid), 95 % | pairs above chance |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(k for k in result if not k.startswith("_")):
        for name in GROUPS:
            r = result[key].get(name)
            if r is None:
                continue
            what = key if name == "all windows" else f"{key}, {name}"
            lift = r["inside"] / r["chance_grid"] if r["chance_grid"] > 0 else float("nan")
            print(f"| {what} | {r['pairs']} | {100 * r['inside']:.1f} % | "
                  f"{100 * r['chance_grid']:.1f} % | {100 * r['chance_time']:.1f} % | "
                  f"{lift:.2f} | {100 * r['excess']:+.1f} +- {100 * r['excess_ci95']:.1f} | "
                  f"{100 * r['above_chance']:.0f} % |")
    print("\n| MLG block | PLG neighbours in padding | pairs covering the window (left out) |"
          "\n|---|---:|---:|")
    for key in sorted(k for k in result if not k.startswith("_")):
        r = result[key]
        print(f"| {key} | {100 * r['neighbours in padding']:.1f} % | "
              f"{r['pairs covering the window (left out)']} |")


def stage_means(result: Dict[str, dict], name: str = "all windows") -> Dict[str, dict]:
    """The blocks of each stage averaged (pair-weighted)."""
    out: Dict[str, dict] = {}
    for key, rows in result.items():
        if key.startswith("_") or name not in rows:
            continue
        stage = key.split(" block")[0]
        acc = out.setdefault(stage, dict(pairs=0, inside=0.0, chance_grid=0.0,
                                         chance_time=0.0))
        r = rows[name]
        acc["pairs"] += r["pairs"]
        for f in ("inside", "chance_grid", "chance_time"):
            acc[f] += r[f] * r["pairs"]
    for acc in out.values():
        for f in ("inside", "chance_grid", "chance_time"):
            acc[f] /= max(1, acc["pairs"])
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an ATGNN checkpoint (MLG)")
    parser.add_argument("--data-dir", default=os.path.expanduser(
        "~/.cache/gnn_audio/datasets/synthetic_fsd50k_v1"),
                        help="a data set written by make_fsd50k_like")
    parser.add_argument("--split", default="eval", choices=("train", "val", "eval"))
    parser.add_argument("--max-clips", type=int, default=None)
    parser.add_argument("--window-hop", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_checkpoint_model(args.checkpoint)
    check_atgnn(model, need_mlg=True, where=args.checkpoint)
    gen = data_set_generator(args.data_dir)
    vocabulary = [c.name for c in gen.classes]
    if label_names_of(model) != vocabulary:
        raise SystemExit(f"{args.checkpoint}: its labels {label_names_of(model)[:4]}... are not "
                         f"the data set's vocabulary {vocabulary[:4]}...: train it on this data "
                         "set first")
    ancestors = {c.index: gen.ancestors(c.index) for c in gen.classes}
    clips = generated_clips(args.data_dir, args.split, args.max_clips)
    result = measure(model, clips, ancestors, args.window_hop, args.batch_size)
    print(f"{args.checkpoint}: {len(clips)} {args.split} clips (event times regenerated and "
          f"checked against the files), {result['_windows']} windows of "
          f"{model_fbank(model).target_length} frames, hop {args.window_hop}; "
          f"{time.perf_counter() - started:.0f} s\n")
    print_table(result)
    for group in ("all windows", "windows without padding"):
        print(f"\nper stage (blocks pooled, {group}):")
        for stage, r in stage_means(result, group).items():
            print(f"  {stage}: inside {100 * r['inside']:.1f} % vs chance "
                  f"{100 * r['chance_grid']:.1f} % (grid) / {100 * r['chance_time']:.1f} % "
                  f"(time), {r['pairs']} pairs")
    if args.json:
        write_json(args.json, dict(checkpoint=os.path.abspath(args.checkpoint),
                                   data_dir=os.path.abspath(args.data_dir), split=args.split,
                                   clips=len(clips), window_hop=args.window_hop,
                                   blocks=result, stages={g: stage_means(result, g)
                                                          for g in GROUPS}))


if __name__ == "__main__":
    main()
