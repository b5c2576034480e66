"""gnn_audio: audio tagging with graph neural networks on PyTorch Geometric.

Data flows ``wav -> features -> graph -> model -> logits -> metrics``:

* :mod:`gnn_audio.data`    audio files, log-mel features, data sets
* :mod:`gnn_audio.graph`   spectrogram graphs (kNN), label co-occurrence graphs
* :mod:`gnn_audio.nn`      PyG message-passing layers
* :mod:`gnn_audio.models`  ATGNN, AT-GCN, CNN10 and baselines
* :mod:`gnn_audio.zoo`     timm-style registry: ``create_model``, ``list_models``
* :mod:`gnn_audio.metrics` mAP, mAUC, d-prime
"""
__version__ = "0.1.0"
