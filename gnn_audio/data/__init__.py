"""wav -> features: audio decoding, log-mel filter banks, synthetic audio, data sets."""
from gnn_audio.data.audio import load_audio, resample
from gnn_audio.data.features import (AST_AUDIOSET_FBANK, AUDIOSET_FBANK, FSD50K_FBANK,
                                     PANNS_FBANK, FbankConfig, fbank, pad_or_cut)

__all__ = ["load_audio", "resample", "FbankConfig", "FSD50K_FBANK", "AUDIOSET_FBANK",
           "AST_AUDIOSET_FBANK", "PANNS_FBANK", "fbank", "pad_or_cut"]
