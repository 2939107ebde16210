"""Targets where artifacts run: transports, device info and the on-device runner."""
