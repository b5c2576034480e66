from gnn_audio.labels import load_label_set, load_ontology
from gnn_audio.labels import ontology_parents


def test_label_sets_are_shipped_in_order():
    fsd, audioset = load_label_set("fsd50k"), load_label_set("audioset")
    assert len(fsd) == 200 and len(audioset) == 527
    assert audioset.names[0] == "Speech" and audioset.mids[0] == "/m/09x0r"
    assert fsd.index()[fsd.mids[5]] == 5
    ontology = load_ontology()
    assert all(mid in ontology for mid in audioset.mids)
    assert "/m/09x0r" in ontology_parents()  # Speech has a parent (Human voice)
