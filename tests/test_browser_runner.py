"""The browser runner end to end in real headless Chromium (Debian's /usr/bin/chromium through
Python playwright, Pixel 7 profile): `edgegan profile BUNDLE --target browser` serves the page,
the artifact and the inputs, the page times its runs in onnxruntime-web / tfjs-tflite and posts
back; results.json, samples and the report are written. The outputs are checked against the
host's own runtime (onnxruntime, ai-edge-litert), run here directly.

Tolerance (documented in docs/devices.md): float artifacts (onnx, tflite-fp32) within 1e-5
(seen: 1.2e-7, float rounding of the wasm kernels); ort-int8 within 1e-5 (seen: bit-exact);
tflite-int8 within one int8 step of the output range (2/255 for tanh; seen: 1/128 on a few
elements, XNNPACK's wasm and x86 builds round differently).

Also: a POST of the wrong size or garbage is refused, a path-traversal GET is refused (no page
needed for those: raw HTTP against the server)."""
from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from support_browser import chromium_missing

FORMATS = ("onnx", "ort-int8", "tflite-fp32", "tflite-int8")
FLOAT_TOL = 1e-5


def need_chromium() -> None:
    """Skip only off CI: in CI (``$CI`` set) a missing Chromium is a failure, not a skip."""
    why = chromium_missing()
    if why is None:
        return
    try:
        from edgegan.web.server import node_modules

        node_modules()
    except Exception as exc:  # noqa: BLE001 - reported as the reason
        why = why or str(exc)
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser runner tests: {why}")
    pytest.skip(why)


def web_modules_or_skip() -> None:
    from edgegan.devices.errors import DeviceError
    from edgegan.web.server import node_modules

    try:
        node_modules()
    except DeviceError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser runner tests: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def browser_run(tiny_bundle, tmp_path_factory):
    need_chromium()
    web_modules_or_skip()
    bundle, _ = tiny_bundle
    out = tmp_path_factory.mktemp("browser") / "run"
    r = run_cli("profile", str(bundle), "--target", "browser", "--formats", ",".join(FORMATS) + ",tflite-dynamic",
            "--runs", "6", "--warmup", "2", "--timeout", "120", "--out", str(out))
    doc = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else None
    return bundle, out, r, doc


def host_outputs(bundle: Path, rec: dict, inputs: np.ndarray) -> np.ndarray:
    """The artifact run by this host's Python runtime, written here without edgegan's adapters."""
    path = str(bundle / rec["path"])
    io = rec.get("io") or {}
    x = inputs.transpose(io["input_perm"]) if io.get("input_perm") else inputs
    outs = []
    if path.endswith(".onnx"):
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        outs = [sess.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))]
    else:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        i_d, o_d = it.get_input_details()[0], it.get_output_details()[0]
        assert i_d["dtype"] == np.float32 and o_d["dtype"] == np.float32  # the bundle's default float I/O
        for i in range(len(x)):
            it.set_tensor(i_d["index"], np.ascontiguousarray(x[i:i + 1], np.float32))
            it.invoke()
            outs.append(it.get_tensor(o_d["index"]).copy())
    y = np.concatenate(outs)
    return y.transpose(io["output_perm"]) if io.get("output_perm") else y


def test_profile_target_browser_end_to_end(browser_run):
    bundle, out, r, doc = browser_run
    assert doc is not None, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.returncode == 1, "tflite-dynamic cannot run in tfjs-tflite: one failed row -> exit 1"
    assert doc["complete"] is True and doc["target"] == "browser"
    assert "Pixel 7" in doc["device"]["os"] and "not a phone" in doc["device"]["emulator"]
    manifest = json.loads((bundle / "bundle.json").read_text())
    recs = {a["format"]: a for a in manifest["artifacts"]}
    inputs = np.load(bundle / "inputs.npy")
    rows = {row["format"]: row for row in doc["results"]}
    lo, hi = manifest["model"]["output_range"]["lo"], manifest["model"]["output_range"]["hi"]
    for fmt in FORMATS:
        row = rows[fmt]
        assert row["status"] in ("ok", "degraded"), (fmt, row.get("reason"))
        assert row["runtime"] == ("onnxruntime-web" if fmt in ("onnx", "ort-int8") else "tflite-web")
        assert row["runs"] == 6 and row["warmup"] == 2 and row["latency_ms"]["p50"] > 0
        assert "Android" in row["browser"]["user_agent"] and row["browser"]["cross_origin_isolated"] is True
        assert row["browser"]["page_load_ms"] > 0
        samples = np.load(out / row["samples"], allow_pickle=False)
        assert samples.shape == (len(inputs), *manifest["output"]["shape"])
        host = host_outputs(bundle, recs[fmt], inputs)
        tol = (hi - lo) / 255 + 1e-6 if fmt == "tflite-int8" else FLOAT_TOL
        assert np.abs(samples - host).max() <= tol, (fmt, float(np.abs(samples - host).max()))
        # scored against the float reference like any other run
        ref = np.load(bundle / "reference.npy")
        assert row["quality"]["psnr_db"] > 40 and row["quality"]["vs_host"]["available"] is True
        assert np.abs(samples - ref).max() < 0.1
        assert (out / fmt / "device_results.json").is_file()
    dyn = rows["tflite-dynamic"]
    assert dyn["status"] == "failed" and "TFLiteWebModelRunner" in dyn["reason"]
    assert (out / "report.md").is_file() and "onnxruntime-web" in (out / "report.md").read_text()


def test_report_on_a_browser_run(browser_run, tmp_path):
    _, out, _, doc = browser_run
    assert doc is not None
    r = run_cli("report", str(out), "--out", str(tmp_path / "report.html"))
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    text = (tmp_path / "report.html").read_text()
    assert "tflite-web" in text and "onnxruntime-web" in text


# ---------------------------------------------------------------------------- hostile requests
@pytest.fixture
def served(tiny_bundle):
    """A BrowserRun for the onnx artifact on a live server (no browser needed)."""
    web_modules_or_skip()
    from edgegan.bundle import Bundle
    from edgegan.web.runner import BrowserJob, BrowserRun
    from edgegan.web.server import WebServer

    b = Bundle.load(tiny_bundle[0])
    rec = next(r for r in b.artifact_records() if r.format == "onnx")
    with WebServer() as srv:
        run = BrowserRun(srv, BrowserJob(artifact=b.artifact_path(rec), format="onnx", inputs=b.inputs(),
                                         output_shape=list(b.manifest.output["shape"]), runs=3, warmup=1))
        yield srv, run


def request(srv, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)  # the path goes out as is
    hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
    if method == "POST":
        hdrs.setdefault("Content-Length", str(len(body)))
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders(body if body else None)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_page_and_files_are_served(served):
    srv, run = served
    status, data = request(srv, "GET", run.path)
    assert status == 200 and b"bench.js" in data
    status, data = request(srv, "GET", run.prefix + "config.json")
    cfg = json.loads(data)
    assert status == 200 and cfg["token"] == run.token and cfg["count"] == run.count
    status, data = request(srv, "GET", run.prefix + "inputs.bin")
    assert status == 200 and len(data) == run.count * int(np.prod(run.input_shape)) * 4


@pytest.mark.parametrize("path", [
    "/rt/../../../../etc/passwd", "/rt/onnxruntime-web/../../../bundle.json", "/rt/%2e%2e/%2e%2e/etc/passwd",
    "/rt/", "/rt/onnxruntime-web/dist/", "/rt/onnxruntime-web/dist/ort.min.js", "/", "//etc/passwd",
    "/run/", "/run/TOKEN/../../pyproject.toml", "/run/TOKEN/%2e%2e/%2e%2e/etc/passwd",
])
def test_traversal_and_unlisted_paths_are_refused(served, path):
    srv, run = served
    status, data = request(srv, "GET", path.replace("TOKEN", run.token))
    assert status == 404 and b"root:" not in data and b"[project]" not in data


def test_wrong_host_header_is_refused(served):
    srv, run = served
    status, _ = request(srv, "GET", run.path, headers={"Host": f"evil.example:{srv.port}"})
    assert status == 421


def test_lan_server_takes_any_host_and_a_server_without_posts_answers_501(tmp_path):
    """The phone demo's --lan server: every interface, any Host (a phone names this host by its
    Wi-Fi address); its only routes are GETs, so a POST is 'not implemented', as the stdlib says."""
    from types import SimpleNamespace

    from edgegan.web.server import WebServer

    page = tmp_path / "index.html"
    page.write_text("<p>hi</p>")
    lan_host = {"Host": "192.168.1.23:8765"}
    with WebServer(lan=True) as srv:
        srv.add_file("/index.html", page)
        assert srv.host == "0.0.0.0"
        loop = SimpleNamespace(host="127.0.0.1", port=srv.port)  # reach it over loopback, name it by a LAN address
        assert request(loop, "GET", "/index.html", headers=lan_host) == (200, b"<p>hi</p>")
        assert request(loop, "POST", "/index.html", b"x")[0] == 501
    with WebServer() as srv:  # loopback only: a LAN Host header is refused
        srv.add_file("/index.html", page)
        assert request(srv, "GET", "/index.html", headers=lan_host)[0] == 421


def test_bad_posts_are_refused(served):
    srv, run = served
    p = run.prefix
    octet = {"Content-Type": "application/octet-stream"}
    good = np.zeros(run.samples_bytes // 4, np.float32).tobytes()
    assert request(srv, "POST", p + "samples", good[:-4], octet)[0] == 400  # one float short
    assert request(srv, "POST", p + "samples", good + b"\0" * 4, octet)[0] == 413  # too big: refused unread
    assert request(srv, "POST", p + "samples", good, {"Content-Type": "text/plain"})[0] == 415
    assert request(srv, "POST", p + "result", b"\xff\xfe garbage", {"Content-Type": "application/json"})[0] == 400
    assert request(srv, "POST", "/run/0000/result", b"{}", {"Content-Type": "application/json"})[0] == 404
    # the result before the samples, then with another run's token
    body = {"token": run.token, "runtime": "onnxruntime-web", "times_ms": [0.1] * 3, "warmup": 1, "threads": 1,
            "output_dims": [1, *run.job.output_shape], "user_agent": "x", "version": "1", "first_inference_ms": 1,
            "model_load_ms": 1, "model_fetch_ms": 1, "page_ms": 1}
    js = {"Content-Type": "application/json"}
    assert request(srv, "POST", p + "result", json.dumps(body).encode(), js)[0] == 409
    assert request(srv, "POST", p + "samples", good, octet)[0] == 200
    assert request(srv, "POST", p + "samples", good, octet)[0] == 409  # once only
    for bad in ({"token": "nope"}, {"times_ms": [0.1] * 2}, {"times_ms": ["1"] * 3}, {"times_ms": [float("inf")] * 3},
                {"output_dims": [1, 3, 7, 7]}, {"threads": True}, {"user_agent": "a\x00b"}):
        status, _ = request(srv, "POST", p + "result", json.dumps({**body, **bad}).encode(), js)
        assert status in (400, 403), bad
    assert not run.done.is_set()
    assert request(srv, "POST", p + "result", json.dumps(body).encode(), js)[0] == 200
    page = run.wait(1)
    assert page.samples.shape == (run.count, *run.job.output_shape) and page.times_ms == [0.1] * 3
    assert request(srv, "POST", p + "result", json.dumps(body).encode(), js)[0] == 409


def test_no_post_is_a_clear_timeout(served):
    from edgegan.errors import DeviceError

    _, run = served
    with pytest.raises(DeviceError, match="posted no result within"):
        run.wait(0.3)
