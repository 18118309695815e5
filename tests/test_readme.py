"""The README's Python examples run as written: its ```python blocks under "## Python API", executed in
order in one namespace (the Trainer block reuses the first block's data, model path and tokenizer),
in a scratch folder, on the packaged MiniLM at one thread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_the_api_and_trainer_examples():
    blocks = python_blocks()
    assert len(blocks) == 2 and "prunepeft.search(" in blocks[0] and "PrunePEFTCallback" in blocks[1]


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace: dict = {"__name__": "readme"}
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "dev accuracy:" in out and "on new rows: {'accuracy':" in out and "labels:" in out and "kept:" in out
    assert (tmp_path / "runs" / "python" / "weights.safetensors").is_file()
    assert namespace["callback"].trainable_params <= 30_000 and namespace["found"].metrics["trainable_params"] <= 30_000
