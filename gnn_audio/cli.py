"""The ``gnn-audio`` command line: ``tag``, ``models``, ``summary``, ``explain``, ``train``,
``eval``, ``prepare``, ``demo``.

Output fits pipes: results go to stdout, progress and log lines to stderr. Exit status: 0 done,
1 a failure (a file, a checkpoint, a data set: one line on stderr naming it), 2 a usage error
(a bad option or value, one line on stderr). ``gnn-audio tag`` tags every file it can and exits
1 at the end when one could not be tagged.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

from gnn_audio import __version__

__all__ = ["build_parser", "main"]

PROG = "gnn-audio"


def _say(command: str, message: str) -> None:
    """One line on stderr: ``gnn-audio COMMAND: message``."""
    text = " ".join(str(message).split())
    print(f"{PROG} {command}: {text}" if command else f"{PROG}: {text}", file=sys.stderr,
          flush=True)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} "
                     "--help)\n")


# --------------------------------------------------------------------------------------------
# option types: a bad value is a usage error (exit 2) found before any work


def _int_at_least(low: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    convert.__name__ = "integer"
    return convert


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _probability(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _device(text: str) -> str:
    from gnn_audio.inference import resolve_device

    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# --------------------------------------------------------------------------------------------
# tag


class _TagOutput:
    """Writes tag results to a stream as they come: ``table`` (a block per file), ``json``
    (one list, an object per file; files that failed as ``{"file", "error"}``) or ``csv``
    (``file,label,score`` rows; with windows ``file,window,start,end,label,score``, where
    ``window`` is ``all`` for the pooled scores)."""

    def __init__(self, fmt: str, windows: bool, stream: TextIO) -> None:
        self.fmt, self.windows, self.stream = fmt, windows, stream
        self.count = 0
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None

    def begin(self) -> None:
        if self.fmt == "json":
            self.stream.write("[")
        elif self.csv is not None:
            self.csv.writerow(["file", "window", "start", "end", "label", "score"]
                              if self.windows else ["file", "label", "score"])
        self.stream.flush()

    def write(self, result) -> None:
        if self.fmt == "json":
            self.stream.write(("," if self.count else "") + "\n" +
                              json.dumps(result.to_dict(windows=self.windows)))
        elif not result.ok:
            return  # reported on stderr
        elif self.fmt == "csv":
            if self.windows:
                for label, score in result.tags:
                    self.csv.writerow([result.source, "all", "0.000", f"{result.duration:.3f}",
                                       label, f"{score:.6f}"])
                for i, ((a, b), tags) in enumerate(zip(result.window_times,
                                                       result.window_tags())):
                    for label, score in tags:
                        self.csv.writerow([result.source, i, f"{a:.3f}", f"{b:.3f}", label,
                                           f"{score:.6f}"])
            else:
                for label, score in result.tags:
                    self.csv.writerow([result.source, label, f"{score:.6f}"])
        else:
            lines = [f"{result.source}:"]
            lines += [f"    {score:6.3f}  {label}" for label, score in result.tags]
            if not result.tags:
                lines.append(f"    (no tag scores {result.threshold} or more)")
            if self.windows:
                for (a, b), tags in zip(result.window_times, result.window_tags()):
                    text = ", ".join(f"{label} {score:.3f}" for label, score in tags) or "-"
                    lines.append(f"    window {a:8.2f}-{b:8.2f} s: {text}")
            self.stream.write("\n".join(lines) + "\n")
        self.count += 1
        self.stream.flush()

    def end(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.count else "]\n")
        self.stream.flush()


def _cmd_tag(args: argparse.Namespace) -> int:
    from gnn_audio.data.audio import AudioError, audio_info
    from gnn_audio.inference import TagResult, Tagger, load_tagging_model

    cmd = "tag"
    ckpt = args.checkpoint
    if not os.path.isfile(ckpt):
        _say(cmd, f"{ckpt}: " + ("is a directory, not a checkpoint (a training run's best "
                                 "weights are RUN_DIR/best.pt)" if os.path.isdir(ckpt)
                                 else "no such checkpoint file"))
        return 1
    # every file's header first: missing, empty and non-audio files are reported before the
    # model is loaded, and nothing is loaded when no file is usable
    header_errors: Dict[int, str] = {}
    for i, path in enumerate(args.files):
        try:
            audio_info(path)
        except AudioError as err:
            header_errors[i] = str(err)
            _say(cmd, err)
    if len(header_errors) == len(args.files):
        _say(cmd, f"no file to tag ({len(args.files)} given, none usable)")
        return 1
    try:
        model = load_tagging_model(ckpt)
        name = getattr(model, "model_name", None)
        if args.model and name != args.model:
            raise ValueError(f"{ckpt}: holds a {name} checkpoint, not {args.model}")
        if args.num_classes is not None and model.num_classes != args.num_classes:
            raise ValueError(f"{ckpt}: holds a model of {model.num_classes} classes, not "
                             f"{args.num_classes}")
    except (OSError, ValueError) as err:
        _say(cmd, err)
        return 1
    try:
        tagger = Tagger(model, device=args.device, window=args.window, hop=args.hop,
                        pool=args.pool, batch_size=args.batch_size, num_workers=args.workers)
    except ValueError as err:  # a window or hop that does not fit the model: a usage error
        _say(cmd, err)
        return 2
    tagger.checkpoint = ckpt
    good = [p for i, p in enumerate(args.files) if i not in header_errors]
    if not args.quiet:
        _say(cmd, f"tagging {len(good)} file(s) with {tagger.describe()}")
    progress = not args.quiet and len(good) > 1 and sys.stderr.isatty()
    results = tagger.tag_files(good, top_k=args.top_k, threshold=args.threshold,
                               progress=progress)
    out = _TagOutput(args.format, args.windows, sys.stdout)
    out.begin()
    failed = len(header_errors)
    for i, path in enumerate(args.files):
        if i in header_errors:
            result = TagResult(source=path, label_names=tuple(tagger.label_names),
                               error=header_errors[i])
        else:
            result = next(results)
            if not result.ok:
                failed += 1
                _say(cmd, result.error)
        out.write(result)
    out.end()
    if failed and not args.quiet:
        _say(cmd, f"{failed} of {len(args.files)} file(s) could not be tagged")
    return 1 if failed else 0


def _add_tag(sub) -> None:
    p = sub.add_parser(
        "tag", help="tag audio files with a trained checkpoint",
        description="Tag audio files (any format soundfile reads, any sample rate, mono or "
        "stereo, any length) with a trained checkpoint. Long files are tagged in sliding "
        "windows, never decoded whole; the file's scores pool the windows'. Results go to "
        "stdout, progress and errors to stderr; a file that cannot be tagged is reported in "
        "one line and the others are still tagged (exit status 1 at the end).")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files to tag")
    p.add_argument("--checkpoint", "-c", required=True, metavar="CK",
                   help="a gnn_audio checkpoint, e.g. a training run's best.pt (it holds the "
                   "model, its classes, label names and front-end)")
    p.add_argument("--top-k", "--top", dest="top_k", type=_int_at_least(1), default=5,
                   metavar="K", help="list the K best tags of each file (default 5)")
    p.add_argument("--threshold", type=_probability, default=None, metavar="P",
                   help="list only tags scoring P or more (0 to 1)")
    p.add_argument("--window", type=_positive_float, default=None, metavar="SECONDS",
                   help="seconds per window, at most the model's input (default: the model's "
                   "input, e.g. 10.24 s; shorter windows are padded like short training clips)")
    p.add_argument("--hop", type=_positive_float, default=None, metavar="SECONDS",
                   help="seconds between window starts, at most the window (default: half "
                   "the window)")
    p.add_argument("--pool", choices=("max", "mean"), default="max",
                   help="how a file's score pools its windows' (default max)")
    p.add_argument("--windows", action="store_true",
                   help="also print the tags of every window with its start and end")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default table; json: one list of "
                   "{file, tags: [{label, score}], ...}; csv: file,label,score rows)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=16, metavar="N",
                   help="windows per forward pass (default 16)")
    p.add_argument("--workers", type=_int_at_least(0), default=0, metavar="N",
                   help="processes decoding files in parallel (default 0: in the main "
                   "process)")
    p.add_argument("--device", type=_device, default="cpu",
                   help="where the model runs: cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="only check that the checkpoint holds this zoo model (it names its "
                   "own model; there is no need to give it)")
    p.add_argument("--num-classes", type=_int_at_least(1), default=None, metavar="N",
                   help="only check that the checkpoint's model has N classes")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no log lines or progress on stderr (errors still)")
    p.set_defaults(func=_cmd_tag)


# --------------------------------------------------------------------------------------------
# models


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "gnn_audio" / "zoo_counts.json"


def _code_fingerprint() -> str:
    """A hash of the model code: cached counts are recomputed whenever it changes."""
    import gnn_audio

    root = Path(gnn_audio.__file__).parent
    digest = hashlib.sha1(__version__.encode())
    for folder in ("models", "nn", "graph", "zoo"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _read_cache(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: Dict[str, Any]) -> None:
    try:
        from gnn_audio.files import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as err:  # a read-only home: the table is still printed
        _say("models", f"could not cache the counts in {path} ({err})")


def _zoo_rows(names: Sequence[str], macs: bool, use_cache: bool,
              progress: bool) -> List[Dict[str, Any]]:
    import warnings

    import torch
    from tqdm.auto import tqdm

    from gnn_audio.zoo import create_model, get_model_config
    from gnn_audio.zoo.summary import count_macs, count_parameters

    cache_path = _cache_file()
    cache = _read_cache(cache_path) if use_cache else {}
    fingerprint = _code_fingerprint()
    rows, changed = [], False
    for name in tqdm(names, desc="counting", unit=" models", disable=not progress):
        cfg = get_model_config(name)
        key = f"{name}|{cfg.num_classes}|{cfg.input_size[0]}x{cfg.input_size[1]}|{fingerprint}"
        counts = dict(cache.get(key) or {})
        if "params" not in counts or (macs and "macs" not in counts):
            with warnings.catch_warnings():  # construction notes (e.g. AT-GCN without GloVe)
                warnings.simplefilter("ignore")
                model = create_model(name, num_classes=cfg.num_classes)
                counts["params"] = count_parameters(model)
                if macs:
                    with torch.no_grad():
                        counts["macs"] = count_macs(model, torch.randn(1, *cfg.input_size))
            cache[key], changed = counts, True
        paper = cfg.paper or {}
        rows.append({"model": name, "family": cfg.family, "input": cfg.input,
                     "input_size": list(cfg.input_size), "sample_rate": cfg.sample_rate,
                     "classes": cfg.num_classes, "params": counts["params"],
                     "macs": counts.get("macs") if macs else None,
                     "paper_map_fsd50k": paper.get("map_fsd50k"),
                     "paper_map_audioset": paper.get("map_audioset")})
    if changed and use_cache:
        _write_cache(cache_path, cache)
    return rows


def _cmd_models(args: argparse.Namespace) -> int:
    from gnn_audio.zoo import list_models

    names = list_models(args.pattern)
    if not names:
        _say("models", f"no zoo model matches {args.pattern!r} (gnn-audio models lists all)")
        return 1
    if not args.no_macs and not args.quiet:
        _say("models", f"counting parameters and MACs of {len(names)} model(s) at their full "
             f"input (one forward pass each; cached in {_cache_file()})")
    rows = _zoo_rows(names, not args.no_macs, not args.no_cache,
                     progress=not args.quiet and sys.stderr.isatty())
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0

    def fmt_input(r):
        size = "x".join(str(v) for v in r["input_size"])
        rate = f" {r['sample_rate'] / 1000:g} kHz" if r["input"] == "logmel" else ""
        return f"{r['input']} {size}{rate}"

    def fmt_map(v):
        return f"{v:.3f}" if v is not None else "-"
    header = ["model", "family", "input", "classes", "params (M)", "MACs (G)",
              "paper mAP FSD50K", "paper mAP AudioSet"]
    table = [[r["model"], r["family"], fmt_input(r), str(r["classes"]),
              f"{r['params'] / 1e6:.3f}",
              f"{r['macs'] / 1e9:.3f}" if r["macs"] is not None else "-",
              fmt_map(r["paper_map_fsd50k"]), fmt_map(r["paper_map_audioset"])] for r in rows]
    if args.format == "markdown":
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
        for row in [header] + table:
            print("  ".join(v.ljust(w) if i < 3 else v.rjust(w)
                            for i, (v, w) in enumerate(zip(row, widths))).rstrip())
    if not args.no_macs and not args.quiet:
        _say("models", "MACs: multiply-accumulates of matrix products and convolutions in one "
             "forward pass of one clip (gnn_audio.zoo.summary)")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="the model zoo: params, MACs, input, paper mAP",
                       description="List the zoo entries with parameters and multiply-"
                       "accumulates counted from the models themselves (one forward pass of "
                       "one clip at the entry's input; cached per code version), their input "
                       "and the papers' mAP.")
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style name filter, e.g. 'atgnn_pyr_*' (default: all)")
    p.add_argument("--no-macs", action="store_true",
                   help="count parameters only (no forward passes)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the counts instead of reading ~/.cache/gnn_audio")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no notes or progress on stderr")
    p.set_defaults(func=_cmd_models)


# --------------------------------------------------------------------------------------------
# summary


def _shape_of(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return "[" + ", ".join(str(v) for v in value.shape) + "]"
    if isinstance(value, (tuple, list)):
        inner = [_shape_of(v) for v in value]
        return "(" + ", ".join(inner) + ")" if inner else "()"
    if value is None:
        return "-"
    return type(value).__name__


def _cmd_summary(args: argparse.Namespace) -> int:
    import warnings

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gnn_audio.zoo import create_model, get_model_config, is_model
    from gnn_audio.zoo.summary import count_parameters

    for name in args.names:
        if not is_model(name):
            _say("summary", f"unknown model {name!r} (gnn-audio models lists the zoo)")
            return 2
    for n, name in enumerate(args.names):
        cfg = get_model_config(name)
        num_classes = args.num_classes or cfg.num_classes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_model(name, num_classes=num_classes).eval()
        chosen = [(mname, m) for mname, m in model.named_modules()
                  if mname and mname.count(".") < args.depth]
        shapes: Dict[str, str] = {}
        calls: Dict[str, int] = {}

        def hook(mname):
            def record(module, inputs, output):
                shapes[mname] = _shape_of(output)
                calls[mname] = calls.get(mname, 0) + 1
            return record
        handles = [m.register_forward_hook(hook(mname)) for mname, m in chosen]
        x = torch.randn(1, *cfg.input_size)
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(x)
        finally:
            for h in handles:
                h.remove()
        macs = counter.get_total_flops() // 2
        header = ["module", "type", "params", "output"]
        rows = []
        for mname, m in chosen:
            out = shapes.get(mname, "-")
            if calls.get(mname, 0) > 1:
                out += f" (x{calls[mname]} calls)"
            indent = "  " * mname.count(".")
            rows.append([indent + mname, type(m).__name__,
                         f"{sum(p.numel() for p in m.parameters()):,}", out])
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(header)]
        if n:
            print()
        print(f"{name}: input {_shape_of(x)} ({cfg.input}, {cfg.family}), "
              f"{num_classes} classes")
        for row in [header] + rows:
            print("  ".join(v.rjust(w) if i == 2 else v.ljust(w)
                            for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        params = count_parameters(model)
        print(f"total: {params:,} parameters ({params / 1e6:.3f} M), {macs / 1e9:.3f} G MACs "
              "(matrix products and convolutions of one forward pass, gnn_audio.zoo.summary)")
    return 0


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="layer table of zoo models",
                       description="The layers of zoo models: module name, type, parameters "
                       "and output shape (forward hooks on one clip at the entry's input), "
                       "then the totals.")
    p.add_argument("names", nargs="+", metavar="NAME", help="zoo model names")
    p.add_argument("--depth", type=_int_at_least(1), default=2,
                   help="module nesting depth to list (default 2)")
    p.add_argument("--num-classes", type=_int_at_least(1), default=None, metavar="N",
                   help="classes of the model (default: the entry's, 200 or 527)")
    p.set_defaults(func=_cmd_summary)


def _cmd_explain(args: argparse.Namespace) -> int:
    import pickle

    from gnn_audio.viz.explain import explain_file

    try:
        out = explain_file(args.checkpoint, args.file, args.label, args.out, stage=args.stage,
                           block=args.block, start=args.start, device=args.device)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as err:
        _say("explain", " ".join(str(err).split()))
        return 1
    print(out, flush=True)
    return 0


def _add_explain(sub) -> None:
    p = sub.add_parser(
        "explain", help="draw what ATGNN's graphs looked at for a label (PNG)",
        description="For one clip and one label: the patches the label's PLG node read in "
        "each MLG stage, drawn over the log-mel, and one patch node's kNN neighbours in a "
        "PGN block (the graphs the model built in its forward pass). Needs an ATGNN "
        "checkpoint with MLG blocks. Prints the PNG's path on stdout.")
    p.add_argument("file", metavar="FILE", help="audio file (one model-length window of it "
                   "is analysed, see --start)")
    p.add_argument("--checkpoint", "-c", required=True, metavar="CK",
                   help="an ATGNN checkpoint, e.g. a training run's best.pt")
    p.add_argument("--label", required=True, metavar="NAME",
                   help="the label to explain (its display name, case and _ ignored)")
    p.add_argument("--out", required=True, metavar="PNG", help="the picture to write")
    p.add_argument("--stage", type=_int_at_least(1), default=None,
                   help="stage (1-based) of the PGN block drawn last (default: the last)")
    p.add_argument("--block", type=_int_at_least(1), default=None,
                   help="block (1-based) within --stage (default: its last)")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                   help="where in the file the analysed window starts (default 0)")
    p.add_argument("--device", type=_device, default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=_cmd_explain)


# --------------------------------------------------------------------------------------------
# demo, prepare, eval, train


def _cmd_demo(args: argparse.Namespace) -> int:
    from gnn_audio.demo import run_demo

    # line by line even when stdout is a pipe
    run_demo(args.model, steps=args.steps, out=args.out, top=args.top,
             log=lambda message: print(message, flush=True))
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="train a small zoo model on generated audio, tag clips")
    p.add_argument("--model", default="atgnn_pyr_t", help="zoo model (default atgnn_pyr_t)")
    p.add_argument("--steps", type=_int_at_least(1), default=60,
                   help="training steps (default 60)")
    p.add_argument("--out", default=None, help="folder for the generated wav files "
                   "(default: a new temporary folder)")
    p.add_argument("--top", type=_int_at_least(1), default=3,
                   help="tags shown per test clip (default 3)")
    p.set_defaults(func=_cmd_demo)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.features import FSD50K_FBANK
    from gnn_audio.data.readers import DataError, read_fsd50k
    from gnn_audio.data.stats import compute_norm_stats
    from gnn_audio.data.store import StoreError, WaveformStore
    from gnn_audio.files import atomic_write_text

    if args.stats and "train" not in args.splits:  # a usage mistake: before any work
        _say("prepare", "--stats needs the train split in --splits")
        return 2
    out = Path(args.out)
    stores = {}
    for split in args.splits:
        try:
            clips = read_fsd50k(args.data_dir, split, skip_bad=args.skip_bad)
            store = WaveformStore.build(clips, out / split, sample_rate=args.sample_rate,
                                        dtype=args.dtype, skip_bad=args.skip_bad,
                                        num_workers=args.workers, progress=not args.quiet)
        except (DataError, StoreError, AudioError) as err:  # one line naming the file
            _say("prepare", err)
            return 1
        stores[split] = store
        hours = float(store.lengths.sum()) / store.sample_rate / 3600
        print(f"{split}: {len(store)} clips, {store.num_classes} classes, {hours:.2f} h -> "
              f"{store.path} ({store.report.summary()})")
    if args.stats:
        fb = FSD50K_FBANK.replace(sample_rate=args.sample_rate)
        mean, std = compute_norm_stats(stores["train"], fb, progress=not args.quiet)
        stats = {"norm_mean": mean, "norm_std": std, "split": "train",
                 "clips": len(stores["train"])}
        atomic_write_text(out / "norm_stats.json", json.dumps(stats, indent=2) + "\n")
        print(f"train log-mel: norm_mean {mean:.4f}, norm_std {std:.4f} -> "
              f"{out / 'norm_stats.json'}")
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="decode an FSD50K-layout data set into waveform stores")
    p.add_argument("--data-dir", required=True, help="FSD50K root (FSD50K.ground_truth/, ...)")
    p.add_argument("--out", required=True, help="folder for the stores, one per split")
    p.add_argument("--splits", nargs="+", default=["train", "val", "eval"],
                   choices=["train", "val", "eval"], help="splits to store (default all)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unusable rows / files, listed in OUT/SPLIT/skipped.txt")
    p.add_argument("--workers", type=_int_at_least(0), default=0,
                   help="decoding processes (default 0: in the main process)")
    p.add_argument("--sample-rate", type=_int_at_least(1), default=16000,
                   help="sample rate of the stored waveforms (default 16000)")
    p.add_argument("--dtype", default="int16", choices=["int16", "float16"],
                   help="sample type of the stores (default int16)")
    p.add_argument("--stats", action="store_true",
                   help="also compute the train split's log-mel mean and std")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_prepare)


def _cmd_eval(args: argparse.Namespace) -> int:
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.dataset import ItemError
    from gnn_audio.data.readers import DataError, read_datafile, read_fsd50k
    from gnn_audio.data.store import StoreError
    from gnn_audio.train.cli import one_line
    from gnn_audio.train.distributed import init_distributed
    from gnn_audio.train.evaluate import EvalConfig, build_eval_dataset, predict
    from gnn_audio.files import atomic_write_text
    from gnn_audio.zoo import load_model
    from gnn_audio.zoo.checkpoints import CheckpointMismatch

    if bool(args.data_dir) == bool(args.datafile):
        _say("eval", "give one of --data-dir (FSD50K layout) or --datafile")
        return 2
    modes = ("crop", "windows") if args.eval_mode == "both" else (args.eval_mode,)
    try:
        ctx = init_distributed(args.device)
        model = load_model(args.checkpoint).to(ctx.device)
        fb = model.model_config.fbank
        if fb is None:
            raise ValueError(f"{args.checkpoint}: {model.model_name} reads embeddings; "
                             "gnn-audio eval scores log-mel models on audio")
        clips = (read_fsd50k(args.data_dir, args.split, skip_bad=args.skip_bad)
                 if args.data_dir else read_datafile(args.datafile, args.class_csv,
                                                     skip_bad=args.skip_bad))
        names = getattr(model, "label_names", None)
        if names is not None and list(clips.label_set.names) != list(names):
            raise ValueError(f"{args.checkpoint} was trained on another class list than "
                             f"{args.data_dir or args.datafile} ({len(names)} vs "
                             f"{len(clips.label_set)} classes)")
        source = clips
        if not args.no_store:  # the training stores: the same waveforms as training saw
            from gnn_audio.data.store import WaveformStore
            from gnn_audio.train.data import DataPaths, build_split_store, store_folder
            from gnn_audio.train.distributed import barrier

            paths = DataPaths(data_dir=args.data_dir or str(Path(args.datafile).parent),
                              store_dir=args.store_dir, skip_bad=args.skip_bad)
            split = args.split if args.data_dir else Path(args.datafile).stem
            if ctx.is_main:
                build_split_store(clips, split, paths, fb.sample_rate, progress=not args.quiet,
                                  log=lambda m: print(m, file=sys.stderr))
            barrier(ctx)
            source = WaveformStore(store_folder(paths, split, fb.sample_rate))
        dataset = build_eval_dataset(source, fb)
        config = EvalConfig(modes=modes, window_hop=args.window_hop, batch_size=args.batch_size,
                            num_workers=args.workers)
        preds = predict(model, dataset, config, ctx, frames=fb.target_length,
                        progress=not args.quiet)
    except (DataError, StoreError, AudioError, ItemError, CheckpointMismatch, OSError,
            ValueError) as err:
        _say("eval", one_line(err))
        return 1
    metrics = preds.metrics()
    summary = {mode: {k: m[k] for k in ("mAP", "mAUC", "d_prime", "lwlrap")}
               for mode, m in metrics.items()}
    result = {"checkpoint": str(args.checkpoint), "clips": len(preds), "metrics": summary,
              "skipped": len(clips.skipped)}
    if ctx.is_main:
        for mode, m in summary.items():
            print(f"{mode:8s} mAP {m['mAP']:.4f}  mAUC {m['mAUC']:.4f}  d' {m['d_prime']:.3f}"
                  f"  lwlrap {m['lwlrap']:.4f}  ({len(preds)} clips)")
        if args.out:
            atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
        if args.scores:
            preds.save(args.scores)
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="score a trained checkpoint on a data split")
    p.add_argument("--checkpoint", required=True, help="a gnn_audio checkpoint (best.pt)")
    p.add_argument("--data-dir", default=None, help="an FSD50K-layout folder")
    p.add_argument("--split", default="eval", choices=["train", "val", "eval"],
                   help="split of --data-dir to score (default eval)")
    p.add_argument("--datafile", default=None, help="a JSON datafile instead of --data-dir")
    p.add_argument("--class-csv", default=None, help="class list of --datafile "
                   "(default: AudioSet's)")
    p.add_argument("--eval-mode", default="both", choices=["crop", "windows", "both"],
                   help="crop: the first window of each clip (the papers' protocol); "
                   "windows: max over sliding windows; both (default)")
    p.add_argument("--window-hop", type=_positive_float, default=0.5,
                   help="hop between windows as a fraction of the window (default 0.5)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=32,
                   help="windows per forward pass (default 32)")
    p.add_argument("--workers", type=_int_at_least(0), default=0,
                   help="DataLoader processes (default 0)")
    p.add_argument("--device", type=_device, default=None,
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--skip-bad", action="store_true", help="skip unusable rows / files")
    p.add_argument("--store-dir", default=None, help="waveform stores (default: the data "
                   "folder's gnn_audio_stores/, shared with training)")
    p.add_argument("--no-store", action="store_true", help="decode the audio files directly")
    p.add_argument("--out", default=None, help="write the metrics as JSON")
    p.add_argument("--scores", default=None, help="write every clip's scores (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.set_defaults(func=_cmd_eval)


def _add_train(sub) -> None:
    # parsed by gnn_audio.train.cli (main() hands it every argument after "train")
    sub.add_parser("train", add_help=False,
                   help="train with a recipe (gnn-audio train --help lists every option)")


# --------------------------------------------------------------------------------------------
# the parser

#: the subcommands in the order ``gnn-audio --help`` lists them; each adds its parser with
#: ``func`` set to the function that runs it (``func(args) -> exit status``).
_COMMANDS: List[Callable[[Any], None]] = [_add_tag, _add_models, _add_summary, _add_explain,
                                          _add_train, _add_eval, _add_prepare, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Audio tagging with graph neural networks. "
                     "Results go to stdout, progress and errors to stderr; exit status 0 "
                     "done, 1 failure, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"gnn-audio {__version__}",
                        help="print the version and exit")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    for command in sub.choices.values():  # its own usage errors name the command
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        from gnn_audio.train.cli import main as train_main

        return train_main(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "command_parser", parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if args.func is None:  # no command: a usage error
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `gnn-audio tag ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        _say("", "interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
