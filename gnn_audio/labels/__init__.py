"""Labels: the shipped class lists and ontology, AT-GCN's label co-occurrence graph, the
ontology-based label graph, their plot, and GloVe label embeddings."""
from gnn_audio.labels.cooccurrence import (SCHEMES, adjacency_to_graph, cooccurrence_adjacency,
                                           cooccurrence_graph, label_cooccurrence_counts)
from gnn_audio.labels.glove import hashed_gaussian, label_words, load_glove
from gnn_audio.labels.label_sets import (LABEL_SETS, LabelSet, load_label_set, load_ontology,
                                         ontology_parents)
from gnn_audio.labels.ontology_graph import ontology_adjacency
from gnn_audio.labels.plot import plot_label_graph

__all__ = ["LabelSet", "load_label_set", "load_ontology", "ontology_parents", "LABEL_SETS",
           "load_glove", "label_words", "hashed_gaussian", "SCHEMES", "cooccurrence_adjacency",
           "cooccurrence_graph", "adjacency_to_graph", "label_cooccurrence_counts",
           "plot_label_graph", "ontology_adjacency"]
