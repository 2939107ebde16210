"""The on-device runner. ``edgegan_runner.py`` is copied to the device as one file and must
only import the standard library, numpy and one inference runtime; the host imports the same
file to run artifacts for verification, so host and device run artifacts identically."""
from pathlib import Path

RUNNER_PATH = Path(__file__).with_name("edgegan_runner.py")
