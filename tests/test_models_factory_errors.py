"""A user's model factory that raises (issue 18, item 6): one line naming the factory and the
original error, the usage exit code, no traceback; the Python API gets a typed error."""
from __future__ import annotations

import sys

import pytest

from edgegan.errors import ConfigError, ModelFactoryError

FACTORIES = '''
import torch


def make(width=4, depth=1):
    return torch.nn.Sequential(torch.nn.ConvTranspose2d(8, width, 4), torch.nn.Tanh())


class Gen(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        raise ValueError("width must be even\\nsecond line of the message")


def needs_gpu():
    raise RuntimeError("CUDA is not available")


class _EvalBreaks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(8, 3, 4)

    def eval(self):
        raise AttributeError("no attribute 'training_only_buffer'")


def eval_breaks():
    return _EvalBreaks()


def exits():
    raise SystemExit(0)
'''


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "user_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("user_factories", None)


@pytest.mark.parametrize("spec, config, needles", [
    ("user_factories:make", '{"bogus": 1}', ["model factory 'user_factories:make' raised TypeError",
                                             "unexpected keyword argument 'bogus'",
                                             "--config key(s) bogus are not arguments of the factory; it takes width, depth"]),
    ("user_factories:Gen", None, ["model factory 'user_factories:Gen' raised ValueError: width must be even;"]),
    ("user_factories:needs_gpu", None, ["'user_factories:needs_gpu' raised RuntimeError: CUDA is not available"]),
    ("user_factories:eval_breaks", None, ["'user_factories:eval_breaks' (its module's eval()) raised AttributeError"]),
    ("user_factories:exits", None, ["'user_factories:exits' raised SystemExit"]),
])
def test_raising_factory_is_one_line_usage_error(cli, factories, spec, config, needles):
    args = ["export", spec, "--formats", "onnx", "--out", str(factories / "b")]
    r = cli(*args, *(["--config", config] if config else []), cwd=factories)
    assert r.returncode == ModelFactoryError.exit_code == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr and "second line" not in r.stderr, r.stderr
    assert lines[0].startswith("edgegan export: error: ")
    for n in needles:
        assert n in lines[0], lines[0]
    assert not (factories / "b").exists()


def test_api_gets_typed_error(factories):
    from edgegan.models import load_generator

    with pytest.raises(ModelFactoryError, match="user_factories:Gen' raised ValueError") as e:
        load_generator("user_factories:Gen")
    assert isinstance(e.value, ConfigError) and "\n" not in str(e.value)
