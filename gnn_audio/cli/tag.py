"""``gnn-audio tag FILES --checkpoint CK``: tags of audio files from a trained checkpoint
(:class:`gnn_audio.inference.Tagger`), written to stdout as a table, JSON or CSV.

A file the tagger notes (digital silence, much shorter than the model's window:
:attr:`gnn_audio.inference.TagResult.notes`) is still tagged; the notes come with its tags:
``note:`` lines in the table, ``notes`` in JSON, a ``notes`` column in CSV."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Dict, TextIO

from gnn_audio.cli.common import (device, int_at_least, no_such, no_such_model, positive_float,
                                  probability, say)
from gnn_audio.errors import one_line

__all__ = ["add_parser", "run", "TagOutput"]

COMMAND = "tag"
HELP = "tag audio files with a trained checkpoint"
#: the separator of a file's notes in the CSV ``notes`` column
NOTE_SEPARATOR = "; "


class TagOutput:
    """Writes tag results to a stream as they come: ``table`` (a block per file), ``json``
    (one list, an object per file, with its ``notes``; files that failed as
    ``{"file", "error"}``) or ``csv`` (``file,label,score,notes`` rows; with windows
    ``file,window,start,end,label,score,notes``, where ``window`` is ``all`` for the pooled
    scores; ``notes`` are the file's notes joined by ``"; "``, empty for most files). In the
    table a file's notes follow its name, one ``note:`` line each."""

    def __init__(self, fmt: str, windows: bool, stream: TextIO) -> None:
        self.fmt, self.windows, self.stream = fmt, windows, stream
        self.count = 0
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None

    def begin(self) -> None:
        if self.fmt == "json":
            self.stream.write("[")
        elif self.csv is not None:
            self.csv.writerow(["file", "window", "start", "end", "label", "score", "notes"]
                              if self.windows else ["file", "label", "score", "notes"])
        self.stream.flush()

    def write(self, result) -> None:
        if self.fmt == "json":
            self.stream.write(("," if self.count else "") + "\n" +
                              json.dumps(result.to_dict(windows=self.windows)))
        elif not result.ok:
            return  # reported on stderr
        elif self.fmt == "csv":
            notes = NOTE_SEPARATOR.join(result.notes)
            if self.windows:
                for label, score in result.tags:
                    self.csv.writerow([result.source, "all", "0.000", f"{result.duration:.3f}",
                                       label, f"{score:.6f}", notes])
                for i, ((a, b), tags) in enumerate(zip(result.window_times,
                                                       result.window_tags())):
                    for label, score in tags:
                        self.csv.writerow([result.source, i, f"{a:.3f}", f"{b:.3f}", label,
                                           f"{score:.6f}", notes])
            else:
                for label, score in result.tags:
                    self.csv.writerow([result.source, label, f"{score:.6f}", notes])
        else:
            lines = [f"{result.source}:"]
            lines += [f"    note: {note}" for note in result.notes]
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


def run(args: argparse.Namespace) -> int:
    ckpt = args.checkpoint
    # every file's header first: missing, empty and non-audio files are reported before the
    # model is loaded, and nothing is loaded when no file is usable; when none is there at
    # all, not even the library is (no torch: the answer comes at once)
    header_errors: Dict[int, str] = {}
    for i, path in enumerate(args.files):
        missing = no_such(path)
        if missing is not None:
            header_errors[i] = missing
    no_checkpoint = no_such_model(ckpt)  # then nothing is read or loaded
    if no_checkpoint is None and len(header_errors) < len(args.files):
        from gnn_audio.data.audio import AudioError, audio_info

        for i, path in enumerate(args.files):
            if i in header_errors:
                continue
            try:
                audio_info(path)
            except AudioError as err:
                header_errors[i] = one_line(err)
    for i in sorted(header_errors):
        say(COMMAND, header_errors[i])
    if no_checkpoint is not None:
        say(COMMAND, no_checkpoint)
        return 1
    if len(header_errors) == len(args.files):
        say(COMMAND, f"no file to tag ({len(args.files)} given, none usable)")
        return 1
    from gnn_audio.inference import TagResult, Tagger, load_tagging_model

    try:
        model = load_tagging_model(ckpt)  # one line naming the file when it is unusable
        bundle = model.bundle
        if args.model and bundle.name != args.model:
            raise ValueError(f"{ckpt}: holds a {bundle.name} checkpoint, not {args.model}")
        if args.num_classes is not None and bundle.num_classes != args.num_classes:
            raise ValueError(f"{ckpt}: holds a model of {bundle.num_classes} classes, not "
                             f"{args.num_classes}")
    except (OSError, ValueError) as err:
        say(COMMAND, err)
        return 1
    try:
        tagger = Tagger(model, device=args.device, window=args.window, hop=args.hop,
                        pool=args.pool, batch_size=args.batch_size, num_workers=args.workers)
    except ValueError as err:  # a window or hop that does not fit the model: a usage error
        say(COMMAND, err)
        return 2
    tagger.checkpoint = ckpt
    good = [p for i, p in enumerate(args.files) if i not in header_errors]
    if not args.quiet:
        say(COMMAND, f"tagging {len(good)} file(s) with {tagger.describe()}")
    progress = not args.quiet and len(good) > 1 and sys.stderr.isatty()
    results = tagger.tag_files(good, top_k=args.top_k, threshold=args.threshold,
                               progress=progress)
    out = TagOutput(args.format, args.windows, sys.stdout)
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
                say(COMMAND, result.error)
        out.write(result)
    out.end()
    if failed and not args.quiet:
        say(COMMAND, f"{failed} of {len(args.files)} file(s) could not be tagged")
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        COMMAND, help=HELP,
        description="Tag audio files (any format soundfile reads, any sample rate, mono or "
        "stereo, any length) with a trained checkpoint. Long files are tagged in sliding "
        "windows (recordings over ten minutes are read block by block, never decoded whole); "
        "the file's scores pool the windows'. Results go to "
        "stdout, progress and errors to stderr; a file that cannot be tagged is reported in "
        "one line and the others are still tagged (exit status 1 at the end).")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files to tag")
    p.add_argument("--checkpoint", "-c", required=True, metavar="CK",
                   help="a gnn_audio checkpoint, e.g. a training run's best.pt (it holds the "
                   "model, its classes, label names and front-end)")
    p.add_argument("--top-k", "--top", dest="top_k", type=int_at_least(1), default=5,
                   metavar="K", help="list the K best tags of each file (default 5)")
    p.add_argument("--threshold", type=probability, default=None, metavar="P",
                   help="list only tags scoring P or more (0 to 1)")
    p.add_argument("--window", type=positive_float, default=None, metavar="SECONDS",
                   help="seconds per window, at most the model's input (default: the model's "
                   "input, e.g. 10.24 s; shorter windows are padded like short training clips)")
    p.add_argument("--hop", type=positive_float, default=None, metavar="SECONDS",
                   help="seconds between window starts, at most the window (default: half "
                   "the window)")
    p.add_argument("--pool", choices=("max", "mean"), default="max",
                   help="how a file's score pools its windows' (default max)")
    p.add_argument("--windows", action="store_true",
                   help="also print the tags of every window with its start and end")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default table; json: one list of "
                   "{file, tags: [{label, score}], notes, ...}; csv: file,label,score,notes "
                   "rows)")
    p.add_argument("--batch-size", type=int_at_least(1), default=16, metavar="N",
                   help="windows per forward pass (default 16)")
    p.add_argument("--workers", type=int_at_least(0), default=0, metavar="N",
                   help="processes decoding files in parallel (default 0: in the main "
                   "process)")
    p.add_argument("--device", type=device, default="cpu",
                   help="where the model runs: cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="only check that the checkpoint holds this zoo model (it names its "
                   "own model; there is no need to give it)")
    p.add_argument("--num-classes", type=int_at_least(1), default=None, metavar="N",
                   help="only check that the checkpoint's model has N classes")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no log lines or progress on stderr (errors still)")
    p.set_defaults(func=run)
