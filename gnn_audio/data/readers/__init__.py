"""Data-set readers: each turns a data set's own listing (FSD50K ground-truth CSVs, a JSON
datafile, an AudioSet segment CSV) into a :class:`~gnn_audio.data.clips.ClipList` over the data
set's own class list. Bad rows raise :class:`DataError` naming ``file:line``, or with
``skip_bad=True`` are left out and listed in ``ClipList.skipped``. Nothing here decodes audio
(:func:`gnn_audio.data.audio.load_audio` does).

:mod:`~gnn_audio.data.readers.sources` names the data sources (``fsd50k``, ``audioset``,
``embeddings``) that training, ``gnn-audio prepare`` and ``gnn-audio eval`` read: their
options, checks and splits."""
from gnn_audio.data.readers.audioset_csv import read_audioset_csv
from gnn_audio.data.readers.datafile import read_datafile
from gnn_audio.data.readers.errors import DataError
from gnn_audio.data.readers.fsd50k import (FSD50K_SPLITS, find_fsd50k_layout, read_fsd50k,
                                           read_fsd50k_vocabulary)
from gnn_audio.data.readers.sources import (Source, SourceOption, get_source, infer_source,
                                            list_sources, register_source, source_options)
from gnn_audio.data.readers.tables import read_class_csv

__all__ = ["DataError", "read_fsd50k", "read_fsd50k_vocabulary", "find_fsd50k_layout",
           "FSD50K_SPLITS", "read_datafile", "read_audioset_csv", "read_class_csv", "Source",
           "SourceOption", "get_source", "list_sources", "register_source", "source_options",
           "infer_source"]
