"""Third-party plugins from the `edgegan.plugins` entry-point group: a real distribution
(dist-info + entry_points.txt) written to a temp dir on sys.path, discovered by
importlib.metadata, loaded lazily on the first registry lookup, and visible in the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgegan import registry
from edgegan.cli.main import main

PLUGIN = '''
"""A third-party edgegan plugin: a metric, a model family (+ zoo entry), a compression method,
a converter and a target scheme."""
import dataclasses
from typing import Optional

import numpy as np

from edgegan.config import JsonConfig
from edgegan.metrics.base import register_metric
from edgegan.compress.base import copy_module, derive, register_method
from edgegan.models.layout import ChannelLayout, convs_of
from edgegan.models.spec import InputSpec
from edgegan.models.zoo import FAMILIES, ZOO, Family, ZooEntry


@dataclasses.dataclass
class MeanShiftConfig(JsonConfig):
    scale: float = 1.0


@register_metric("mean_shift", MeanShiftConfig, [("mean_shift", "mean shift of feature means")],
                 "distance between the feature means", short="mean shift")
def mean_shift(real, fake, config):
    diff = np.asarray(real, np.float64).mean(0) - np.asarray(fake, np.float64).mean(0)
    return {"mean_shift": float(np.linalg.norm(diff) * config.scale)}


@dataclasses.dataclass
class ConvGanConfig(JsonConfig):
    latent_dim: int = 8
    width: int = 6
    hidden: Optional[list] = None

    def width_fields(self):
        return {"hidden": list(self.hidden or [self.width])}


def build(cfg):
    from torch import nn

    w = cfg.width_fields()["hidden"][0]
    return nn.Sequential(nn.ConvTranspose2d(cfg.latent_dim, w, 4), nn.BatchNorm2d(w), nn.ReLU(),
                         nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())


def layout(module, cfg):
    convs = convs_of(module, "")
    lay = ChannelLayout()
    lay.layer_in[convs[0].path] = [(None, cfg.latent_dim)]
    lay.layer_in[convs[1].path] = [lay.conv_group(convs[0], "hidden", 0)]
    lay.output_conv(convs[1])
    return lay


@dataclasses.dataclass
class HalveConfig(JsonConfig):
    factor: float = dataclasses.field(default=0.5, metadata={"help": "multiply every weight by this"})
    out: str = dataclasses.field(default="x", metadata={"help": "a field whose flag clashes with --out"})

    def tag(self):
        return f"h{round(100 * self.factor)}"


@register_method("halve", HalveConfig, "scale all weights (plugin demo)")
def halve(model, config):
    import torch

    module = copy_module(model)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(config.factor)
    return derive(model, module, "halve", config, {})


from edgegan.converters.base import Converter, register as register_converter
from edgegan.devices.targets import TARGETS


@register_converter
class DemoConverter(Converter):
    format = "demo-fmt"
    runtime = "onnxruntime"
    filename = "model_demo.onnx"
    description = "plugin demo converter"


def open_demo(url, options):
    from edgegan.devices.local import LocalTransport

    return LocalTransport()


TARGETS.add("demo", open_demo)


def register():
    FAMILIES.add("convgan", Family("convgan", ConvGanConfig, build,
                                   lambda c: InputSpec(shape=[c.latent_dim, 1, 1], kind="latent"), layout,
                                   "plugin demo: two transposed convs"))
    ZOO.add("convgan-tiny", ZooEntry("convgan-tiny", "convgan", {"width": 6}, "plugin demo model"))
'''

BROKEN = '''
def register():
    raise RuntimeError("this plugin is broken on purpose")
'''


def _write_dist(site, name: str, entry_points: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A site dir with two installed distributions: a working plugin and a broken one."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "edgegan_demo_plugin.py").write_text(PLUGIN)
    (site / "edgegan_broken_plugin.py").write_text(BROKEN)
    _write_dist(site, "edgegan_demo_plugin", """
        [edgegan.plugins]
        demo_metric = edgegan_demo_plugin
        demo_family = edgegan_demo_plugin:register
        """)
    _write_dist(site, "edgegan_broken_plugin", """
        [edgegan.plugins]
        broken = edgegan_broken_plugin:register
        """)
    # Import every built-in registry first, then pretend no plugin was loaded yet.
    from edgegan.compress import METHODS
    from edgegan.metrics import METRICS
    from edgegan.models import FAMILIES, ZOO

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(registry._plugins_state, "loaded", False)
    monkeypatch.setattr(registry, "LOADED_PLUGINS", {})
    yield site
    from edgegan.converters.base import CONVERTERS
    from edgegan.devices.targets import TARGETS

    for reg, name in ((METRICS, "mean_shift"), (METHODS, "halve"), (ZOO, "convgan-tiny"), (FAMILIES, "convgan"),
                      (CONVERTERS, "demo-fmt"), (TARGETS, "demo")):
        if name in reg._items:
            reg.remove(name)
    sys.modules.pop("edgegan_demo_plugin", None)
    sys.modules.pop("edgegan_broken_plugin", None)


def test_plugins_load_lazily_once_and_a_broken_one_is_a_warning(plugin_site, caplog):
    from edgegan.metrics import METRICS

    assert "edgegan_demo_plugin" not in sys.modules  # nothing loaded before a registry is used
    with caplog.at_level("WARNING", logger="edgegan.plugins"):
        assert "mean_shift" in METRICS
    assert registry.LOADED_PLUGINS == {"demo_metric": "ok", "demo_family": "ok",
                                       "broken": "RuntimeError: this plugin is broken on purpose"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "edgegan.plugins"]
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "\n" not in warnings[0]
    assert METRICS.origin("mean_shift") == "plugin demo_metric" and METRICS.origin("knn") == "built-in"
    caplog.clear()
    list(METRICS)  # once: no second load, no second warning
    assert not caplog.records
    from edgegan.converters.base import CONVERTERS
    from edgegan.devices.targets import TARGETS

    assert CONVERTERS.origin("demo-fmt") == "plugin demo_metric" and CONVERTERS.origin("onnx") == "built-in"
    assert TARGETS.origin("demo") == "plugin demo_metric" and TARGETS.origin("local") == "built-in"


def test_plugin_metric_and_family_appear_in_the_cli(plugin_site, tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((120, 6)).astype(np.float32)
    b = (a + 0.5).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out", str(tmp_path / "c"),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = np.linalg.norm(a.astype(np.float64).mean(0) - b.astype(np.float64).mean(0))
    assert result["quality"]["mean_shift"] == pytest.approx(expected, rel=1e-6)
    assert result["distribution"]["B_vs_A"]["mean_shift"] == pytest.approx(expected, rel=1e-6)

    assert main(["models", "--families", "--json"]) == 0
    families = {f["name"]: f for f in json.loads(capsys.readouterr().out)}
    assert families["convgan"]["origin"] == "plugin demo_family" and families["convgan"]["channel_prunable"]
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["convgan-tiny"]["params"] == 8 * 6 * 16 + 6 + 2 * 6 + 6 * 16 + 1 and rows["convgan-tiny"]["input"] == [8, 1, 1]


def test_plugin_method_gets_flags_and_a_plugin_family_can_be_channel_pruned(plugin_site, tmp_path, capsys):
    pytest.importorskip("torch")
    from edgegan.models import load_generator

    assert main(["compress", "convgan-tiny", "--method", "halve", "--factor", "0.25", "--halve-out", "y",
                 "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"method": "halve", "config": {"factor": 0.25, "out": "y"}}]
    out = tmp_path / "cp.pt"
    assert main(["compress", "convgan-tiny", "--method", "channel-prune", "--ratio", "0.5", "--out", str(out),
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["hidden"] == [3] and record["name"] == "convgan-tiny-cp50"
    assert load_generator(str(out)).module[0].out_channels == 3
    assert main(["compress", str(out), "--method", "halve", "--out", str(tmp_path / "h.pt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "convgan-tiny-cp50-h50"


def test_broken_plugin_is_one_warning_line_in_a_real_cli_run(plugin_site):
    env = dict(os.environ, PYTHONPATH=str(plugin_site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "edgegan", "models", "--families", "--json"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "convgan" in {f["name"] for f in json.loads(r.stdout)}
    lines = [line for line in r.stderr.splitlines() if "plugin" in line]
    assert len(lines) == 1 and "'broken'" in lines[0] and "RuntimeError" in lines[0], r.stderr
