"""The adb:// transport on the host: URL parsing, the shell command + exit-status marker run by a
real POSIX shell, Android property / thermal parsing in the tools' real output formats, and a
real adb server (Debian's adb client) with no such device attached. The same transport against
a real adbd (push / pull / shell / a device vanishing mid-run) is device_tests/test_adb.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from edgegan.devices import adb
from edgegan.devices.errors import DeviceConnectionError, DeviceError
from edgegan.devices.session import DeviceInfo
from edgegan.devices.targets import TARGETS, normalize_target, open_target, scheme_of
from edgegan.devices.transport import TargetOptions
from edgegan.errors import ConfigError

# `adb shell getprop` on a Pixel 7 (Android 14), abridged; the format is `[key]: [value]`
GETPROP = """\
[dalvik.vm.heapsize]: [576m]
[persist.sys.timezone]: [Europe/Berlin]
[ro.board.platform]: [gs201]
[ro.build.fingerprint]: [google/panther/panther:14/UQ1A.240205.004/11269751:user/release-keys]
[ro.build.version.release]: [14]
[ro.build.version.sdk]: [34]
[ro.hardware]: [panther]
[ro.product.cpu.abi]: [arm64-v8a]
[ro.product.manufacturer]: [Google]
[ro.product.model]: [Pixel 7]
[ro.soc.manufacturer]: [Google]
[ro.soc.model]: [GS201]
[ro.vendor.empty]: []
"""


@pytest.mark.parametrize("url, serial", [("adb://R58M12ABCDE", "R58M12ABCDE"), ("adb://emulator-5554", "emulator-5554"),
                                         ("adb://192.168.1.20:5555", "192.168.1.20:5555"),
                                         ("adb://adb-R58M-AbC._adb-tls-connect._tcp", "adb-R58M-AbC._adb-tls-connect._tcp")])
def test_adb_urls(url, serial):
    assert adb.parse_adb_url(url) == serial
    assert normalize_target(url) == url and scheme_of(url) == "adb"


@pytest.mark.parametrize("url", ["adb://", "adb://a b", "adb://x;rm -rf /", "adb://$(id)", "ssh://x"])
def test_bad_adb_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="adb"):
        adb.parse_adb_url(url)


def test_adb_is_a_registered_target_scheme():
    assert TARGETS.get("adb").__name__ == "_adb"


HOSTILE = ["it's", 'a "quoted" word', "$(touch /tmp/edgegan-pwned)", "`id`", "semi;colon", "new\nline", "*", "", "-n"]


def test_shell_command_quotes_every_argument_for_a_real_shell(tmp_path):
    """What adbd's `sh -c` gets: argv comes back exactly, nothing is expanded or executed."""
    cmd = adb.shell_command(["printf", r"%s\0", *HOSTILE])
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, cwd=tmp_path)
    code, out = adb.split_marker(proc.stdout.decode())
    assert code == 0
    assert out.split("\0")[:-1] == HOSTILE
    assert not os.path.exists("/tmp/edgegan-pwned") and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script, code, stdout", [
    ("exit 3", 3, ""), ("printf 'no newline'", 0, "no newline"), ("echo two; echo lines", 0, "two\nlines\n"),
    ("echo out; echo err >&2; false", 1, "out\n"), ("kill -9 $$", 137, ""),
])
def test_exit_status_comes_from_the_marker(script, code, stdout):
    proc = subprocess.run(["sh", "-c", adb.shell_command(["sh", "-c", script])], capture_output=True)
    assert adb.split_marker(proc.stdout.decode()) == (code, stdout)


def test_missing_marker_means_the_command_did_not_finish():
    assert adb.split_marker("partial output\n") == (None, "partial output\n")
    # a legacy adbd (no shell_v2) runs commands on a pty: \r\n line ends
    assert adb.split_marker("ok\r\n\r\n__edgegan_rc=2\r\n") == (2, "ok\r\n")


def test_getprop_and_android_device_info():
    props = adb.parse_getprop(GETPROP)
    assert props["ro.product.model"] == "Pixel 7" and "ro.vendor.empty" not in props
    info = DeviceInfo(arch="aarch64", cpu="Cortex-A55 + Cortex-A78 + Cortex-X1", os="Linux", hostname="localhost")
    adb.apply_android(info, props)
    assert info.os == "Android 14 (API 34)"
    assert info.hostname == "Google Pixel 7"
    assert info.cpu == "Google GS201: Cortex-A55 + Cortex-A78 + Cortex-X1 [arm64-v8a]"


def test_a_linux_adbd_keeps_what_the_runner_reported():
    info = DeviceInfo(arch="aarch64", cpu="Cortex-A76", os="Debian GNU/Linux 12 (bookworm)", hostname="board")
    adb.apply_android(info, adb.parse_getprop(""))
    assert (info.os, info.hostname, info.cpu) == ("Debian GNU/Linux 12 (bookworm)", "board", "Cortex-A76")


def test_thermal_zones_in_millidegrees_and_vendor_degrees():
    text = "thermal_zone0 cpu-thermal 48312\nthermal_zone1 battery 31\nthermal_zone2 cpu-thermal 51000\n" \
           "thermal_zone3 skin-therm -\n"
    assert adb.parse_thermal(text) == {"cpu-thermal": 48.312, "battery": 31.0, "cpu-thermal:thermal_zone2": 51.0}


def test_thermal_script_reads_a_sysfs_layout(tmp_path):
    """The constant thermal script, run by a real shell over a tree in the kernel's layout."""
    for i, (kind, temp) in enumerate([("soc_therm", "44500"), ("battery", "29800")]):
        (tmp_path / f"thermal_zone{i}").mkdir()
        (tmp_path / f"thermal_zone{i}" / "type").write_text(kind + "\n")
        (tmp_path / f"thermal_zone{i}" / "temp").write_text(temp + "\n")
    script = adb.THERMAL_SCRIPT.replace("/sys/class/thermal", str(tmp_path))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert adb.parse_thermal(out) == {"soc_therm": 44.5, "battery": 29.8}


# ---------------------------------------------------------------------------- a real adb server
needs_adb = pytest.mark.skipif(shutil.which("adb") is None, reason="no adb client (make host-packages installs it)")


@pytest.fixture
def adb_server(tmp_path, monkeypatch):
    """A private adb server (own unix socket, own key dir) with no device attached."""
    sock = tmp_path / "adb.sock"
    spec = f"localfilesystem:{sock}"
    proc = subprocess.Popen(["adb", "-L", spec, "server", "nodaemon"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(tmp_path)})
    deadline = time.monotonic() + 15
    while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    monkeypatch.setenv("ADB_SERVER_SOCKET", spec)
    yield spec
    proc.kill()
    proc.wait()


@needs_adb
def test_a_serial_the_server_does_not_know_is_a_connection_error(adb_server):
    with pytest.raises(DeviceConnectionError, match=r"adb://R58M0NOSUCH is not available \(adb state: missing\)"):
        open_target("adb://R58M0NOSUCH", TargetOptions(retries=0))


@needs_adb
def test_a_tcp_serial_nobody_listens_on_is_a_connection_error(adb_server):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(DeviceConnectionError, match="not available"):
        open_target(f"adb://127.0.0.1:{port}", TargetOptions(retries=1, connect_timeout_s=5))
    assert time.monotonic() - t0 < 30


def test_no_adb_client_is_a_one_line_device_error(monkeypatch, tmp_path):
    monkeypatch.setenv(adb.ADB_ENV, str(tmp_path / "no-adb"))
    with pytest.raises(DeviceError, match="no adb client on this host.*apt install adb"):
        open_target("adb://emulator-5554")
