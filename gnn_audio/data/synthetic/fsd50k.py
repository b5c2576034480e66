"""A generated data set in FSD50K's exact layout: procedurally generated sound events from a
class hierarchy, for the tests, the demo and the training example (nothing is downloaded).

:func:`make_fsd50k_like` writes::

    root/FSD50K.ground_truth/vocabulary.csv   no header: index,name,mid (ordered by index)
    root/FSD50K.ground_truth/dev.csv          fname,labels,mids,split (split: train / val)
    root/FSD50K.ground_truth/eval.csv         fname,labels,mids
    root/FSD50K.dev_audio/<fname>.wav         44.1 kHz 16-bit PCM mono, 0.3-30 s
    root/FSD50K.eval_audio/<fname>.wav
    root/synthetic_fsd50k.json                the config and the class hierarchy (written last)

The label structure imitates the real data:

* **hierarchy**: classes form families (a parent and 1-4 children). A child's events carry the
  family's signature (harmonic tones, glides, noise bands, click trains, pulsing tones, chirps)
  with child-specific detail (pitch / band / rate region, timbre); a clip's label list names
  each leaf and then its ancestors, as FSD50K does, so the parent is always present with its
  children; some clips carry only the parent label (a family event that is none of the
  children);
* **co-occurrence**: children are paired with a child of another family; a clip that contains
  one tends to contain its partner (whose events are then quieter: the context helps);
* 1-5 leaf-level labels per clip, Zipf-like class frequencies;
* several events per label at random times, lengths and levels (SNR +3 to +20 dB) over
  coloured background noise of varying colour; some events short (< 0.3 s) and quiet;
* per-instance jitter of every parameter around the class's prototype, so neighbouring classes
  overlap a little;
* clip lengths 0.3-30 s, log-normal (skewed short: median 3 s, two thirds within 4 s),
  longer in the eval split.

**Difficulty.** The defaults (16 classes in 4 families, 500 clips) are tuned so that a small
model learns them within a CPU budget but does not solve them: a logistic regression on
time-pooled log-mel statistics reaches an eval mAP of about 0.76, a small ATGNN
(``atgnn_pyr_t`` with channels 24-192, 400 frames, 5 epochs of the 350 training clips) about
0.55, against 0.24 for the label-frequency baseline (``benchmarks/synthetic_learnability.py``).
What keeps it from trivial: parents alone sound like any of their children, partner labels are
quieter, 15 % of events are short and quiet, one timbre decays within a quarter of its event,
and the click-rate family differs mostly in time structure.

Everything is determined by the config: the same config gives byte-identical files.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from gnn_audio.data.synthetic.signals import (band_noise, click_train, coloured_noise, glide,
                                              harmonic_tone, modulated_tone, pip_train)
from gnn_audio.files import atomic_open
from gnn_audio.types import PathLike

__all__ = ["SyntheticFSD50KConfig", "SoundClass", "synthetic_classes", "make_fsd50k_like",
           "MANIFEST_NAME"]

#: written last: its presence (with the same config) marks a complete data set
MANIFEST_NAME = "synthetic_fsd50k.json"
_INCOMPLETE = ".synthetic_fsd50k.incomplete"
_VERSION = 2  # bumped whenever the same config gives other files
_GROUND_TRUTH = "FSD50K.ground_truth"
_DEV_AUDIO, _EVAL_AUDIO = "FSD50K.dev_audio", "FSD50K.eval_audio"


@dataclass(frozen=True)
class SyntheticFSD50KConfig:
    """What the generated data set looks like.

    Args:
        num_clips: clips over all splits.
        num_classes: classes in the vocabulary, parents included (at least 2).
        seed: the clips (labels, events, noise); the same seed gives byte-identical files.
        class_seed: the vocabulary and the sound of each class (kept apart from ``seed`` so
            data sets generated with different seeds share their classes).
        sample_rate: of the wav files (FSD50K: 44100).
        min_duration, max_duration: clip length bounds in seconds (FSD50K: 0.3-30 s).
        median_duration: median clip length of the dev split (log-normal, ``duration_sigma``).
        eval_duration_scale: the eval split's median is this times longer (as in FSD50K).
        split_fractions: train / val / eval shares of ``num_clips``.
        max_labels: most leaf-level labels per clip (at least 1 per clip).
        cooccurrence: probability that a further label of a clip is the partner of one it has.
        parent_only_weight: how often a family appears as its parent alone, relative to a child.
        snr_db: event level over the background noise, dB (RMS over the event).
        short_quiet_fraction: share of events that are short (0.05-0.3 s) and quiet (the lower
            part of ``snr_db``).
        jitter: spread of a child's events around its place on the family's axis, relative to
            the spacing of the children (1.0: neighbours overlap clearly; 0.35: a little).
    """

    num_clips: int = 500
    num_classes: int = 16
    seed: int = 0
    class_seed: int = 0
    sample_rate: int = 44100
    min_duration: float = 0.3
    max_duration: float = 30.0
    median_duration: float = 3.0
    duration_sigma: float = 0.8
    eval_duration_scale: float = 1.2
    split_fractions: Tuple[float, float, float] = (0.7, 0.1, 0.2)
    max_labels: int = 5
    cooccurrence: float = 0.6
    parent_only_weight: float = 0.1
    snr_db: Tuple[float, float] = (3.0, 20.0)
    short_quiet_fraction: float = 0.15
    jitter: float = 0.35

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        object.__setattr__(self, "snr_db", tuple(float(f) for f in self.snr_db))
        problems = []
        if self.num_clips < 1:
            problems.append(f"num_clips must be >= 1 (got {self.num_clips})")
        if self.num_classes < 2:
            problems.append(f"num_classes must be >= 2 (a parent and a child; got "
                            f"{self.num_classes})")
        if self.sample_rate < 8000:
            problems.append(f"sample_rate must be >= 8000 (got {self.sample_rate})")
        if not 0 < self.min_duration <= self.median_duration <= self.max_duration:
            problems.append("need 0 < min_duration <= median_duration <= max_duration (got "
                            f"{self.min_duration}, {self.median_duration}, {self.max_duration})")
        if self.duration_sigma < 0 or self.eval_duration_scale <= 0:
            problems.append("duration_sigma must be >= 0 and eval_duration_scale > 0")
        if (len(self.split_fractions) != 3 or min(self.split_fractions) < 0
                or not math.isclose(sum(self.split_fractions), 1.0, abs_tol=1e-6)):
            problems.append(f"split_fractions must be 3 shares >= 0 summing to 1 (got "
                            f"{self.split_fractions})")
        if self.max_labels < 1:
            problems.append(f"max_labels must be >= 1 (got {self.max_labels})")
        if self.jitter < 0:
            problems.append(f"jitter must be >= 0 (got {self.jitter})")
        for name in ("cooccurrence", "short_quiet_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1] (got {getattr(self, name)})")
        if self.parent_only_weight < 0:
            problems.append(f"parent_only_weight must be >= 0 (got {self.parent_only_weight})")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            problems.append(f"snr_db must be (low, high) with low <= high (got {self.snr_db})")
        if problems:
            raise ValueError("SyntheticFSD50KConfig: " + "; ".join(problems))

    def replace(self, **changes) -> "SyntheticFSD50KConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["split_fractions"], d["snr_db"] = list(self.split_fractions), list(self.snr_db)
        return d


@dataclass(frozen=True)
class SoundClass:
    """One class of the generated vocabulary.

    Attributes:
        index, name, mid: its row of ``vocabulary.csv``.
        parent: index of the parent class, ``None`` for a family's parent.
        family: family number; ``kind``: the family's signal type.
        position: the child's place (0-1) along the family's main axis (pitch, band or rate);
            ``None`` for a parent (its own events range over the whole axis).
        variant: the child's timbre variant (index into the kind's variants).
        duration: typical event length in seconds.
        partner: index of the class it tends to co-occur with, if any.
    """

    index: int
    name: str
    mid: str
    parent: Optional[int]
    family: int
    kind: str
    position: Optional[float]
    variant: int
    duration: float
    partner: Optional[int] = None


# family kinds: (parent name, child names, axis low end range, octaves spanned, variants)
_KINDS: Dict[str, dict] = {
    "harmonic": dict(parent="Harmonic_tone", children=("Deep_tone", "Mid_tone", "High_tone",
                                                         "Piercing_tone"),
                     low=(90.0, 180.0), octaves=3.0, variants=3),
    "glide": dict(parent="Glide", children=("Rising_glide", "Falling_glide", "Warble",
                                            "Siren"),
                  low=(250.0, 500.0), octaves=3.0, variants=4),
    "noise": dict(parent="Noise_band", children=("Rumble", "Rustle", "Hiss", "Sizzle"),
                  low=(120.0, 240.0), octaves=5.5, variants=3),
    "clicks": dict(parent="Impulses", children=("Slow_ticks", "Ticking", "Fast_ticks",
                                                "Rattle"),
                   low=(2.5, 5.0), octaves=3.5, variants=3),
    "pulse": dict(parent="Pulsing_tone", children=("Slow_pulse", "Throb", "Tremolo",
                                                   "Flutter"),
                  low=(1.5, 3.0), octaves=3.5, variants=3),
    "chirps": dict(parent="Chirping", children=("Low_chirps", "Peeps", "High_chirps",
                                                "Trill"),
                   low=(700.0, 1400.0), octaves=2.5, variants=3),
}
_KIND_ORDER = ("harmonic", "glide", "noise", "clicks", "pulse", "chirps")


def synthetic_classes(num_classes: int = 16, class_seed: int = 0) -> List[SoundClass]:
    """The generated vocabulary: ``round(num_classes / 4)`` families, each a parent with
    children, ordered alphabetically by name (as FSD50K's vocabulary), mids ``/g/synth_NNN``."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (got {num_classes})")
    rng = np.random.default_rng([class_seed, 7919])
    num_families = max(1, round(num_classes / 4))
    per_family = [(num_classes - num_families) // num_families] * num_families
    for f in range((num_classes - num_families) % num_families):
        per_family[f] += 1
    specs = []  # (name, parent_name, family, kind, position, variant, duration)
    for f, num_children in enumerate(per_family):
        kind = _KIND_ORDER[f % len(_KIND_ORDER)]
        info = _KINDS[kind]
        suffix = "" if f < len(_KIND_ORDER) else f"_{f // len(_KIND_ORDER) + 1}"
        parent = info["parent"] + suffix
        specs.append((parent, None, f, kind, None, int(rng.integers(info["variants"])),
                      float(np.exp(rng.uniform(np.log(0.5), np.log(2.5))))))
        variants = rng.permutation(max(num_children, info["variants"])) % info["variants"]
        for c in range(num_children):
            base = info["children"][c] if c < len(info["children"]) else f"{parent}_{c + 1}"
            specs.append((base + suffix if c < len(info["children"]) else base, parent, f, kind,
                          (c + 0.5) / num_children, int(variants[c]),
                          float(np.exp(rng.uniform(np.log(0.4), np.log(3.0))))))
    specs.sort(key=lambda s: s[0])
    index = {s[0]: i for i, s in enumerate(specs)}
    # co-occurrence partners: children paired across families
    children = [index[s[0]] for s in specs if s[1] is not None]
    partner: Dict[int, int] = {}
    order = list(rng.permutation(children))
    while order:
        a = order.pop(0)
        for j, b in enumerate(order):
            if specs[b][2] != specs[a][2]:
                partner[a], partner[b] = int(b), int(a)
                order.pop(j)
                break
    return [SoundClass(index=i, name=s[0], mid=f"/g/synth_{i:03d}",
                       parent=None if s[1] is None else index[s[1]], family=s[2], kind=s[3],
                       position=s[4], variant=s[5], duration=s[6], partner=partner.get(i))
            for i, s in enumerate(specs)]


# --------------------------------------------------------------------------------------------
# one event of a class


def _family_low(classes: Sequence[SoundClass], class_seed: int) -> Dict[int, float]:
    """Low end of each family's main axis (pitch / band centre / rate)."""
    rng = np.random.default_rng([class_seed, 104729])
    lows = {}
    for family in sorted({c.family for c in classes}):
        kind = next(c.kind for c in classes if c.family == family)
        lo, hi = _KINDS[kind]["low"]
        lows[family] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return lows


def _event(cls: SoundClass, low: float, n: int, sr: int, num_children: int,
           rng: np.random.Generator, jitter: float = 1.0) -> np.ndarray:
    """``n`` samples (unit RMS, enveloped) of one instance of ``cls``."""
    info = _KINDS[cls.kind]
    if cls.position is None:  # a parent alone: anywhere on the family's axis, any variant
        pos, variant = rng.uniform(0.0, 1.0), int(rng.integers(info["variants"]))
    else:  # the child's region, jittered so neighbours overlap a little
        pos = cls.position + rng.normal(0.0, 0.3 * jitter / max(num_children, 1))
        variant = cls.variant
    axis = low * 2.0 ** (info["octaves"] * float(np.clip(pos, -0.15, 1.15)))
    kind, decay = cls.kind, None
    if kind == "harmonic":
        num_harmonics, tilt, vib = [(4, -8.0, 0.0), (10, -3.0, 0.02), (2, -12.0, 0.0)][variant]
        x = harmonic_tone(n, sr, axis, num_harmonics, tilt + rng.normal(0, 1.0),
                          vibrato_hz=rng.uniform(4, 7), vibrato_oct=vib, rng=rng)
        decay = 0.25 if variant == 2 else None
    elif kind == "glide":
        span = rng.uniform(0.6, 1.4)
        start, end, fm_hz, fm_oct = [(axis / 2 ** (span / 2), axis * 2 ** (span / 2), 0, 0),
                                     (axis * 2 ** (span / 2), axis / 2 ** (span / 2), 0, 0),
                                     (axis, axis, rng.uniform(5, 9), 0.15),
                                     (axis, axis, rng.uniform(0.5, 1.2), 0.4)][variant]
        x = glide(n, sr, start, end, fm_hz, fm_oct, rng=rng)
    elif kind == "noise":
        bandwidth = [0.35, 0.8, 0.5][variant] * rng.uniform(0.8, 1.25)
        x = band_noise(n, sr, axis, bandwidth, rng=rng)
        if variant == 2:  # crackling: randomly gated
            gate = np.repeat(rng.random(n // 441 + 1) < 0.35, 441)[:n].astype(np.float32)
            x = x * gate
    elif kind == "clicks":
        center, decay_ms = [(1500.0, 2.0), (4000.0, 1.0), (600.0, 5.0)][variant]
        x = click_train(n, sr, axis, center * 2 ** rng.normal(0, 0.3), decay_ms, rng=rng)
    elif kind == "pulse":
        carrier = [300.0, 800.0, 2000.0][variant] * 2 ** rng.normal(0, 0.3)
        x = modulated_tone(n, sr, carrier, axis, depth=rng.uniform(0.7, 1.0), rng=rng)
    else:  # chirps
        slope, rate = [(0.7, 6.0), (-0.7, 6.0), (0.1, 18.0)][variant]
        x = pip_train(n, sr, axis, rate * rng.uniform(0.7, 1.4), pip_ms=rng.uniform(25, 60),
                      slope_oct=slope, spread_oct=0.15, rng=rng)
    return x * _envelope(n, sr, rng, decay)


def _envelope(n: int, sr: int, rng: np.random.Generator, decay: Optional[float]) -> np.ndarray:
    """Linear attack / release ramps (5-40 ms / 10-150 ms), optionally an exponential decay of
    ``decay`` x the event length."""
    attack = max(1, min(n // 3, int(rng.uniform(0.005, 0.04) * sr)))
    release = max(1, min(n // 3, int(rng.uniform(0.01, 0.15) * sr)))
    env = np.ones(n, dtype=np.float32)
    env[:attack] = np.linspace(0.0, 1.0, attack, dtype=np.float32)
    env[n - release:] = np.minimum(env[n - release:],
                                   np.linspace(1.0, 0.0, release, dtype=np.float32))
    if decay is not None:
        env *= np.exp(-np.arange(n, dtype=np.float32) / np.float32(max(decay * n, 1.0)))
    return env


# --------------------------------------------------------------------------------------------
# one clip


@dataclass
class _ClipPlan:
    fname: int
    split: str
    labels: List[int] = field(default_factory=list)


class _Generator:
    """Draws the label set and the audio of each clip from the config."""

    def __init__(self, config: SyntheticFSD50KConfig) -> None:
        self.config = config
        self.classes = synthetic_classes(config.num_classes, config.class_seed)
        self.lows = _family_low(self.classes, config.class_seed)
        self.num_children = {f: sum(c.family == f and c.parent is not None for c in self.classes)
                             for f in self.lows}
        rng = np.random.default_rng([config.class_seed, 1299709])
        ranks = rng.permutation(len(self.classes))
        prior = 1.0 / (ranks + 2.0) ** 0.8  # Zipf-like class frequencies
        prior *= np.array([config.parent_only_weight if c.parent is None else 1.0
                           for c in self.classes])
        self.prior = prior / prior.sum()
        k = np.arange(1, config.max_labels + 1)
        self.count_p = 0.5 ** k / (0.5 ** k).sum()  # 1 label: ~52 %, 5 labels: ~3 %

    def ancestors(self, index: int) -> List[int]:
        out, parent = [], self.classes[index].parent
        while parent is not None:
            out.append(parent)
            parent = self.classes[parent].parent
        return out

    def _allowed(self, c: int, chosen: Sequence[int]) -> bool:
        """Not chosen yet, and a parent alone ("none of the children") never with its own
        children."""
        family = self.classes[c].family
        return c not in chosen and not any(
            self.classes[u].family == family
            and (self.classes[u].parent is None or self.classes[c].parent is None)
            for u in chosen)

    def draw_units(self, rng: np.random.Generator) -> List[Tuple[int, bool]]:
        """``(class index, added as a partner)`` for each leaf-level label of a clip."""
        target = int(rng.choice(len(self.count_p), p=self.count_p)) + 1
        units: List[Tuple[int, bool]] = [(int(rng.choice(len(self.prior), p=self.prior)), False)]
        for _ in range(8 * target):
            if len(units) >= target:
                break
            chosen = [u for u, _ in units]
            partners = [self.classes[u].partner for u in chosen
                        if self.classes[u].partner is not None
                        and self._allowed(self.classes[u].partner, chosen)]
            if partners and rng.random() < self.config.cooccurrence:
                units.append((int(partners[int(rng.integers(len(partners)))]), True))
                continue
            c = int(rng.choice(len(self.prior), p=self.prior))
            if self._allowed(c, chosen):
                units.append((c, False))
        return units

    def clip(self, plan: _ClipPlan, index: int,
             events: Optional[List[Tuple[int, int, int]]] = None) -> np.ndarray:
        """Draws ``plan.labels`` and returns the clip's samples (float32, peak < 1); appends
        ``(class, first sample, end sample)`` of every event to ``events`` when given (the
        ground truth in time, e.g. for localisation studies)."""
        cfg, sr = self.config, self.config.sample_rate
        rng = np.random.default_rng([cfg.seed, index, 31337])
        median = cfg.median_duration * (cfg.eval_duration_scale if plan.split == "eval" else 1.0)
        duration = float(np.clip(median * np.exp(cfg.duration_sigma * rng.standard_normal()),
                                 cfg.min_duration, cfg.max_duration))
        n = max(int(round(cfg.min_duration * sr)), min(int(round(duration * sr)),
                                                      int(cfg.max_duration * sr)))
        units = self.draw_units(rng)
        labels: List[int] = []
        for u, _ in units:
            for c in [u] + self.ancestors(u):
                if c not in labels:
                    labels.append(c)
        plan.labels = labels

        x = coloured_noise(n, sr, exponent=rng.uniform(0.0, 2.0), rng=rng)
        lo, hi = cfg.snr_db
        for u, is_partner in units:
            cls = self.classes[u]
            for _ in range(1 + min(4, int(rng.poisson(n / sr / 5.0)))):
                if rng.random() < cfg.short_quiet_fraction:
                    length = rng.uniform(0.05, 0.3)
                    snr = rng.uniform(lo, lo + 0.3 * (hi - lo))
                else:
                    length = cls.duration * np.exp(0.5 * rng.standard_normal())
                    snr = rng.uniform(lo + 0.2 * (hi - lo), hi)
                if is_partner:
                    snr = max(lo, snr - 0.2 * (hi - lo))
                m = int(np.clip(length * sr, 0.03 * sr, n))
                start = int(rng.integers(0, n - m + 1))
                x[start:start + m] += np.float32(10 ** (snr / 20)) * _event(
                    cls, self.lows[cls.family], m, sr, self.num_children[cls.family], rng,
                    cfg.jitter)
                if events is not None:
                    events.append((u, start, start + m))
        peak = float(np.abs(x).max())
        gain = 10 ** (rng.uniform(-24.0, -1.0) / 20) / max(peak, 1e-9)
        return (x * np.float32(gain)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the directory


def _replace_text(path: Path, write: Callable) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        write(f)


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    with atomic_open(path) as f:
        sf.write(f, samples, sample_rate, subtype="PCM_16", format="WAV")


def _is_complete(root: Path, config: SyntheticFSD50KConfig) -> bool:
    manifest = root / MANIFEST_NAME
    if not manifest.is_file() or (root / _INCOMPLETE).exists():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (data.get("version") == _VERSION and data.get("config") == config.to_dict()
            and all((root / _GROUND_TRUTH / n).is_file()
                    for n in ("vocabulary.csv", "dev.csv", "eval.csv")))


def make_fsd50k_like(root: PathLike, config: Optional[SyntheticFSD50KConfig] = None, *,
                     overwrite: bool = False, progress: bool = False, **changes) -> Path:
    """Write a generated data set in FSD50K's layout under ``root`` and return ``root``.

    Args:
        root: the data-set folder (created if needed).
        config: what to generate (default :class:`SyntheticFSD50KConfig`); keyword
            ``changes`` (e.g. ``num_clips=20, seed=1``) replace its fields.
        overwrite: allow writing into a folder that holds an FSD50K layout this function did
            not write (without it, that is an error).
        progress: show a tqdm progress bar.

    A folder that already holds a complete data set of the same config is returned as is. The
    ground-truth CSVs and the manifest are written after all audio, each file atomically, so an
    interrupted run never looks complete and is regenerated by the next call.
    """
    config = config or SyntheticFSD50KConfig()
    if changes:
        config = config.replace(**changes)
    root = Path(root)
    if _is_complete(root, config):
        return root
    foreign = any((root / d).exists() for d in (_GROUND_TRUTH, _DEV_AUDIO, _EVAL_AUDIO))
    ours = (root / MANIFEST_NAME).exists() or (root / _INCOMPLETE).exists()
    if foreign and not ours and not overwrite:
        raise FileExistsError(f"{root}: holds an FSD50K layout that make_fsd50k_like did not "
                              "write; pass overwrite=True to replace it")
    for d in (_GROUND_TRUTH, _DEV_AUDIO, _EVAL_AUDIO):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / _INCOMPLETE).touch()
    (root / MANIFEST_NAME).unlink(missing_ok=True)

    gen = _Generator(config)
    plans = _plan_splits(config)
    keep = {(_EVAL_AUDIO if p.split == "eval" else _DEV_AUDIO, f"{p.fname}.wav") for p in plans}
    for d in (_DEV_AUDIO, _EVAL_AUDIO):  # files of an earlier config
        for old in (root / d).glob("*.wav"):
            if (d, old.name) not in keep:
                old.unlink()
    iterator = enumerate(plans)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(plans), desc="generating clips", unit="clip")
    for i, plan in iterator:
        folder = root / (_EVAL_AUDIO if plan.split == "eval" else _DEV_AUDIO)
        _write_wav(folder / f"{plan.fname}.wav", gen.clip(plan, i), config.sample_rate)

    classes = gen.classes

    def label_fields(plan: _ClipPlan) -> List[str]:
        return [",".join(classes[c].name for c in plan.labels),
                ",".join(classes[c].mid for c in plan.labels)]

    gt = root / _GROUND_TRUTH
    _replace_text(gt / "vocabulary.csv", lambda f: csv.writer(f, lineterminator="\n").writerows(
        [c.index, c.name, c.mid] for c in classes))
    dev = sorted((p for p in plans if p.split != "eval"), key=lambda p: p.fname)
    ev = sorted((p for p in plans if p.split == "eval"), key=lambda p: p.fname)
    _replace_text(gt / "dev.csv", lambda f: csv.writer(f, lineterminator="\n").writerows(
        [["fname", "labels", "mids", "split"]]
        + [[p.fname, *label_fields(p), p.split] for p in dev]))
    _replace_text(gt / "eval.csv", lambda f: csv.writer(f, lineterminator="\n").writerows(
        [["fname", "labels", "mids"]] + [[p.fname, *label_fields(p)] for p in ev]))
    manifest = dict(version=_VERSION, config=config.to_dict(),
                    splits={s: sum(p.split == s for p in plans) for s in ("train", "val", "eval")},
                    classes=[asdict(c) for c in classes])
    _replace_text(root / MANIFEST_NAME, lambda f: json.dump(manifest, f, indent=1))
    (root / _INCOMPLETE).unlink()
    return root


def _plan_splits(config: SyntheticFSD50KConfig) -> List[_ClipPlan]:
    """Unique integer fnames (as Freesound ids) and a train / val / eval split for each clip."""
    rng = np.random.default_rng([config.seed, 15485863])
    n = config.num_clips
    fnames = rng.choice(np.arange(1000, 1000 + max(50 * n, 100_000)), size=n, replace=False)
    n_train = int(round(config.split_fractions[0] * n))
    n_val = int(round(config.split_fractions[1] * n))
    n_val = min(n_val, n - n_train)
    splits = ["train"] * n_train + ["val"] * n_val + ["eval"] * (n - n_train - n_val)
    return [_ClipPlan(int(f), s) for f, s in zip(fnames, splits)]
