"""Entry points of the seeds' other models: CNN10, AT-GCN and the embedding baselines."""
from __future__ import annotations

from typing import Any, Optional

import torch

from gnn_audio.data.features import PANNS_FBANK
from gnn_audio.models.at_gcn import ATGCN
from gnn_audio.models.cnn10 import CNN10
from gnn_audio.models.embedding_taggers import FCTagger, GatedCNNTagger, LSTMTagger
from gnn_audio.types import PathLike
from gnn_audio.zoo._builder import build_model
from gnn_audio.zoo._registry import ModelConfig, register_model
from gnn_audio.zoo.checkpoints import load_checkpoint

__all__ = ["cnn10", "at_gcn", "fc1", "fc2", "lstm_tagger", "gated_cnn_tagger"]

_LOGMEL = dict(input="logmel", input_size=(1000, 64), sample_rate=32000, fbank=PANNS_FBANK,
               label_set="audioset", num_classes=527)
_EMBEDDING = dict(input="embedding", input_size=(10, 128), sample_rate=None, fbank=None,
                  label_set="audioset", num_classes=527)
# the student report: Adam, lr 1e-3, batch 64, 10 epochs
_REPORT_RECIPE = dict(optimizer="adam", lr=1e-3, batch_size=64, epochs=10)
_FC_ARCH = ("hidden", "num_frames", "embedding_dim")


def _fc(name: str, hidden: list, pretrained: Optional[PathLike], num_classes: int,
        kwargs: Any) -> FCTagger:
    if "hidden" in kwargs:
        raise TypeError(f"{name}() fixes its hidden layers ({hidden}); for others build "
                        "gnn_audio.models.embedding_taggers.FCTagger(hidden=...)")
    return build_model(name, FCTagger, pretrained, num_classes, defaults=dict(hidden=hidden),
                       **kwargs)


@register_model(ModelConfig(
    name="cnn10", family="cnn", **_LOGMEL, arch_args=("mel_bins",),
    paper=dict(params_m=5.2, map_audioset=0.422),
    recipe=dict(optimizer="adam", lr=1e-3, batch_size=64, iterations=600_000, mixup=True,
                specaugment=True),
    description="PANNs CNN10 (the AT-GCN paper's baseline)"))
def cnn10(pretrained: Optional[PathLike] = None, num_classes: int = 527,
          **kwargs: Any) -> CNN10:
    """PANNs CNN10: 4 conv blocks (64-512), max+mean pooling, fc 512, classifier."""
    return build_model("cnn10", CNN10, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="at_gcn", family="at_gcn", **_LOGMEL,
    arch_args=("gcn_layers", "mel_bins", "embedding_dim"),
    paper=dict(map_audioset=0.434, map_audioset_1layer=0.428, map_audioset_3layers=0.430),
    recipe=dict(optimizer="adam", lr=1e-3, batch_size=64, iterations=600_000, tau=0.3, p=0.2,
                mixup=True, specaugment=True),
    description="AT-GCN: CNN10 + GCN over GloVe label nodes on the co-occurrence graph"))
def at_gcn(pretrained: Optional[PathLike] = None, num_classes: int = 527,
           **kwargs: Any) -> ATGCN:
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
    name="fc1", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE, arch_args=_FC_ARCH,
    description="FC-1: one linear layer on the 10 x 128 AudioSet embeddings"))
def fc1(pretrained: Optional[PathLike] = None, num_classes: int = 527,
        **kwargs: Any) -> FCTagger:
    return _fc("fc1", [], pretrained, num_classes, kwargs)


@register_model(ModelConfig(
    name="fc2", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE, arch_args=_FC_ARCH,
    description="FC-2: 1024 hidden units, then the classifier"))
def fc2(pretrained: Optional[PathLike] = None, num_classes: int = 527,
        **kwargs: Any) -> FCTagger:
    return _fc("fc2", [1024], pretrained, num_classes, kwargs)


@register_model(ModelConfig(
    name="lstm_tagger", family="embedding", **_EMBEDDING,
    arch_args=("hidden", "num_frames", "embedding_dim"),
    recipe=dict(_REPORT_RECIPE, clip_grad_norm=5.0),
    description="LSTM 512-256-128, all steps concatenated, FC 2048-1024"))
def lstm_tagger(pretrained: Optional[PathLike] = None, num_classes: int = 527,
                **kwargs: Any) -> LSTMTagger:
    return build_model("lstm_tagger", LSTMTagger, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="gated_cnn_tagger", family="embedding", **_EMBEDDING, recipe=_REPORT_RECIPE,
    arch_args=("num_frames", "embedding_dim", "gru_hidden"),
    description="two gated conv blocks, two conv+max-pool, two BiGRU layers"))
def gated_cnn_tagger(pretrained: Optional[PathLike] = None, num_classes: int = 527,
                     **kwargs: Any) -> GatedCNNTagger:
    return build_model("gated_cnn_tagger", GatedCNNTagger, pretrained, num_classes, **kwargs)
