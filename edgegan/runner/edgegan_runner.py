#!/usr/bin/env python3
"""edgegan on-device runner: load one artifact, run the stored inputs, measure it, write results.

Runs on the device with python3 + numpy + one runtime from the runtime table (``RUNTIMES``:
onnxruntime for .onnx; ai-edge-litert, tflite-runtime or tensorflow for .tflite). No torch, no
edgegan: this one file is copied to the device, and the host imports the same file for
verification and for the runtime table. Usage:

    python3 edgegan_runner.py JOB.json       # measure one artifact
    python3 edgegan_runner.py --info         # device info as JSON (works without numpy)

The contracts are the dataclasses below: ``Job`` (job.json), ``Result`` (results.json, written
last and atomically with ``complete: true``, next to samples.npy: outputs for every stored input,
NCHW float32) and ``ExitCode``.
"""
from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import importlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time

try:  # `--info` must work before `edgegan device setup` has installed numpy
    import numpy as np
except ImportError:  # pragma: no cover - exercised on bare devices
    np = None

RUNNER_VERSION = 2


class RunnerError(Exception):
    """A problem the runner reports as one line on stderr (exit code 3)."""


def _need_numpy() -> None:
    if np is None:
        raise RunnerError("numpy is not installed for this python; run `edgegan device setup TARGET`")


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _sysfs_entries(base: str, what: str) -> list:
    """Sorted names in a sysfs class directory; RunnerError('no <what>') when it is absent."""
    try:
        return sorted(os.listdir(base))
    except OSError:
        raise RunnerError(f"no {what}") from None


# ---------------------------------------------------------------------------- device info
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3"}


def runtime_versions(only: str | None = None) -> dict:
    """Versions of python, numpy and the inference runtimes importable here (absent ones are
    left out). ``only`` limits the runtime imports to one (imports are slow under emulation)."""
    out = {"python": platform.python_version()}
    if np is not None:
        out["numpy"] = np.__version__
    for mod, name in [(m.import_name, m.distribution) for rt in RUNTIMES.values() for m in rt.modules
                      if m.probe or only == m.distribution]:
        if only and name != only:
            continue
        try:
            m = importlib.import_module(mod)
        except Exception:  # noqa: BLE001 - any import failure means "not available"
            continue
        version = getattr(m, "__version__", None)
        if not version:
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(name)
            except Exception:  # noqa: BLE001 - metadata missing
                version = "unknown"
        out[name] = version
    return out


def cpu_model(cpuinfo: str | None = None) -> str:
    """A readable CPU name from /proc/cpuinfo (x86 'model name', ARM part numbers, 'Model')."""
    text = cpuinfo if cpuinfo is not None else (_read("/proc/cpuinfo") or "")
    fields: dict = {}
    parts = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        k, v = (s.strip() for s in line.split(":", 1))
        fields.setdefault(k.lower(), v)
        if k.lower() == "cpu part":
            parts.append(v.lower())
    if "model name" in fields:
        return fields["model name"]
    names = sorted({ARM_PARTS.get(p, f"ARM part {p}") for p in parts})
    desc = " + ".join(names)
    board = fields.get("model") or fields.get("hardware")
    return f"{desc} ({board})" if desc and board else desc or board or platform.processor() or "unknown"


def emulator() -> str | None:
    """The emulator this process runs under, or None on real hardware. Emulated boards
    declare themselves (EDGEGAN_EMULATOR); otherwise an ARM userland on an x86 kernel is
    qemu-user (the kernel's CPU modalias is not emulated)."""
    declared = os.environ.get("EDGEGAN_EMULATOR")
    if declared:
        return declared
    machine = platform.machine().lower()
    modalias = _read("/sys/devices/system/cpu/modalias") or ""
    if machine.startswith(("aarch64", "arm")) and "type:x86" in modalias:
        return "qemu-user (detected: x86 host kernel)"
    return None


def device_info(with_runtimes: bool = True) -> dict:
    """What a result needs to be reproducible: arch, CPU, cores, memory, OS, python, runtimes."""
    mem_kb = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    os_release = {}
    for line in (_read("/etc/os-release") or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            os_release[k] = v.strip().strip('"')
    return {
        "arch": platform.machine(), "cpu": cpu_model(), "cores": os.cpu_count(),
        "memory_mb": round(mem_kb / 1024, 1) if mem_kb else None,
        "os": os_release.get("PRETTY_NAME") or platform.system(),
        "kernel": platform.release(), "hostname": platform.node(),
        "python": platform.python_version(), "python_executable": sys.executable,
        "runtimes": runtime_versions() if with_runtimes else {},
        "emulator": emulator(), "thermal_zones": len(thermal_zones()),
        "power_sources": [p.source() for p in available_probes()[0]],
        "runner_version": RUNNER_VERSION,
    }


# ---------------------------------------------------------------------------- thermal
def thermal_zones(sysfs: str = "/") -> dict:
    """{zone type: °C} from /sys/class/thermal/thermal_zone*/temp (millidegrees)."""
    base = os.path.join(sysfs, "sys/class/thermal")
    out = {}
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("thermal_zone"))
    except OSError:
        return out
    for n in names:
        raw = _read(os.path.join(base, n, "temp"))
        if raw is None or not raw.lstrip("-").isdigit():
            continue
        kind = _read(os.path.join(base, n, "type")) or n
        key = kind if kind not in out else f"{kind}:{n}"
        out[key] = int(raw) / 1000.0
    return out


# ---------------------------------------------------------------------------- power probes
PROBES: dict = {}


def register_probe(cls):
    """Register a power probe class under ``cls.name`` (order = detection priority)."""
    PROBES[cls.name] = cls
    return cls


class PowerProbe:
    """One real power source. ``kind`` is "power" (read() -> watts now) or "energy"
    (read() -> cumulative joules); ``detect`` returns an instance or raises RunnerError why not."""

    name = ""
    kind = "power"

    @classmethod
    def detect(cls, sysfs: str = "/", **opts) -> "PowerProbe":
        raise NotImplementedError

    def source(self) -> str:
        return self.name

    def read(self) -> float:
        raise NotImplementedError


@register_probe
class RaplProbe(PowerProbe):
    """Intel/AMD RAPL package energy counters (µJ), summed over top-level packages."""

    name = "rapl"
    kind = "energy"

    def __init__(self, zones: list) -> None:
        self.zones = zones  # [(dir, label, max_range_uj)]
        self.last = [None] * len(zones)
        self.total_j = 0.0

    @classmethod
    def detect(cls, sysfs: str = "/", **opts) -> "RaplProbe":
        base = os.path.join(sysfs, "sys/class/powercap")
        names = _sysfs_entries(base, "/sys/class/powercap")
        zones = []
        for n in names:  # top-level zones only: intel-rapl:0, not the sub-zone intel-rapl:0:0
            if not re.fullmatch(r"[a-z-]+rapl:\d+", n):
                continue
            d = os.path.join(base, n)
            if _read(os.path.join(d, "energy_uj")) is None:
                raise RunnerError(f"{d}/energy_uj is not readable (root only since 2020; run as root)")
            rng = _read(os.path.join(d, "max_energy_range_uj"))
            zones.append((d, _read(os.path.join(d, "name")) or n, int(rng) if rng and rng.isdigit() else None))
        if not zones:
            raise RunnerError("no RAPL package zone under /sys/class/powercap")
        return cls(zones)

    def source(self) -> str:
        return "rapl:" + "+".join(z[1] for z in self.zones)

    def read(self) -> float:
        for i, (d, _, rng) in enumerate(self.zones):
            uj = int(_read(os.path.join(d, "energy_uj")))
            prev = self.last[i]
            if prev is not None:
                delta = uj - prev
                if delta < 0:  # counter wrapped
                    delta += rng or 0
                self.total_j += delta / 1e6
            self.last[i] = uj
        return self.total_j


HWMON_NAMES = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina237", "ina238",
               "ina260", "ina2xx", "ina3221")


@register_probe
class HwmonInaProbe(PowerProbe):
    """TI INA2xx / INA3221 current-shunt monitors under /sys/class/hwmon: power*_input (µW),
    else curr*_input (mA) × in*_input (mV) per channel. A channel labelled as the board's
    input (VDD_IN / VIN, as on Jetson) is used alone: the other channels are its sub-rails."""

    name = "hwmon"

    def __init__(self, channels: list, label: str) -> None:
        self.channels = channels  # [("power", path) | ("vi", volts_path, amps_path)]
        self.label = label

    @classmethod
    def detect(cls, sysfs: str = "/", **opts) -> "HwmonInaProbe":
        base = os.path.join(sysfs, "sys/class/hwmon")
        dirs = _sysfs_entries(base, "/sys/class/hwmon")
        for n in dirs:
            d = os.path.join(base, n)
            chip = (_read(os.path.join(d, "name")) or "").lower()
            if chip not in HWMON_NAMES:
                continue
            files = set(os.listdir(d))
            power = sorted(f for f in files if re.fullmatch(r"power\d+_input", f))
            chans = []
            if power:
                chans = [(("power", os.path.join(d, f)), _read(os.path.join(d, f.replace("_input", "_label"))) or f)
                         for f in power]
            else:
                for f in sorted(files):
                    m = re.fullmatch(r"curr(\d+)_input", f)
                    if m and f"in{m.group(1)}_input" in files:
                        label = _read(os.path.join(d, f"in{m.group(1)}_label")) or _read(os.path.join(d, f"curr{m.group(1)}_label")) or f"ch{m.group(1)}"
                        chans.append((("vi", os.path.join(d, f"in{m.group(1)}_input"), os.path.join(d, f)), label))
            if not chans:
                continue
            inputs = [c for c in chans if re.search(r"(^|_)(VDD_IN|VIN|IN)$", str(c[1]).upper())]
            pick = inputs[:1] or chans
            label = f"{chip}:{n}:" + "+".join(str(c[1]) for c in pick)
            probe = cls([c[0] for c in pick], label)
            probe.read()  # readable now, or RunnerError
            return probe
        raise RunnerError("no INA2xx/INA3221 hwmon device")

    def source(self) -> str:
        return f"hwmon:{self.label}"

    def read(self) -> float:
        watts = 0.0
        for ch in self.channels:
            try:
                if ch[0] == "power":
                    watts += int(_read(ch[1])) / 1e6
                else:
                    watts += int(_read(ch[1])) / 1e3 * int(_read(ch[2])) / 1e3
            except (TypeError, ValueError):
                raise RunnerError(f"hwmon channel {ch[1]} stopped being readable") from None
        return watts


PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-0-9.eE+]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> dict:
    """`vcgencmd pmic_read_adc` output -> {rail: watts} for rails with both current and volts."""
    amps, volts = {}, {}
    for line in text.splitlines():
        m = PMIC_LINE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    return {rail: amps[rail] * volts[rail] for rail in sorted(amps) if rail in volts}


@register_probe
class VcgencmdPmicProbe(PowerProbe):
    """Raspberry Pi 5 PMIC ADCs via `vcgencmd pmic_read_adc`: the sum of V × A over the rails
    it reports (the 5 V input's own current is not metered, so this is the SoC + peripherals)."""

    name = "vcgencmd-pmic"

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd
        self.rails = 0

    @classmethod
    def detect(cls, sysfs: str = "/", vcgencmd: str | None = None, **opts) -> "VcgencmdPmicProbe":
        import shutil

        cmd = vcgencmd or shutil.which("vcgencmd")
        if not cmd or not os.path.exists(cmd):
            raise RunnerError("no vcgencmd")
        probe = cls(cmd)
        probe.read()
        return probe

    def source(self) -> str:
        return f"vcgencmd pmic_read_adc ({self.rails} rails)"

    def read(self) -> float:
        try:
            proc = subprocess.run([self.cmd, "pmic_read_adc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RunnerError(f"vcgencmd pmic_read_adc failed: {exc}") from None
        if proc.returncode != 0:
            raise RunnerError(f"vcgencmd pmic_read_adc exited {proc.returncode}: {proc.stderr.strip()[:200]} (not a Pi 5?)")
        rails = parse_pmic_adc(proc.stdout)
        if not rails:
            raise RunnerError("vcgencmd pmic_read_adc printed no rail with both current and voltage (not a Pi 5?)")
        self.rails = len(rails)
        return sum(rails.values())


BATTERY_CHARGING = ("charging", "full")


def android_battery_watts(current_raw: str, voltage_raw: str) -> float:
    """Battery power in W from power_supply current_now / voltage_now as vendors write them.
    The kernel ABI says µA and µV, but some fuel gauges report mA / mV: a Li-ion cell is
    3-4.5 V, so a voltage under 100000 is mV; a phone at work draws > 10 mA, so a current under
    10000 in magnitude is mA. The sign is the vendor's (negative while discharging on Pixels,
    positive on others): the magnitude is the power drawn from the battery while it discharges."""
    try:
        current, voltage = int(str(current_raw).strip()), int(str(voltage_raw).strip())
    except ValueError:
        raise RunnerError(f"battery current_now/voltage_now are not integers ({current_raw!r}, {voltage_raw!r})") from None
    amps = abs(current) / (1e3 if abs(current) < 10000 else 1e6)
    volts = abs(voltage) / (1e3 if abs(voltage) < 100000 else 1e6)
    return amps * volts


@register_probe
class AndroidBatteryProbe(PowerProbe):
    """Android fuel gauge: /sys/class/power_supply/<battery>/{current_now, voltage_now} (the
    supply named ``battery``, else the first of type Battery). Only meaningful unplugged: on a
    charger (or USB power) the current is the charger's, so a Charging/Full status is refused."""

    name = "android-battery"

    def __init__(self, d: str) -> None:
        self.d = d

    @classmethod
    def detect(cls, sysfs: str = "/", **opts) -> "AndroidBatteryProbe":
        base = os.path.join(sysfs, "sys/class/power_supply")
        names = _sysfs_entries(base, "/sys/class/power_supply")
        order = (["battery"] if "battery" in names else []) + [
            n for n in names if n != "battery" and (_read(os.path.join(base, n, "type")) or "").lower() == "battery"]
        for n in order:
            d = os.path.join(base, n)
            if _read(os.path.join(d, "current_now")) is None or _read(os.path.join(d, "voltage_now")) is None:
                continue
            status = _read(os.path.join(d, "status"))
            if status and status.lower() in BATTERY_CHARGING:
                raise RunnerError(f"battery status is {status!r}: unplug the charger (adb over Wi-Fi) to measure")
            probe = cls(d)
            probe.read()
            return probe
        raise RunnerError("no readable power_supply battery current_now + voltage_now")

    def source(self) -> str:
        return "android-battery"

    def read(self) -> float:
        cur, volt = _read(os.path.join(self.d, "current_now")), _read(os.path.join(self.d, "voltage_now"))
        if cur is None or volt is None:
            raise RunnerError("battery current_now/voltage_now stopped being readable")
        return android_battery_watts(cur, volt)


def available_probes(sysfs: str = "/", only: str = "auto", **opts) -> tuple:
    """([probes that read a real source], {name: why not}) in priority order."""
    found, why = [], {}
    names = list(PROBES) if only in ("auto", None) else [only]
    for n in names:
        if n not in PROBES:
            raise RunnerError(f"unknown power probe {n!r}; choose one of {', '.join(PROBES)} or auto")
        try:
            found.append(PROBES[n].detect(sysfs, **opts))
        except RunnerError as exc:
            why[n] = str(exc)
        except OSError as exc:
            why[n] = f"{exc.strerror or exc}"
    return found, why


class PowerSampler:
    """Samples one probe on a thread: watts for power probes, joules counter for energy probes."""

    def __init__(self, probe: PowerProbe, interval_s: float = 0.05) -> None:
        self.probe, self.interval = probe, interval_s
        self.samples: list = []  # (t, value)
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            try:
                self.samples.append((time.perf_counter(), self.probe.read()))
            except (RunnerError, OSError) as exc:
                self.error = str(exc)
                return
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> "PowerSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.samples.append((time.perf_counter(), self.probe.read()))
        except (RunnerError, OSError) as e:
            self.error = self.error or str(e)

    def average_w(self) -> float | None:
        s = self.samples
        if len(s) < 2 or s[-1][0] <= s[0][0]:
            return None
        if self.probe.kind == "energy":
            return (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])
        area = sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in zip(s, s[1:]))  # trapezoid
        return area / (s[-1][0] - s[0][0])


def measure_power(probe: PowerProbe | None, why: dict, work, baseline_s: float, interval_s: float,
                  min_s: float) -> tuple:
    """Run ``work(deadline)`` (returns inferences done) under the sampler after an idle baseline.
    Returns (power dict, work result)."""
    if probe is None:
        reason = "; ".join(f"{k}: {v}" for k, v in why.items()) or "no power source"
        return {"provenance": "unavailable", "avg_w": None, "idle_w": None, "net_w": None,
                "energy_mj_per_inference": None, "reason": reason}, work(None)
    with PowerSampler(probe, interval_s) as idle:
        time.sleep(baseline_s)
    t0 = time.perf_counter()
    with PowerSampler(probe, interval_s) as busy:
        done = work(t0 + min_s)
    seconds = time.perf_counter() - t0
    idle_w, avg_w = idle.average_w(), busy.average_w()
    err = busy.error or idle.error
    if err or idle_w is None or avg_w is None or not done:
        return {"provenance": "unavailable", "avg_w": None, "idle_w": None, "net_w": None,
                "energy_mj_per_inference": None,
                "reason": f"{probe.source()}: {err or 'too few samples'}"}, done
    net = max(avg_w - idle_w, 0.0)
    return {"provenance": f"measured({probe.source()})", "avg_w": round(avg_w, 4), "idle_w": round(idle_w, 4),
            "net_w": round(net, 4), "energy_mj_per_inference": round(net * seconds / done[1] * 1e3, 4),
            "inferences": done[1], "seconds": round(seconds, 3), "samples": len(busy.samples),
            "baseline_s": baseline_s, "interval_s": interval_s}, done


# ---------------------------------------------------------------------------- runtimes
# The runtime table: the one place that knows which runtime runs which artifact. The host
# (session, setup, export, `edgegan env`, the converter registry) reads it from this file, so a
# new runtime is one entry here plus its adapter class.
@dataclasses.dataclass(frozen=True)
class RuntimeModule:
    """One importable implementation of a runtime (``distribution`` is its pip name)."""

    import_name: str
    distribution: str
    probe: bool = True  # False: too slow to import just to report a version (tensorflow)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A runtime: which artifacts it runs, how to get it, how to load and run an artifact.

    ``modules`` are alternatives in order of preference (any one is enough on a device);
    ``pip`` maps a machine (``platform.machine()`` lower-cased, or ``"default"``) to the
    distributions `edgegan device setup` installs; ``float_format`` is the artifact format whose
    latency/size is this runtime's own fp32 baseline; ``adapter`` names a class in this file
    whose ``(path, threads)`` constructor loads an artifact and whose ``run(x)`` runs one batch.
    An adapter may also define ``benchmark(x, warmup, runs) -> [ms]`` when the runtime times
    itself (a native benchmark binary or a browser page driven through a subprocess)."""

    name: str
    suffixes: tuple
    modules: tuple
    pip: dict
    float_format: str
    adapter: str
    description: str = ""

    def distributions(self) -> list:
        return [m.distribution for m in self.modules]

    def pip_requirements(self, machine: str = "") -> list:
        return list(self.pip.get(machine.lower(), self.pip["default"]))

    def installed(self, versions: dict):
        """The distribution name of an installed implementation, given runtime_versions()."""
        return next((d for d in self.distributions() if d in versions), None)


RUNTIMES: dict = {}


def register_runtime(rt: Runtime) -> Runtime:
    if rt.name in RUNTIMES:
        raise ValueError(f"runtime {rt.name!r} registered twice")
    clash = [s for s in rt.suffixes for other in RUNTIMES.values() if s in other.suffixes]
    if clash:
        raise ValueError(f"runtime {rt.name!r}: suffix {clash[0]!r} already belongs to another runtime")
    RUNTIMES[rt.name] = rt
    return rt


register_runtime(Runtime(
    name="onnxruntime", suffixes=(".onnx",), modules=(RuntimeModule("onnxruntime", "onnxruntime"),),
    pip={"default": ("onnxruntime",)}, float_format="onnx", adapter="OnnxModel",
    description="ONNX Runtime, CPU execution provider"))
register_runtime(Runtime(
    name="litert", suffixes=(".tflite",),
    modules=(RuntimeModule("ai_edge_litert", "ai-edge-litert"), RuntimeModule("tflite_runtime", "tflite-runtime"),
             RuntimeModule("tensorflow", "tensorflow", probe=False)),
    pip={"default": ("ai-edge-litert",)}, float_format="tflite-fp32", adapter="TFLiteModel",
    description="LiteRT (TFLite) interpreter with its default XNNPACK delegate"))
# ExecuTorch: the full `executorch` package (probed through its light `executorch.version`; its
# runtime imports torch) or the torch-free `executorch-numpy-runtime` (numpy only, Python >= 3.12)
register_runtime(Runtime(
    name="executorch", suffixes=(".pte",),
    modules=(RuntimeModule("executorch.version", "executorch"),
             RuntimeModule("executorch_numpy_runtime", "executorch-numpy-runtime")),
    pip={"default": ("executorch",)}, float_format="executorch-fp32", adapter="ExecutorchModel",
    description="ExecuTorch runtime (XNNPACK delegate + portable kernels)"))


def runtime_for(path: str) -> Runtime:
    """The runtime an artifact file needs, looked up by its suffix in the runtime table."""
    name = os.path.basename(path)
    for rt in RUNTIMES.values():
        if name.endswith(rt.suffixes):
            return rt
    known = ", ".join(f"{s} ({rt.name})" for rt in RUNTIMES.values() for s in rt.suffixes)
    raise RunnerError(f"no runtime runs {name!r}: unknown artifact suffix; known: {known}")


def runtime_named(name: str) -> Runtime:
    """A runtime by name, or by the pip name of one of its implementations."""
    if name in RUNTIMES:
        return RUNTIMES[name]
    for rt in RUNTIMES.values():
        if name in rt.distributions():
            return rt
    choices = sorted({*RUNTIMES, *(d for rt in RUNTIMES.values() for d in rt.distributions())})
    raise RunnerError(f"unknown runtime {name!r}; choose from {', '.join(choices)}")


def import_runtime(rt: Runtime, what: str = "run"):
    """(module, distribution name) of the first importable implementation of ``rt``."""
    for m in rt.modules:
        try:
            return importlib.import_module(m.import_name), m.distribution
        except ImportError:
            continue
    raise RunnerError(f"no {rt.name} runtime here to {what} {'/'.join(rt.suffixes)} artifacts; install "
                      f"{' or '.join(rt.distributions())} (`edgegan device setup` does it on a device)")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def onnxruntime_session_options(ort, threads: int):
    """The one set of ORT session options edgegan runs with (host verification and devices)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


class OnnxModel:
    def __init__(self, path: str, threads: int) -> None:
        ort, self.runtime = import_runtime(RUNTIMES["onnxruntime"])
        try:
            self.sess = ort.InferenceSession(path, onnxruntime_session_options(ort, threads),
                                             providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - runtime-specific exception types
            raise RunnerError(f"onnxruntime {ort.__version__} cannot load {os.path.basename(path)}: "
                              f"{_first_line(exc)}") from None
        self.input_name = self.sess.get_inputs()[0].name

    def run(self, x):
        return self.sess.run(None, {self.input_name: x})[0]


class TFLiteModel:
    def __init__(self, path: str, threads: int) -> None:
        mod, self.runtime = import_runtime(RUNTIMES["litert"])
        cls = mod.lite.Interpreter if self.runtime == "tensorflow" else importlib.import_module(
            mod.__name__ + ".interpreter").Interpreter
        try:
            self.interp = cls(model_path=path, num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RunnerError(f"{self.runtime} cannot load {os.path.basename(path)}: {_first_line(exc)}") from None
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def run(self, x):
        d = self.inp
        if d["dtype"] in (np.int8, np.uint8):
            scale, zp = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale + zp), info.min, info.max).astype(d["dtype"])
        self.interp.set_tensor(d["index"], np.ascontiguousarray(x))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if self.out["dtype"] in (np.int8, np.uint8):
            scale, zp = self.out["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y


def pte_header(path: str) -> dict:
    """What a .pte's header says without any ExecuTorch: the flatbuffer file identifier (the
    program schema tag, e.g. "ET12", at bytes 4..8) and, from the extended header ("eh00" at
    bytes 8..12: length, program size, segment base offset, segment data size), the file size the
    exporter wrote. Empty when the file carries no ExecuTorch identifier."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(40)
        actual = os.path.getsize(path)
    except OSError:
        return {}
    if len(head) < 8 or not re.fullmatch(rb"ET\d\d", head[4:8]):
        return {}
    out = {"schema": head[4:8].decode("ascii"), "bytes": actual}
    if head[8:12] == b"eh00" and len(head) >= 32:
        length, program_size, base = struct.unpack_from("<IQQ", head, 12)
        segments = struct.unpack_from("<Q", head, 32)[0] if length >= 32 and len(head) >= 40 else 0
        out["expected_bytes"] = base + segments if segments else program_size
    return out


def _pte_diagnosis(path: str) -> str:
    """Why a runtime may have refused a .pte: truncated, not a .pte, or (intact) a version gap."""
    h = pte_header(path)
    if not h:
        return "the file has no ExecuTorch program identifier (not a .pte)"
    if h.get("expected_bytes") and h["bytes"] < h["expected_bytes"]:
        return f"the file is truncated ({h['bytes']:,} of the {h['expected_bytes']:,} bytes its header names)"
    return (f"the file is a complete ExecuTorch program (schema {h['schema']}): an ExecuTorch version this runtime "
            "cannot read (a mismatch looks like corruption), an op/delegate it lacks, or damaged content; compare "
            "the exporter's version (bundle.json tools) with this runtime's")


class ExecutorchModel:
    """A .pte through the full ``executorch`` runtime (``executorch.runtime``; torch tensors in
    and out) or the torch-free ``executorch-numpy-runtime`` (numpy in and out), first found first.

    Threads: the full runtime's XNNPACK threadpool is process-wide and is resized to ``threads``
    (``_unsafe_reset_threadpool``; safe here because the runner never runs two models at once).
    executorch-numpy-runtime exposes no thread control: its pool has one thread per core the
    library detects, whatever ``threads`` asks."""

    def __init__(self, path: str, threads: int) -> None:
        mod, self.runtime = import_runtime(RUNTIMES["executorch"])
        name = os.path.basename(path)
        try:
            if self.runtime == "executorch":
                self.version = getattr(mod, "__version__", "unknown")
                self._load_full(path, threads)
            else:
                self.version = f"{mod.__version__} (ExecuTorch {getattr(mod, '__et_version__', 'unknown')})"
                self.method = mod.Runtime.get().load_program(path).load_method("forward")
                self._torch = None
        except RunnerError:
            raise
        except Exception as exc:  # noqa: BLE001 - runtime-specific exception types
            raise RunnerError(f"{self.runtime} {self.version} cannot load {name}: {_first_line(exc)}; "
                              f"{_pte_diagnosis(path)}") from None

    def _load_full(self, path: str, threads: int) -> None:
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime, Verification

        # the full runtime's API is torch tensors, and importing it has imported torch; the runner
        # itself never imports torch (it must run where only executorch-numpy-runtime exists)
        torch = sys.modules["torch"]

        if hasattr(portable_lib, "_unsafe_reset_threadpool") and portable_lib._threadpool_get_thread_count() != threads:
            portable_lib._unsafe_reset_threadpool(threads)
        program = Runtime.get().load_program(path, verification=Verification.InternalConsistency)
        self.method = program.load_method("forward")
        if self.method is None:
            raise RunnerError(f"{os.path.basename(path)} has no 'forward' method")
        self._torch = torch

    def run(self, x):
        x = np.ascontiguousarray(x, np.float32)
        try:
            if self._torch is not None:
                # outputs may alias the method's planned memory, which the next run overwrites
                return self.method.execute([self._torch.from_numpy(x)])[0].numpy().copy()
            return self.method([x])[0]
        except Exception as exc:  # noqa: BLE001 - runtime-specific exception types
            raise RunnerError(f"{self.runtime} {self.version} failed running input of shape {list(x.shape)}: "
                              f"{_first_line(exc)}") from None


class Artifact:
    """One artifact plus its I/O convention: inputs/outputs are NCHW float32 outside, the
    model may want NHWC (``io.input_perm`` / ``io.output_perm``) and batch 1."""

    def __init__(self, path: str, fmt: str, io: dict | None = None, threads: int = 1) -> None:
        _need_numpy()
        if not os.path.exists(path):
            raise RunnerError(f"artifact {path} not found on this device")
        self.io = io or {}
        self.spec = runtime_for(path)
        self.path = path
        try:
            self.model = globals()[self.spec.adapter](path, threads)
        except RunnerError as exc:
            made = self.io.get("exported_with")  # the converter's toolchain, when it recorded one
            if made:
                raise RunnerError(f"{exc} (the file was written by {made})") from None
            raise
        self.runtime = self.model.runtime
        self.fmt = fmt

    def prepare(self, x):
        perm = self.io.get("input_perm")
        x = np.asarray(x, np.float32)
        return np.ascontiguousarray(x.transpose(perm)) if perm else x

    def finish(self, y):
        perm = self.io.get("output_perm")
        y = np.asarray(y, np.float32)
        return np.ascontiguousarray(y.transpose(perm)) if perm else y

    def run_one(self, x):
        try:
            y = self.model.run(self.prepare(x))
        except RunnerError:
            raise
        except Exception as exc:  # noqa: BLE001 - each runtime has its own exception types
            said = (str(exc).strip().splitlines() or [""])[-1][:300]
            raise RunnerError(f"{self.runtime} failed running {os.path.basename(self.path)} on input of shape "
                              f"{list(np.shape(x))}: {type(exc).__name__}: {said}") from None
        return self.finish(y)

    def run_all(self, inputs):
        """Outputs for every input, one at a time (batch 1, as on a device)."""
        return np.concatenate([self.run_one(inputs[i : i + 1]) for i in range(len(inputs))])


# ---------------------------------------------------------------------------- timing
def latency_stats(ms: list) -> dict:
    a = np.sort(np.asarray(ms, np.float64))
    trim = int(len(a) * 0.1)
    core = a[trim : len(a) - trim] if len(a) - 2 * trim > 0 else a
    return {
        "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
        "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()), "trimmed_mean": float(core.mean()), "std": float(a.std()),
        "min": float(a[0]), "max": float(a[-1]),
    }


def time_latency(artifact: Artifact, x, warmup: int, runs: int) -> tuple[float, list]:
    """First-inference ms and per-run ms for ``runs`` timed runs after ``warmup`` untimed ones.
    Times the runtime call only (layout conversion done once, outside the timer)."""
    xin = artifact.prepare(x)
    t0 = time.perf_counter_ns()
    artifact.model.run(xin)
    first = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(warmup):
        artifact.model.run(xin)
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        artifact.model.run(xin)
        ms.append((time.perf_counter_ns() - t0) / 1e6)
    return first, ms


# ---------------------------------------------------------------------------- inputs
MAX_INPUT_BYTES = 1 << 30  # 1 GiB: far above any bundle's stored inputs


def load_inputs(path: str) -> "np.ndarray":
    """The job's inputs.npy, checked before numpy allocates: a regular file (no final symlink),
    a numeric (not pickled) dtype, and a header whose shape x itemsize fits both the bytes the
    file holds and MAX_INPUT_BYTES. RunnerError (one line) otherwise."""
    import stat

    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise RunnerError(f"cannot read inputs {name} ({exc.strerror}); re-run profile to push the bundle again") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RunnerError(f"inputs {name} is not a regular file; re-run profile to push the bundle again")
        fmt = np.lib.format
        try:
            major, _minor = fmt.read_magic(fh)
            if major == 1:
                shape, _fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=10000)
            elif major in (2, 3):
                shape, _fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy version {major}")
        except (ValueError, OSError, SyntaxError, TypeError, EOFError) as exc:
            raise RunnerError(f"inputs {name} is not a .npy array ({str(exc).splitlines()[0][:120] if str(exc) else 'bad header'})") from None
        if dtype.hasobject:
            raise RunnerError(f"inputs {name} holds Python objects (a pickled array); the runner reads numeric arrays only")
        count = 1
        for dim in shape:
            count *= int(dim)
        need, have = count * dtype.itemsize, st.st_size - fh.tell()
        if need > MAX_INPUT_BYTES:
            raise RunnerError(f"inputs {name} claims shape {list(shape)} ({need:,} bytes), above the "
                              f"{MAX_INPUT_BYTES:,}-byte limit")
        if need > have:
            raise RunnerError(f"inputs {name} is truncated: its header claims {need:,} bytes of data, the file holds {have:,}")
        if not shape:
            raise RunnerError(f"inputs {name} is a scalar; expected a batch of inputs")
        fh.seek(0)
        try:
            return np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise RunnerError(f"inputs {name} is not a readable .npy array ({str(exc)[:120]})") from None


# ---------------------------------------------------------------------------- memory
def _vmhwm_kb() -> int | None:
    m = re.search(r"^VmHWM:\s+(\d+)", _read("/proc/self/status") or "", re.M)
    return int(m.group(1)) if m else None


def memory_child(job_path: str, mode: str) -> int:
    """In a fresh process: import the runtime (``baseline``) or also load the model and run a
    few inferences (``model``); print VmHWM. The parent adds ru_maxrss from wait4."""
    with open(job_path) as fh:
        job = Job.from_dict(json.load(fh))
    if mode == "model":
        inputs = load_inputs(job.inputs)
        art = Artifact(job.artifact, job.format, job.io, job.threads)
        time_latency(art, inputs[:1], 2, min(job.runs, 10))
    else:
        import_runtime(runtime_for(job.artifact))
    print(json.dumps({"vmhwm_kb": _vmhwm_kb()}))
    return 0


def _spawn_memory_child(job_path: str, mode: str, timeout: float) -> dict:
    """Peak memory of a fresh child (spawned before this process loads anything big, so the
    child's ru_maxrss does not inherit our high-water mark)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--memory-child", job_path, mode],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.time() + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RunnerError(f"memory measurement ({mode}) took over {timeout:.0f} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise RunnerError(f"memory child ({mode}) exited {proc.returncode}: {tail[0][:300]}")
        data = json.loads(out.read().decode().strip().splitlines()[-1])
    return {"vmhwm_mb": round(data["vmhwm_kb"] / 1024, 2) if data.get("vmhwm_kb") else None,
            "ru_maxrss_mb": round(ru.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024), 2)}


def measure_memory(job_path: str, timeout: float = 600.0) -> dict:
    """Peak resident memory of a fresh process that loads the model and runs it.
    method: VmHWM (/proc/self/status of that process) or ru_maxrss (wait4) natively;
    under an emulator the emulator's own RSS is included, so it becomes a range."""
    base = _spawn_memory_child(job_path, "baseline", timeout)
    model = _spawn_memory_child(job_path, "model", timeout)
    key = "vmhwm_mb" if model["vmhwm_mb"] is not None and base["vmhwm_mb"] is not None else "ru_maxrss_mb"
    peak, idle = model[key], base[key]
    out = {"baseline_mb": idle, "model_mb": round(max(peak - idle, 0.0), 2), "children": {"baseline": base, "model": model}}
    emu = emulator()
    if emu:
        out.update(peak_memory_mb=None, method="emulated-range", peak_memory_range_mb=[out["model_mb"], peak],
                   note=f"under {emu} the process RSS includes the emulator: range = [model's increment over an "
                        "idle runtime process, whole emulated process]; not a device measurement")
    else:
        out.update(peak_memory_mb=peak, method="VmHWM" if key == "vmhwm_mb" else "ru_maxrss",
                   peak_memory_range_mb=None)
    return out


# ---------------------------------------------------------------------------- contracts
class ExitCode(enum.IntEnum):
    """The runner's exit codes (the host maps them to row reasons)."""

    OK = 0
    USAGE = 2          # wrong command line or a job file that is not a valid Job
    RUNNER_ERROR = 3   # one line on stderr says what failed (missing runtime, bad artifact, timeout)
    OUTPUT_ERROR = 4   # disk full or unwritable output directory on the device


def _typed(cls, data, where: str):
    """Build dataclass ``cls`` from an untrusted dict: unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise RunnerError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RunnerError(f"{where}: unknown field(s) {', '.join(unknown)} (runner version {RUNNER_VERSION})")
    kwargs = {}
    for name, value in data.items():
        want = cls.TYPES.get(name)
        if want is not None and value is not None and not (isinstance(value, want) and not
                                                           (isinstance(value, bool) and bool not in _as_tuple(want))):
            raise RunnerError(f"{where}: field {name!r} must be {_type_names(want)}, got {type(value).__name__}")
        kwargs[name] = value
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RunnerError(f"{where}: missing field(s) {', '.join(missing)}")
    return cls(**kwargs)


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _type_names(t) -> str:
    return " or ".join(x.__name__ for x in _as_tuple(t))


@dataclasses.dataclass
class PowerSettings:
    probe: str = "auto"
    baseline_s: float = 1.0
    min_s: float = 1.0
    interval_s: float = 0.05
    vcgencmd: str | None = None

    TYPES = {"probe": str, "baseline_s": (int, float), "min_s": (int, float), "interval_s": (int, float),
             "vcgencmd": str}


@dataclasses.dataclass
class Job:
    """job.json: what the host asks the runner to do with one artifact (paths are on the device)."""

    artifact: str
    inputs: str
    out: str
    format: str = ""
    io: dict = dataclasses.field(default_factory=dict)
    warmup: int = 10
    runs: int = 50
    threads: int = 1
    memory: bool = True
    memory_timeout_s: float = 600.0
    timeout_s: float | None = None
    power: PowerSettings = dataclasses.field(default_factory=PowerSettings)
    sysfs_root: str = "/"
    artifact_sha256: str | None = None  # when given, the runner refuses a file with another hash

    TYPES = {"artifact": str, "inputs": str, "out": str, "format": str, "io": dict, "warmup": int, "runs": int,
             "threads": int, "memory": bool, "memory_timeout_s": (int, float), "timeout_s": (int, float),
             "power": dict, "sysfs_root": str, "artifact_sha256": str}
    MAX_THREADS = 256

    @classmethod
    def from_dict(cls, data) -> "Job":
        job = _typed(cls, data, "job")
        job.power = _typed(PowerSettings, job.power or {}, "job.power") if not isinstance(job.power, PowerSettings) else job.power
        if job.runs < 1 or job.warmup < 0 or not 1 <= job.threads <= cls.MAX_THREADS:
            raise RunnerError(f"job: runs >= 1, warmup >= 0 and 1 <= threads <= {cls.MAX_THREADS} required "
                              f"(got {job.runs}, {job.warmup}, {job.threads})")
        for key in ("input_perm", "output_perm"):
            perm = job.io.get(key)
            if perm is not None and (not isinstance(perm, list) or sorted(perm) != list(range(len(perm)))):
                raise RunnerError(f"job: io.{key} must be a permutation list, got {perm!r}")
        return job

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    """results.json: one artifact measured on this device. Written last and atomically, with
    ``complete`` true; the host treats it as untrusted and re-validates it with ``from_dict``."""

    format: str
    runtime: str
    artifact: str
    threads: int
    warmup: int
    runs: int
    model_load_ms: float
    first_inference_ms: float
    latency_ms: dict
    samples: str
    samples_shape: list
    samples_sha256: str
    runner_version: int = RUNNER_VERSION
    implementation: str | None = None  # which module ran it (e.g. ai-edge-litert for the litert runtime)
    artifact_sha256: str | None = None
    timer: str = "perf_counter_ns"
    memory: dict | None = None
    peak_memory_mb: float | None = None
    peak_memory_range_mb: list | None = None
    memory_method: str | None = None
    power: dict | None = None
    thermal: dict | None = None
    versions: dict = dataclasses.field(default_factory=dict)
    emulator: str | None = None
    complete: bool = False

    TYPES = {"format": str, "runtime": str, "artifact": str, "threads": int, "warmup": int, "runs": int,
             "model_load_ms": (int, float), "first_inference_ms": (int, float), "latency_ms": dict,
             "samples": str, "samples_shape": list, "samples_sha256": str, "runner_version": int,
             "implementation": str,
             "artifact_sha256": str, "timer": str, "memory": dict, "peak_memory_mb": (int, float),
             "peak_memory_range_mb": list, "memory_method": str, "power": dict, "thermal": dict,
             "versions": dict, "emulator": str, "complete": bool}
    LATENCY_KEYS = ("p50", "p90", "p95", "p99", "mean", "trimmed_mean", "std", "min", "max")

    @classmethod
    def from_dict(cls, data) -> "Result":
        res = _typed(cls, data, "results.json")
        bad = [k for k in cls.LATENCY_KEYS if not isinstance(res.latency_ms.get(k), (int, float))
               or isinstance(res.latency_ms.get(k), bool)]
        if bad:
            raise RunnerError(f"results.json: latency_ms.{bad[0]} is missing or not a number")
        if os.path.basename(res.samples) != res.samples or res.samples in ("", ".", ".."):
            raise RunnerError(f"results.json: samples {res.samples!r} must be a bare file name")
        return res

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------- the job
def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _arm_deadline(seconds) -> None:
    """Stop this runner after ``seconds`` (a host-side timeout cannot kill a process on a board
    reached over SSH, so the runner enforces its own)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        return

    def expired(signum, frame):
        raise RunnerError(f"the job ran over its {float(seconds):.0f} s limit on the device; raise --timeout or use fewer --runs")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, int(float(seconds) + 0.999)))


def file_sha256(path) -> str:
    """sha256 of a file, read in 1 MiB chunks (the host's bundle code uses this one too)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_job(job, job_path: str | None = None) -> dict:
    """Execute one job (a :class:`Job` or its dict) and write its outputs; returns the results
    record (``Result.to_dict()``)."""
    _need_numpy()
    job = job if isinstance(job, Job) else Job.from_dict(job)
    out_dir = job.out
    os.makedirs(out_dir, exist_ok=True)
    for stale in ("results.json", "samples.npy"):  # a rerun must never leave an old result behind
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    if not os.path.isfile(job.artifact):
        raise RunnerError(f"artifact {job.artifact} not found on this device")
    artifact_sha256 = file_sha256(job.artifact)
    if job.artifact_sha256 and artifact_sha256 != job.artifact_sha256:
        raise RunnerError(f"artifact {os.path.basename(job.artifact)} on the device has sha256 {artifact_sha256[:12]}…, "
                          f"not the {job.artifact_sha256[:12]}… the host sent: its cache was modified; delete it and rerun")
    warmup, runs, threads = job.warmup, job.runs, job.threads
    sysfs = job.sysfs_root
    thermal_start = thermal_zones(sysfs)
    inputs = load_inputs(job.inputs)  # checked before anything (the memory children load it too)
    memory = None
    if job.memory:
        if job_path is None:
            job_path = os.path.join(out_dir, "job.json")
            _write_atomic(job_path, json.dumps(job.to_dict()).encode())
        memory = measure_memory(job_path, float(job.memory_timeout_s))
    t0 = time.perf_counter_ns()
    art = Artifact(job.artifact, job.format, job.io, threads)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    first, ms = time_latency(art, inputs[:1], warmup, 0)  # first inference + warmup; timed runs below
    xin = art.prepare(inputs[:1])

    def work(deadline):
        for _ in range(runs):
            t = time.perf_counter_ns()
            art.model.run(xin)
            ms.append((time.perf_counter_ns() - t) / 1e6)
        extra = 0
        while deadline is not None and time.perf_counter() < deadline:  # long enough for the power probe
            art.model.run(xin)
            extra += 1
        return (extra, runs + extra)

    pcfg = job.power
    if pcfg.probe == "none":
        probes, why = [], {"none": "power measurement disabled (--power none)"}
    else:
        probes, why = available_probes(sysfs, pcfg.probe, vcgencmd=pcfg.vcgencmd)
    power, _ = measure_power(probes[0] if probes else None, why, work, float(pcfg.baseline_s),
                             float(pcfg.interval_s), float(pcfg.min_s))
    thermal_end = thermal_zones(sysfs)
    samples = art.run_all(inputs)
    import io

    bio = io.BytesIO()
    np.save(bio, np.ascontiguousarray(samples, np.float32), allow_pickle=False)
    buf = bio.getvalue()
    _write_atomic(os.path.join(out_dir, "samples.npy"), buf)
    result = Result(
        format=art.fmt, runtime=art.spec.name, implementation=art.runtime, artifact=os.path.basename(job.artifact),
        artifact_sha256=artifact_sha256, threads=threads,
        warmup=warmup, runs=len(ms), model_load_ms=load_ms,
        first_inference_ms=first, latency_ms=latency_stats(ms),
        memory=memory,
        peak_memory_mb=memory["peak_memory_mb"] if memory else None,
        peak_memory_range_mb=memory["peak_memory_range_mb"] if memory else None,
        memory_method=memory["method"] if memory else None,
        power=power,
        thermal={"start_c": max(thermal_start.values()) if thermal_start else None,
                 "end_c": max(thermal_end.values()) if thermal_end else None,
                 "zones_start": thermal_start, "zones_end": thermal_end},
        versions=runtime_versions(only=art.runtime),
        emulator=emulator(),
        samples="samples.npy", samples_shape=list(samples.shape),
        samples_sha256=hashlib.sha256(buf).hexdigest(),
        complete=True,
    ).to_dict()
    _write_atomic(os.path.join(out_dir, "results.json"), json.dumps(result, indent=2).encode())
    return result


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv == ["--info"]:
            print(json.dumps(device_info(), indent=2))
            return ExitCode.OK
        if len(argv) == 3 and argv[0] == "--memory-child":
            _need_numpy()
            return memory_child(argv[1], argv[2])
        if len(argv) != 1 or argv[0].startswith("-"):
            print("usage: edgegan_runner.py JOB.json | --info", file=sys.stderr)
            return ExitCode.USAGE
        _need_numpy()
        try:
            with open(argv[0]) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise RunnerError(f"cannot read job file {argv[0]} ({getattr(exc, 'strerror', None) or exc})") from None
        try:
            job = Job.from_dict(data)
        except RunnerError as exc:
            print(f"edgegan-runner: error: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        _arm_deadline(job.timeout_s)
        run_job(job, os.path.abspath(argv[0]))
    except RunnerError as exc:
        print(f"edgegan-runner: error: {exc}", file=sys.stderr)
        return ExitCode.RUNNER_ERROR
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"edgegan-runner: error: disk full on the device writing {exc.filename or 'results'}; "
                  "free space or use a workdir on a bigger disk", file=sys.stderr)
            return ExitCode.OUTPUT_ERROR
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            print(f"edgegan-runner: error: cannot write {exc.filename} ({exc.strerror}); use a writable workdir", file=sys.stderr)
            return ExitCode.OUTPUT_ERROR
        raise
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(int(main()))
