"""`edgegan sweep` over two emulated aarch64 boards behind two loopback sshd's, on a real local
Ray cluster started here (a head without CPUs and two worker nodes, each holding one board's
slot, as nodes that each reach their own board). Jobs land on both boards in parallel, never
two at once on one board, and a second run resumes with nothing to redo.

Board B is a twin of the session's board A: the same cached rootfs (so `edgegan device setup`
on A set B up too; artifacts and runs there are content-addressed / per-run folders) behind its
own sshd, host key and user key."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devicelib import Target

pytestmark = pytest.mark.device
ray = pytest.importorskip("ray")


def _twin_board(board, root: Path):
    """A second board on the same rootfs: its own keys, sshd config and state under ``root``."""
    from board import Board

    class TwinBoard(Board):
        def __init__(self) -> None:
            super().__init__(suite=board.suite)
            self.rootfs, self.ready = board.rootfs, board.ready
            self.root, self.keys, self.state = root, root / "keys", root / "sshd.json"

    root.mkdir(parents=True, exist_ok=True)
    return TwinBoard()


@pytest.fixture(scope="module")
def two_boards(target, setup_result, tmp_path_factory):
    if not target.emulated:
        pytest.skip("needs the emulated board (the test starts a twin of it)")
    twin = _twin_board(target.board, tmp_path_factory.mktemp("board-b"))
    st = twin.start()
    yield target, Target(st["target"], st["identity"], st["known_hosts"], twin)
    twin.stop()


@pytest.fixture(scope="module")
def cluster(two_boards):
    from ray.cluster_utils import Cluster

    from edgegan.sweep import slot_resource

    small = {"object_store_memory": 100 * 1024 * 1024, "include_dashboard": False}
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, **small})
    for label in ("board-a", "board-b"):  # one node per board, each with one CPU and that board's slot
        c.add_node(num_cpus=1, resources={slot_resource(label): 1}, **small)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def test_sweep_profiles_on_both_boards_in_parallel_one_job_per_board(two_boards, cluster, tmp_path):
    a, b = two_boards
    spec = {
        "name": "two-boards",
        "models": [{"name": "dcgan-tiny"}],
        "pipelines": [{"name": "float"}, {"name": "q8", "steps": [{"method": "quant", "config": {"bits": 8}}]}],
        "formats": ["onnx", "ort-int8"],
        "targets": [{"url": t.url, "name": name, "identity": t.identity, "known_hosts": t.known_hosts}
                    for name, t in (("board-a", a), ("board-b", b))],
        "runs": {"runs": 3, "warmup": 1, "timeout_s": 600},
        "export": {"n_inputs": 8, "calibration": 8},
        "metrics": ["psnr_db"],
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "edgegan", "sweep", str(spec_path), "--out", str(out), "--ray-address",
            cluster.address, "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    rows = doc["rows"]
    assert len(rows) == 2 * 2 * 2 and all(r["status"] == "ok" for r in rows), rows
    assert {r["arch"] for r in rows} == {"aarch64"}
    assert all(r["p50_ms"] > 0 and r["psnr_db"] > 20 for r in rows)
    # the profile jobs: two per board; never overlapping on one board, overlapping across the boards
    profiles = [json.loads(p.read_text()) for p in (out / "jobs").glob("profile-*/result.json")]
    events = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()]
    board_of = {e["key"]: e["target"] for e in events if e["kind"] == "profile"}
    spans: dict[str, list[tuple[float, float]]] = {}
    for p in profiles:
        spans.setdefault(board_of[p["key"]], []).append((p["started"], p["finished"]))
    assert sorted(spans) == ["board-a", "board-b"] and all(len(v) == 2 for v in spans.values())
    for board, (s1, s2) in spans.items():
        assert s1[1] <= s2[0] or s2[1] <= s1[0], f"two measurements at once on {board}"
    overlap = max(min(x[1], y[1]) - max(x[0], y[0]) for x in spans["board-a"] for y in spans["board-b"])
    assert overlap > 0, "the two boards never measured at the same time"
    # a second run finds every job finished
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and json.loads(again.stdout)["ran"] == 0
