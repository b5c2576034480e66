"""CNN10 of PANNs (Kong et al., 2020), the acoustic trunk of AT-GCN."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.models.inputs import check_logmel_input
from gnn_audio.models.label_layout import LabelLayout, classifier_axes

__all__ = ["CNN10", "ConvBlock"]


class ConvBlock(torch.nn.Module):
    """Two 3x3 convolutions without bias, each + BatchNorm + ReLU, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(out_channels)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, 2)


class CNN10(torch.nn.Module):
    """PANNs CNN10 on log-mel input.

    ``bn0`` normalises every mel bin (as PANNs); four :class:`ConvBlock` (64, 128, 256, 512
    channels) each followed by dropout 0.2; mean over frequency; max + mean over time;
    dropout 0.5; ``fc1`` 512 -> 512 + ReLU (the 512-d clip embedding :meth:`embed` returns);
    classifier ``fc_audioset``. 5.22 M parameters with 527 classes and 64 mel bins.

    Input ``[B, frames, mel]`` (or ``[B, 1, mel, frames]``; checked by :meth:`forward`, see
    :func:`~gnn_audio.models.inputs.check_logmel_input`); output logits ``[B, num_classes]``.
    """

    def __init__(self, num_classes: int = 527, mel_bins: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn0 = torch.nn.BatchNorm2d(mel_bins)
        self.conv_block1 = ConvBlock(1, 64)
        self.conv_block2 = ConvBlock(64, 128)
        self.conv_block3 = ConvBlock(128, 256)
        self.conv_block4 = ConvBlock(256, 512)
        self.fc1 = torch.nn.Linear(512, 512)
        self.fc_audioset = torch.nn.Linear(512, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PANNs init: Xavier-uniform weights, zero biases, unit batch-norm."""
        for m in self.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    torch.nn.init.zeros_(m.bias)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        """``[B, frames, mel]`` -> the 512-d clip embedding (after ``fc1`` and ReLU)."""
        x = x.unsqueeze(1)                                   # [B, 1, T, F]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)      # per-mel-bin normalisation
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = F.dropout(block(x), p=0.2, training=self.training)
        x = x.mean(dim=3)                                    # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)              # over time
        x = F.dropout(x, p=0.5, training=self.training)
        return F.relu(self.fc1(x))

    def forward(self, x: Tensor) -> Tensor:
        x = check_logmel_input(x, self.bn0.num_features, self)
        return self.fc_audioset(self.embed(x))

    def label_layout(self) -> LabelLayout:
        """Per-label tensors and head: the classifier ``fc_audioset``'s rows."""
        return LabelLayout(classifier_axes("fc_audioset", self.fc_audioset), ("fc_audioset.",))
