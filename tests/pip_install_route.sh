#!/usr/bin/env bash
# `make test-pip`: the route of a user without the Makefile, end to end —
#   pip install 'edgegan-*.whl[all]'  ->  edgegan setup tflite  ->  edgegan export dcgan-digits
# into a fresh Python 3.11 venv ($PIP_VENV), asserting all six formats are ok in bundle.json.
# The venv is reused while the wheel's requirement set is unchanged (key in $PIP_VENV/.edgegan-reqs).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${PIP_VENV:-.venv-pip}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "test-pip needs Python 3.11 (the local torch 2.13.0 CPU wheel); set PYTHON=python3.11"'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
secs() { date +%s.%N; }
since() { "$PYTHON" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f} s')" "$1" "$(secs)"; }

# 1. the wheel, built from a copy of the tracked + new files (a stale build/ can't leak into it)
mkdir "$work/src"
git ls-files -z -co --exclude-standard | tar --null -cf - -T - | tar -xf - -C "$work/src"
"$PYTHON" -m pip wheel --no-deps -q --disable-pip-version-check -w "$work/dist" "$work/src" >/dev/null
wheel=$(ls "$work"/dist/edgegan-*.whl)
echo "test-pip: built $(basename "$wheel")"

# 2. the key: the wheel's Requires-Dist, the --no-deps list inside it, the Python version
key=$("$PYTHON" - "$wheel" <<'PY'
import hashlib, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
reqs = sorted(l for l in z.read(meta).decode().splitlines() if l.startswith("Requires-Dist:"))
nodeps = z.read("edgegan/requirements/nodeps.txt").decode()
print(hashlib.sha256("\n".join(reqs + [nodeps, sys.version]).encode()).hexdigest()[:16])
PY
)
if [ -f "$VENV/.edgegan-reqs" ] && [ "$(cat "$VENV/.edgegan-reqs")" = "$key" ]; then
  echo "test-pip: reusing ${VENV#$ROOT/} (requirement set $key unchanged); reinstalling the wheel only"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
else
  echo "test-pip: fresh venv ${VENV#$ROOT/} for requirement set $key: pip install '$(basename "$wheel")[all]'"
  rm -rf "$VENV"
  t0=$(secs)
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$wheel[all]" 2>&1 | grep -v "^WARNING: Location" || true
  echo "test-pip: pip install [all] took $(since "$t0"); ${VENV#$ROOT/} is $(du -sh "$VENV" | cut -f1)"
fi
"$VENV/bin/python" -c "import torch, onnxruntime, tensorflow, ai_edge_litert, paramiko" 2>"$work/import.log" \
  || { cat "$work/import.log"; echo "test-pip: pip install '[all]' did not give torch/onnxruntime/tensorflow/ai_edge_litert/paramiko"; exit 1; }

# 3. the step pip cannot do, run from outside the checkout (the checkout's edgegan/ must not be importable)
cd "$work"
t0=$(secs)
"$VENV/bin/edgegan" setup tflite
echo "test-pip: edgegan setup tflite took $(since "$t0"); ${VENV#$ROOT/} is $(du -sh "$VENV" | cut -f1)"
echo "$key" > "$VENV/.edgegan-reqs"
"$VENV/bin/edgegan" setup tflite --check
"$VENV/bin/edgegan" --version

# 4. every default format from the installed copy
t0=$(secs)
"$VENV/bin/edgegan" export dcgan-digits --out "$work/bundle" --json > "$work/export.json" || true
echo "test-pip: edgegan export dcgan-digits took $(since "$t0")"
"$VENV/bin/python" - "$work/bundle/bundle.json" <<'PY'
import json, pathlib, sys
import edgegan
# the installed wheel ran, not the checkout's edgegan/
assert pathlib.Path(edgegan.__file__).resolve().is_relative_to(pathlib.Path(sys.prefix).resolve()), edgegan.__file__
doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
rows = {a["format"]: (a["status"], a.get("reason")) for a in doc["artifacts"]}
want = ["onnx", "ort-int8", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8"]
bad = {f: rows.get(f, ("absent", None)) for f in want if rows.get(f, ("absent",))[0] != "ok"}
assert not bad, f"formats not ok after the pip route: {bad}"
# the int8 goals on the trained weights (also tests/test_e2e_digits.py, slow): >= 45 dB, <= 0.27 of fp32's size
art = {a["format"]: a for a in doc["artifacts"]}
for fmt in ("ort-int8", "tflite-int8"):
    assert art[fmt]["fidelity"]["psnr_db"] >= 45 and art[fmt]["size_ratio"] <= 0.27, (fmt, art[fmt]["fidelity"], art[fmt]["size_ratio"])
assert art["tflite-fp16"]["fidelity"]["psnr_db"] > 70, art["tflite-fp16"]["fidelity"]
assert doc["model"]["params"] == 1_098_721 and "shipped weights" in doc["model"]["source"], doc["model"]
print(f"test-pip: all {len(want)} formats ok: {', '.join(want)}; int8 >= 45 dB at <= 0.27 of fp32's size")
PY
