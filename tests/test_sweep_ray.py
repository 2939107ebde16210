"""`edgegan sweep` on a real local Ray cluster started here (a head process with no CPUs and a
worker node with 2 CPUs and the device slot, via ray.cluster_utils.Cluster): a worker process
killed mid-job is survived (Ray retries that job), a killed driver's sweep resumes without
redoing a finished job, and failures are rows with the stage and the reason."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from edgegan.sweep import SweepSpec, expand, slot_resource  # noqa: E402
from edgegan.sweep.jobs import attempts  # noqa: E402

BAD_TARGET = "ssh://nobody@127.0.0.1:9"  # discard port: nothing listens, the connection is refused
SPEC = {
    "name": "ray-test",
    "models": [{"name": "dcgan-tiny"}],
    "pipelines": [{"name": "float"}, {"name": "q8", "steps": [{"method": "quant", "config": {"bits": 8}}]}],
    "formats": ["onnx", "ort-int8"],
    "targets": [{"url": "local"}],
    "runs": {"runs": 5, "warmup": 1},
    "export": {"n_inputs": 8, "calibration": 8},
    "metrics": ["psnr_db"],
}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    slots = {slot_resource(label): 1 for label in ("local", "gone")}
    small = {"object_store_memory": 100 * 1024 * 1024, "include_dashboard": False}
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, **small})
    c.add_node(num_cpus=2, resources=slots, **small)  # the worker node: CPUs and the device slots
    c.wait_for_nodes()
    yield c
    c.shutdown()


def _spec_file(tmp_path: Path, **changes) -> Path:
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({**SPEC, **changes}))
    return p


def _sweep(spec: Path, out: Path, cluster, **kw) -> subprocess.Popen:
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    return subprocess.Popen([sys.executable, "-m", "edgegan", "sweep", str(spec), "--out", str(out), "--ray-address",
                             cluster.address, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kw)


def _wait_for(pred, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep exited {proc.returncode} while waiting for {what}: {proc.stderr.read()[-3000:]}")
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_killed_mid_job_is_retried_and_failures_are_rows(cluster, tmp_path):
    spec_path = _spec_file(tmp_path, models=[{"name": "dcgan-tiny"},
                                             {"name": "broken", "model": "dcgan-tiny", "checkpoint": str(tmp_path / "missing.pt")}],
                           targets=[{"url": "local"}, {"url": BAD_TARGET, "name": "gone"}])
    out = tmp_path / "sweep"
    jobs = expand(SweepSpec.from_json(spec_path.read_text()))
    victim = next(j for j in jobs if j.kind == "export" and j.model == "dcgan-tiny" and j.pipeline == "float")
    proc = _sweep(spec_path, out, cluster)
    marker = out / "attempts" / f"{victim.key}.1.json"
    _wait_for(marker.exists, 180, "the first export to start", proc)
    pid = _wait_for(lambda: marker.stat().st_size and json.loads(marker.read_text())["pid"], 10, "its pid")
    time.sleep(1.0)  # well inside the job (torch import + export take seconds)
    assert not (out / "jobs" / victim.key).exists()
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-3000:]  # some rows failed (on purpose), the sweep finished
    doc = json.loads(stdout)
    assert attempts(out, victim.key) == 2  # Ray ran the killed job again
    assert json.loads((out / "jobs" / victim.key / "result.json").read_text())["attempt"] == 2
    rows = {(r["model"], r["pipeline"], r["format"], r["target"]): r for r in doc["rows"]}
    assert len(rows) == 2 * 2 * 2 * 2
    for (model, pipeline, fmt, target), r in rows.items():
        if model == "broken":
            assert r["status"] == "failed" and r["stage"] == "export" and "missing.pt" in r["reason"], r
        elif target == "gone":
            assert r["status"] == "failed" and r["stage"] == "profile" and r["reason"], r
            assert r["bytes"] > 0  # the export part of the row is there
        else:
            assert r["status"] == "ok" and r["stage"] == "done", r
            assert r["p50_ms"] > 0 and r["bytes"] > 0 and r["psnr_db"] is not None
            # 8-bit weights pack into about a quarter of the float bytes; the float model is its own size
            assert r["packed_bytes"] == r["float_bytes"] if pipeline == "float" else r["packed_bytes"] < 0.3 * r["float_bytes"]
            assert r["psnr_db"] > 20 if fmt == "ort-int8" else r["psnr_db"] > 60 or r["psnr_db"] == float("inf")
    # the table on disk is the same one
    on_disk = json.loads((out / "results.json").read_text())["rows"]
    assert len(on_disk) == len(rows)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["model", "pipeline", "format", "target", "status", "stage", "reason"]


@pytest.mark.slow  # ~45 s; resuming a sequential sweep stays in the default suite (tests/test_sweep_posttrain.py)
def test_killed_driver_resumes_without_redoing_finished_jobs(cluster, tmp_path):
    spec_path = _spec_file(tmp_path)
    out = tmp_path / "sweep"
    jobs = expand(SweepSpec.from_json(spec_path.read_text()))
    proc = _sweep(spec_path, out, cluster, start_new_session=True)
    first = _wait_for(lambda: [j.key for j in jobs if (out / "jobs" / j.key / "result.json").exists()], 300,
                      "a first finished job", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    finished = [j.key for j in jobs if (out / "jobs" / j.key / "result.json").exists()]
    assert set(first) <= set(finished) and len(finished) < len(jobs), "the driver must die mid-sweep"
    before = {k: attempts(out, k) for k in finished}
    proc = _sweep(spec_path, out, cluster)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    doc = json.loads(stdout)
    assert doc["skipped"] == len(finished) and doc["ran"] == len(jobs) - len(finished)
    assert {k: attempts(out, k) for k in finished} == before  # no finished job ran again
    assert len(doc["rows"]) == 2 * 2 and all(r["status"] == "ok" for r in doc["rows"])
    # a third run has nothing left to do
    proc = _sweep(spec_path, out, cluster)
    stdout, _ = proc.communicate(timeout=300)
    assert json.loads(stdout)["ran"] == 0
