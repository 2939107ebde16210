"""Supervised training on (input, truth) pairs: the from-scratch baseline has exactly the
student's architecture and learns; fine-tuning with distillation learns; resume is exact
(the cosine clock travels in the state); bad pairs are one-line errors."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

import edgegan  # noqa: E402
from edgegan.compress.training import TrainingInterrupted, progress_to, supervised  # noqa: E402
from edgegan.compress.training.supervised import SupervisedConfig  # noqa: E402
from edgegan.datasets import sketch_patches  # noqa: E402
from edgegan.errors import ConfigError  # noqa: E402
from edgegan.models.stats import count_macs  # noqa: E402

WIDTHS = {"down_channels": [3, 6, 12], "block_channels": [5], "up_channels": [6, 3], "affine_norm": True}


def _pairs(n: int = 32):
    return sketch_patches(n, 40, 3, split="train")  # 40x40 photo -> sketch pairs (resnet-tiny's size)


def _student():
    return edgegan.load_model("resnet-tiny", config=WIDTHS)


def test_from_scratch_has_the_students_architecture_and_its_loss_goes_down():
    student, teacher = _student(), edgegan.load_model("resnet-tiny")
    x, y = _pairs()
    cfg = SupervisedConfig(steps=40, batch=4, lr=3e-3, seed=5)
    out = supervised.from_scratch(student, x, y, cfg, teacher=teacher)
    # same widths, same layer shapes as the student, but not its weights (random init, own seed)
    assert out.config == student.config
    s_state, o_state = student.module.state_dict(), out.module.state_dict()
    assert {k: tuple(v.shape) for k, v in s_state.items()} == {k: tuple(v.shape) for k, v in o_state.items()}
    assert any(not torch.equal(s_state[k], o_state[k]) for k in s_state if s_state[k].is_floating_point())
    example = student.sample_inputs(1, 0)
    assert count_macs(out.module, example) == count_macs(student.module, example) < count_macs(teacher.module, example)
    losses = [r["truth"] for r in out.compression[-1]["stats"]["training"].values()
              if isinstance(r, dict) and "truth" in r]
    first, last = losses  # first_20_mean, last_20_mean
    assert last < 0.8 * first
    assert out.compression[-1]["method"] == "scratch"
    assert out.compression[-1]["config"]["distill"] == 0.0  # never saw the teacher


def test_finetune_with_distillation_lowers_the_error_to_the_truth():
    student, teacher = _student(), edgegan.load_model("resnet-tiny")
    x, y = _pairs()

    def l1(model):
        with torch.no_grad():
            return float(torch.nn.functional.l1_loss(model.module(torch.from_numpy(x)), torch.from_numpy(y)))

    cfg = SupervisedConfig(steps=30, batch=4, lr=3e-3, distill=0.5, crop=24, seed=1)
    tuned = supervised.finetune(student, x, y, cfg, teacher=teacher)
    assert l1(tuned) < 0.8 * l1(student)
    assert tuned.config == student.config and tuned.compression[-1]["method"] == "supervised-finetune"
    assert "teacher" in tuned.compression[-1]["stats"]["training"]["last_20_mean"]
    assert l1(student) == l1(_student())  # the input model is untouched


def test_ctrl_c_then_resume_is_bit_identical_with_the_cosine_schedule(tmp_path):
    x, y = _pairs(16)

    def run(work: str, resume: bool = False):
        module = _student().module
        cfg = SupervisedConfig(steps=8, batch=4, lr=3e-3, crop=20, seed=2, work_dir=str(tmp_path / work),
                               resume=resume, save_every=100)
        supervised.train_supervised(module, x, y, cfg)
        return module

    def interrupt_at_4(step, total, losses):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    whole = run("a")
    with progress_to(interrupt_at_4), pytest.raises(TrainingInterrupted, match="step 4/8"):
        run("b")
    resumed = run("b", resume=True)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    lrs = [r["lr"] for r in json.loads((tmp_path / "b" / "training.json").read_text())["losses"]]
    assert lrs[0] == 3e-3 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 3e-4  # one cosine over all 8 steps


@pytest.mark.parametrize("inputs, targets, extra, match", [
    (np.zeros((4, 3, 40, 40), np.float32), np.zeros((3, 3, 40, 40), np.float32), {}, "pairs"),
    (np.zeros((4, 3, 40, 40), np.float32), np.zeros((4, 1, 40, 40), np.float32), {}, "model makes"),
    (np.zeros((4, 3, 40, 40), np.float32), np.zeros((4, 3, 40, 40), np.float32), {"crop": 64}, "larger"),
])
def test_bad_pairs_are_one_line_errors(inputs, targets, extra, match):
    with pytest.raises(ConfigError, match=match) as err:
        supervised.train_supervised(_student().module, inputs, targets, SupervisedConfig(steps=1, batch=2, **extra))
    assert "\n" not in str(err.value)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="loss"):
        SupervisedConfig(loss="l3").validate()
    with pytest.raises(ConfigError, match="distill"):
        SupervisedConfig(distill=-1).validate()
