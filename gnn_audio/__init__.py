"""gnn_audio: audio tagging with graph neural networks on PyTorch Geometric.

Data flows ``wav -> features -> graph -> model -> logits -> metrics``; training and tagging
use all of it:

* :mod:`gnn_audio.data`    audio files, data-set readers, waveform store, log-mel features,
                           sampling and augmentation, generated data sets
* :mod:`gnn_audio.graph`   spectrogram kNN graphs (one ``KnnConfig``)
* :mod:`gnn_audio.nn`      PyG message-passing layers
* :mod:`gnn_audio.models`  ATGNN, AT-GCN, CNN10 and baselines
* :mod:`gnn_audio.zoo`     timm-style registry: ``create_model``, ``list_models``
* :mod:`gnn_audio.labels`  class lists, the AudioSet ontology, GloVe label embeddings and
                           AT-GCN's label co-occurrence graph
* :mod:`gnn_audio.metrics` mAP, mAUC, d-prime, lwlrap
* :mod:`gnn_audio.train`   recipes, the training loop (one CPU / GPU or DDP via torchrun),
                           exact resume, fine-tuning, evaluation of long clips
* :mod:`gnn_audio.inference` ``Tagger``: files of any rate / length -> tags, sliding windows
* :mod:`gnn_audio.viz`     pictures: tags over time, what ATGNN's graphs looked at, label graphs
"""
__version__ = "0.1.0"
