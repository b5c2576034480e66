"""Finding a label by what a user typed."""
from __future__ import annotations

import pytest

from gnn_audio.viz import resolve_label

NAMES = ["Acoustic_guitar", "Bass_guitar", "Electric_guitar", "Dog", "Bark", "Speech"]


def test_exact_normalised_and_index():
    assert resolve_label("Dog", NAMES) == 3
    assert resolve_label("electric guitar", NAMES) == 2
    assert resolve_label("  Bass  _Guitar ", NAMES) == 1
    assert resolve_label(5, NAMES) == 5
    with pytest.raises(ValueError, match=r"ck.pt: label index 6 out of range \(0-5\)"):
        resolve_label(6, NAMES, "ck.pt")


def test_unknown_names_list_the_closest():
    with pytest.raises(ValueError) as err:
        resolve_label("guitar", NAMES, "model.pt")
    msg = str(err.value)
    assert msg.startswith("model.pt: unknown label 'guitar' (closest: ")
    assert "Acoustic_guitar" in msg and "Bass_guitar" in msg and "\n" not in msg
    with pytest.raises(ValueError, match=r"unknown label 'Dgo' \(closest: Dog"):
        resolve_label("Dgo", NAMES)
    with pytest.raises(ValueError, match=r"unknown label 'zzz' \(labels: Acoustic_guitar, "):
        resolve_label("zzz", NAMES)
    with pytest.raises(TypeError):
        resolve_label(1.5, NAMES)
