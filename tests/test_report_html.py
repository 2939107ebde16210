"""report.html from real runs (edgegan benchmark on local, edgegan compare, an image-to-image
export): what it says is checked against the runs' own files, computed independently here."""
from __future__ import annotations

import base64
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli


class Page(HTMLParser):
    """Images (src, alt, class), tags, h2 ids, table rows as text cells."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.tags: set[str] = set()
        self.h2: list[str] = []
        self.metas: list[dict] = []
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(a)
        elif tag == "h2":
            self.h2.append(a.get("id", ""))
        elif tag == "meta":
            self.metas.append(a)
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_of(path: Path) -> Page:
    return Page(Path(path).read_text())


def decode(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def sample_img(p: Page, alt: str) -> np.ndarray:
    hits = [i for i in p.images if i.get("alt") == alt]
    assert hits, f"no image {alt!r}; have e.g. {[i.get('alt') for i in p.images[:8]]}"
    return decode(hits[0]["src"])


def row_of(p: Page, first: str) -> list[str]:
    return next(r for r in p.rows if r and r[0] == first)


REPORTS = ("bundle/report.html", "local/report.html", "report.html")


def test_every_stage_writes_a_self_contained_report(report_runs):
    paths = [report_runs["bench"] / r for r in REPORTS] + [report_runs["compare"] / "report.html",
                                                           report_runs["i2i"] / "report.html"]
    for path in paths:
        text = path.read_text()
        p = Page(text)
        assert p.images, path
        assert all(i["src"].startswith("data:image/png;base64,") for i in p.images), path
        assert not ({"script", "link", "iframe", "object"} & p.tags), path
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), path
        csp = [m for m in p.metas if m.get("http-equiv") == "Content-Security-Policy"]
        assert csp and "default-src 'none'" in csp[0]["content"], path
        assert len(text) < 600_000, (path, len(text))


def test_bundle_table_matches_the_manifest(report_runs):
    manifest = json.loads((report_runs["bundle"] / "bundle.json").read_text())
    p = page_of(report_runs["bundle"] / "report.html")
    for a in manifest["artifacts"]:
        row = row_of(p, a["format"])
        assert row[1] == {"ok": "✔ ok", "degraded": "▲ degraded", "failed": "✘ failed"}[a["status"]]
        fid = a["fidelity"]
        assert row[4] == ("exact" if fid.get("exact") else f"{fid['psnr_db']:.2f}")
        assert row[2] == f"{a['bytes'] / 1e6:.3f}"
    thr = manifest["thresholds"]["ok_psnr_db"]
    assert f"ok when PSNR ≥ {thr:g} dB" in (report_runs["bundle"] / "report.html").read_text()


def _expected_columns(reference: np.ndarray, outputs: dict) -> list[int]:
    """Independently: the format with the largest mean squared error, its 5 worst samples by
    squared error, then its median-ranked sample."""
    mse = {k: ((o.astype(np.float64) - reference) ** 2).reshape(len(o), -1).mean(1) for k, o in outputs.items()}
    worst = max(mse, key=lambda k: mse[k].mean())
    order = sorted(range(len(reference)), key=lambda i: (-mse[worst][i], i))
    idx = order[:5]
    med = order[len(order) // 2]
    return idx + ([med] if med not in idx else [])


def test_profile_grid_shows_the_device_samples_and_their_diff_on_the_stated_scale(report_runs):
    folder = report_runs["profile"]
    text = (folder / "report.html").read_text()
    p = Page(text)
    ref = np.load(report_runs["bundle"] / "reference.npy")
    outs = {f: np.load(folder / f / "samples.npy") for f in ("onnx", "ort-int8")}
    cols = _expected_columns(ref, outs)
    labels = [f"worst {r + 1}\n#{i}" for r, i in enumerate(cols[:5])] + [f"median\n#{cols[5]}"]
    m = re.search(r"white ≥ ([0-9.e+-]+) \(", text)
    assert m, "the |diff| scale is stated"
    scale = float(m.group(1))
    for label, i in zip(labels, cols):
        # float row: the reference sample in [-1, 1] mapped to 0..255 (width 32 drawn 2x: decoded at 32)
        got = sample_img(p, f"float (torch) {label}")
        want = np.clip((ref[i, 0] + 1) / 2 * 255, 0, 255).round().astype(np.uint8)
        assert got.shape[:2] == want.shape and np.abs(got[..., 0].astype(int) - want).max() <= 1
        d = np.abs(outs["ort-int8"][i] - ref[i]).mean(0)
        want_d = np.clip(d / scale * 255, 0, 255).round().astype(np.uint8)
        got_d = sample_img(p, f"|diff| ort-int8 {label}")[..., 0]
        assert np.abs(got_d.astype(int) - want_d).max() <= 1
        assert got_d.max() > 0  # int8 differs somewhere: not a black square
        assert sample_img(p, f"|diff| onnx {label}").max() <= 1  # float ONNX: within 1e-7, black on this scale
    # the scale: a 1-2-5 value covering the 99.5th percentile of the shown |diff|s, at least peak/1000
    shown = np.concatenate([np.abs(o[cols] - ref[cols]).mean(1).ravel() for o in outs.values()])
    p995 = np.percentile(shown, 99.5)
    assert max(p995, 2 / 1000) <= scale * (1 + 1e-9) < 2.5 * max(p995, 2 / 1000)
    assert "input" not in [r[0] for r in p.rows]  # a latent model: no input row


def test_image_to_image_report_shows_the_inputs(report_runs):
    p = page_of(report_runs["i2i"] / "report.html")
    inputs = np.load(report_runs["i2i"] / "inputs.npy")
    assert "input" in [r[0] for r in p.rows]
    imgs = [i for i in p.images if i.get("alt", "").startswith("input ")]
    floats = [i for i in p.images if i.get("alt", "").startswith("float (torch) ")]
    assert len(imgs) == len(floats) >= 5  # one input per column (5 worst + the median, unless it is among them)
    idx = int(imgs[0]["alt"].rsplit("#", 1)[1])
    want = np.clip((inputs[idx] + 1) / 2 * 255, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
    assert np.abs(decode(imgs[0]["src"]).astype(int) - want).max() <= 1


def test_profile_report_has_latency_and_tradeoff_plots_and_the_command(report_runs):
    folder = report_runs["profile"]
    text = (folder / "report.html").read_text()
    p = Page(text)
    plots = [i for i in p.images if i.get("class") == "plot"]
    assert {i["alt"] for i in plots} == {"quality vs latency vs size", "latency distribution"}
    doc = json.loads((folder / "results.json").read_text())
    for r in doc["results"]:
        row = row_of(p, r["format"])
        assert row[3:6] == [f"{r['latency_ms'][k]:.3f}" for k in ("p50", "p90", "p99")]
    assert f"edgegan profile {doc['bundle']['path']} --target local --formats onnx,ort-int8 --runs 5 --warmup 1" in text


def test_benchmark_table_and_json(report_runs):
    bench = json.loads((report_runs["bench"] / "benchmark.json").read_text())
    doc = json.loads((report_runs["profile"] / "results.json").read_text())
    p50 = {r["format"]: r["latency_ms"]["p50"] for r in doc["results"]}
    rows = {r["format"]: r for r in bench["rows"]}
    assert set(rows) == {"onnx", "ort-int8"}
    for f, r in rows.items():
        assert r["p50_ms"] == p50[f] and r["status"] == "ok"
        assert r["vs_fastest_float"] == pytest.approx(p50[f] / p50["onnx"], abs=1e-3)
    assert "edgegan benchmark: format x target" in report_runs["bench_stdout"]
    p = page_of(report_runs["bench"] / "report.html")
    assert p.h2[:3] == ["benchmark", "bundle", "profile"]


def test_compare_report_has_pr_fd_panels_and_paired_grid(report_runs):
    text = (report_runs["compare"] / "report.html").read_text()
    p = Page(text)
    alts = {i["alt"] for i in p.images if i.get("class") == "plot"}
    assert "precision and recall" in alts
    doc = json.loads((report_runs["compare"] / "compare.json").read_text())
    if doc["distribution"]["B_vs_A"].get("frechet_distance") is not None:
        assert "Frechet distance" in alts
    assert row_of(p, "B") and any(i["alt"].startswith("|diff| B ") for i in p.images)
    assert doc["command"].startswith("edgegan compare ") and doc["command"] in text
    assert f"{doc['paired']['psnr_db']:.2f}" in [c for r in p.rows for c in r]
    # A drawn with the bundle's declared output range [-1, 1] (not stretched, not guessed)
    ref = np.load(report_runs["bundle"] / "reference.npy")
    a_img = next(i for i in p.images if i.get("alt", "").startswith("A worst 1"))
    idx = int(a_img["alt"].rsplit("#", 1)[1])
    want = np.clip((ref[idx, 0] + 1) / 2 * 255, 0, 255).round().astype(np.uint8)
    assert np.abs(decode(a_img["src"])[..., 0].astype(int) - want).max() <= 1


def test_report_cli_combines_kinds(report_runs, tmp_path):
    out = tmp_path / "all.html"
    r = run_cli("report", str(report_runs["bundle"]), str(report_runs["profile"]), str(report_runs["profile"]),
                str(report_runs["compare"]), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    p = page_of(out)
    assert p.h2 == ["bundle", "profile", "compare"]
    assert any(r_ and r_[0].startswith("Device vs device") for r_ in p.rows) or "Device vs device" in out.read_text()
    bad = run_cli("report", str(tmp_path))
    assert bad.returncode != 0 and "holds no bundle.json, results.json or compare.json" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_without_matplotlib_the_report_says_how_to_get_plots(report_runs, monkeypatch, tmp_path):
    from edgegan.reports import plots
    from edgegan.reports.html_report import write_html_report

    monkeypatch.setattr(plots, "available", lambda: False)
    out = write_html_report([report_runs["profile"]], tmp_path / "r.html")
    p = page_of(out)
    assert not [i for i in p.images if i.get("class") == "plot"]
    assert html.escape(plots.NO_MATPLOTLIB) in out.read_text()
    assert [i for i in p.images if i.get("class") == "sample"]  # grids need only Pillow


def test_diff_scale_and_columns_on_known_arrays():
    """Unit check on hand-made arrays: one sample off by 0.3, an exact artifact stays black."""
    from edgegan.reports import html as H
    from edgegan.reports.html_report import pick_columns

    ref = np.zeros((8, 1, 4, 4), np.float32)
    out = ref.copy()
    out[5] += 0.3  # the worst sample
    out[2] += 0.1  # the second worst
    idx, labels, _ = pick_columns(ref, {"x": out, "same": ref.copy()}, n=3)
    assert idx[:2] == [5, 2] and labels[0] == "worst 1\n#5"
    scale = H.diff_scale([out[idx] - ref[idx]], peak=2.0)
    assert scale == 0.5  # 0.3 rounded up to 1-2-5
    assert H.diff_pixels(out[5] - ref[5], scale).max() == round(0.3 / 0.5 * 255)
    assert H.diff_scale([ref[idx] - ref[idx]], peak=2.0) == 0.002  # exact: the floor (peak/1000), all black


def test_per_op_table_from_a_per_op_file(report_runs, tmp_path):
    """A results folder whose row carries a per_op.json (the file `profile --per-op` writes,
    made here by its own class) gets a ranked per-op table in report.html."""
    import shutil

    from edgegan.devices.per_op import OpTiming, PerOpProfile, ProgramOps
    from edgegan.reports.html_report import write_html_report

    folder = tmp_path / "local"
    shutil.copytree(report_runs["profile"], folder)
    prof = PerOpProfile(format="onnx", artifact="a.pte", execute_ms=0.25, captured_on="host",
                        ops=[OpTiming(op="native_call_convolution.out", kind="portable", count=3, total_ms=0.2, share=0.8),
                             OpTiming(op="XnnpackBackend", kind="delegate", count=1, total_ms=0.05, share=0.2)],
                        program=ProgramOps(kernel_calls={"aten::convolution": 3}, delegate_calls={"XnnpackBackend": 1}))
    (folder / "onnx" / "per_op.json").write_text(json.dumps(prof.to_dict()))
    doc = json.loads((folder / "results.json").read_text())
    doc["results"][0]["per_op"] = {"file": "onnx/per_op.json", "captured_on": "host"}
    (folder / "results.json").write_text(json.dumps(doc))
    p = page_of(write_html_report([folder], tmp_path / "r.html"))
    assert row_of(p, "1")[1:] == ["native_call_convolution.out", "portable", "3", "0.2000", "80"]
    assert row_of(p, "2")[1:3] == ["XnnpackBackend", "delegate"]
    assert "1 delegate calls, 3 portable kernel calls" in (tmp_path / "r.html").read_text()


def test_python_api_report_takes_objects(report_runs, tmp_path):
    import edgegan

    bundle = edgegan.ExportedBundle.load(report_runs["bundle"])
    cmp = edgegan.compare(bundle, report_runs["profile"] / "ort-int8")
    out = edgegan.report(bundle, report_runs["profile"], cmp, out=tmp_path / "api.html")
    p = page_of(out)
    assert p.h2 == ["bundle", "profile", "compare"]
    assert any(i["alt"].startswith("|diff| B ") for i in p.images)  # the comparison's own samples, in memory
    with pytest.raises(edgegan.EdgeganError):
        edgegan.report(42, out=tmp_path / "x.html")


def test_benchmark_refuses_bad_options_before_exporting(tmp_path):
    r = run_cli("benchmark", "dcgan-tiny", "--runs", "0", "--out", str(tmp_path / "b"))
    assert r.returncode != 0 and "runs must be >= 1, got 0 (flag --runs)" in r.stderr
    assert not (tmp_path / "b").exists()  # nothing exported
