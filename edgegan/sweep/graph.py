"""A sweep spec expanded into a job graph: export (compress + export, per model x pipeline) ->
profile (per bundle x target, on that target's one slot) -> compare (per bundle x target).

Every job's key is a content hash of what determines its output: its own parameters, the keys
of the jobs it depends on, the checkpoint's bytes and the edgegan version. The same key means
the same result, so a resumed sweep skips a job whose key already has a finished output."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional

from .spec import SweepSpec

KINDS = ("export", "profile", "compare")


@dataclasses.dataclass
class Job:
    kind: str  # export | profile | compare
    key: str
    params: dict
    deps: list[str]
    model: str
    pipeline: str
    target: Optional[str] = None  # the target label (profile / compare)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(**d)


def content_key(kind: str, params: dict, deps: list[str]) -> str:
    from .. import __version__

    doc = json.dumps({"kind": kind, "params": params, "deps": deps, "edgegan": __version__}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(doc.encode()).hexdigest()[:16]}"


def _file_hash(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None  # the export job reports the unreadable checkpoint as its failure
    return h.hexdigest()


def slot_resource(target_label: str) -> str:
    """The Ray custom resource that stands for one physical device (capacity 1 in the cluster)."""
    return "edgegan_device_" + hashlib.sha256(target_label.encode()).hexdigest()[:12]


def expand(spec: SweepSpec) -> list[Job]:
    """All jobs in dependency order (a job's deps come before it)."""
    jobs: list[Job] = []
    for m in spec.models:
        model = {"name": m.name, "spec": m.spec, "checkpoint": m.checkpoint, "config": m.config,
                 "checkpoint_sha256": _file_hash(m.checkpoint)}
        for p in spec.pipelines:
            params = {"model": model, "pipeline": [s.to_dict() for s in p.steps], "formats": list(spec.formats),
                      "export": spec.export.to_dict()}
            if spec.quality is not None:  # absent otherwise, so earlier sweeps keep their keys
                params["quality"] = spec.quality.to_dict()
            exp = Job("export", content_key("export", params, []), params, [], m.name, p.name)
            jobs.append(exp)
            for t in spec.targets:
                pp = {"target": t.to_dict(), "runs": spec.runs.to_dict(), "formats": list(spec.formats)}
                prof = Job("profile", content_key("profile", pp, [exp.key]), pp, [exp.key], m.name, p.name, t.label)
                jobs.append(prof)
                if spec.metrics:
                    cp = {"metrics": list(spec.metrics), "formats": list(spec.formats)}
                    jobs.append(Job("compare", content_key("compare", cp, [prof.key]), cp, [prof.key], m.name,
                                    p.name, t.label))
    return jobs


def job_dir(out: Path, key: str) -> Path:
    return Path(out) / "jobs" / key
