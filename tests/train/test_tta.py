"""Test-time augmentation: the average it computes, where its transforms come from, its errors."""

from __future__ import annotations

import numpy as np
import pytest

from handnet.data.augment import Augmenter
from handnet.data.split import Normalization
from handnet.errors import ConfigError, ModelFileError
from handnet.nn.losses import softmax
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.committee import committee_proba
from handnet.train.config import TrainConfig
from handnet.train.tta import check_augmented, training_augmentation, tta_proba, view_average_proba

AUGMENTED = TrainConfig(aug_rotate=10, aug_scale=0.1, aug_elastic_alpha=30, aug_elastic_sigma=5)


def model(seed: int = 0, cfg: TrainConfig | None = AUGMENTED) -> Classifier:
    net = MLP(64, (16,), 3, rng=np.random.default_rng(seed))
    meta = {"config": cfg.to_dict()} if cfg else {}
    return Classifier(net, Normalization(0.2, 0.3), ["a", "b", "c"], (8, 8), meta=meta)


def images(n: int = 12) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 8, 8)).astype(np.uint8)


def test_no_views_is_the_plain_prediction() -> None:
    clf = model()
    np.testing.assert_allclose(tta_proba(clf, images()), clf.predict_proba(images()), rtol=1e-6)


def test_views_average_the_image_and_its_transformed_copies() -> None:
    clf = model()
    x = clf.prepare(images())
    got = view_average_proba(clf, x, 3, np.random.default_rng(7))
    # By hand: the same draws, from the model's training augmentation, on the standardized input
    # with standardized black filling in from outside the image.
    augment = Augmenter(
        AUGMENTED.augment_spec(), (8, 8), np.random.default_rng(7), fill=clf.norm.black
    )
    views = [x] + [augment(x) for _ in range(3)]
    want = sum(softmax(clf.net.predict_logits(v)).astype(np.float64) for v in views) / 4
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float64 and np.allclose(got.sum(axis=1), 1.0)
    assert not np.allclose(got, view_average_proba(clf, x))  # the copies changed something


def test_same_seed_same_answer_other_seed_other_draws() -> None:
    clf = model()
    a = tta_proba(clf, images(), 4, np.random.default_rng(0))
    np.testing.assert_array_equal(a, tta_proba(clf, images(), 4, np.random.default_rng(0)))
    assert not np.array_equal(a, tta_proba(clf, images(), 4, np.random.default_rng(1)))


def test_large_inputs_are_augmented_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk's rows get the copies of their own images. The chunks draw in turn, view after
    view, so the first chunk of a single view is drawn as if it were the whole input."""
    import handnet.train.tta

    clf = model()
    x = clf.prepare(images())
    monkeypatch.setattr(handnet.train.tta, "CHUNK", 5)  # 12 images: chunks of 5, 5, 2
    got = view_average_proba(clf, x, 2, np.random.default_rng(0))
    # By hand: the same draws in the same order, chunk by chunk within each view.
    augment = Augmenter(
        AUGMENTED.augment_spec(), (8, 8), np.random.default_rng(0), fill=clf.norm.black
    )
    want = softmax(clf.net.predict_logits(x)).astype(np.float64)
    for _ in range(2):
        for rows in (slice(0, 5), slice(5, 10), slice(10, 12)):
            want[rows] += softmax(clf.net.predict_logits(augment(x[rows])))
    np.testing.assert_allclose(got, want / 3, rtol=1e-6)
    one_view = view_average_proba(clf, x, 1, np.random.default_rng(0))
    np.testing.assert_allclose(
        one_view[:5], view_average_proba(clf, x[:5], 1, np.random.default_rng(0)), rtol=1e-6
    )


def test_each_committee_member_gives_what_it_gives_alone() -> None:
    m1, m2 = model(0), model(1)
    rng = np.random.default_rng(3)
    got = committee_proba([m1, m2], images(), 2, rng)
    alone = [tta_proba(m, images(), 2, np.random.default_rng(3)) for m in (m1, m2)]
    np.testing.assert_allclose(got, (alone[0] + alone[1]) / 2, rtol=1e-12)
    np.testing.assert_array_equal(committee_proba([m2, m1], images(), 2, rng), got)
    np.testing.assert_array_equal(committee_proba([m1, m1], images(), 2, rng), alone[0])


def test_transforms_come_from_the_stored_training_config() -> None:
    assert training_augmentation(model()) == AUGMENTED.augment_spec()
    with pytest.raises(ModelFileError, match="stores no training config"):
        training_augmentation(model(cfg=None))
    with pytest.raises(ConfigError, match="trained without augmentation"):
        training_augmentation(model(cfg=TrainConfig(aug_shift=0)))
    broken = model()
    broken.meta["config"]["aug_rotate"] = -5
    with pytest.raises(ModelFileError, match="stored config: aug_rotate=-5"):
        training_augmentation(broken)
    with pytest.raises(ModelFileError, match=r"^b\.safetensors: the model file stores no"):
        check_augmented([model(), model(cfg=None)], ["a.safetensors", "b.safetensors"])
    check_augmented([model()], ["a.safetensors"])
    with pytest.raises(ConfigError, match=r"needs a numpy\.random\.Generator"):
        tta_proba(model(), images(), 2)
    with pytest.raises(ConfigError, match=r"needs a numpy\.random\.Generator"):
        tta_proba(model(), images(), 2, 7)  # type: ignore[arg-type]  # a seed, not a Generator
    with pytest.raises(ConfigError, match="views=-1: must be a whole number >= 0"):
        tta_proba(model(), images(), -1, np.random.default_rng(0))
