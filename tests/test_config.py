"""Units and configurations, run-config overrides, and the parameter budget."""

from __future__ import annotations

import json

import pytest

from prunepeft.config import (
    RunConfig,
    apply_overrides,
    dumps,
    from_dict,
    load_file,
    set_value,
    to_dict,
)
from prunepeft.errors import UserError
from prunepeft.search.budget import check_budget, parse_budget
from prunepeft.space.units import KINDS, Unit, load_configuration, parse_space, save_configuration

pytestmark = pytest.mark.usefixtures("tiny_env")


# ---- units --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(layer=0, kind="prefix", size=8), "unknown unit kind 'prefix'"),
        (dict(layer=0, kind="LoRA", size=8), "unknown unit kind"),
        (dict(layer=0, kind="lora", size=0), "positive"),
        (dict(layer=0, kind="adapter", size=-4), "positive"),
        (dict(layer=-1, kind="lora", size=8), "layer must be >= 0"),
    ],
)
def test_unit_validation(kwargs, match):
    with pytest.raises(UserError, match=match):
        Unit(**kwargs)


@pytest.mark.parametrize("kind", [k for k in KINDS if KINDS[k].sized])
@pytest.mark.parametrize("layer, size", [(0, 1), (3, 8), (23, 128)])
def test_unit_name_parse_round_trip(kind, layer, size):
    unit = Unit(layer, kind, size)
    assert unit.name == f"{kind}-{size}@{layer}"
    assert unit.family == f"{kind}-{size}"
    assert Unit.parse(unit.name) == unit
    assert Unit.from_dict(unit.to_dict()) == unit
    assert Unit.from_dict(json.loads(json.dumps(unit.to_dict()))) == unit


@pytest.mark.parametrize("target", ["", "q", "ffn_in+ffn_out"])
def test_a_kind_without_size_is_named_and_written_without_one(target):
    unit = Unit(3, "bias", 1, target)
    assert unit.family == "bias"
    assert unit.name == (f"bias:{target}@3" if target else "bias@3")
    assert Unit.parse(unit.name) == unit
    assert parse_space([f"bias:{target}" if target else "bias"]) == [("bias", 1, unit.target)]
    with pytest.raises(UserError, match="bias units have no size"):
        parse_space(["bias-4:q"])
    with pytest.raises(UserError, match="have no size"):
        Unit(3, "bias", 4, target)
    with pytest.raises(UserError, match="lora needs a rank"):
        parse_space(["lora:q"])
    assert Unit.from_dict(unit.to_dict()) == unit
    assert Unit.from_dict(json.loads(json.dumps(unit.to_dict()))) == unit


def test_unit_order_is_layer_kind_size():
    units = [Unit(1, "adapter", 8), Unit(0, "lora", 8), Unit(0, "adapter", 32), Unit(0, "adapter", 8)]
    assert sorted(units) == [Unit(0, "adapter", 8), Unit(0, "adapter", 32), Unit(0, "lora", 8), Unit(1, "adapter", 8)]
    assert len({Unit(0, "lora", 8), Unit(0, "lora", 8)}) == 1


@pytest.mark.parametrize("bad", [{"kind": "lora", "size": 8}, {"layer": "x", "kind": "lora", "size": 8}, {"layer": 0, "kind": "lora", "size": None}, 3])
def test_unit_from_dict_errors(bad):
    with pytest.raises(UserError, match="bad unit"):
        Unit.from_dict(bad)


@pytest.mark.parametrize("bad", ["lora8@1", "lora-8", "lora-x@1"])
def test_unit_parse_malformed_is_user_error(bad):
    with pytest.raises(UserError):
        Unit.parse(bad)


# ---- configurations -----------------------------------------------------------------------
def test_configuration_round_trip(tmp_path):
    units = [Unit(2, "lora", 8), Unit(0, "adapter", 32), Unit(1, "parallel-adapter", 16)]
    save_configuration(units, tmp_path / "configuration.json", extra={"budget": 100})
    payload = json.loads((tmp_path / "configuration.json").read_text())
    assert payload["budget"] == 100
    assert load_configuration(tmp_path / "configuration.json") == sorted(units)
    assert load_configuration(tmp_path) == sorted(units)  # a run folder works too


def test_configuration_deduplicates(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"units": [{"layer": 0, "kind": "lora", "size": 8}] * 2}))
    assert load_configuration(p) == [Unit(0, "lora", 8)]


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        ("{not json", "not a prunepeft configuration"),
        ("[1, 2]", "not a prunepeft configuration"),
        ('{"layers": []}', "not a prunepeft configuration"),
        ('{"units": []}', "empty 'units' list"),
        ('{"units": [{"layer": 0, "kind": "prompt", "size": 8}]}', "unknown unit kind"),
        ('{"units": [{"layer": 0, "kind": "lora"}]}', "bad unit"),
    ],
)
def test_load_configuration_errors(tmp_path, content, match):
    p = tmp_path / "configuration.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=match):
        load_configuration(p)


def test_load_configuration_units_not_a_list(tmp_path):
    p = tmp_path / "configuration.json"
    p.write_text('{"units": 5}')
    with pytest.raises(UserError):
        load_configuration(p)


# ---- run config ---------------------------------------------------------------------------
def test_overrides_coerce_types():
    cfg = RunConfig()
    apply_overrides(cfg, [
        "seed=7",
        "train.learning_rate=5e-4",
        "search.space=[lora-8,adapter-16]",
        "data.max_train_samples=100",
        "units.lora_alpha=16",
        "arch.layers_path=bert.encoder.layer",
        "search.budget=0.3%",
        "train.num_train_epochs=2",
    ])
    assert cfg.seed == 7 and isinstance(cfg.seed, int)
    assert cfg.train.learning_rate == 5e-4 and isinstance(cfg.train.learning_rate, float)
    assert cfg.search.space == ["lora-8", "adapter-16"]
    assert cfg.data.max_train_samples == 100
    assert cfg.units.lora_alpha == 16.0 and isinstance(cfg.units.lora_alpha, float)
    assert cfg.arch.layers_path == "bert.encoder.layer"
    assert cfg.search.budget == "0.3%"
    assert cfg.train.num_train_epochs == 2.0 and isinstance(cfg.train.num_train_epochs, float)

    apply_overrides(cfg, ["data.max_train_samples=none", "units.lora_alpha=null", "search.space=lora-4"])
    assert cfg.data.max_train_samples is None
    assert cfg.units.lora_alpha is None
    assert cfg.search.space == ["lora-4"]  # a single item becomes a list


def test_value_with_equals_sign_and_spaces():
    cfg = RunConfig()
    apply_overrides(cfg, [" output_dir = runs/a=b "])
    assert cfg.output_dir == "runs/a=b"


@pytest.mark.parametrize(
    "override, match",
    [
        ("nope=1", "unknown config key 'nope'"),
        ("train.nope=1", "unknown config key 'train.nope'"),
        ("nope.learning_rate=1", "unknown config key"),
        ("seed.x=1", "unknown config key"),
        ("seed=seven", "cannot read seed='seven' as int"),
        ("train.learning_rate=fast", "as float"),
        ("search.space=[lora-8", "as list"),
        ("train=3", "is a section"),
        ("seed", "key=value"),
    ],
)
def test_override_errors(override, match):
    with pytest.raises(UserError, match=match):
        apply_overrides(RunConfig(), [override])


def test_set_value_section_dict_and_file(tmp_path):
    cfg = RunConfig()
    set_value(cfg, "train", {"learning_rate": "1e-3", "per_device_train_batch_size": "8"})
    assert cfg.train.learning_rate == 1e-3 and cfg.train.per_device_train_batch_size == 8
    p = tmp_path / "run.yaml"
    p.write_text("seed: 3\nsearch:\n  space: [lora-8, dora-4]\n  prune_per_round: '2'\n")
    load_file(cfg, str(p))
    assert cfg.seed == 3 and cfg.search.space == ["lora-8", "dora-4"] and cfg.search.prune_per_round == 2
    with pytest.raises(UserError, match="does not exist"):
        load_file(cfg, str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_file(cfg, str(tmp_path / "bad.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_file(cfg, str(tmp_path / "list.yaml"))


def test_dict_round_trip():
    cfg = RunConfig()
    apply_overrides(cfg, ["seed=11", "search.space=[lora-8,adapter-16]", "units.lora_alpha=8", "arch.query_name=q"])
    again = from_dict(json.loads(dumps(cfg)))
    assert to_dict(again) == to_dict(cfg)


def test_kind_learning_rates_values_are_numbers():
    cfg = RunConfig()
    apply_overrides(cfg, ["train.kind_learning_rates={adapter: 5e-4}"])
    assert cfg.train.kind_learning_rates == {"adapter": 5e-4}
    assert isinstance(cfg.train.kind_learning_rates["adapter"], float)


# ---- budget -------------------------------------------------------------------------------
BACKBONE = 22_713_216


@pytest.mark.parametrize(
    "text, expected",
    [
        ("73728", 73728),
        (73728, 73728),
        ("74k", 74_000),
        ("74K", 74_000),
        ("1.2M", 1_200_000),
        ("1.2m", 1_200_000),
        ("0.3%", int(0.003 * BACKBONE)),
        ("1%", int(0.01 * BACKBONE)),
        ("73,728", 73728),
        ("73_728", 73728),
        (" 2b ", 2_000_000_000),
    ],
)
def test_parse_budget(text, expected):
    assert parse_budget(text, BACKBONE) == expected


@pytest.mark.parametrize("text", ["", "abc", "12x", "-5", "1e5", "%", "1.2.3k", "5 percent"])
def test_parse_budget_garbage(text):
    with pytest.raises(UserError, match="not a parameter count"):
        parse_budget(text, BACKBONE)


def test_check_budget():
    sizes = [1000, 2000, 3000]
    check_budget(1000, sizes, "1000")  # exactly the smallest unit: one unit fits
    check_budget(5999, sizes, "5999")
    with pytest.raises(UserError, match="below the smallest unit"):
        check_budget(999, sizes, "999")
    with pytest.raises(UserError, match="not below the whole supernet"):
        check_budget(6000, sizes, "6000")
    with pytest.raises(UserError, match="not below the whole supernet"):
        check_budget(10_000, sizes, "10k")


def test_a_boolean_setting_refuses_other_words():
    from prunepeft.config import RunConfig, apply_overrides
    from prunepeft.errors import UserError

    cfg = RunConfig()
    apply_overrides(cfg, ["search.fair_scores=false", "search.eval_rounds=yes"])
    assert cfg.search.fair_scores is False and cfg.search.eval_rounds is True
    with pytest.raises(UserError, match="search.fair_scores"):
        apply_overrides(cfg, ["search.fair_scores=maybe"])


@pytest.mark.parametrize("text", ["{adapter:5e-4}", "{adapter: 5e-4}", "{ adapter : 5e-4 , lora:1e-3 }", "adapter=5e-4"])
def test_dict_values_read_the_way_users_write_them(text):
    from prunepeft.config import RunConfig, set_value

    cfg = RunConfig()
    set_value(cfg, "train.kind_learning_rates", text)
    assert cfg.train.kind_learning_rates["adapter"] == 5e-4 and all(isinstance(v, float) for v in cfg.train.kind_learning_rates.values())


def test_the_whole_configuration_is_checked_once_values_are_applied():
    from prunepeft.config import RunConfig
    from prunepeft.errors import UserError
    from prunepeft.validate import validate_config

    validate_config(RunConfig())  # the defaults are valid
    cfg = RunConfig()
    cfg.units.adapter_init = "papr"  # set as a file or --set would, after __post_init__ ran
    with pytest.raises(UserError, match="adapter_init"):
        validate_config(cfg)
    cfg = RunConfig()
    cfg.train.kind_learning_rates = {"lroa": 1e-3}
    with pytest.raises(UserError, match="lroa"):
        validate_config(cfg)


def test_describe_prints_a_config_file_that_reads_back_as_the_defaults(tmp_path):
    from prunepeft.config import RunConfig, describe, load_file, to_dict

    text = describe()
    assert "learning_rate: 0.003  # learning rate of PEFT units" in text and "kind_learning_rates: {}" in text
    (tmp_path / "c.yaml").write_text(text)
    cfg = RunConfig()
    load_file(cfg, str(tmp_path / "c.yaml"))
    assert to_dict(cfg) == to_dict(RunConfig())
