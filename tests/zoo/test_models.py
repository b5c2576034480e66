"""Every registered model, timm style: adding a zoo entry adds its tests."""
import pytest
import torch

from gnn_audio.labels import load_label_set
from gnn_audio.train.finetune import head_parameter_names
from gnn_audio.zoo import create_model, get_model_config, list_models, load_model, save_checkpoint

MODELS = list_models()
# zoo defaults of AT-GCN (no GloVe file, no training labels) warn by design
pytestmark = pytest.mark.filterwarnings("ignore:AT-GCN without")


def example_input(name, batch=2, frames=None):
    config = get_model_config(name)
    size = config.input_size if frames is None else (frames, config.input_size[1])
    return torch.randn(batch, *size)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_at_config_size(name):
    torch.manual_seed(0)
    model = create_model(name)
    out = model(example_input(name))
    assert out.shape == (2, get_model_config(name).num_classes)
    assert torch.isfinite(out).all()
    out.mean().backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert [n for n, p in params if p.grad is None] == []
    assert all(torch.isfinite(p.grad).all() for _, p in params)


@pytest.mark.parametrize("name", MODELS)
def test_config_consistency(name):
    config = get_model_config(name)
    model = create_model(name)
    assert model.bundle.name == name and model.bundle.config.name == name
    assert model.num_classes == config.num_classes
    if config.label_set is not None:
        assert model.bundle.label_names == tuple(load_label_set(config.label_set).names)
        assert len(model.bundle.label_names) == config.num_classes
    custom = create_model(name, num_classes=7)
    assert custom.num_classes == 7 and custom.bundle.label_names is None
    named = create_model(name, num_classes=2, label_names=["a", "b"])
    assert named.bundle.label_names == ("a", "b")
    with pytest.raises(ValueError):
        create_model(name, num_classes=3, label_names=["a"])


@pytest.mark.parametrize("name", MODELS)
def test_eval_is_deterministic_and_checkpoint_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, num_classes=11).eval()
    x = example_input(name, frames=160 if get_model_config(name).input == "logmel" else None)
    with torch.no_grad():
        y = model(x)
        assert torch.equal(y, model(x))
    path = tmp_path / f"{name}.pt"
    save_checkpoint(model, path, extra={"epoch": 3})
    torch.manual_seed(1)
    loaded = create_model(name, num_classes=11, pretrained=str(path)).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), y)
    assert load_model(path).bundle == model.bundle


@pytest.mark.parametrize("name", MODELS)
def test_label_layout_names_the_per_label_tensors(name):
    """Every model declares its per-label tensors and head (what fine-tuning copies per
    label and trains first); each named axis has one entry per class."""
    model = create_model(name, num_classes=7)
    layout = model.label_layout()
    state = model.state_dict()
    assert layout.axes and layout.head
    for key, dims in layout.axes.items():
        assert all(state[key].shape[d] == 7 for d in dims), (key, state[key].shape, dims)
    head = head_parameter_names(model)
    assert head and all(n in dict(model.named_parameters()) for n in head)


@pytest.mark.parametrize("name", list_models("*_nomlg"))
def test_nomlg_variants_have_no_label_parameters(name):
    model = create_model(name)
    assert not [n for n, _ in model.named_parameters() if "label" in n or "mlg" in n]
    full = create_model(name[:-len("_nomlg")])
    assert [n for n, _ in full.named_parameters() if n.startswith("label_")]
