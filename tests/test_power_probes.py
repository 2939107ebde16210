"""Power probes against fake sysfs trees / a fake vcgencmd in the real file formats."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edgegan.devices import power
from edgegan.runner import edgegan_runner as r

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5: leading spaces, non-sequential channel
# numbers, volt-only EXT5V/BATT rails (values made up, format as printed by the firmware)
PMIC_OUTPUT = """\
 3V7_WL_SW_A current(0)=0.00200000A
   3V3_SYS_A current(1)=0.10000000A
   1V8_SYS_A current(2)=0.20000000A
  DDR_VDD2_A current(3)=0.05000000A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.20000000A
    0V8_SW_A current(6)=0.25000000A
  VDD_CORE_A current(7)=2.00000000A
   3V3_DAC_A current(17)=0.00000000A
   3V3_ADC_A current(18)=0.00000000A
   0V8_AON_A current(16)=0.00300000A
      HDMI_A current(22)=0.02000000A
 3V7_WL_SW_V volt(8)=3.70000000V
   3V3_SYS_V volt(9)=3.30000000V
   1V8_SYS_V volt(10)=1.80000000V
  DDR_VDD2_V volt(11)=1.10000000V
  DDR_VDDQ_V volt(12)=0.60000000V
   1V1_SYS_V volt(13)=1.10000000V
    0V8_SW_V volt(14)=0.80000000V
  VDD_CORE_V volt(15)=0.80000000V
   3V3_DAC_V volt(20)=3.30000000V
   3V3_ADC_V volt(21)=3.30000000V
   0V8_AON_V volt(19)=0.80000000V
      HDMI_V volt(23)=5.10000000V
     EXT5V_V volt(24)=5.14000000V
      BATT_V volt(25)=0.00000000V
"""
PMIC_WATTS = (0.002 * 3.7 + 0.1 * 3.3 + 0.2 * 1.8 + 0.05 * 1.1 + 0.2 * 1.1 + 0.25 * 0.8 + 2.0 * 0.8
              + 0.003 * 0.8 + 0.02 * 5.1)


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n")
    return p


def test_registry_lists_every_probe_in_priority_order():
    assert power.probe_names() == ["rapl", "hwmon", "vcgencmd-pmic", "android-battery"]
    assert set(power.POWER_PROBES) == set(power.probe_names())
    assert power.POWER_PROBES.get("rapl") is r.RaplProbe


def test_nothing_readable_is_unavailable_with_reasons(tmp_path):
    found, why = r.available_probes(str(tmp_path), vcgencmd=str(tmp_path / "no-vcgencmd"))
    assert found == []
    assert set(why) == {"rapl", "hwmon", "vcgencmd-pmic", "android-battery"}


def test_rapl_sums_packages_ignores_subzones_and_handles_wrap(tmp_path):
    base = "sys/class/powercap"
    write(tmp_path, f"{base}/intel-rapl:0/name", "package-0")
    e0 = write(tmp_path, f"{base}/intel-rapl:0/energy_uj", "900")
    write(tmp_path, f"{base}/intel-rapl:0/max_energy_range_uj", "1000")
    write(tmp_path, f"{base}/intel-rapl:0:0/name", "core")  # sub-zone: part of package-0
    write(tmp_path, f"{base}/intel-rapl:0:0/energy_uj", "5")
    write(tmp_path, f"{base}/intel-rapl:1/name", "package-1")
    e1 = write(tmp_path, f"{base}/intel-rapl:1/energy_uj", "100")
    write(tmp_path, f"{base}/intel-rapl:1/max_energy_range_uj", "262143328850")
    probe = r.RaplProbe.detect(str(tmp_path))
    assert probe.source() == "rapl:package-0+package-1"
    assert probe.kind == "energy"
    assert probe.read() == 0.0
    e0.write_text("100\n")  # wrapped: 900 -> 1000 -> 100 = 200 uJ
    e1.write_text("400\n")  # +300 uJ
    assert probe.read() == pytest.approx(500e-6)


def test_hwmon_ina219_power_input_in_microwatts(tmp_path):
    write(tmp_path, "sys/class/hwmon/hwmon0/name", "coretemp")  # not a power monitor
    write(tmp_path, "sys/class/hwmon/hwmon0/temp1_input", "45000")
    write(tmp_path, "sys/class/hwmon/hwmon1/name", "ina219")
    write(tmp_path, "sys/class/hwmon/hwmon1/power1_input", "1500000")
    write(tmp_path, "sys/class/hwmon/hwmon1/curr1_input", "300")
    write(tmp_path, "sys/class/hwmon/hwmon1/in1_input", "5000")
    probe = r.HwmonInaProbe.detect(str(tmp_path))
    assert probe.read() == pytest.approx(1.5)
    assert probe.source().startswith("hwmon:ina219:hwmon1")


def test_hwmon_ina3221_jetson_uses_the_board_input_channel_only(tmp_path):
    d = "sys/class/hwmon/hwmon2"
    write(tmp_path, f"{d}/name", "ina3221")
    for ch, label, mv, ma in ((1, "VDD_IN", 5000, 1200), (2, "VDD_CPU_GPU_CV", 5000, 400), (3, "VDD_SOC", 5000, 300)):
        write(tmp_path, f"{d}/in{ch}_label", label)
        write(tmp_path, f"{d}/in{ch}_input", str(mv))
        write(tmp_path, f"{d}/curr{ch}_input", str(ma))
        write(tmp_path, f"{d}/in{ch + 3}_input", "12")  # shunt-voltage channels have no current pair
    probe = r.HwmonInaProbe.detect(str(tmp_path))
    assert probe.read() == pytest.approx(6.0)
    assert "VDD_IN" in probe.source() and "VDD_SOC" not in probe.source()


def test_hwmon_ina3221_without_input_label_sums_channels(tmp_path):
    d = "sys/class/hwmon/hwmon0"
    write(tmp_path, f"{d}/name", "ina3221")
    for ch, mv, ma in ((1, 5000, 100), (2, 3300, 1000)):
        write(tmp_path, f"{d}/in{ch}_input", str(mv))
        write(tmp_path, f"{d}/curr{ch}_input", str(ma))
    assert r.HwmonInaProbe.detect(str(tmp_path)).read() == pytest.approx(0.5 + 3.3)


def fake_vcgencmd(tmp_path: Path, output: str, code: int = 0) -> Path:
    (tmp_path / "pmic.txt").write_text(output)
    exe = tmp_path / "vcgencmd"
    exe.write_text(f'#!/bin/sh\n[ "$1" = pmic_read_adc ] || exit 2\ncat "{tmp_path / "pmic.txt"}"\nexit {code}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_parse_pmic_adc_pairs_rails_with_both_readings():
    rails = r.parse_pmic_adc(PMIC_OUTPUT)
    assert "EXT5V" not in rails and "BATT" not in rails  # volts only
    assert len(rails) == 12
    assert rails["VDD_CORE"] == pytest.approx(1.6)
    assert sum(rails.values()) == pytest.approx(PMIC_WATTS)


def test_vcgencmd_probe_reads_the_pi5_pmic(tmp_path):
    exe = fake_vcgencmd(tmp_path, PMIC_OUTPUT)
    probe = r.VcgencmdPmicProbe.detect("/", vcgencmd=str(exe))
    assert probe.read() == pytest.approx(PMIC_WATTS)
    assert probe.source() == "vcgencmd pmic_read_adc (12 rails)"


def test_vcgencmd_on_a_pi4_is_unavailable(tmp_path):
    exe = fake_vcgencmd(tmp_path, 'error=1 error_msg="Command not registered"\n', code=0)
    with pytest.raises(r.RunnerError, match="no rail"):
        r.VcgencmdPmicProbe.detect("/", vcgencmd=str(exe))


def test_android_battery_power_while_discharging(tmp_path):
    d = "sys/class/power_supply/battery"
    write(tmp_path, f"{d}/current_now", "-450000")  # µA, negative = discharging on many phones
    write(tmp_path, f"{d}/voltage_now", "3900000")  # µV
    write(tmp_path, f"{d}/status", "Discharging")
    probe = r.AndroidBatteryProbe.detect(str(tmp_path))
    assert probe.read() == pytest.approx(0.45 * 3.9)


def test_android_battery_on_charger_is_refused(tmp_path):
    d = "sys/class/power_supply/battery"
    write(tmp_path, f"{d}/current_now", "800000")
    write(tmp_path, f"{d}/voltage_now", "4200000")
    write(tmp_path, f"{d}/status", "Charging")
    found, why = r.available_probes(str(tmp_path), "android-battery")
    assert found == [] and "unplug" in why["android-battery"]


def battery_tree(root: Path, name: str, current: str, voltage: str, status: str, kind: str = "Battery") -> None:
    """/sys/class/power_supply/<name> as a phone kernel lays it out (one value per file)."""
    d = f"sys/class/power_supply/{name}"
    write(root, f"{d}/type", kind)
    write(root, f"{d}/current_now", current)
    write(root, f"{d}/voltage_now", voltage)
    write(root, f"{d}/status", status)
    write(root, f"{d}/capacity", "76")


@pytest.mark.parametrize("current, voltage, watts", [
    ("-450000", "3900000", 0.45 * 3.9),   # µA / µV, negative while discharging (Pixel)
    ("450000", "3900000", 0.45 * 3.9),    # µA / µV, positive while discharging (other vendors)
    ("-450", "3900000", 0.45 * 3.9),      # mA current (some fuel gauges), µV voltage
    ("612", "3850", 0.612 * 3.85),        # mA / mV
    ("1250000", "4012000", 1.25 * 4.012),  # a heavy load in µA
])
def test_android_battery_units_and_sign_conventions(tmp_path, current, voltage, watts):
    battery_tree(tmp_path, "battery", current, voltage, "Discharging")
    probe = r.AndroidBatteryProbe.detect(str(tmp_path))
    assert probe.read() == pytest.approx(watts)
    assert probe.source() == "android-battery"
    assert r.android_battery_watts(current, voltage) == pytest.approx(watts)


def test_android_battery_found_under_a_vendor_supply_name(tmp_path):
    battery_tree(tmp_path, "usb", "0", "5000000", "Not charging", kind="USB")
    battery_tree(tmp_path, "max77759fg", "-380000", "3870000", "Discharging")
    probe = r.AndroidBatteryProbe.detect(str(tmp_path))
    assert probe.d.endswith("max77759fg") and probe.read() == pytest.approx(0.38 * 3.87)


@pytest.mark.parametrize("status", ["Charging", "Full"])
def test_android_battery_plugged_in_is_refused_whatever_the_name(tmp_path, status):
    battery_tree(tmp_path, "bms", "900000", "4300000", status)
    found, why = r.available_probes(str(tmp_path), "android-battery")
    assert found == [] and "unplug" in why["android-battery"]


def test_android_battery_garbage_is_an_error_not_a_number(tmp_path):
    battery_tree(tmp_path, "battery", "n/a", "3900000", "Discharging")
    found, why = r.available_probes(str(tmp_path), "android-battery")
    assert found == [] and "not integers" in why["android-battery"]


def test_android_battery_provenance_in_a_power_measurement(tmp_path):
    battery_tree(tmp_path, "battery", "-400000", "3900000", "Discharging")
    probe = r.AndroidBatteryProbe.detect(str(tmp_path))
    cur = tmp_path / "sys/class/power_supply/battery/current_now"

    def work(deadline):  # the phone draws 1.0 A instead of 0.4 A while the model runs
        (tmp_path / "next").write_text("-1000000\n")
        os.replace(tmp_path / "next", cur)  # atomically, as sysfs updates a value
        n = 0
        while r.time.perf_counter() < deadline:
            r.time.sleep(0.005)
            n += 1
        return (0, n)

    out, _ = r.measure_power(probe, {}, work, baseline_s=0.1, interval_s=0.01, min_s=0.2)
    assert out["provenance"] == "measured(android-battery)"
    assert out["idle_w"] == pytest.approx(0.4 * 3.9)
    assert 0.4 * 3.9 < out["avg_w"] <= 1.0 * 3.9 + 1e-6


def test_auto_picks_the_first_readable_probe(tmp_path):
    write(tmp_path, "sys/class/hwmon/hwmon0/name", "ina226")
    write(tmp_path, "sys/class/hwmon/hwmon0/power1_input", "2000000")
    write(tmp_path, "sys/class/power_supply/battery/current_now", "1")
    write(tmp_path, "sys/class/power_supply/battery/voltage_now", "1")
    found, why = r.available_probes(str(tmp_path), vcgencmd=str(tmp_path / "none"))
    assert [p.name for p in found] == ["hwmon", "android-battery"]
    assert "rapl" in why


def test_unknown_probe_name_is_an_error(tmp_path):
    with pytest.raises(r.RunnerError, match="unknown power probe"):
        r.available_probes(str(tmp_path), "joulemeter")


class SteppedProbe(r.PowerProbe):
    """2 W idle, 5 W once the work starts (set by the work function)."""

    name = "stepped"

    def __init__(self):
        self.level = 2.0

    def source(self):
        return "stepped-test-source"

    def read(self):
        return self.level


def test_measure_power_subtracts_the_idle_baseline():
    probe = SteppedProbe()

    def work(deadline):
        probe.level = 5.0
        n = 0
        while r.time.perf_counter() < deadline:
            r.time.sleep(0.005)
            n += 1
        return (0, n)

    out, done = r.measure_power(probe, {}, work, baseline_s=0.1, interval_s=0.01, min_s=0.2)
    assert out["provenance"] == "measured(stepped-test-source)"
    assert out["idle_w"] == pytest.approx(2.0)
    assert 2.0 < out["avg_w"] <= 5.0
    assert out["net_w"] == pytest.approx(out["avg_w"] - out["idle_w"], abs=1e-3)
    assert out["energy_mj_per_inference"] == pytest.approx(out["net_w"] * out["seconds"] / done[1] * 1e3, rel=1e-2)


def test_measure_power_without_a_source_never_invents_a_number():
    out, done = r.measure_power(None, {"rapl": "no /sys/class/powercap"}, lambda d: (0, 3), 0.0, 0.01, 0.0)
    assert out["provenance"] == "unavailable"
    assert out["avg_w"] is None and out["energy_mj_per_inference"] is None
    assert "powercap" in out["reason"]
    assert done == (0, 3)


def test_energy_probe_average_is_delta_energy_over_time(tmp_path):
    class Counter(r.PowerProbe):
        name, kind = "counter", "energy"

        def __init__(self):
            self.t0 = r.time.perf_counter()

        def read(self):  # exactly 3 W
            return 3.0 * (r.time.perf_counter() - self.t0)

    s = r.PowerSampler(Counter(), 0.01)
    with s:
        r.time.sleep(0.1)
    assert s.average_w() == pytest.approx(3.0, rel=1e-2)


def test_thermal_zones_in_millidegrees(tmp_path):
    write(tmp_path, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    write(tmp_path, "sys/class/thermal/thermal_zone0/temp", "48312")
    write(tmp_path, "sys/class/thermal/thermal_zone1/type", "gpu-thermal")
    write(tmp_path, "sys/class/thermal/thermal_zone1/temp", "45100")
    write(tmp_path, "sys/class/thermal/cooling_device0/type", "fan")
    assert r.thermal_zones(str(tmp_path)) == {"cpu-thermal": 48.312, "gpu-thermal": 45.1}
    assert r.thermal_zones(str(tmp_path / "missing")) == {}
