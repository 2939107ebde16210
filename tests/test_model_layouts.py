"""Channel layouts declared by the model families, built from the module structure."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgegan.compress.posttrain.channel_layout import channel_layout, prunable_families  # noqa: E402
from edgegan.errors import ConfigError  # noqa: E402
from edgegan.models import FAMILIES  # noqa: E402
from edgegan.models.loading import build_family  # noqa: E402
from edgegan.models.zoo import Family  # noqa: E402


def test_dcgan_layout_follows_the_module_with_pruned_widths():
    module, cfg, _ = build_family("dcgan", {"width": 2, "hidden_channels": [5, 4, 3, 2]})
    lay = channel_layout("dcgan", cfg, module)
    # Sequential positions: [convT, BN, ReLU] x 4, then the 1x1 conv at 12
    assert {n: (g.width, g.norms, g.config_index) for n, g in lay.groups.items()} == {
        "main.0": (5, ["main.1"], 0), "main.3": (4, ["main.4"], 1),
        "main.6": (3, ["main.7"], 2), "main.9": (2, ["main.10"], 3)}
    assert lay.layer_in["main.0"] == [(None, 100)] and lay.layer_in["main.12"] == [("main.9", 2)]
    assert lay.layer_out["main.12"] is None


def test_unet_layout_reads_skip_concatenations_in_order():
    module, cfg, _ = build_family("unet", {"ngf": 2, "num_downs": 5, "image_size": 32})
    lay = channel_layout("unet", cfg, module)
    down, up = cfg.widths()
    ups = [g for g in lay.groups.values() if g.config_field == "up_channels"]
    assert [g.width for g in ups] == up
    outer_up = "model.model.3"
    inner_up = ups[0].name
    assert lay.layer_in[outer_up] == [("model.model.0", down[0]), (inner_up, up[0])]


def test_config_that_does_not_match_the_weights_names_the_width_field():
    module, _, _ = build_family("dcgan", {"width": 2})
    wrong = FAMILIES.get("dcgan").config_cls.from_dict({"width": 2, "hidden_channels": [16, 8, 4, 3]})
    with pytest.raises(ConfigError, match="hidden_channels") as info:
        channel_layout("dcgan", wrong, module)
    assert info.value.field == "hidden_channels"


def test_a_family_without_a_layout_cannot_be_channel_pruned():
    fam = FAMILIES.get("dcgan")
    with FAMILIES.temporarily("nolayout", Family("nolayout", fam.config_cls, fam.build, fam.input_spec)):
        module, cfg, _ = build_family("nolayout", {"width": 2})
        assert "nolayout" not in prunable_families()
        with pytest.raises(ConfigError, match=r"declares a channel layout \(dcgan, resnet, unet"):
            channel_layout("nolayout", cfg, module)
