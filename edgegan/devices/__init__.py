"""Targets where artifacts run: transports (local, ssh), device info, setup, power probes,
profiling, and the on-device runner (``runner/edgegan_runner.py``).

Everything heavy (paramiko, rich, numpy-heavy work) is imported inside functions, so
``import edgegan.devices`` stays light.
"""
