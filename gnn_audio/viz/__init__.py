"""Pictures of what a tagger heard and what ATGNN's graphs did (PNG, matplotlib, label names
on the axes):

* :mod:`~gnn_audio.viz.tags_over_time`: a long recording's log-mel with its per-window tag
  scores as a heat map under it;
* :mod:`~gnn_audio.viz.explain`: for a clip and a label, the patches ATGNN's PLG label node
  read in each MLG stage, and a patch node's kNN neighbours in a PGN block, over the log-mel
  (``gnn-audio explain``);
* :mod:`~gnn_audio.viz.label_graphs`: a checkpoint's learned LLG adjacency next to the data
  set's co-occurrence graph (AT-GCN).

The graphs drawn are the ones the model built in its forward pass
(:mod:`~gnn_audio.viz.graph_trace`). Needs matplotlib (``pip install gnn-audio[plot]``),
imported only when a picture is drawn.
"""
from gnn_audio.viz.explain import explain, explain_file
from gnn_audio.viz.graph_trace import (GraphTrace, GridGeometry, PGNGraph, PLGGraph,
                                       trace_graphs)
from gnn_audio.viz.label_graphs import (compare_label_graphs, label_graphs_file,
                                        llg_adjacency, plot_label_graphs, strongest_pairs)
from gnn_audio.viz.label_lookup import resolve_label
from gnn_audio.viz.tags_over_time import plot_tags_over_time, tags_over_time_file, window_scores

__all__ = ["trace_graphs", "GraphTrace", "GridGeometry", "PLGGraph", "PGNGraph", "explain",
           "explain_file", "plot_tags_over_time", "window_scores", "tags_over_time_file",
           "llg_adjacency", "strongest_pairs", "compare_label_graphs", "plot_label_graphs",
           "label_graphs_file", "resolve_label"]
