"""`edgegan compare` end to end on digits-generator samples: float vs int8-weight model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgegan.cli.main import main
from edgegan.errors import MetricError
from edgegan.metrics import compare_samples, load_samples

N = 300


def _generator():
    from edgegan.models import ZOO, load_generator

    name = "dcgan-digits" if ZOO.get("dcgan-digits").weights_path.is_file() else "dcgan-tiny"
    return load_generator(name).module.eval()


def _int8_weights(module):
    """Copy of ``module`` with every conv weight fake-quantised to symmetric per-channel int8."""
    import copy

    import torch

    q = copy.deepcopy(module)
    with torch.no_grad():
        for m in q.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                w = m.weight
                axis = 1 if isinstance(m, torch.nn.ConvTranspose2d) else 0
                dims = [d for d in range(w.ndim) if d != axis]
                scale = w.abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / 127
                m.weight.copy_(torch.round(w / scale) * scale)
    return q


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    g = _generator()
    z = np.random.default_rng(0).standard_normal((N, 100, 1, 1)).astype(np.float32)
    with torch.no_grad():
        a = g(torch.from_numpy(z)).numpy()
        b = _int8_weights(g)(torch.from_numpy(z)).numpy()
    d = tmp_path_factory.mktemp("samples")
    np.savez(d / "float.npz", samples=a, latents=z)
    np.savez(d / "int8.npz", samples=b, latents=z)
    return d, a, b, z


def _run(capsys, *argv):
    code = main(["compare", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_float_vs_int8_with_real_reference(samples, tmp_path, capsys):
    d, a, b, _ = samples
    code, out, err = _run(capsys, d / "float.npz", d / "int8.npz", "--reference", "digits", "--out", tmp_path)
    assert code == 0, err
    for text in ("LSH precision (LSH-only)", "LSH+kNN recall", "kNN precision (exact)", "coverage",
                 "B vs A", "A vs reference", "B vs reference", "PSNR", "most affected samples"):
        assert text in out
    result = json.loads((tmp_path / "compare.json").read_text())
    assert result["features"]["name"] == "digits" and result["features"]["dim"] == 64
    assert set(result["distribution"]) == {"B_vs_A", "A_vs_reference", "B_vs_reference"}
    assert result["inputs"]["reference"]["count"] == 1797
    pm = result["paired"]
    expected_psnr = 10 * np.log10(4 / np.mean((a.astype(np.float64) - b) ** 2))
    assert pm["psnr_db"] == pytest.approx(expected_psnr, abs=1e-6)
    assert pm["max_abs_err"] == pytest.approx(float(np.abs(a - b).max()), abs=1e-6)
    assert 0.5 < pm["ssim"] <= 1.0
    worst = [w["index"] for w in pm["worst"]]
    per_mse = ((a - b) ** 2).reshape(N, -1).mean(1)
    assert worst[0] == int(np.argmax(per_mse))
    q = result["quality"]
    assert set(q) == {"lsh_precision", "lsh_recall", "lsh_knn_precision", "lsh_knn_recall",
                      "knn_precision", "knn_recall", "density", "coverage", "psnr_db",
                      "frechet_distance", "kid", "kid_std", "inception_score", "lsh_knn_approx_error"}
    approx = result["distribution"]["B_vs_A"]["lsh_knn_approx"]
    assert q["lsh_knn_approx_error"] == approx["approx_error"] and approx["sample_fake"] == 128
    # FD / KID / IS on the same digits features, equal to the functions called directly
    from edgegan.datasets import digits_images
    from edgegan.metrics import extract_features, frechet_distance, inception_score, kernel_inception_distance
    from edgegan.metrics.digits_cnn import class_probabilities

    fa, fb, fr = (extract_features(x, "digits") for x in (a, b, digits_images(32)))
    vs_ref = result["distribution"]["B_vs_reference"]
    assert vs_ref["frechet_distance"] == pytest.approx(frechet_distance(fr, fb), rel=1e-9)
    assert (vs_ref["kid"], vs_ref["kid_std"]) == pytest.approx(kernel_inception_distance(fr, fb, subset_size=N), rel=1e-9)
    assert vs_ref["kid_subset_size"] == N
    assert q["frechet_distance"] == pytest.approx(frechet_distance(fa, fb), rel=1e-9)
    assert q["frechet_distance"] < vs_ref["frechet_distance"]  # int8 B is nearer to float A than to real digits
    iscore = result["inception_score"]
    assert iscore["reference"]["mean"] == pytest.approx(inception_score(class_probabilities(fr))[0], rel=1e-12)
    assert iscore["reference"]["mean"] > 8  # the classifier is confident on real digits and they cover 10 classes
    assert q["inception_score"] == iscore["B"]["mean"]
    for text in ("Frechet distance (FD)", "KID (mean over subsets)", "Inception Score (digits CNN", "NOT comparable",
                 "LSH+kNN approx. error", "LSH+kNN approx_error (estimated 95% bound", "exact search on 128 + 128"):
        assert text in " ".join(out.split())
    # int8 weights keep the samples close: B covers A nearly perfectly
    assert q["knn_precision"] >= 0.9 and q["lsh_precision"] >= 0.9
    from PIL import Image

    img = Image.open(tmp_path / "compare_grid.png")
    assert img.size[0] > img.size[1] > 0  # 8 columns x 3 rows (A, B, |A-B|)
    assert result["grid"] == "compare_grid.png" and len(result["grid_columns"]) == 8
    assert result["grid_columns"][-1].startswith("median")


def test_python_api_gives_the_same_numbers(samples, tmp_path, capsys):
    d, a, b, z = samples
    code, _, _ = _run(capsys, d / "float.npz", d / "int8.npz", "--out", tmp_path)
    assert code == 0
    cli = json.loads((tmp_path / "compare.json").read_text())
    api = compare_samples(load_samples(d / "float.npz"), load_samples(d / "int8.npz"))
    for key, value in cli["quality"].items():
        assert api["quality"][key] == pytest.approx(value, abs=1e-12)


def test_json_flag_and_folder_inputs(samples, tmp_path, capsys):
    d, a, b, z = samples
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    np.save(bundle / "inputs.npy", z)
    np.save(bundle / "reference.npy", a)
    result_dir = tmp_path / "results" / "ort-int8"
    result_dir.mkdir(parents=True)
    np.save(result_dir / "samples.npy", b)
    np.save(result_dir / "inputs.npy", z)
    code, out, err = _run(capsys, bundle, result_dir, "--json", "--features", "pixels", "--out", tmp_path / "o")
    assert code == 0, err
    result = json.loads(out)
    assert result["paired"] is not None and result["features"]["name"] == "pixels"
    assert result["inputs"]["A"]["has_latents"] and result["inputs"]["B"]["has_latents"]
    # the parent folder holds several formats: a pointed error
    code, _, err = _run(capsys, bundle, tmp_path / "results", "--out", tmp_path / "o")
    assert code == MetricError.exit_code and "ort-int8" in err


def test_npy_without_latents_pairs_only_on_request(samples, tmp_path, capsys):
    d, a, b, _ = samples
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    code, out, _ = _run(capsys, tmp_path / "a.npy", tmp_path / "b.npy", "--features", "pixels", "--out", tmp_path / "o1")
    assert code == 0 and "paired metrics: skipped" in out
    assert json.loads((tmp_path / "o1" / "compare.json").read_text())["paired"] is None
    code, out, _ = _run(capsys, tmp_path / "a.npy", tmp_path / "b.npy", "--paired", "--features", "pixels", "--out", tmp_path / "o2")
    assert code == 0 and json.loads((tmp_path / "o2" / "compare.json").read_text())["paired"]["count"] == N


def test_identical_samples_write_strict_json(samples, tmp_path, capsys):
    d, a, _, z = samples
    code, _, err = _run(capsys, d / "float.npz", d / "float.npz", "--features", "pixels", "--out", tmp_path)
    assert code == 0, err
    text = (tmp_path / "compare.json").read_text()
    assert "Infinity" not in text
    assert json.loads(text)["paired"]["psnr_db"] is None  # inf -> null


def test_bad_inputs_are_one_line_errors(samples, tmp_path, capsys):
    d, a, b, z = samples
    np.savez(tmp_path / "small.npz", samples=a[:, :, :16, :16])
    nan = b.copy()
    nan[5, 0, 3, 3] = np.nan
    np.savez(tmp_path / "nan.npz", samples=nan, latents=z)
    np.savez(tmp_path / "few_a.npz", samples=a[:3])
    np.savez(tmp_path / "few_b.npz", samples=b[:3])
    np.savez(tmp_path / "other.npz", samples=b, latents=z + 1)
    np.savez(tmp_path / "nokey.npz", images=b)
    np.save(tmp_path / "complex.npy", b.astype(np.complex64) + 1j)
    np.save(tmp_path / "empty.npy", b[:0])
    cases = [
        ((d / "float.npz", tmp_path / "small.npz"), 8, "sample shapes differ"),
        ((d / "float.npz", tmp_path / "nan.npz"), 8, "B: 1 of 300 samples contain NaN/inf (first at index 5)"),
        ((tmp_path / "few_a.npz", tmp_path / "few_b.npz", "--features", "pixels"), 8, "need more than"),
        ((d / "float.npz", d / "int8.npz", "--features", "inception"), 2, "unknown feature extractor 'inception'"),
        ((d / "float.npz", tmp_path / "other.npz"), 8, "latents differ"),
        ((d / "float.npz", tmp_path / "missing.npy"), 8, "does not exist"),
        ((d / "float.npz", tmp_path / "nokey.npz"), 8, "no 'samples'"),
        ((d / "float.npz", d / "int8.npz", "--lsh-tables", "0"), 2, "lsh tables must be >= 1"),
        ((d / "float.npz", d / "int8.npz", "--k-dc", "0"), 2, "k_dc must be >= 1"),
        ((d / "float.npz", tmp_path / "complex.npy"), 8, "samples must be real numbers, got dtype complex64"),
        ((d / "float.npz", tmp_path / "empty.npy"), 8, "no samples"),
    ]
    for argv, exit_code, message in cases:
        code, _, err = _run(capsys, *argv, "--out", tmp_path / "o")
        assert code == exit_code, (argv, err)
        assert message in err, (message, err)
        assert err.count("\n") == 1 and err.startswith("edgegan compare: error: ")


def test_entry_point_runs_as_module(samples, tmp_path):
    d, _, _, _ = samples
    out = subprocess.run(
        [sys.executable, "-m", "edgegan", "compare", str(d / "float.npz"), str(d / "int8.npz"),
         "--features", "pixels", "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["quality"]["psnr_db"] > 20


def test_a_small_set_against_a_large_reference_is_rescored_at_equal_size(tmp_path, capsys):
    """64 samples and a 2,000-sample reference from ONE distribution: full-set LSH-only recall is
    ~0 (64 points cannot reach 2,000 buckets) while the truth is "same distribution"; the
    equal-size rescore must say so (recall near 1), and equal sets get no rescore at all."""
    rng = np.random.default_rng(0)
    ref, a, b = (rng.normal(size=(n, 16)).astype(np.float32) for n in (2000, 64, 64))
    for name, x in (("ref", ref), ("a", a), ("b", b)):
        np.save(tmp_path / f"{name}.npy", x)
    r = compare_samples(a, b, reference=ref, features="identity")
    assert set(r["size_matched"]) == {"A_vs_reference", "B_vs_reference"}  # B vs A: 64 vs 64, left alone
    for key in ("A_vs_reference", "B_vs_reference"):
        m = r["size_matched"][key]
        assert m["counts"] == [2000, 64] and m["matched_count"] == 64
        assert r["distribution"][key]["lsh_recall"] < 0.1 and m["scores"]["lsh_recall"] > 0.8
        assert m["scores"]["coverage"] > 0.8 > r["distribution"][key]["coverage"]
    assert compare_samples(a, b, features="identity")["size_matched"] == {}
    assert main(["compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--reference", str(tmp_path / "ref.npy"),
                 "--features", "identity", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "set sizes differ" in out and "at equal set size" in out and "same distribution" in out
    doc = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert doc["size_matched"]["B_vs_reference"]["scores"]["lsh_recall"] > 0.8
