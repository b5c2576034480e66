"""wav -> features: audio decoding, log-mel filter banks, data-set readers, the waveform
store, sampling, augmentation and generated data.

* :mod:`~gnn_audio.data.audio`: decoding (soundfile) and resampling (torchaudio), whole or
  block by block (long recordings);
* :mod:`~gnn_audio.data.features`, :mod:`~gnn_audio.data.kaldi_fbank`: log-mel filter banks;
* :mod:`~gnn_audio.data.readers`: FSD50K, JSON datafiles, AudioSet segment CSVs -> a
  :class:`~gnn_audio.data.clips.ClipList`;
* :mod:`~gnn_audio.data.store`: 16 kHz waveforms of a split in one memory-mapped file;
* :mod:`~gnn_audio.data.dataset`: features (and augmentation) from a store or from files;
* :mod:`~gnn_audio.data.sampling`, :mod:`~gnn_audio.data.augment`: balanced DDP-aware
  sampling, mixup and SpecAugment;
* :mod:`~gnn_audio.data.stats`: normalisation statistics of a data set;
* :mod:`~gnn_audio.data.synthetic`: generated audio and FSD50K-format data sets.
"""
from gnn_audio.data.audio import (AudioBlocks, AudioError, AudioInfo, StreamResampler,
                                  audio_info, load_audio, resample, resampled_length)
from gnn_audio.data.augment import AugmentConfig, mix, sample_mixup, spec_augment
from gnn_audio.data.clips import Clip, ClipList, Skipped
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import (AST_AUDIOSET_FBANK, AUDIOSET_FBANK, FSD50K_FBANK,
                                     PANNS_FBANK, FbankConfig, fbank, pad_or_cut)
from gnn_audio.data.readers import DataError, read_audioset_csv, read_datafile, read_fsd50k
from gnn_audio.data.sampling import (BalancedSampler, ShardedEvalSampler, ShuffleSampler,
                                     balanced_weights)
from gnn_audio.data.stats import compute_norm_stats
from gnn_audio.data.store import WaveformStore

__all__ = ["load_audio", "resample", "audio_info", "AudioInfo", "AudioError", "AudioBlocks",
           "StreamResampler", "resampled_length", "FbankConfig",
           "FSD50K_FBANK", "AUDIOSET_FBANK", "AST_AUDIOSET_FBANK", "PANNS_FBANK", "fbank",
           "pad_or_cut", "Clip", "ClipList", "Skipped", "DataError", "read_fsd50k",
           "read_datafile", "read_audioset_csv", "WaveformStore", "TaggingDataset",
           "AugmentConfig", "sample_mixup", "mix", "spec_augment", "BalancedSampler",
           "ShuffleSampler", "ShardedEvalSampler", "balanced_weights", "compute_norm_stats"]
