import pytest
import torch

from gnn_audio.labels import load_label_set, load_ontology, ontology_adjacency

# a small tree: root -> a -> a1 -> a11, root -> b; "x" is outside the label set
TREE = {"root": {"child_ids": ["a", "b"]}, "a": {"child_ids": ["x"]},
        "x": {"child_ids": ["a11"]}, "b": {"child_ids": []}, "a11": {"child_ids": []}}


def test_links_by_hops_through_classes_outside_the_set():
    mids = ["root", "a", "b", "a11"]
    one = ontology_adjacency(mids, hops=1, p=None, ontology=TREE)
    expected = torch.eye(4)
    for i, j in ((0, 1), (0, 2)):  # root-a, root-b; a11's parent x is not in the set
        expected[i, j] = expected[j, i] = 1.0
    assert torch.equal(one, expected)
    two = ontology_adjacency(mids, hops=2, p=None, ontology=TREE)
    assert two[1, 3] == two[3, 1] == 1.0  # a - x - a11
    assert two[0, 3] == 0.0 and two[2, 3] == 0.0  # root is 3 levels above a11
    three = ontology_adjacency(mids, hops=3, p=None, ontology=TREE)
    assert three[0, 3] == 1.0 and three[1, 2] == 0.0  # siblings are never linked


def test_eq7_weighting_and_lonely_labels():
    adj = ontology_adjacency(["root", "a", "b", "a11"], hops=1, p=0.2, ontology=TREE)
    torch.testing.assert_close(adj.sum(1), torch.ones(4))
    assert adj[0, 0] == pytest.approx(0.8) and adj[0, 1] == pytest.approx(0.1)
    assert adj[1, 1] == pytest.approx(0.8) and adj[1, 0] == pytest.approx(0.2)
    assert adj[3, 3] == 1.0 and adj[3].sum() == 1.0  # no neighbour in the set


def test_audioset_dog_and_bark():
    names = load_label_set("audioset")
    adj = ontology_adjacency(names.mids, p=None)
    assert adj.shape == (527, 527) and torch.equal(adj, adj.t())
    i, j = names.mids.index("/m/0bt9lr"), names.mids.index("/m/05tny_")  # Dog, Bark
    assert adj[i, j] == 1.0
    ontology = load_ontology()
    for a, b in adj.nonzero().tolist()[:2000]:  # every link is a parent/child pair
        if a != b:
            ma, mb = names.mids[a], names.mids[b]
            assert mb in ontology[ma]["child_ids"] or ma in ontology[mb]["child_ids"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="not in the ontology"):
        ontology_adjacency(["/m/not_a_class"])
    with pytest.raises(ValueError, match="unique"):
        ontology_adjacency(["a", "a"], ontology=TREE)
    with pytest.raises(ValueError):
        ontology_adjacency(["a"], hops=0, ontology=TREE)
    with pytest.raises(ValueError):
        ontology_adjacency(["a"], p=1.5, ontology=TREE)
