"""Targets where artifacts run: transports (local, ssh), device info, setup, power probes,
profiling. The on-device runner itself lives in ``edgegan/runner/`` (it imports nothing from edgegan).

Everything heavy (paramiko, rich, numpy-heavy work) is imported inside functions, so
``import edgegan.devices`` stays light.
"""
