"""Power probes, registered by name. The probe classes live in the runner (they must run ON
the device, where the sysfs files and vcgencmd are); this module exposes them through an
:class:`edgegan.registry.Registry` for the host side (listing, docs, tests).

A probe reads a real source and names it: results carry ``provenance: measured(<source>)``
or ``unavailable`` with the reason each probe gave. No number is ever estimated here.
"""
from __future__ import annotations

from ..registry import Registry
from ..runner import edgegan_runner as _runner

POWER_PROBES: Registry[type] = Registry("power probe")
for _name, _cls in _runner.PROBES.items():
    POWER_PROBES.add(_name, _cls)

PowerProbe = _runner.PowerProbe
available_probes = _runner.available_probes
parse_pmic_adc = _runner.parse_pmic_adc
android_battery_watts = _runner.android_battery_watts
thermal_zones = _runner.thermal_zones


def probe_names() -> list[str]:
    """Probe names in detection priority order (the first readable one wins under ``auto``)."""
    return list(_runner.PROBES)
