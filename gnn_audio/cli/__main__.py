"""``python -m gnn_audio.cli``: the ``gnn-audio`` command."""
import sys

from gnn_audio.cli import main

sys.exit(main())
