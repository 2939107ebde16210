"""Registries drive their consumers: a metric registered in one place shows up in `edgegan
compare`, compare.json, results.csv and the report tables; compress flags come from the
method configs; CLI flags default to None (the config dataclass holds the defaults) and
config errors name the flag."""
from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from edgegan.cli.main import build_parser, main
from edgegan.config import JsonConfig
from edgegan.errors import UnknownNameError
from edgegan.metrics import METRICS, compare_samples
from edgegan.metrics.base import Column, Metric
from edgegan.registry import Registry


@dataclasses.dataclass
class MeanAbsDiffConfig(JsonConfig):
    k: int = 1  # takes compare's shared k, to check Metric.options


def mean_abs_diff(real, fake, config):
    return {"mean_abs_diff": float(np.abs(real.mean(0) - fake.mean(0)).mean()), "mad_k": config.k}


MAD = Metric("mean_abs_diff", MeanAbsDiffConfig, mean_abs_diff,
             (Column("mean_abs_diff", "mean |Δ| of feature means", fmt=".5f"),), "throwaway test metric",
             short="MAD", options={"k": "k"})


@pytest.fixture
def sets(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((150, 5))
    b = a * 0.9 + 0.2
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path, a, b


def test_a_registered_metric_appears_in_compare_table_json_and_results(sets, capsys):
    d, a, b = sets
    expected = float(np.abs(a.mean(0) - b.mean(0)).mean())
    with METRICS.temporarily("mean_abs_diff", MAD):
        assert main(["compare", str(d / "a.npy"), str(d / "b.npy"), "--out", str(d / "c"), "--k", "4"]) == 0
        table = capsys.readouterr().out
        doc = json.loads((d / "c" / "compare.json").read_text())
        from edgegan.reports.profile_report import csv_columns, flat_row, markdown

        row = {"format": "onnx", "status": "ok", "quality": doc["quality"]}
        report = markdown({"bundle": {"model": "m", "inputs": 1}, "target": "local", "complete": True,
                           "created": "now", "results": [row]}, None, [])
        assert "mean_abs_diff" in csv_columns()
        assert flat_row(row)["mean_abs_diff"] == pytest.approx(expected)
    line = next(line for line in table.splitlines() if "mean |Δ| of feature means" in line)
    assert f"{expected:.5f}" in line
    assert doc["quality"]["mean_abs_diff"] == pytest.approx(expected)
    assert doc["distribution"]["B_vs_A"]["mad_k"] == 4  # compare's --k reached the metric's config
    assert doc["metrics"]["mean_abs_diff"]["config"] == {"k": 4}
    header = next(line for line in report.splitlines() if line.startswith("| format"))
    cells = next(line for line in report.splitlines() if line.startswith("| onnx")).split(" | ")
    assert "| MAD |" in header and cells[header.split(" | ").index("MAD")] == f"{expected:.2f}"
    # gone after unregistering: nothing else knew about it
    assert "mean_abs_diff" not in METRICS
    assert "mean_abs_diff" not in compare_samples(a, b)["quality"]


def test_compare_runs_every_registered_metric_with_shared_settings_mapped():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((120, 4)), rng.standard_normal((120, 4))
    res = compare_samples(a, b, k=2, k_dc=7)
    assert list(res["metrics"]) == [m.name for m in METRICS.values()]
    assert res["metrics"]["knn"]["config"]["k"] == 2 and res["metrics"]["density_coverage"]["config"]["k"] == 7
    assert res["metrics"]["lsh_knn"]["config"]["k"] == 2
    assert set(res["quality"]) == {c.key for m in METRICS.values() for c in m.columns} | {"psnr_db"}
    from edgegan.metrics import compute_metric

    # the joint (shared-work) path gives exactly what each metric gives alone
    for name in ("knn", "density_coverage", "lsh", "lsh_knn"):
        alone = compute_metric(name, a.astype(np.float32), b.astype(np.float32), res["metrics"][name]["config"])
        for key, value in alone.items():
            if key == "lsh_knn_approx":  # the error estimate's record holds timings: compare its numbers
                value, got = ({k: v for k, v in d.items() if k not in ("steps", "seconds")}
                              for d in (value, res["distribution"]["B_vs_A"][key]))
                assert got == value
                continue
            assert res["distribution"]["B_vs_A"][key] == value, (name, key)


def _parsed(*argv: str) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(list(argv))


def test_generated_flags_default_to_none_and_config_dataclasses_hold_the_defaults():
    args = _parsed("compare", "a", "b")
    assert args.config_dests and all(getattr(args, dest) is None for dest in args.config_dests)
    from edgegan.cli.compress import method_flags

    args = _parsed("compress", "m")
    assert all(getattr(args, mf.dest) is None for mf in method_flags())


def test_every_method_config_field_is_a_flag_unless_it_opts_out():
    from edgegan.cli.compress import method_flags
    from edgegan.compress import METHODS

    owned = {owner for mf in method_flags() for owner in mf.owners}
    for method in METHODS.values():
        for f in dataclasses.fields(method.config_cls):
            if f.metadata.get("flag", "") is not None:
                assert (method.name, f.name) in owned, (method.name, f.name)
    flags = {mf.flag: mf.owners for mf in method_flags()}
    assert flags["--clip-value"] == [("clip", "value")]
    assert flags["--bits"] == [("quant", "bits"), ("slim", "bits")]  # one flag, two methods (same type)
    assert flags["--calibration-seed"] == [("quant", "calibration_seed")]  # new: from the dataclass


def test_new_flag_reaches_the_config_and_errors_name_the_flag(capsys, tmp_path):
    assert main(["compress", "dcgan-tiny", "--method", "quant", "--calibration-seed", "7", "--no-activations",
                 "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)[0]["config"]
    assert cfg["calibration_seed"] == 7 and cfg["activations"] is False and cfg["bits"] == 8
    assert main(["compress", "dcgan-tiny", "--method", "channel-prune", "--min-channels", "0", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "min_channels must be >= 1" in err and "(flag --min-channels)" in err and err.count("\n") == 1
    assert main(["compare", "a.npy", "b.npy", "--k-dc", "0"]) == 2
    assert "(flag --k-dc)" in capsys.readouterr().err
    d = tmp_path
    np.save(d / "a.npy", np.zeros((20, 3)))
    assert main(["compare", str(d / "a.npy"), str(d / "a.npy"), "--lsh-tables", "0", "--out", str(d / "c")]) == 2
    assert "lsh tables must be >= 1, got 0 (flag --lsh-tables)" in capsys.readouterr().err  # metric field -> flag


def test_registry_remove_and_temporarily():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with reg.temporarily("b", 2):
        assert list(reg) == ["a", "b"]
    assert list(reg) == ["a"]
    assert reg.remove("a") == 1 and len(reg) == 0
    with pytest.raises(UnknownNameError, match="cannot remove unknown thing 'a'"):
        reg.remove("a")


def test_a_registered_metric_reaches_profile_results_csv_and_report(tiny_bundle, tmp_path):
    """The profile run on a real local target scores device samples with every registered
    metric, so the new one lands in results.json, results.csv and report.md untouched."""
    from edgegan.devices.profile import ProfileConfig, run_profile

    with METRICS.temporarily("mean_abs_diff", MAD):
        out, doc = run_profile(ProfileConfig(bundle=str(tiny_bundle[0]), target="local", out=str(tmp_path / "r"),
                                             formats=["onnx"], runs=3, warmup=1, memory=False,
                                             power_baseline_s=0.05, power_min_s=0.05))
    row = doc["results"][0]
    assert row["status"] == "ok", row.get("reason")
    from edgegan.metrics import get_extractor

    device = np.load(out / row["samples"])
    ref = np.load(tiny_bundle[0] / "reference.npy")
    extract = get_extractor(row["quality"]["features"], None, tuple(ref.shape[1:]))
    expected = float(np.abs(extract(ref).astype(np.float64).mean(0) - extract(device).astype(np.float64).mean(0)).mean())
    assert row["quality"]["mean_abs_diff"] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert "mean_abs_diff" in header
    assert "| MAD |" in (out / "report.md").read_text()


def test_reserved_flags_are_exactly_the_verbs_own_options():
    """A method field never shadows a verb option: the clash list matches the parser."""
    from edgegan.cli.compress import RESERVED_FLAGS, method_flags

    parser = build_parser("compress")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["compress"]
    generated = {mf.flag for mf in method_flags()}
    generated |= {"--no-" + f[2:] for f in generated}  # BooleanOptionalAction negations
    own = {s for a in sub._actions for s in a.option_strings if s.startswith("--")} - generated
    assert own == RESERVED_FLAGS
