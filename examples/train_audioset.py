"""Train a tagger on AudioSet (balanced or full) with the published recipes: ATGNN
(``atgnn_audioset``: 1056 frames, 60 epochs, lr halved every 5 epochs after epoch 35), AT-GCN
and CNN10 (``at_gcn_audioset``, ``cnn10_audioset``) or the embedding baselines
(``embedding_audioset`` with ``--model fc1|fc2|lstm_tagger|gated_cnn_tagger``)::

    # segment CSVs as released, audio downloaded as AUDIO_DIR/Y<ytid>.wav
    python examples/train_audioset.py --train-csv balanced_train_segments.csv \\
        --eval-csv eval_segments.csv --audio-dir /data/audioset --skip-bad
    # PSLA / AST JSON datafiles
    python examples/train_audioset.py --train-datafile train.json --eval-datafile eval.json
    # AT-GCN with GloVe label vectors and the ontology-based label graph
    python examples/train_audioset.py --recipe at_gcn_audioset --glove glove.840B.300d.txt \\
        --label-graph ontology --train-csv ... --eval-csv ... --audio-dir ...
    # embedding baselines on the released TFRecords
    python examples/train_audioset.py --recipe embedding_audioset --model lstm_tagger \\
        --clip-grad-norm 5 --train-records 'bal_train/*.tfrecord' --eval-records 'eval/*.tfrecord'

Without a validation split (``--val-csv`` / ``--val-datafile`` / ``--val-records``) the
evaluation split validates, as in PSLA and AST; the log says so.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    from gnn_audio.cli.train import main

    sys.exit(main(prog="train_audioset.py", default_recipe="atgnn_audioset"))
