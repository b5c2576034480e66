"""Taggers on the AudioSet 128-d embedding release (10 frames at 1 Hz, 527 classes): the
baselines of the student report (Li, "Audio Tagging: LSTM and Gated CNN Model").

Input ``[B, 10, 128]`` (zero-padded / cut to 10 frames, dequantised to about [-2, 2];
checked, see :func:`~gnn_audio.models.inputs.check_embedding_input`); output logits
``[B, num_classes]``. Where the report is vague the choices are documented in each class.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.models.inputs import check_embedding_input
from gnn_audio.models.label_layout import LabelLayout, classifier_axes, last_linear

__all__ = ["FCTagger", "LSTMTagger", "GatedCNNTagger"]


def _mlp(dims: Sequence[int]) -> torch.nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class FCTagger(torch.nn.Module):
    """FC-1 (``hidden=()``: one linear layer 1280 -> 527) and FC-2 (``hidden=(1024,)``:
    1280 -> 1024 -> 527, ReLU) on the flattened 10 x 128 clip (the report pads every clip to
    10 frames, which makes flattening well defined)."""

    def __init__(self, num_classes: int = 527, hidden: Sequence[int] = (), num_frames: int = 10,
                 embedding_dim: int = 128) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_frames, self.embedding_dim = num_frames, embedding_dim
        self.net = _mlp([num_frames * embedding_dim, *hidden, num_classes])

    def forward(self, x: Tensor) -> Tensor:
        x = check_embedding_input(x, self.num_frames, self.embedding_dim, self)
        return self.net(x.flatten(1))

    def label_layout(self) -> LabelLayout:
        """Per-label tensors and head: the last linear layer's rows."""
        last = last_linear(self, "net")
        return LabelLayout(classifier_axes(last, self.get_submodule(last)), (f"{last}.",))


class LSTMTagger(torch.nn.Module):
    """Three LSTM layers of 512, 256 and 128 units (separate modules: the widths differ); the
    outputs of all 10 time steps concatenated (1280); fully connected 2048 -> 1024 -> 527 with
    ReLU. The report clips gradients to tame exploding LSTM gradients: the zoo config's recipe
    carries ``clip_grad_norm``."""

    def __init__(self, num_classes: int = 527, num_frames: int = 10,
                 embedding_dim: int = 128, hidden: Sequence[int] = (512, 256, 128)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_frames, self.embedding_dim = num_frames, embedding_dim
        dims = [embedding_dim, *hidden]
        self.lstms = torch.nn.ModuleList(torch.nn.LSTM(a, b, batch_first=True)
                                         for a, b in zip(dims[:-1], dims[1:]))
        self.head = _mlp([num_frames * hidden[-1], 2048, 1024, num_classes])

    def forward(self, x: Tensor) -> Tensor:
        x = check_embedding_input(x, self.num_frames, self.embedding_dim, self)
        for lstm in self.lstms:
            x, _ = lstm(x)
        return self.head(x.flatten(1))

    def label_layout(self) -> LabelLayout:
        """Per-label tensors and head: the last linear layer's rows."""
        last = last_linear(self, "head")
        return LabelLayout(classifier_axes(last, self.get_submodule(last)), (f"{last}.",))


class GatedBlock(torch.nn.Module):
    """Conv (kernel 2, 128 filters, 'same' padding) whose output is split into a linear half
    and a sigmoid gate of 64 channels each: ``a * sigmoid(b)`` (a gated linear unit)."""

    def __init__(self, in_channels: int, filters: int = 128) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, filters, kernel_size=2)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (0, 1, 0, 1))  # 'same' for an even kernel
        return F.glu(self.conv(x), dim=1)


class GatedCNNTagger(torch.nn.Module):
    """Gated CNN + bidirectional GRU (after Xu et al., 2017, as changed in the report).

    The clip is an image ``[B, 1, 10 frames, 128 dims]``: two :class:`GatedBlock` (128
    filters -> 64 channels), then two conv + max-pool pairs (3x3 convs to 128 and 256
    channels with ReLU; max-pooling over time, 10 -> 5 -> 1), giving the report's
    ``[N, 256, 128]`` (256 features along the 128 embedding dimensions); two bidirectional
    GRU layers (128 units per direction) run along those 128 positions; a linear classifier
    reads the mean of the GRU outputs."""

    def __init__(self, num_classes: int = 527, num_frames: int = 10,
                 embedding_dim: int = 128, gru_hidden: int = 128) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_frames, self.embedding_dim = num_frames, embedding_dim
        self.gated = torch.nn.Sequential(GatedBlock(1), GatedBlock(64))
        self.conv1 = torch.nn.Conv2d(64, 128, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(128, 256, 3, padding=1)
        self.pool1 = (2, 1)
        self.gru = torch.nn.GRU(256, gru_hidden, num_layers=2, batch_first=True,
                                bidirectional=True)
        self.fc = torch.nn.Linear(2 * gru_hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = check_embedding_input(x, self.num_frames, self.embedding_dim, self)
        x = self.gated(x.unsqueeze(1))                              # [B, 64, T, D]
        x = F.max_pool2d(F.relu(self.conv1(x)), self.pool1)         # [B, 128, T/2, D]
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, (x.size(2), 1)).squeeze(2)              # [B, 256, D]
        out, _ = self.gru(x.transpose(1, 2))                        # [B, D, 2H]
        return self.fc(out.mean(dim=1))

    def label_layout(self) -> LabelLayout:
        """Per-label tensors and head: the classifier ``fc``'s rows."""
        return LabelLayout(classifier_axes("fc", self.fc), ("fc.",))
