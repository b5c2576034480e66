"""Generated data for tests, benchmarks, the demo and the examples (nothing is downloaded):

* :mod:`~gnn_audio.data.synthetic.signals`: tones, noise bursts, chirps, mixtures, wav writing;
* :mod:`~gnn_audio.data.synthetic.logmel`: log-mel batches with multi-label structure;
* :mod:`~gnn_audio.data.synthetic.fsd50k`: a generated data set in FSD50K's layout.
"""
from gnn_audio.data.synthetic.fsd50k import (SyntheticFSD50KConfig, make_fsd50k_like,
                                             synthetic_classes)
from gnn_audio.data.synthetic.logmel import synthetic_logmel_batch
from gnn_audio.data.synthetic.signals import (SIGNALS, chirp, mixture, noise_burst, tone,
                                              write_wav)

__all__ = ["tone", "noise_burst", "chirp", "mixture", "SIGNALS", "write_wav",
           "synthetic_logmel_batch", "SyntheticFSD50KConfig", "make_fsd50k_like",
           "synthetic_classes"]
