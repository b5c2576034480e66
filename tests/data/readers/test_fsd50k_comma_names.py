"""FSD50K-layout data sets whose class names hold a comma (AudioSet's "Narration, monologue"),
and ``skip_bad`` never taking a whole class out of a split without a warning."""
import json
import os

import numpy as np
import pytest

from gnn_audio.data.readers import read_datafile, read_fsd50k, read_fsd50k_vocabulary

NARRATION, SPEECH, DISHES, BARK = "/m/02qldy", "/m/09x0r", "/m/04brg2", "/m/05tny_"
VOCAB = [(NARRATION, "Narration, monologue"), (SPEECH, "Speech"),
         (DISHES, "Dishes, pots, and pans"), (BARK, "Bark")]
#: fname -> mids, in the order the row lists them
DEV = {"11": [NARRATION], "12": [NARRATION, SPEECH], "13": [SPEECH, NARRATION],
       "14": [DISHES, NARRATION, BARK], "15": [BARK], "16": [NARRATION], "17": [DISHES]}
SPLITS = {"11": "train", "12": "train", "13": "train", "14": "train", "15": "train",
          "16": "val", "17": "val"}
EVAL = {"21": [SPEECH, NARRATION], "22": [DISHES]}


def _targets(clips, truth):
    y = np.zeros((len(clips), len(VOCAB)), dtype=np.float32)
    for i, clip in enumerate(clips.clips):
        y[i, [clips.label_set.mids.index(m) for m in truth[clip.clip_id]]] = 1
    return y


@pytest.fixture
def comma_names(tmp_path, listing_tools):
    """The csv module's quoting, as the release's: ``"Narration, monologue,Speech"``."""
    paths = listing_tools.write_fsd50k(tmp_path, VOCAB, DEV, SPLITS, EVAL)
    return tmp_path, paths


def test_names_with_a_comma_read_with_their_labels(comma_names):
    root, paths = comma_names
    assert '"Narration, monologue,Speech"' in paths["dev"].read_text()  # what is tested
    for split, truth in (("train", DEV), ("val", DEV), ("eval", EVAL)):
        clips = read_fsd50k(root, split)
        assert clips.skipped == [] and clips.warnings == []
        assert clips.label_set.names == tuple(n for _, n in VOCAB)
        assert [c.clip_id for c in clips.clips] == [
            f for f in truth if split == "eval" or SPLITS[f] == split]
        np.testing.assert_array_equal(clips.targets(), _targets(clips, truth))


def _ground_truth(tmp_path, listing_tools, vocabulary: str, dev_rows):
    gt = tmp_path / "FSD50K.ground_truth"
    gt.mkdir()
    (gt / "vocabulary.csv").write_text(vocabulary)
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "".join(r + "\n" for r in dev_rows))
    (gt / "eval.csv").write_text("fname,labels,mids\n")
    (tmp_path / "FSD50K.eval_audio").mkdir()
    for row in dev_rows:
        listing_tools.write_tiny_wav(tmp_path / "FSD50K.dev_audio" / f"{row.split(',')[0]}.wav")
    return gt


def test_either_spelling_and_unquoted_vocabulary_names(tmp_path, listing_tools):
    """AudioSet's names, FSD50K's (``_and_``, ``_``), and a vocabulary row whose name with a
    comma is not quoted."""
    gt = _ground_truth(tmp_path, listing_tools,
                       "0,Narration, monologue,/m/02qldy\n1,Speech,/m/09x0r\n"
                       '2,"Dishes, pots, and pans",/m/04brg2\n3,Child_speech_and_kid_speaking,'
                       "/m/0ytgt\n",
                       ['1,"Narration_and_monologue,Speech","/m/02qldy,/m/09x0r",train',
                        '2,"Dishes_and_pots_and_pans","/m/04brg2",train',
                        '3,"Child speech, kid speaking,Dishes, pots, and pans",'
                        '"/m/0ytgt,/m/04brg2",train',
                        '4,"Speech,Narration,monologue","/m/09x0r,/m/02qldy",train'])
    vocab = read_fsd50k_vocabulary(gt / "vocabulary.csv")
    assert vocab.names == ("Narration, monologue", "Speech", "Dishes, pots, and pans",
                           "Child_speech_and_kid_speaking")
    assert vocab.mids == ("/m/02qldy", "/m/09x0r", "/m/04brg2", "/m/0ytgt")
    clips = read_fsd50k(tmp_path, "train")
    assert [c.labels for c in clips.clips] == [(0, 1), (2,), (2, 3), (0, 1)]


@pytest.mark.parametrize("labels,mids,reason", [
    ("Speech,Narration, monologue", f"{NARRATION},{SPEECH}", "do not match ids"),  # order
    ("Narration, monologue", f"{NARRATION},{SPEECH}", "do not match ids"),  # one name short
    ("Narration, monologue,Speech,Bark", f"{NARRATION},{SPEECH}", "do not match ids"),
    ("Narration", NARRATION, "names them 'Narration, monologue'"),
    ("Narration, dialogue", NARRATION, "do not match ids"),
    ("Bark,Dog", f"{BARK},{SPEECH}", "label 'Dog' does not match id '/m/09x0r'"),
    ("Bark,Speech", BARK, "2 label names for 1 label ids"),
])
def test_names_that_disagree_with_their_ids_name_file_and_line(comma_names, listing_tools,
                                                               labels, mids, reason):
    root, paths = comma_names
    lines = paths["dev"].read_text().splitlines()
    line = list(DEV).index("12") + 2
    lines[line - 1] = f'12,"{labels}","{mids}",train'
    paths["dev"].write_text("\n".join(lines) + "\n")
    msg = listing_tools.one_line_error(lambda: read_fsd50k(root, "train"),
                                       f"{paths['dev']}:{line}: ", reason)
    assert "vocabulary.csv" in msg or "label names for" in msg
    clips = read_fsd50k(root, "train", skip_bad=True)
    assert [s.where for s in clips.skipped] == [f"{paths['dev']}:{line}"]
    assert clips.warnings == []  # the other rows keep every class


def test_skip_bad_warns_of_a_class_that_lost_all_its_clips(comma_names):
    root, paths = comma_names
    dev_audio = paths["dev_audio"]
    for fname in ("11", "12", "13", "14"):  # every train clip of "Narration, monologue"
        os.remove(dev_audio / f"{fname}.wav")
    clips = read_fsd50k(root, "train", skip_bad=True)
    assert [c.clip_id for c in clips.clips] == ["15"]
    assert len(clips.skipped) == 4
    # Speech and "Dishes, pots, and pans" lost every train clip too; Bark kept one
    assert clips.warnings == [
        f"{paths['dev']}: after skip_bad the train split has no clip of 3 classes: "
        "'Narration, monologue' (4 rows skipped), 'Speech' (2 rows skipped), "
        "'Dishes, pots, and pans' (1 row skipped)"]
    val = read_fsd50k(root, "val", skip_bad=True)  # its rows are all there
    assert val.skipped == [] and val.warnings == []

    os.remove(dev_audio / "16.wav")  # the one val clip of the class
    val = read_fsd50k(root, "val", skip_bad=True)
    assert val.warnings == [
        f"{paths['dev']}: after skip_bad the val split has no clip of class "
        "'Narration, monologue' (1 row skipped)"]


def test_skip_bad_warns_of_a_class_whose_rows_are_all_bad(comma_names):
    """Rows skipped before their ids are checked (a bad split value) still count."""
    root, paths = comma_names
    lines = paths["dev"].read_text().splitlines()
    k = list(DEV).index("14") + 1  # the one train row of "Dishes, pots, and pans"
    lines[k] = lines[k].rsplit(",", 1)[0] + ",test"
    paths["dev"].write_text("\n".join(lines) + "\n")
    clips = read_fsd50k(root, "train", skip_bad=True)
    assert [s.reason for s in clips.skipped] == ["split 'test' is neither train nor val"]
    assert clips.warnings == [
        f"{paths['dev']}: after skip_bad the train split has no clip of class "
        "'Dishes, pots, and pans' (1 row skipped, of unknown split)"]
    # the row's split cannot be told: val records it too; of its classes only Bark has no
    # val clip (Narration has 16, Dishes 17)
    val = read_fsd50k(root, "val", skip_bad=True)
    assert len(val.skipped) == 1
    assert val.warnings == [f"{paths['dev']}: after skip_bad the val split has no clip of "
                            "class 'Bark' (1 row skipped, of unknown split)"]


def test_datafile_skip_bad_warns_of_a_lost_class(tmp_path, listing_tools):
    classes = tmp_path / "classes.csv"
    classes.write_text('index,mid,display_name\n0,/m/a,"Narration, monologue"\n1,/m/b,Speech\n')
    entries = [{"wav": "a.wav", "labels": "/m/a,/m/b"}, {"wav": "b.wav", "labels": "/m/b"},
               {"wav": "c.wav", "labels": "/m/a"}]
    listing_tools.write_tiny_wav(tmp_path / "b.wav")
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"data": entries}))
    clips = read_datafile(path, classes, skip_bad=True)
    assert [c.clip_id for c in clips.clips] == ["b"] and len(clips.skipped) == 2
    assert clips.warnings == [f"{path}: after skip_bad there is no clip of class "
                              "'Narration, monologue' (2 rows skipped)"]
