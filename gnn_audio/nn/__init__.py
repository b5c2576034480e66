"""graph -> model: PyG message-passing layers of ATGNN, usable on any PyG graph."""
from gnn_audio.nn.label_label_conv import LabelLabelConv
from gnn_audio.nn.linear import GroupedLinear
from gnn_audio.nn.max_relative_conv import MaxRelativeConv
from gnn_audio.nn.patch_label_conv import PatchLabelConv

__all__ = ["MaxRelativeConv", "PatchLabelConv", "LabelLabelConv", "GroupedLinear"]
