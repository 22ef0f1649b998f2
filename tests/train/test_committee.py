"""Committees average their members' probabilities, each member with its own normalization."""

from __future__ import annotations

import numpy as np
import pytest

from handnet.data.split import Normalization
from handnet.errors import ModelFileError
from handnet.nn.losses import softmax
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.committee import as_logits, check_compatible, committee_proba, committee_votes


def member(seed: int, mean: float, std: float, classes: list[str] | None = None) -> Classifier:
    net = MLP(16, (8,), 3, rng=np.random.default_rng(seed))
    return Classifier(net, Normalization(mean, std), classes or ["a", "b", "c"], (4, 4))


def test_committee_is_the_mean_of_member_probabilities() -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4)).astype(np.uint8)
    m1, m2 = member(0, 0.1, 0.3), member(1, 0.5, 2.0)  # different normalizations
    p1, p2 = m1.predict_proba(images), m2.predict_proba(images)
    np.testing.assert_allclose(committee_proba([m1, m2], images), (p1 + p2) / 2, rtol=1e-6)
    np.testing.assert_allclose(committee_proba([m1], images), p1, rtol=1e-6)
    np.testing.assert_allclose(
        softmax(as_logits(committee_proba([m1, m2], images))), (p1 + p2) / 2, rtol=1e-5
    )
    proba, answers = committee_votes([m1, m2], images)
    np.testing.assert_array_equal(proba, committee_proba([m1, m2], images))
    np.testing.assert_array_equal(answers, [p1.argmax(axis=1), p2.argmax(axis=1)])
    # Each member applies its own normalization: swapping m2's stats changes the committee.
    m2b = member(1, 0.1, 0.3)
    assert not np.allclose(committee_proba([m1, m2b], images), committee_proba([m1, m2], images))


def test_members_must_agree_on_classes_and_inputs() -> None:
    with pytest.raises(ModelFileError, match=r"b\.safetensors: classes"):
        check_compatible(
            [member(0, 0, 1), member(1, 0, 1, ["x", "y", "z"])], ["a.safetensors", "b.safetensors"]
        )
    odd = Classifier(
        MLP(9, (4,), 3, rng=np.random.default_rng(0)), Normalization(0, 1), ["a", "b", "c"], (3, 3)
    )
    with pytest.raises(ModelFileError, match="takes 9 inputs"):
        check_compatible([member(0, 0, 1), odd], ["a", "odd"])
    with pytest.raises(ModelFileError, match="a committee needs at least one model"):
        committee_proba([], np.zeros((2, 4, 4), np.uint8))
