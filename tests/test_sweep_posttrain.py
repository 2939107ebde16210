"""The post-training sweep through `edgegan sweep`: the per-pipeline CSV (the columns of
docs/posttrain_sweep.csv) and the trade-off plot written from a real sequential sweep's results
table, checked against the same compress + export + quality steps run directly through the
Python API; and the sweep's HTML report (table rows = the sweep's rows, images decode)."""
from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _generate(model, latents: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.module(torch.from_numpy(latents)).numpy()


def _expected_q4(tmp_path: Path, doc: dict) -> dict:
    """The q4 row as the old posttrain_sweep.py loop computed it, here straight from the API."""
    import edgegan
    from edgegan.compress import QuantConfig, storage_stats
    from edgegan.datasets import digits_images
    from edgegan.metrics import compute_metric, get_extractor
    from edgegan.metrics.paired import psnr_overall
    from edgegan.models.stats import count_macs, parameter_count

    q, x = doc["quality"], doc["export"]
    base = edgegan.load_model("dcgan-tiny")
    model = edgegan.compress(base, QuantConfig(bits=4))
    latents = base.sample_inputs(q["samples"], q["seed"])
    samples, float_same = _generate(model, latents), _generate(base, latents)
    extractor = get_extractor("digits")
    refs = {"real": extractor(digits_images(32)),
            "float": extractor(_generate(base, base.sample_inputs(q["samples"], q["reference_seed"])))}
    row = {"setting": "q4", "series": "quant", "bits": 4, "clip": False, "sparsity": 0.0, "channel_ratio": 0.0,
           "criterion": "", "params": parameter_count(model.module), "macs": count_macs(model.module, latents[:1]),
           "psnr_vs_float_db": round(psnr_overall(samples, float_same), 2)}
    stats = storage_stats(model.module, model.compression)
    row.update({k: stats[k] for k in ("float_bytes", "packed_bytes", "int8_container_bytes", "weight_sparsity")})
    feats = extractor(samples)
    for name, ref in refs.items():
        for metric in ("lsh", "knn"):
            for k, v in compute_metric(metric, ref, feats).items():
                row[f"{k}_vs_{name}"] = round(float(v), 4)
    bundle = edgegan.export(model, out=tmp_path / "q4", formats=["onnx", "ort-int8"], n_inputs=x["n_inputs"],
                            input_seed=x["input_seed"], calibration=x["calibration"],
                            calibration_seed=x["calibration_seed"], threads=1, latency_rounds=1, latency_runs=1)
    onnx = bundle.artifact_path(bundle.artifact("onnx")).read_bytes()
    row.update(onnx_bytes=len(onnx), onnx_gzip_bytes=len(gzip.compress(onnx, compresslevel=9, mtime=0)),
               ort_int8_bytes=bundle.artifact("ort-int8").bytes, onnx_exporter=bundle.manifest.export["exporter"],
               onnx_latency_ms="", latency_ratio_vs_float="")
    return row


def _same(got: str, want) -> bool:
    if isinstance(want, bool) or isinstance(want, str):
        return got == str(want)
    if isinstance(want, int):
        return int(got) == want
    return math.isclose(float(got), float(want), rel_tol=0, abs_tol=1e-12) or (math.isinf(want) and float(got) == want)


def test_posttrain_csv_from_the_sweep_equals_the_direct_computation(tiny_sweep, tmp_path, one_torch_thread):
    from edgegan.sweep.posttrain import CSV_COLUMNS

    out = tiny_sweep["out"]
    rows = _read_csv(out / "posttrain.csv")
    with open(ROOT / "docs" / "posttrain_sweep.csv", newline="") as fh:
        old_header = next(csv.reader(fh))
    assert list(rows[0]) == old_header == CSV_COLUMNS  # the same columns as the old script's CSV
    assert tiny_sweep["csv"].read_bytes() == (out / "posttrain.csv").read_bytes()  # --csv: the same table
    assert [r["setting"] for r in rows] == ["float", "q4", "cp50-l1"]  # one per pipeline of the first model
    got = rows[1]
    want = _expected_q4(tmp_path, tiny_sweep["doc"])
    mismatched = {c: (got[c], want[c]) for c in CSV_COLUMNS if c != "grid" and not _same(got[c], want[c])}
    assert mismatched == {}
    grid = out / got["grid"]
    from PIL import Image

    with Image.open(grid) as im:  # 16 samples, 8 per row, scale 2, 2 rows of 32 px
        assert im.size[0] > im.size[1] > 0
    # latency: the float graph and the channel-pruned one (its own graph) from the sweep's onnx p50
    table = json.loads((out / "results.json").read_text())["rows"]
    p50 = {r["pipeline"]: r["p50_ms"] for r in table if r["model"] == "dcgan-tiny" and r["format"] == "onnx"}
    by = {r["setting"]: r for r in rows}
    assert float(by["float"]["onnx_latency_ms"]) == round(p50["float"], 4)
    assert float(by["cp50-l1"]["onnx_latency_ms"]) == round(p50["cp50-l1"], 4)
    assert float(by["cp50-l1"]["latency_ratio_vs_float"]) == round(p50["cp50-l1"] / p50["float"], 3)
    assert float(by["float"]["latency_ratio_vs_float"]) == 1.0
    assert float(by["cp50-l1"]["params"]) < float(by["float"]["params"])


def test_posttrain_plot_is_written_and_not_blank(tiny_sweep):
    from PIL import Image

    from edgegan.reports.posttrain_plot import COLORS

    assert tiny_sweep["plot"].read_bytes() == (tiny_sweep["out"] / "posttrain_tradeoff.png").read_bytes()
    with Image.open(tiny_sweep["plot"]) as im:
        px = np.asarray(im.convert("RGB"))
    assert px.shape == (940, 1560, 3)  # two reference rows (real, float) x three panels
    assert px.std() > 10
    for colour in COLORS.values():  # every metric's curve or marker is drawn
        assert int((px == np.array(colour, np.uint8)).all(axis=2).sum()) > 20, colour


class _Page(HTMLParser):
    """The sweep table's rows (cell texts) and every inline image of a report."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.depth, self.rows, self.cell, self.images, self.pre = table_id, 0, [], None, [], []
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag == "td":
            self.cell = ""
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag):
        if self.depth and tag == "td":
            self.rows[-1].append(self.cell.strip())
            self.cell = None
        elif self.depth and tag == "table":
            self.depth = 0
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self._in_pre:
            self.pre[-1] += data


def _check_images(srcs: list[str]) -> None:
    from PIL import Image

    assert srcs
    for src in srcs:
        assert src.startswith("data:image/png;base64,")  # inline: the page is self-contained
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            px = np.asarray(im.convert("RGB"), np.float32)
        assert px.shape[0] > 100 and px.std() > 5  # decodes, not blank


def _check_report(html_path: Path, sweep_out: Path) -> None:
    from edgegan.reports.sweep_report import TABLE_ID

    page = _Page(TABLE_ID)
    page.feed(html_path.read_text())
    rows = json.loads((sweep_out / "results.json").read_text())["rows"]
    body = [r for r in page.rows if r]
    assert len(body) == len(rows) == 12
    for cells, r in zip(body, rows):
        assert cells[:4] == [r["model"], r["pipeline"], r["format"], r["target"]]
        assert cells[4].split()[-1] == r["status"]  # the mark and the status word
        assert cells[5] == r["stage"]
        assert cells[-1] == (r["reason"] or "")
    failed = [c for c in body if c[0] == "broken"]
    assert len(failed) == 6 and all("/nonexistent/g.pt" in c[-1] and c[5] == "export" for c in failed)
    _check_images(page.images)
    assert len(page.images) == 2  # the grid-wide trade-off plot + the post-training plot
    assert any(p.startswith("edgegan sweep ") and str(sweep_out / "spec.json") in p for p in page.pre)


def test_sweep_writes_its_html_report(tiny_sweep):
    assert "report: " in tiny_sweep["stdout"]
    _check_report(tiny_sweep["out"] / "report.html", tiny_sweep["out"])


def test_edgegan_report_takes_a_sweep_folder(tiny_sweep, cli, tmp_path):
    r = cli("report", str(tiny_sweep["out"]), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 0, r.stderr[-3000:]
    _check_report(tmp_path / "r.html", tiny_sweep["out"])
    import edgegan  # the Python API takes the folder too

    _check_report(edgegan.report(tiny_sweep["out"], out=tmp_path / "api.html"), tiny_sweep["out"])
    from edgegan.sweep import run_sweep, load_spec

    resumed = run_sweep(load_spec(tiny_sweep["spec"]), tiny_sweep["out"], sequential=True, report=False)
    assert resumed.skipped == 9 and resumed.ran == 3  # finished jobs skipped; the broken model's exports retried
    _check_report(edgegan.report(resumed, out=tmp_path / "result.html"), tiny_sweep["out"])


def test_csv_and_plot_options_refuse_what_they_cannot_do(tiny_sweep, cli, tmp_path):
    doc = {k: v for k, v in tiny_sweep["doc"].items() if k != "quality"}
    spec = tmp_path / "noq.json"
    spec.write_text(json.dumps(doc))
    r = cli("sweep", str(spec), "--sequential", "--out", str(tmp_path / "o"), "--csv", str(tmp_path / "x.csv"))
    assert r.returncode != 0 and "quality" in r.stderr and not (tmp_path / "o").exists()
    r = cli("sweep", str(tiny_sweep["spec"]), "--sequential", "--out", str(tmp_path / "o"), "--csv", str(tiny_sweep["csv"]))
    assert r.returncode != 0 and "--force" in r.stderr and not (tmp_path / "o").exists()
