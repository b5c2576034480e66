"""Entry points of the seeds' other models: CNN10, AT-GCN and the embedding baselines."""
from __future__ import annotations

from typing import Any, Optional

import torch

from gnn_audio.data.features import PANNS_FBANK
from gnn_audio.models.at_gcn import ATGCN
from gnn_audio.models.cnn10 import CNN10
from gnn_audio.models.embedding_taggers import FCTagger, GatedCNNTagger, LSTMTagger
from gnn_audio.zoo._factory import build_model
from gnn_audio.zoo.checkpoints import load_checkpoint
from gnn_audio.zoo.registry import ModelConfig, register_model

__all__ = ["cnn10", "at_gcn", "fc1", "fc2", "lstm_tagger", "gated_cnn_tagger"]

_LOGMEL = dict(input="logmel", input_size=(1000, 64), sample_rate=32000, fbank=PANNS_FBANK,
               label_set="audioset", num_classes=527)
_EMBEDDING = dict(input="embedding", input_size=(10, 128), sample_rate=None, fbank=None,
                  label_set="audioset", num_classes=527)
# the student report: Adam, lr 1e-3, batch 64, 10 epochs
_REPORT_RECIPE = dict(optimizer="adam", lr=1e-3, batch_size=64, epochs=10)


@register_model(ModelConfig(
    name="cnn10", family="cnn", **_LOGMEL, paper=dict(params_m=5.2, map_audioset=0.422),
    recipe=dict(optimizer="adam", lr=1e-3, batch_size=64, iterations=600_000, mixup=True,
                specaugment=True),
    description="PANNs CNN10 (the AT-GCN paper's baseline)"))
def cnn10(pretrained: Optional[str] = None, num_classes: int = 527, **kwargs: Any) -> CNN10:
    """PANNs CNN10: 4 conv blocks (64-512), max+mean pooling, fc 512, classifier."""
    return build_model("cnn10", CNN10, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="at_gcn", family="at_gcn", **_LOGMEL,
    paper=dict(map_audioset=0.434, map_audioset_1layer=0.428, map_audioset_3layers=0.430),
    recipe=dict(optimizer="adam", lr=1e-3, batch_size=64, iterations=600_000, tau=0.3, p=0.2,
                mixup=True, specaugment=True),
    description="AT-GCN: CNN10 + GCN over GloVe label nodes on the co-occurrence graph"))
def at_gcn(pretrained: Optional[str] = None, num_classes: int = 527, **kwargs: Any) -> ATGCN:
    """AT-GCN. Pass ``label_embeddings`` (tensor or ``(glove_path, names)``) and either
    ``adjacency`` or ``train_targets``; with ``pretrained`` both come from the checkpoint."""
    if pretrained is not None:
        state = load_checkpoint(pretrained)["state_dict"]
        if "label_embeddings" in state and "label_embeddings" not in kwargs:
            kwargs["label_embeddings"] = torch.zeros_like(state["label_embeddings"])
        if "adjacency" in state and "adjacency" not in kwargs and "train_targets" not in kwargs:
            kwargs["adjacency"] = torch.eye(state["adjacency"].size(0))
    return build_model("at_gcn", ATGCN, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="fc1", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE,
    description="FC-1: one linear layer on the 10 x 128 AudioSet embeddings"))
def fc1(pretrained: Optional[str] = None, num_classes: int = 527, **kwargs: Any) -> FCTagger:
    return build_model("fc1", FCTagger, pretrained, num_classes, hidden=[], **kwargs)


@register_model(ModelConfig(
    name="fc2", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE,
    description="FC-2: 1024 hidden units, then the classifier"))
def fc2(pretrained: Optional[str] = None, num_classes: int = 527, **kwargs: Any) -> FCTagger:
    return build_model("fc2", FCTagger, pretrained, num_classes, hidden=[1024], **kwargs)


@register_model(ModelConfig(
    name="lstm_tagger", family="embedding", **_EMBEDDING,
    recipe=dict(_REPORT_RECIPE, clip_grad_norm=5.0),
    description="LSTM 512-256-128, all steps concatenated, FC 2048-1024"))
def lstm_tagger(pretrained: Optional[str] = None, num_classes: int = 527,
                **kwargs: Any) -> LSTMTagger:
    return build_model("lstm_tagger", LSTMTagger, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="gated_cnn_tagger", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE,
    description="two gated conv blocks, two conv+max-pool, two BiGRU layers"))
def gated_cnn_tagger(pretrained: Optional[str] = None, num_classes: int = 527,
                     **kwargs: Any) -> GatedCNNTagger:
    return build_model("gated_cnn_tagger", GatedCNNTagger, pretrained, num_classes, **kwargs)
