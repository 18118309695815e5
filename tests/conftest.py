"""Shared fixtures: tiny random Hugging Face classifiers of every family prunepeft supports.

One table (FAMILIES) describes each family: how to build a tiny model from a config in code and
the names the architecture finder must discover. Tests take the `case` fixture to run on every
family (peft's tests/test_custom_models.py habit: one table of cases, parametrised), or
`bert_case` when one family is enough.
"""

from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass

import pytest
import torch
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()

HIDDEN, HEADS, INTERMEDIATE, VOCAB = 32, 4, 64, 100


@dataclass(frozen=True)
class Family:
    name: str
    config_cls: str  # transformers class names, imported lazily
    model_cls: str
    backbone_cls: str  # the bare pretrained backbone (what a Hub checkpoint holds)
    num_layers: int
    config_kwargs: dict
    # what inspect_model must find (names inside one layer)
    layers_path: str
    query: str
    value: str
    ffn_out: str
    ffn_in: str
    head: tuple[str, ...]
    peft_targets: tuple[str, ...]  # short names for peft's LoraConfig(target_modules=...)
    value_out: int = HIDDEN  # out_features of the value projection
    min_token: int = 1  # smallest token id used in inputs (keeps pad/special ids out)


COMMON = dict(hidden_size=HIDDEN, num_attention_heads=HEADS, intermediate_size=INTERMEDIATE, vocab_size=VOCAB, num_labels=2,
              initializer_range=0.2)  # O(1) logits, so atol=1e-5 comparisons are meaningful
NO_DROPOUT_ENC = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
DECODER = dict(num_key_value_heads=2, pad_token_id=0, attention_dropout=0.0)

FAMILIES = {
    f.name: f
    for f in [
        Family(
            "bert", "BertConfig", "BertForSequenceClassification", "BertModel", 3, NO_DROPOUT_ENC,
            "bert.encoder.layer", "attention.self.query", "attention.self.value", "output.dense", "intermediate",
            ("classifier",), ("query", "value"),
        ),
        Family(
            "roberta", "RobertaConfig", "RobertaForSequenceClassification", "RobertaModel", 2, NO_DROPOUT_ENC,
            "roberta.encoder.layer", "attention.self.query", "attention.self.value", "output.dense", "intermediate",
            ("classifier",), ("query", "value"), min_token=2,
        ),
        Family(
            "deberta-v2", "DebertaV2Config", "DebertaV2ForSequenceClassification", "DebertaV2Model", 2,
            dict(NO_DROPOUT_ENC, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                 max_relative_positions=-1, norm_rel_ebd="layer_norm", share_att_key=True, pooler_dropout=0.0),
            "deberta.encoder.layer", "attention.self.query_proj", "attention.self.value_proj", "output.dense",
            "intermediate", ("pooler", "classifier"), ("query_proj", "value_proj"),
        ),
        Family(
            "llama", "LlamaConfig", "LlamaForSequenceClassification", "LlamaModel", 3, DECODER,
            "model.layers", "self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj", "mlp",
            ("score",), ("q_proj", "v_proj"), value_out=HIDDEN // 2,
        ),
        Family(
            "qwen2", "Qwen2Config", "Qwen2ForSequenceClassification", "Qwen2Model", 2, DECODER,
            "model.layers", "self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj", "mlp",
            ("score",), ("q_proj", "v_proj"), value_out=HIDDEN // 2,
        ),
    ]
}


def _cls(name: str):
    import transformers

    return getattr(transformers, name)


@functools.cache
def _pristine(name: str):
    fam = FAMILIES[name]
    config = _cls(fam.config_cls)(num_hidden_layers=fam.num_layers, **COMMON, **fam.config_kwargs)
    torch.manual_seed(1234)
    model = _cls(fam.model_cls)(config)
    for p in model.parameters():
        p.requires_grad_(False)  # as load_classifier leaves it
    return model.eval()


class Case:
    """One family: fresh models, inputs and small helpers."""

    def __init__(self, family: Family):
        self.family = family
        self.name = family.name

    def __repr__(self):
        return f"Case({self.name})"

    # ---- models ------------------------------------------------------------------------
    def model(self):
        """A fresh copy of the same random model (identical weights every call), in eval mode."""
        return copy.deepcopy(_pristine(self.name))

    @property
    def config(self):
        return _pristine(self.name).config

    def model_class(self):
        return _cls(self.family.model_cls)

    def backbone_class(self):
        return _cls(self.family.backbone_cls)

    # ---- expected names ----------------------------------------------------------------
    def site(self, layer: int, what: str) -> str:
        return f"{self.family.layers_path}.{layer}.{getattr(self.family, what)}"

    # ---- inputs ------------------------------------------------------------------------
    def inputs(self, batch: int = 2, seq: int = 7, seed: int = 0) -> dict:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(self.family.min_token, VOCAB, (batch, seq), generator=g)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def labels(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed + 1)
        return torch.randint(0, 2, (batch,), generator=g)

    @staticmethod
    def logits(model, inputs) -> torch.Tensor:
        with torch.no_grad():
            return model(**inputs).logits

    # ---- supernet helpers --------------------------------------------------------------
    def supernet(self, model=None, overrides=None, options=None):
        from prunepeft.supernet.arch import inspect_model
        from prunepeft.supernet.supernet import Supernet

        model = self.model() if model is None else model
        return Supernet(model, inspect_model(model, overrides), options)

    @staticmethod
    def perturb(params, scale: float = 0.1, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=g) * scale)

    def perturb_units(self, supernet, units=None, scale: float = 0.1, seed: int = 0) -> None:
        units = supernet.alive if units is None else units
        self.perturb([p for u in units for p in supernet.unit_parameters(u)], scale, seed)


FAMILY_IDS = list(FAMILIES)


@pytest.fixture(autouse=True)
def prunepeft_logger_restored():
    """Each test starts with the "prunepeft" logger as the test before found it: an in-process CLI run
    (prunepeft.logs.configure) gives it its own handler and stops it propagating, which would hide its
    records from caplog in every later test."""
    logger = logging.getLogger("prunepeft")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def tiny_env():
    """Seeded, single-threaded torch for tiny-model tests (use via the case fixtures or
    `pytestmark = pytest.mark.usefixtures("tiny_env")`). One thread runs tiny models several times
    faster and does not fight concurrent jobs for cores; it is restored afterwards because other
    tests compare in-process runs with subprocess runs bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=FAMILY_IDS)
def case(request, tiny_env) -> Case:
    return Case(FAMILIES[request.param])


@pytest.fixture
def bert_case(tiny_env) -> Case:
    return Case(FAMILIES["bert"])


@pytest.fixture
def make_case(tiny_env):
    """Case by family name."""
    return lambda name: Case(FAMILIES[name])


@pytest.fixture
def saved_bert(tmp_path, bert_case):
    """The tiny BERT classifier saved with save_pretrained, so a pristine copy can be re-loaded."""
    path = tmp_path / "base"
    bert_case.model().save_pretrained(path)
    return path

