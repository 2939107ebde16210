"""Compress by training: the shared loop (seeded, checkpointed, exact resume, Ctrl-C, training.json)
and `kd` (students of width d, mse/joint/regular losses, self-describing checkpoints, one-line
errors). Tiny widths and a few steps on one thread, so the file runs in well under a minute."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.cli.main import main  # noqa: E402
from edgegan.compress import KDConfig, TrainingInterrupted, apply_method, save_compressed  # noqa: E402
from edgegan.compress.training import progress_to  # noqa: E402
from edgegan.errors import CheckpointError, ConfigError  # noqa: E402
from edgegan.models import load_generator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher():
    return load_generator("dcgan-digits")


@pytest.fixture(scope="module")
def tiny_teacher():
    return load_generator("dcgan-tiny")


def kd(model, **config):
    return apply_method(model, "kd", {"batch": 8, "lr": 2e-3, **config})


def kd_param_formula(d: int) -> int:
    """The KD-GAN paper's count for its MNIST DCGAN (100-d latent, 1 channel): written out here
    from the layer list, not taken from edgegan.models.dcgan."""
    convt = 100 * 8 * d * 4 * 4 + 8 * d * 4 * d * 4 * 4 + 4 * d * 2 * d * 4 * 4 + 2 * d * d * 4 * 4
    bn = 2 * (8 * d + 4 * d + 2 * d + d)
    out = d * 1 + 1
    return convt + bn + out


def test_formula_matches_the_papers_closed_form():
    for d in (1, 2, 4, 8, 16, 256):
        assert kd_param_formula(d) == 672 * d * d + 12831 * d + 1


@pytest.mark.parametrize("width", [1, 2, 3])
def test_students_have_the_expected_parameter_counts(tiny_teacher, width):
    student = kd(tiny_teacher, width=width, steps=1)
    assert student.family == "dcgan" and student.config["width"] == width
    assert sum(p.numel() for p in student.module.parameters()) == kd_param_formula(width)
    stats = student.compression[-1]["stats"]
    assert stats["student"]["params"] == kd_param_formula(width)
    assert stats["teacher"]["params"] == kd_param_formula(2)


@pytest.mark.parametrize("loss", ["mse", "joint"])
def test_distillation_loss_goes_down(teacher, loss, tmp_path):
    student = kd(teacher, width=2, steps=60, loss=loss, work_dir=str(tmp_path))
    rows = json.loads((tmp_path / "training.json").read_text())["losses"]
    assert len(rows) == 60
    first = np.mean([r["mse"] for r in rows[:10]])
    last = np.mean([r["mse"] for r in rows[-10:]])
    # the adversarial term of joint pulls against the pixel loss early on: a weaker bound there
    assert last < (0.85 if loss == "mse" else 0.95) * first, (first, last)
    # and the trained student is closer to the teacher on latents it never saw than at init
    z = torch.from_numpy(teacher.sample_inputs(32, 123))
    init = kd(teacher, width=2, steps=1, loss=loss)
    with torch.no_grad():
        target = teacher.module(z)
        assert torch.mean((student.module(z) - target) ** 2) < torch.mean((init.module(z) - target) ** 2)


def test_regular_baseline_trains_on_real_digits_not_the_teacher(teacher, tmp_path):
    from edgegan.datasets import digits_images

    student = kd(teacher, width=2, steps=40, loss="regular", work_dir=str(tmp_path))
    rows = json.loads((tmp_path / "training.json").read_text())["losses"]
    assert "mse" not in rows[0] and {"critic", "adv"} <= set(rows[0])
    real_mean = float(digits_images(32).mean())
    z = torch.from_numpy(teacher.sample_inputs(64, 7))
    init = kd(teacher, width=2, steps=1, loss="regular")
    with torch.no_grad():
        before = abs(float(init.module(z).mean()) - real_mean)
        after = abs(float(student.module(z).mean()) - real_mean)
    assert after < before  # the GAN pulled the images' brightness toward the digits'
    assert student.compression[-1]["stats"]["data"] == "digits"


def test_training_json_records_losses_time_params_and_macs(tiny_teacher, tmp_path):
    kd(tiny_teacher, width=1, steps=5, loss="joint", work_dir=str(tmp_path))
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["method"] == "kd" and record["steps"] == 5 and len(record["losses"]) == 5
    assert set(record["losses"][0]) == {"mse", "critic", "adv", "loss"}
    assert record["wall_seconds"] > 0
    assert record["models"]["student"]["params"] == kd_param_formula(1)
    assert record["models"]["teacher"]["macs"] > record["models"]["student"]["macs"] > 0
    assert KDConfig.from_dict(record["config"]) == KDConfig(batch=8, lr=2e-3, width=1, steps=5, loss="joint",
                                                             work_dir=str(tmp_path))


def _same(a, b) -> None:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("loss", ["joint", "regular"])
def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tiny_teacher, tmp_path, loss):
    full = kd(tiny_teacher, width=1, steps=9, loss=loss, save_every=3, work_dir=str(tmp_path / "full"))
    kd(tiny_teacher, width=1, steps=5, loss=loss, save_every=3, work_dir=str(tmp_path / "part"))
    resumed = kd(tiny_teacher, width=1, steps=9, loss=loss, save_every=3, work_dir=str(tmp_path / "part"), resume=True)
    _same(full, resumed)
    a = json.loads((tmp_path / "full" / "training.json").read_text())
    b = json.loads((tmp_path / "part" / "training.json").read_text())
    assert a["losses"] == b["losses"] and b["resumed_from"] == 5
    assert torch.load(tmp_path / "full" / "state.pt", weights_only=True)["step"] == 9  # saved at the end too


def test_ctrl_c_stops_cleanly_with_a_state_that_resumes_exactly(tiny_teacher, tmp_path):
    full = kd(tiny_teacher, width=1, steps=8, loss="joint", save_every=100, work_dir=str(tmp_path / "full"))

    def interrupt_at_4(step, total, losses):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with progress_to(interrupt_at_4), pytest.raises(TrainingInterrupted, match="step 4/8.*--resume") as info:
        kd(tiny_teacher, width=1, steps=8, loss="joint", save_every=100, work_dir=str(tmp_path / "cut"))
    assert "\n" not in str(info.value)
    assert torch.load(tmp_path / "cut" / "state.pt", weights_only=True)["step"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = kd(tiny_teacher, width=1, steps=8, loss="joint", save_every=100, work_dir=str(tmp_path / "cut"),
                 resume=True)
    _same(full, resumed)


def test_resume_from_another_config_or_nothing_is_a_one_line_error(tiny_teacher, tmp_path):
    kd(tiny_teacher, width=1, steps=2, work_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"another config \(lr=0.002 there vs 0.001 now\)") as info:
        apply_method(tiny_teacher, "kd", {"batch": 8, "lr": 1e-3, "width": 1, "steps": 4, "work_dir": str(tmp_path),
                                          "resume": True})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="width=1 there vs 2 now"):
        kd(tiny_teacher, width=2, steps=4, work_dir=str(tmp_path), resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        kd(tiny_teacher, width=1, steps=4, work_dir=str(tmp_path / "empty"), resume=True)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read training state"):
        kd(tiny_teacher, width=1, steps=4, work_dir=str(tmp_path / "junk"), resume=True)
    with pytest.raises(ConfigError, match="resume needs work_dir"):
        kd(tiny_teacher, width=1, steps=4, resume=True)


@pytest.mark.parametrize("config,fragment", [
    ({"width": 0}, "width must be >= 1"),
    ({"width": -3}, "width must be >= 1"),
    ({"steps": 0}, "steps must be >= 1"),
    ({"loss": "l1"}, "loss 'l1' unknown"),
    ({"alpha": -1.0}, "alpha must be >= 0"),
    ({"data": "digits"}, "only read by --loss regular"),
])
def test_bad_config_is_a_one_line_config_error(tiny_teacher, config, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        kd(tiny_teacher, **{"steps": 1, **config})
    assert "\n" not in str(info.value)


def test_bad_data_is_a_one_line_error(tiny_teacher, tmp_path):
    from PIL import Image

    def regular(data):
        return kd(tiny_teacher, width=1, steps=1, loss="regular", data=str(data))

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="has no images"):
        regular(empty)
    wrong_size = tmp_path / "size"
    wrong_size.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(wrong_size / "a.png")
    with pytest.raises(ConfigError, match="is 28x28, the model makes 32x32"):
        regular(wrong_size)
    wrong_channels = tmp_path / "rgb"
    wrong_channels.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(wrong_channels / "a.png")
    with pytest.raises(ConfigError, match="has 3 channel"):
        regular(wrong_channels)
    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(ConfigError, match=r"shape \[3, 32, 32\], the model makes \[1, 32, 32\]"):
        regular(tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="does not exist"):
        regular(tmp_path / "missing")
    good = tmp_path / "good"
    good.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(good / f"{i}.png")
    assert regular(good).compression[-1]["stats"]["data"] == str(good)
    np.savez(tmp_path / "good.npz", images=np.zeros((5, 32, 32, 1), np.uint8))  # NHWC is accepted
    regular(tmp_path / "good.npz")


def test_teacher_must_be_a_latent_generator(tmp_path):
    with pytest.raises(ConfigError, match="latent->image teacher"):
        kd(load_generator("resnet-tiny"), width=1, steps=1)


def test_student_checkpoint_is_self_describing_and_reloads(tiny_teacher, tmp_path):
    student = kd(tiny_teacher, width=1, steps=3)
    ckpt, record_path, record = save_compressed(student, tmp_path / "s.pt", base=tiny_teacher, base_model="dcgan-tiny")
    obj = torch.load(ckpt, weights_only=True)
    assert obj["family"] == "dcgan" and obj["config"] == {"width": 1, "latent_dim": 100, "channels": 1}
    assert obj["compression"][-1]["method"] == "kd"
    assert record["summary"]["params"] == kd_param_formula(1)
    assert record["base_summary"]["params"] == kd_param_formula(2)
    again = load_generator(str(ckpt))
    z = torch.from_numpy(tiny_teacher.sample_inputs(4, 1))
    with torch.no_grad():
        assert torch.equal(again.module(z), student.module(z))


def test_cli_compress_kd_then_export_carries_the_record(tmp_path, capsys):
    ckpt = tmp_path / "student.pt"
    code = main(["compress", "dcgan-tiny", "--method", "kd", "--width", "1", "--steps", "4", "--batch", "4",
                 "--save-every", "2", "--out", str(ckpt), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)
    assert record["name"] == "dcgan-tiny-kd-d1-mse" and record["records"][-1]["method"] == "kd"
    work = tmp_path / "student.training"
    assert json.loads((work / "training.json").read_text())["steps"] == 4
    assert record["records"][-1]["config"]["work_dir"] == str(work)
    bundle = tmp_path / "bundle"
    code = main(["export", str(ckpt), "--formats", "onnx", "--out", str(bundle), "--inputs", "8",
                 "--calibration", "8", "--json"])
    capsys.readouterr()
    assert code == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["compression"] == record["records"]
    assert manifest["model"]["config"]["width"] == 1
    assert manifest["model"]["params"] == kd_param_formula(1)


@pytest.mark.parametrize("argv,fragment", [
    (["--width", "0"], "width must be >= 1 (the student's channels are 8d-4d-2d-d), got 0 (flag --width)"),
    (["--resume"], "nothing to resume"),
])
def test_cli_bad_input_is_one_line_with_exit_code_2(tmp_path, capsys, argv, fragment):
    code = main(["compress", "dcgan-tiny", "--method", "kd", "--steps", "2", *argv, "--out", str(tmp_path / "s.pt")])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "s.pt").exists()


def test_python_api_takes_the_typed_config_and_reruns_are_identical(tiny_teacher):
    import edgegan

    a = edgegan.compress("dcgan-tiny", KDConfig(width=1, steps=3, batch=4, loss="joint"))
    b = apply_method(tiny_teacher, "kd", {"width": 1, "steps": 3, "batch": 4, "loss": "joint"})
    assert a.compression[-1]["config"] == KDConfig(width=1, steps=3, batch=4, loss="joint").to_dict()
    _same(a, b)  # same seed, same config: the same student, bit for bit
    c = apply_method(tiny_teacher, "kd", {"width": 1, "steps": 3, "batch": 4, "loss": "joint", "seed": 1})
    assert not torch.equal(c.module.state_dict()["main.0.weight"], b.module.state_dict()["main.0.weight"])
