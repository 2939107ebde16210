"""The ``adb://SERIAL`` target: an Android phone (or any device running adbd) through the
Android Debug Bridge client, run as a subprocess with argv lists.

Why the ``adb`` client and not a Python adb library: the client is what every Android user
already has (platform-tools, Debian ``adb``), it talks to the one adb server that owns the USB
devices and keys (a second, in-process implementation would fight it for the USB interface and
need its own key), and it honours ``$ADB_SERVER_SOCKET`` / ``$ANDROID_ADB_SERVER_PORT`` so a
private server works unchanged. ``$EDGEGAN_ADB`` names another client binary.

Exit status: adbd before Android 7 (no ``shell_v2``) does not return the command's exit code,
and when it does, a lost connection and a failing command look alike. So every command runs as
``<argv quoted with shlex.join>; r=$?; echo; echo __edgegan_rc=$r`` and the status is parsed
from that marker: no marker means the command did not finish (device gone -> a
:class:`DeviceConnectionError`, never a silently truncated result). Files are pushed to
``NAME.part`` and renamed, so a half-pushed file never has the real name.

Device info without python (for phones): :meth:`AdbTransport.device_info` reads getprop
(model, SoC, ABI, Android version) when present, else uname / /proc/cpuinfo / os-release as on
a Linux board; :meth:`thermal_zones` and :meth:`battery_power_w` read sysfs over the shell.
"""
from __future__ import annotations

import logging
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from .errors import DeviceConnectionError, DeviceDiskFullError, DeviceError, DeviceTimeoutError
from .transport import BaseTransport, RunResult, TargetOptions, backoff, confined_path

log = logging.getLogger(__name__)

ADB_ENV = "EDGEGAN_ADB"
RC_MARKER = "__edgegan_rc="
_MARKER_TAIL = re.compile(r"\r?\n" + RC_MARKER + r"(-?\d+)\r?\n?\Z")
# a USB serial, an emulator name, host:port of adb over TCP, or an mDNS service name
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_TCP_SERIAL = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}")
# what the adb client prints when the device (not the command) is the problem
_GONE = ("not found", "no devices", "device offline", "closed", "protocol fault", "connection reset",
         "cannot connect", "failed to connect", "no emulators")
ANDROID_WORKDIR = "/data/local/tmp/edgegan"  # the shell user's one writable place on a stock phone
ANDROID_PROPS = ("ro.product.model", "ro.product.manufacturer", "ro.soc.manufacturer", "ro.soc.model",
                 "ro.board.platform", "ro.hardware", "ro.product.cpu.abi", "ro.build.version.release",
                 "ro.build.version.sdk", "ro.build.fingerprint")
_PROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]\s*$")
# one constant script (no caller data in it): "<zone> <type> <temp>" per thermal zone
THERMAL_SCRIPT = ('for z in /sys/class/thermal/thermal_zone*; do [ -r "$z/temp" ] || continue; '
                  't=$(cat "$z/temp" 2>/dev/null) || continue; echo "${z##*/} $(cat "$z/type" 2>/dev/null) $t"; done')


def parse_adb_url(url: str) -> str:
    """``adb://SERIAL`` -> SERIAL (as ``adb devices`` prints it: USB serial, emulator-5554,
    host:port for adb over TCP)."""
    if not url.startswith("adb://"):
        raise ConfigError(f"bad adb target {url!r}; use adb://SERIAL (the serial `adb devices` prints)")
    serial = url[len("adb://"):].rstrip("/")
    if not SERIAL.fullmatch(serial):
        raise ConfigError(f"bad adb serial {serial!r} in {url!r}; use adb://SERIAL as `adb devices` prints it "
                          "(letters, digits, . _ : @ -)")
    return serial


def shell_command(argv: list) -> str:
    """The one string adb's shell runs for ``argv``: every argument quoted, then the exit-status marker."""
    return f"{shlex.join([str(a) for a in argv])}; r=$?; echo; echo {RC_MARKER}$r"


def split_marker(stdout: str) -> tuple[Optional[int], str]:
    """(exit code, stdout without the marker) — exit code None when the marker is missing
    (the command did not finish)."""
    m = _MARKER_TAIL.search(stdout)
    if not m:
        return None, stdout
    return int(m.group(1)), stdout[:m.start()]


def parse_getprop(text: str) -> dict:
    """`getprop` output (``[key]: [value]`` lines) -> {key: value}, empty values left out."""
    props = {}
    for line in text.splitlines():
        m = _PROP_LINE.match(line)
        if m and m.group(2).strip():
            props[m.group(1)] = m.group(2).strip()
    return props


def parse_thermal(text: str) -> dict:
    """THERMAL_SCRIPT output -> {zone type: °C}. The ABI says millidegrees; a few vendor zones
    report whole degrees, so a magnitude under 1000 is taken as °C."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[-1].lstrip("-").isdigit():
            continue
        zone, raw = parts[0], int(parts[-1])
        kind = " ".join(parts[1:-1]) or zone
        key = kind if kind not in out else f"{kind}:{zone}"
        out[key] = raw / 1000.0 if abs(raw) >= 1000 else float(raw)
    return out


def android_summary(props: dict) -> dict:
    """DeviceInfo fields from Android properties (empty when the device is not Android)."""
    release = props.get("ro.build.version.release")
    if not release:
        return {}
    sdk = props.get("ro.build.version.sdk")
    soc = " ".join(x for x in (props.get("ro.soc.manufacturer"), props.get("ro.soc.model")) if x) or \
        props.get("ro.board.platform") or props.get("ro.hardware") or ""
    abi = props.get("ro.product.cpu.abi", "")
    maker, model = props.get("ro.product.manufacturer", ""), props.get("ro.product.model", "")
    out = {"os": f"Android {release}" + (f" (API {sdk})" if sdk else "")}
    if soc or abi:
        out["soc"] = soc
        out["abi"] = abi
    if model:
        out["hostname"] = f"{maker} {model}".strip() if maker and not model.lower().startswith(maker.lower()) else model
    return out


class AdbTransport(BaseTransport):
    """``adb -s SERIAL shell|push|pull`` as subprocesses; the device must show as ``device``
    in ``adb devices`` (an ``host:port`` serial is ``adb connect``-ed when it is not listed)."""

    def __init__(self, url: str, options: TargetOptions | None = None) -> None:
        self.options = options or TargetOptions()
        self.serial = parse_adb_url(url)
        self.target = f"adb://{self.serial}"
        self.adb = shutil.which(os.environ.get(ADB_ENV) or "adb")
        if not self.adb:
            raise DeviceError(f"no adb client on this host for {self.target}: install it (Debian/Ubuntu: apt install "
                              f"adb; else Android platform-tools) or set ${ADB_ENV} to its path")
        self._home: Optional[str] = None
        self._props: Optional[dict] = None
        self.connect()

    # ------------------------------------------------------------------ the local adb client
    def _client(self, args: list, timeout: float, stdin: bytes | None = None, serial: bool = True,
                what: str = "") -> subprocess.CompletedProcess:
        argv = [self.adb, *(["-s", self.serial] if serial else []), *[str(a) for a in args]]
        try:
            return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceTimeoutError(f"{what or ' '.join(map(str, args[:2]))} ran over {timeout:.0f} s on {self.target} "
                                     "and was abandoned; raise --timeout or use fewer --runs") from None
        except OSError as exc:
            raise DeviceError(f"cannot run the adb client {self.adb} ({exc.strerror}); reinstall adb or set "
                              f"${ADB_ENV}") from None

    def state(self) -> str:
        """The device's state as the adb server sees it: device, offline, unauthorized, ... or
        'missing' (not attached / not known to the server)."""
        proc = self._client(["get-state"], timeout=max(self.options.connect_timeout_s, 5.0), what="adb get-state")
        out = proc.stdout.decode(errors="replace").strip()
        if proc.returncode == 0 and out:
            return out.split()[-1]
        err = proc.stderr.decode(errors="replace").lower()
        for state in ("unauthorized", "offline", "recovery", "sideload", "bootloader"):
            if state in err:
                return state
        if "cannot connect to daemon" in err or "failed to start daemon" in err:
            raise DeviceConnectionError(f"cannot reach the adb server for {self.target} "
                                        f"({proc.stderr.decode(errors='replace').strip()[:200]}); start it with "
                                        "`adb start-server` or check $ADB_SERVER_SOCKET")
        return "missing"

    def connect(self) -> None:
        """Wait (retries with backoff) for the device to be in state ``device``."""
        last = "missing"
        for attempt in range(self.options.retries + 1):
            last = self.state()
            if last == "device":
                return
            if last == "unauthorized":
                raise DeviceConnectionError(f"{self.target} is unauthorized: unlock the phone and accept the USB "
                                            "debugging prompt for this computer, then retry")
            if last == "missing" and _TCP_SERIAL.fullmatch(self.serial):
                proc = self._client(["connect", self.serial], timeout=max(self.options.connect_timeout_s, 5.0),
                                    serial=False, what="adb connect")
                log.info("adb connect %s: %s", self.serial, proc.stdout.decode(errors="replace").strip())
                if self.state() == "device":
                    return
            if attempt < self.options.retries:
                backoff(attempt)
        hint = ("check `adb devices`, the cable / Wi-Fi, and that USB debugging is on" if last == "missing"
                else "reconnect the cable or run `adb reconnect`")
        raise DeviceConnectionError(f"{self.target} is not available (adb state: {last}); {hint}")

    def _gone(self, text: str) -> bool:
        low = text.lower()
        if any(g in low for g in _GONE):
            return True
        try:
            return self.state() != "device"
        except DeviceError:
            return True

    # ------------------------------------------------------------------ commands
    def run(self, argv: list, timeout: float = 600.0, stdin: bytes | None = None) -> RunResult:
        argv = [str(a) for a in argv]
        t0 = time.monotonic()
        proc = self._client(["shell", shell_command(argv)], timeout=timeout, stdin=stdin,
                            what=f"`{shlex.join(argv[:3])}`")
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        code, out = split_marker(out)
        if code is None:
            if self._gone(err + out):
                raise DeviceConnectionError(f"connection to {self.target} lost while running `{shlex.join(argv[:3])}` "
                                            f"({(err or out).strip()[-200:] or 'adb exited ' + str(proc.returncode)}); "
                                            "its result is discarded")
            code = proc.returncode if proc.returncode not in (0, None) else 255
            err += "\n(the device's shell ended without an exit status: killed by a signal?)"
        return RunResult(argv, code, out, err, time.monotonic() - t0)

    # ------------------------------------------------------------------ files
    def _file_failure(self, what: str, proc: subprocess.CompletedProcess) -> str:
        text = (proc.stderr + proc.stdout).decode(errors="replace").strip()
        if self._gone(text):
            raise DeviceConnectionError(f"connection to {self.target} lost during {what} ({text[-200:]})")
        return text

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        part = remote + ".part"
        size = local.stat().st_size
        proc = self._client(["push", str(local), part], timeout=max(120.0, size / 1e6), what=f"push {local.name}")
        if proc.returncode != 0:
            text = self._file_failure(f"push {local.name}", proc)
            self.run(["rm", "-f", part], timeout=60)
            if "no space" in text.lower():
                raise self.disk_full_error(remote, size) or DeviceDiskFullError(
                    f"disk full on {self.target} writing {remote}; free space or pass --workdir on a bigger disk")
            raise DeviceError(f"cannot write {remote} on {self.target} ({text[-200:]}); check --workdir is writable")
        self.checked(["mv", "-f", part, remote], f"rename {posixpath.basename(part)}", timeout=60)

    def pull(self, remote: str, local_dir: Path, name: str | None = None) -> Path:
        dest = confined_path(Path(local_dir), posixpath.basename(remote) if name is None else name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name("." + dest.name + ".part")
        proc = self._client(["pull", remote, str(part)], timeout=600, what=f"pull {posixpath.basename(remote)}")
        if proc.returncode != 0:
            part.unlink(missing_ok=True)
            text = self._file_failure(f"pull {posixpath.basename(remote)}", proc)
            if "no such file" in text.lower() or "does not exist" in text.lower():
                raise DeviceError(f"{remote} does not exist on {self.target}; the runner did not write it")
            raise DeviceError(f"cannot pull {remote} from {self.target} ({text[-200:]})")
        os.replace(part, dest)
        return dest

    def size(self, remote: str) -> Optional[int]:
        res = self.run(["stat", "-L", "-c", "%s", remote], timeout=60)
        text = res.stdout.strip()
        return int(text) if res.exit_code == 0 and text.isdigit() else None

    # ------------------------------------------------------------------ where things go
    def describe_device(self, info) -> None:
        """Fill ``info`` with what Android's properties say (model, SoC, ABI, version) where present."""
        apply_android(info, self.properties())

    def properties(self) -> dict:
        """Android system properties (getprop); {} on a device without getprop (Linux adbd)."""
        if self._props is None:
            res = self.run(["getprop"], timeout=60)
            self._props = parse_getprop(res.stdout) if res.exit_code == 0 else {}
        return self._props

    def is_android(self) -> bool:
        return "ro.build.version.release" in self.properties()

    def home(self) -> str:
        if self._home is None:
            res = self.run(["sh", "-c", 'echo "$HOME"'], timeout=60).check("echo $HOME")
            self._home = res.stdout.strip() or "/"
        return self._home

    def default_workdir(self) -> str:
        return ANDROID_WORKDIR if self.is_android() else posixpath.join(self.home(), ".edgegan")

    def default_python(self) -> str:
        return "python3"

    def close(self) -> None:
        pass  # the adb server keeps the device; nothing to close per session

    # ------------------------------------------------------------------ device info without python
    def thermal_zones(self) -> dict:
        """{zone type: °C} of the device's thermal zones (empty if none are readable)."""
        res = self.run(["sh", "-c", THERMAL_SCRIPT], timeout=60)
        return parse_thermal(res.stdout) if res.exit_code == 0 else {}

    def battery_power_w(self, supply: str = "battery") -> float:
        """Battery power now (W) from power_supply/<supply>/{current_now, voltage_now}, with the
        runner's unit/sign rules. Only meaningful unplugged: a Charging/Full status is refused."""
        from .power import android_battery_watts

        d = f"/sys/class/power_supply/{supply}"
        res = self.run(["cat", f"{d}/current_now", f"{d}/voltage_now", f"{d}/status"], timeout=30)
        lines = res.stdout.split()
        if len(lines) < 2:
            raise DeviceError(f"no readable {d}/current_now + voltage_now on {self.target} "
                              f"({stderr_or(res)}); the android-battery probe is unavailable")
        if len(lines) > 2 and lines[2].lower() in ("charging", "full"):
            raise DeviceError(f"battery status on {self.target} is {lines[2]!r}: unplug the charger (adb over "
                              "Wi-Fi: adb tcpip 5555; adb connect PHONE_IP) to measure")
        from ..runner.edgegan_runner import RunnerError

        try:
            return android_battery_watts(lines[0], lines[1])
        except RunnerError as exc:
            raise DeviceError(f"{self.target}: {exc}") from None

    def device_info(self):
        """DeviceInfo read over the shell (no python needed): getprop where present, else uname,
        /proc/cpuinfo, /proc/meminfo and os-release as the runner reads them on a Linux board."""
        from ..runner.edgegan_runner import cpu_model
        from .session import DeviceInfo

        uname = self.run(["uname", "-m", "-r", "-n"], timeout=60).check("uname").stdout.split()
        node, release, machine = (uname + ["", "", ""])[:3]
        cpuinfo = self.run(["cat", "/proc/cpuinfo"], timeout=60).stdout
        mem_kb = None
        for line in self.run(["cat", "/proc/meminfo"], timeout=60).stdout.splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        os_name = "Linux"
        for line in self.run(["cat", "/etc/os-release"], timeout=60).stdout.splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
        info = DeviceInfo(arch=machine, cpu=cpu_model(cpuinfo), cores=cpuinfo.count("processor\t") or
                          cpuinfo.count("processor ") or None, memory_mb=round(mem_kb / 1024, 1) if mem_kb else None,
                          os=os_name, kernel=release, hostname=node, thermal_zones=len(self.thermal_zones()),
                          target=self.target)
        apply_android(info, self.properties())
        return info


def apply_android(info, props: dict):
    """Fold Android properties into a DeviceInfo (model as the device name, SoC + ABI into cpu,
    Android version as os); a non-Android device is left as the runner described it."""
    andr = android_summary(props)
    if not andr:
        return info
    info.os = andr["os"]
    if andr.get("hostname"):
        info.hostname = andr["hostname"]
    if andr.get("soc") or andr.get("abi"):
        cpu = f"{andr['soc']}: {info.cpu}" if andr.get("soc") and info.cpu else andr.get("soc") or info.cpu
        info.cpu = f"{cpu} [{andr['abi']}]" if andr.get("abi") else cpu
    return info


def stderr_or(res: RunResult) -> str:
    return (res.stderr or res.stdout).strip()[-200:] or f"exit {res.exit_code}"
