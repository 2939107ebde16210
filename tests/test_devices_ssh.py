"""The SSH transport against a REAL OpenSSH sshd on 127.0.0.1 (generated host + user keys):
argv quoting, exit codes, host-key refusal, timeouts, dropped connections, confined pulls."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgegan.devices.errors import (DeviceConnectionError, DeviceTimeoutError, HostKeyError, RemoteCommandError,
                                    UnsafePathError)
from support_sshd import LoopbackSSHD, keygen, sshd_missing
from edgegan.devices.targets import open_target
from edgegan.devices.transport import TargetOptions, confined_path
from edgegan.errors import ConfigError, DeviceError

pytestmark = pytest.mark.skipif(sshd_missing() is not None, reason=f"no loopback sshd: {sshd_missing()}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LoopbackSSHD(tmp_path_factory.mktemp("sshd")) as d:
        yield d


def opts(d: LoopbackSSHD, **kw) -> TargetOptions:
    base = dict(identity=str(d.identity), known_hosts=str(d.known_hosts), connect_timeout_s=5, retries=0)
    return TargetOptions(**{**base, **kw})


@pytest.fixture
def ssh(sshd):
    t = open_target(sshd.url, opts(sshd))
    yield t
    t.close()


def test_argv_is_passed_verbatim_never_interpreted_by_a_shell(ssh, tmp_path):
    canary = tmp_path / "pwned"
    args = ["a b", f"$(touch {canary})", "`id`", "'q'", '"dq"', ";rm -rf /nonexistent", "*", "x\ny", ""]
    res = ssh.run(["printf", "%s|", *args])
    assert res.exit_code == 0 and res.stdout == "|".join(args) + "|"
    assert not canary.exists()


def test_exit_codes_and_stderr_come_back(ssh):
    res = ssh.run(["sh", "-c", "echo out; echo 'boom: error here' >&2; exit 7"])
    assert (res.exit_code, res.stdout, res.stderr) == (7, "out\n", "boom: error here\n")
    with pytest.raises(RemoteCommandError, match=r"exit 7\): boom: error here") as exc:
        res.check("the thing")
    assert exc.value.remote_exit_code == 7
    assert ssh.run(["definitely-not-a-command"]).exit_code == 127


def test_a_crash_by_signal_is_an_exit_code_not_a_lost_connection(ssh):
    res = ssh.run(["python3", "-c", "import os, sys; sys.stderr.write('about to crash\\n'); sys.stderr.flush(); os.kill(os.getpid(), 11)"])
    assert res.exit_code == 139 and "about to crash" in res.stderr
    assert ssh.run(["true"]).exit_code == 0  # the connection is still fine


def test_stdin_and_large_output(ssh):
    res = ssh.run(["wc", "-c"], stdin=b"x" * 100_000)
    assert res.stdout.strip() == "100000"
    big = ssh.run(["python3", "-c", "print('y' * 2_000_000)"])
    assert len(big.stdout) == 2_000_001


def test_push_pull_roundtrip_and_size(ssh, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    remote = str(tmp_path / "remote" / "data.bin")
    ssh.mkdir(str(tmp_path / "remote"))
    ssh.push(src, remote)
    assert ssh.size(remote) == 256_000 and ssh.size(remote + ".nope") is None
    assert not Path(remote + ".part").exists()
    got = ssh.pull(remote, tmp_path, "copy.bin")
    assert got == (tmp_path / "copy.bin").resolve() and got.read_bytes() == src.read_bytes()
    with pytest.raises(DeviceError, match="does not exist"):
        ssh.pull(remote + ".nope", tmp_path, "x.bin")


@pytest.mark.parametrize("name", ["../escape.json", "/etc/passwd", "a/b.json", ".hidden", "..", "", "x\x00y"])
def test_pulled_names_are_confined_to_the_results_directory(ssh, tmp_path, name):
    with pytest.raises(UnsafePathError):
        ssh.pull("/etc/hostname", tmp_path / "results", name)
    with pytest.raises(UnsafePathError):
        confined_path(tmp_path, name)
    assert not (tmp_path / "escape.json").exists()


def test_home_and_workdir(ssh):
    assert ssh.home().startswith("/") and ssh.default_workdir() == ssh.home().rstrip("/") + "/.edgegan"


def test_unknown_host_key_is_refused(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match=r"is not in .*refused.*--accept-new-host-key"):
        open_target(sshd.url, opts(sshd, known_hosts=str(empty)))
    with pytest.raises(HostKeyError, match="is not in"):  # a missing file is no exception
        open_target(sshd.url, opts(sshd, known_hosts=str(tmp_path / "missing")))


def test_accept_new_host_key_records_it_explicitly(sshd, tmp_path):
    kh = tmp_path / "kh"
    t = open_target(sshd.url, opts(sshd, known_hosts=str(kh), accept_new_host_key=True))
    t.close()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in kh.read_text()
    open_target(sshd.url, opts(sshd, known_hosts=str(kh))).close()  # now known: no flag needed


def test_changed_host_key_is_refused_even_with_accept_new(sshd, tmp_path):
    other = keygen(tmp_path / "other_host")
    kind, b64 = Path(str(other) + ".pub").read_text().split()[:2]
    kh = tmp_path / "kh"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {kind} {b64}\n")
    for accept in (False, True):
        with pytest.raises(HostKeyError, match=r"CHANGED.*ssh-keygen -R"):
            open_target(sshd.url, opts(sshd, known_hosts=str(kh), accept_new_host_key=accept))


def test_wrong_key_is_an_authentication_error(sshd, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(DeviceConnectionError, match="refused authentication"):
        open_target(sshd.url, opts(sshd, identity=str(stranger)))


def test_nothing_listening_is_a_clear_connection_error_after_retries(sshd, tmp_path):
    from support_sshd import free_port

    t0 = time.monotonic()
    with pytest.raises(DeviceConnectionError, match=r"cannot connect .* after 2 attempts"):
        open_target(f"ssh://root@127.0.0.1:{free_port()}", opts(sshd, retries=1, connect_timeout_s=2))
    assert time.monotonic() - t0 < 30


def test_bad_urls_are_config_errors(sshd):
    for url in ("ssh://", "ssh://u:pw@h", "ssh://h/path", "ssh://h:notaport"):
        with pytest.raises(ConfigError):
            open_target(url, opts(sshd))


def test_timeout_abandons_the_command(ssh):
    with pytest.raises(DeviceTimeoutError, match="ran over"):
        ssh.run(["sleep", "20"], timeout=0.5)
    assert ssh.run(["echo", "still usable"]).stdout == "still usable\n"


def test_a_dropped_connection_is_reconnected_for_the_next_command(ssh):
    ssh._client.get_transport().sock.close()  # the network goes away under us
    time.sleep(0.2)
    assert ssh.run(["echo", "back"]).stdout == "back\n"


def test_sshd_killed_mid_command_is_a_connection_error_not_a_result(tmp_path):
    with LoopbackSSHD(tmp_path / "d") as d:
        t = open_target(d.url, opts(d))
        timer = threading.Timer(1.0, d.kill_all)
        timer.start()
        try:
            with pytest.raises(DeviceConnectionError, match="discarded|lost|closed"):
                t.run(["sh", "-c", "echo started; sleep 30; echo finished"], timeout=60)
        finally:
            timer.cancel()
            t.close()
        with pytest.raises(DeviceConnectionError, match="cannot connect"):
            open_target(d.url, opts(d))


def test_one_attempt_is_singular(sshd):
    from support_sshd import free_port

    with pytest.raises(DeviceConnectionError, match=r"after 1 attempt \("):
        open_target(f"ssh://root@127.0.0.1:{free_port()}", opts(sshd, retries=0, connect_timeout_s=2))


def write_ssh_config(path: Path, d: LoopbackSSHD) -> Path:
    path.write_text(
        "Host mypi otherpi\n"
        "    HostName 127.0.0.1\n"
        f"    Port {d.port}\n"
        f"    User {d.user}\n"
        f"    IdentityFile {d.identity}\n"
        "Host behindjump\n"
        "    HostName 10.0.0.7\n"
        "    ProxyJump gateway.example\n"
        "Host *\n"
        "    ServerAliveInterval 30\n")
    return path


def test_user_at_host_without_scheme_is_an_ssh_target(sshd):
    t = open_target(f"{sshd.user}@127.0.0.1:{sshd.port}", opts(sshd))
    try:
        assert t.run(["echo", "hi"]).stdout == "hi\n"
        assert t.target == sshd.url
    finally:
        t.close()


def test_ssh_config_host_alias_gives_hostname_user_port_and_key(sshd, tmp_path):
    cfg = write_ssh_config(tmp_path / "config", sshd)
    base = dict(known_hosts=str(sshd.known_hosts), connect_timeout_s=5, retries=0, ssh_config=str(cfg))
    for target in ("mypi", f"{sshd.user}@otherpi", "ssh://mypi"):
        t = open_target(target, TargetOptions(**base))  # no --identity: the config's IdentityFile is used
        try:
            assert t.run(["printf", "%s", "ok"]).stdout == "ok"
        finally:
            t.close()
    with pytest.raises(ConfigError, match="not a URL, user@host or a Host of"):
        open_target("notanalias", TargetOptions(**base))


def test_ssh_config_from_the_environment(sshd, tmp_path, monkeypatch):
    cfg = write_ssh_config(tmp_path / "config", sshd)
    monkeypatch.setenv("EDGEGAN_SSH_CONFIG", str(cfg))
    t = open_target("mypi", TargetOptions(known_hosts=str(sshd.known_hosts), connect_timeout_s=5, retries=0))
    try:
        assert t.run(["true"]).exit_code == 0
    finally:
        t.close()


def test_proxyjump_is_refused_in_one_line(sshd, tmp_path):
    cfg = write_ssh_config(tmp_path / "config", sshd)
    with pytest.raises(ConfigError, match="uses ProxyJump gateway.example, which edgegan does not support") as exc:
        open_target("behindjump", TargetOptions(ssh_config=str(cfg), retries=0))
    assert "\n" not in str(exc.value)


def test_cli_device_info_reaches_an_ssh_config_alias(sshd, tmp_path):
    from conftest import run_cli

    cfg = write_ssh_config(tmp_path / "config", sshd)
    proc = run_cli("device", "info", "mypi", "--ssh-config", str(cfg), "--known-hosts", str(sshd.known_hosts),
                   "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout)["target"] == f"ssh://{sshd.user}@mypi:{sshd.port}"
