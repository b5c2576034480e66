"""wav -> tags: run a zoo model on audio files (decode, resample, log-mel, batch, sigmoid)."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnn_audio.data.audio import load_audio
from gnn_audio.data.features import fbank
from gnn_audio.types import PathLike

__all__ = ["AudioTagger", "format_tags"]


class AudioTagger:
    """Tag audio files with a log-mel zoo model.

    Args:
        model: a zoo model, or a zoo name (built with :func:`gnn_audio.zoo.create_model`).
        checkpoint: gnn_audio checkpoint to load when ``model`` is a name.
        device: where to run (``"cpu"``, ``"cuda"``).
        **kwargs: passed to ``create_model`` (e.g. ``num_classes``).

    Features follow the model's config (``model.model_config.fbank``): the file is decoded
    with soundfile, down-mixed, resampled with torchaudio to the config's rate, turned into
    the recipe's log-mel filter bank and zero-padded or cut to its number of frames.
    """

    def __init__(self, model: Union[torch.nn.Module, str], checkpoint: Optional[PathLike] = None,
                 device: Union[str, torch.device] = "cpu", **kwargs) -> None:
        if isinstance(model, str):
            from gnn_audio.zoo import create_model

            model = create_model(model, pretrained=None if checkpoint is None
                                 else os.fspath(checkpoint), **kwargs)
        config = getattr(model, "model_config", None)
        if config is None or config.input != "logmel" or config.fbank is None:
            raise ValueError("AudioTagger needs a log-mel zoo model (embedding models read "
                             "AudioSet embeddings, not audio)")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.fbank_config = config.fbank
        names = getattr(model, "label_names", None)
        self.label_names = list(names) if names else [f"class_{i}"
                                                      for i in range(model.num_classes)]

    def features(self, path: PathLike) -> Tensor:
        """``[frames, mel]`` log-mel features of one file, as the model expects them."""
        wav = load_audio(path, sample_rate=self.fbank_config.sample_rate)
        return fbank(wav, self.fbank_config)

    @torch.no_grad()
    def predict(self, paths: Sequence[PathLike], batch_size: int = 8,
                progress: bool = False) -> Tensor:
        """Tag probabilities ``[len(paths), num_classes]`` (sigmoid of the logits)."""
        out = []
        for i in tqdm(range(0, len(paths), batch_size), desc="tagging", unit=" batches",
                      disable=not progress):
            x = torch.stack([self.features(p) for p in paths[i:i + batch_size]])
            out.append(torch.sigmoid(self.model(x.to(self.device)).float()).cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.label_names))

    def top_tags(self, paths: Sequence[PathLike], k: int = 5,
                 batch_size: int = 8) -> List[List[Tuple[str, float]]]:
        """The ``k`` most probable tags of every file, as ``(name, probability)``."""
        return self.rank(self.predict(paths, batch_size), k)

    def rank(self, probs: Tensor, k: int = 5) -> List[List[Tuple[str, float]]]:
        """``[N, S]`` probabilities -> the ``k`` best ``(name, probability)`` per row."""
        top = probs.topk(min(k, probs.size(1)), dim=1)
        return [[(self.label_names[j], float(v)) for v, j in zip(vals, idx)]
                for vals, idx in zip(top.values.tolist(), top.indices.tolist())]


def format_tags(title: str, tags: Sequence[Tuple[str, float]]) -> str:
    """``title:`` and one ``probability  name`` line per tag (the output of
    :meth:`AudioTagger.rank` / :meth:`AudioTagger.top_tags` for one file)."""
    return "\n".join([f"{title}:"] + [f"    {prob:6.3f}  {name}" for name, prob in tags])
