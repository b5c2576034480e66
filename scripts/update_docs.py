"""Regenerate the tables in README.md and docs/*.md that are computed from the code.

A generated table sits between ``<!-- generated: NAME (scripts/update_docs.py) -->`` and
``<!-- end generated -->``; this script rewrites it from :data:`GENERATORS`, and
``tests/test_docs.py`` fails when a committed table differs from what the code gives::

    .venv/bin/python scripts/update_docs.py          # rewrite in place
    .venv/bin/python scripts/update_docs.py --check  # exit 1 if a table is stale
"""
from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path
from typing import Callable, Dict

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- generated: (?P<name>[^(]+?) \(scripts/update_docs.py\) -->\n)"
                   r"(?P<body>.*?)(<!-- end generated -->)", re.S)


@functools.lru_cache(maxsize=None)
def atgnn_zoo_table() -> str:
    """Parameters and MACs of every ATGNN entry (200 classes, 1024 x 128), next to the
    paper: :func:`gnn_audio.zoo.summary.summary_table`."""
    from gnn_audio.zoo import list_models
    from gnn_audio.zoo.summary import summary_table

    return summary_table(list_models(family="atgnn"), 200) + "\n"


GENERATORS: Dict[str, Callable[[], str]] = {"atgnn zoo table": atgnn_zoo_table}


def render(text: str, where: str = "") -> str:
    """``text`` with every generated block rewritten."""
    def replace(m: re.Match) -> str:
        name = m.group("name")
        if name not in GENERATORS:
            raise ValueError(f"{where}: unknown generated block {name!r}")
        return m.group(1) + GENERATORS[name]() + m.group(4)
    return BLOCK.sub(replace, text)


def doc_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="report stale tables, change nothing")
    args = p.parse_args(argv)
    stale = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        new = render(text, str(path))
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
