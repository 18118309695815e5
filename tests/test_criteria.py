"""The six criteria of Table 1 against hand-computed values on tiny tensors."""

import pytest
import torch

from prunepeft.criteria.scores import (
    CRITERIA,
    HYBRID_CRITERIA,
    MissingStatistics,
    UnitStats,
    needed_statistics,
    planned_criteria,
    prunability,
    score,
)
from prunepeft.errors import UserError

# 6 elements in total: [[1, -2], [0, 3]] and [0.0005, -0.5]
W = [torch.tensor([[1.0, -2.0], [0.0, 3.0]]), torch.tensor([0.0005, -0.5])]
G = [torch.tensor([[0.5, 1.0], [2.0, -1.0]]), torch.tensor([4.0, -2.0])]
N = 6


def stats(**kw):
    return UnitStats(weights=W, **kw)


def test_registry_order_and_metadata():
    assert list(CRITERIA) == ["weight", "zeros", "threshold", "activation", "taylor", "gradient", "removal"]
    assert HYBRID_CRITERIA == ("weight", "zeros", "threshold", "activation", "taylor", "gradient")  # the paper's six
    first = {n: c.prune_first for n, c in CRITERIA.items()}
    assert first == {
        "weight": "lowest", "zeros": "highest", "threshold": "highest",
        "activation": "lowest", "taylor": "lowest", "gradient": "lowest", "removal": "lowest",
    }
    assert [n for n, c in CRITERIA.items() if not c.peer_relative] == ["removal"]
    assert CRITERIA["removal"].needs == {"activation", "removal"}
    assert planned_criteria("removal") == ("removal",) and planned_criteria("hybrid") == HYBRID_CRITERIA
    assert CRITERIA["weight"].needs == frozenset()
    assert CRITERIA["activation"].needs == {"activation"}
    assert CRITERIA["taylor"].needs == {"grads"}
    assert CRITERIA["gradient"].needs == {"grads"}
    assert needed_statistics(["weight", "zeros"]) == frozenset()
    assert needed_statistics(["taylor", "activation"]) == {"grads", "activation"}


def test_weight_is_mean_square_over_all_elements():
    expected = (1 + 4 + 0 + 9 + 0.0005**2 + 0.25) / N
    assert score("weight", stats()) == pytest.approx(expected, rel=1e-6)


def test_zeros_is_fraction_exactly_zero():
    assert score("zeros", stats()) == pytest.approx(1 / N)
    # tiny but nonzero values are not zeros
    assert score("zeros", UnitStats(weights=[torch.tensor([1e-30, 0.0, 0.0, 2.0])])) == pytest.approx(0.5)


def test_threshold_is_fraction_below_t():
    assert score("threshold", stats()) == pytest.approx(2 / N)  # 0 and 0.0005 < 1e-3
    assert score("threshold", stats(), threshold=1.0) == pytest.approx(3 / N)  # + -0.5; |1| is not < 1
    assert score("threshold", stats(), threshold=0.0) == 0.0
    with pytest.raises(UserError, match="threshold"):
        score("threshold", stats(), threshold=-1.0)


def test_activation_is_given_mean():
    assert score("activation", stats(mean_abs_activation=0.25)) == 0.25


def test_taylor_is_unsigned_mean_abs_w_times_g():
    expected = (0.5 + 2 + 0 + 3 + 0.002 + 1) / N  # signed would be (0.5-2+0-3+0.002+1)/6 < 0
    assert score("taylor", stats(mean_grads=G)) == pytest.approx(expected, rel=1e-6)
    assert score("taylor", stats(mean_grads=G)) > 0


def test_gradient_is_mean_abs_g():
    assert score("gradient", stats(mean_grads=G)) == pytest.approx((0.5 + 1 + 2 + 1 + 4 + 2) / N)


@pytest.mark.parametrize("name", ["activation", "taylor", "gradient"])
def test_missing_statistics_raise_never_zero(name):
    with pytest.raises(MissingStatistics, match=name):
        score(name, stats())


def test_feature_criteria_need_no_statistics():
    for name in ("weight", "zeros", "threshold"):
        score(name, stats())


def test_gradient_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        score("taylor", stats(mean_grads=[G[0], torch.zeros(3)]))
    with pytest.raises(ValueError, match="one to one"):
        score("gradient", stats(mean_grads=[G[0]]))


def test_empty_unit_is_an_error():
    with pytest.raises(ValueError):
        score("weight", UnitStats(weights=[]))


def test_unknown_criterion_lists_known_names():
    with pytest.raises(UserError, match="unknown pruning criterion 'magnitude'.*weight, zeros, threshold"):
        score("magnitude", stats())
    with pytest.raises(UserError):
        prunability("magnitude", 1.0)


def test_prunability_orientation():
    assert prunability("weight", 2.0) == -2.0
    assert prunability("taylor", 0.5) == -0.5
    assert prunability("zeros", 0.5) == 0.5
    assert prunability("threshold", 0.25) == 0.25
    # a unit with smaller weights is more prunable under 'weight'
    assert prunability("weight", 0.1) > prunability("weight", 0.2)


def test_requires_grad_tensors_are_accepted():
    w = [torch.tensor([1.0, -1.0], requires_grad=True)]
    assert score("weight", UnitStats(weights=w)) == pytest.approx(1.0)


def test_removal_is_the_given_effect_and_never_a_silent_zero():
    assert score("removal", stats(removal_effect=0.25)) == pytest.approx(0.5 / N)  # RMS loss change per parameter
    with pytest.raises(MissingStatistics, match="removal"):
        score("removal", stats())
