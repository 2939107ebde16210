"""Package discovery only (metadata is in pyproject.toml): every ``edgegan.*`` package plus the
top-level ``converters/`` folder installed as ``edgegan.converters`` (not the unrelated PyPI
project called ``converters``)."""
from setuptools import find_packages, setup

packages = find_packages(include=["edgegan", "edgegan.*"])
packages += ["edgegan.converters" + p[len("converters"):] for p in find_packages(include=["converters", "converters.*"])]
setup(packages=packages, package_dir={"edgegan.converters": "converters"})
