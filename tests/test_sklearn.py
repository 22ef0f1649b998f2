"""HandnetClassifier: scikit-learn's own estimator checks, a grid search on digits, and the
behaviour handnet adds (seeded runs, model files, partial_fit, the shared training loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")  # an optional extra; it is in the test extra, so CI has it

from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from handnet.data import dataset_from_arrays
from handnet.errors import ModelFileError
from handnet.nn.model import MLP
from handnet.sklearn import HandnetClassifier
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs
from handnet.train.fit import TrainState, fit
from handnet.train.modelfile import load_model, read_metadata, save_model

pytestmark = pytest.mark.usefixtures("one_blas_thread")

# The checked instance uses the library defaults: scikit-learn's checks fit on at most a few
# hundred rows, where 20 epochs of a 256-wide layer take milliseconds. No check is expected to
# fail, so no expected_failed_checks are declared; a new failure in a later scikit-learn fails
# this test rather than hiding behind an xfail.


@parametrize_with_checks([HandnetClassifier()])
def test_sklearn_estimator_checks(estimator: HandnetClassifier, check: Any) -> None:
    check(estimator)


def blobs(n: int = 120, labels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=3, n_features=5, random_state=0)
    return X, (np.asarray(labels)[y] if labels is not None else y)


def test_pipeline_in_grid_search_on_digits() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    net = HandnetClassifier(
        hidden_sizes=(32,), epochs=10, random_state=0
    )  # 13 fits: keep each small
    pipe = make_pipeline(StandardScaler(), net)
    grid = GridSearchCV(
        pipe, {"handnetclassifier__lr": [0.01, 0.1], "handnetclassifier__dropout": [0.0, 0.2]}, cv=3
    )
    grid.fit(X_train, y_train)
    assert set(grid.cv_results_["params"][0]) == {
        "handnetclassifier__lr",
        "handnetclassifier__dropout",
    }
    assert grid.best_score_ > 0.9
    assert grid.score(X_test, y_test) > 0.9  # refit on all training rows, scored once
    assert grid.best_estimator_[-1].n_iter_ == 10


@pytest.mark.parametrize(
    "labels",
    [["cat", "dog", "emu"], [-3, 7, 100], [1.0, 2.0, 4.0], [False, True, True]],
    ids=["str", "int", "float", "bool"],
)
def test_any_labels_come_back_as_given(labels: list[Any]) -> None:
    X, y = blobs(labels=labels)
    clf = HandnetClassifier(epochs=10, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.unique(labels))
    pred = clf.predict(X)
    assert pred.dtype == np.asarray(y).dtype and set(pred) <= set(labels)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-9, atol=1e-12)


def test_many_classes_and_features_and_fitted_attributes() -> None:
    rng = np.random.default_rng(0)
    X, y = make_blobs(n_samples=400, centers=12, n_features=37, random_state=0)
    clf = HandnetClassifier(hidden_sizes=(32, 16), activation="relu", epochs=15, random_state=0)
    clf.fit(X + rng.normal(0, 0.1, X.shape), y)
    assert clf.n_features_in_ == 37 and len(clf.classes_) == 12
    assert clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.95
    assert [layer.params["W"].shape for layer in clf.state_.model.dense_layers()] == [
        (37, 32),
        (32, 16),
        (16, 12),
    ]
    assert all(p.dtype == np.float32 for p in clf.state_.model.parameters().values())
    assert not hasattr(clf, "validation_scores_")


def test_validation_fraction_reports_scores() -> None:
    X, y = blobs(n=200)
    clf = HandnetClassifier(epochs=5, validation_fraction=0.2, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == 5 and clf.validation_scores_[-1] > 0.9
    with pytest.raises(ValueError, match=r"validation_fraction=0\.01"):
        HandnetClassifier(validation_fraction=0.01).fit(X, y)


def test_same_random_state_same_model_and_different_otherwise() -> None:
    X, y = blobs()
    a = HandnetClassifier(epochs=3, random_state=5).fit(X, y)
    b = HandnetClassifier(epochs=3, random_state=5).fit(X, y)
    c = HandnetClassifier(epochs=3, random_state=6).fit(X, y)
    for k, v in a.state_.model.parameters().items():
        np.testing.assert_array_equal(v, b.state_.model.parameters()[k])
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    for rs in (np.random.default_rng(1), np.random.RandomState(1), None):
        other = HandnetClassifier(epochs=3, random_state=rs).fit(X, y)
        assert other.seed_ >= 0 and other.score(X, y) > 0.5


def test_fit_is_handnet_train_fit_on_the_same_data() -> None:
    """No second implementation: the estimator's weights are those of handnet's own loop."""
    X, y = blobs()
    clf = HandnetClassifier(hidden_sizes=(8,), epochs=4, batch_size=16, random_state=3).fit(X, y)
    cfg = clf._config(3)
    data = dataset_from_arrays(X, y.astype(np.int64), ["0", "1", "2"])
    state = TrainState.fresh(cfg, 5, 3, Rngs.from_seed(3))
    fit(state, data, cfg, progress=False)
    for k, v in state.model.parameters().items():
        np.testing.assert_array_equal(clf.state_.model.parameters()[k], v)


def test_bad_input_gives_clear_errors() -> None:
    X, y = blobs()
    clf = HandnetClassifier(epochs=2, random_state=0)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(X_nan, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but HandnetClassifier is expecting 5"):
        clf.predict(X[:, :4])
    with pytest.raises(ValueError, match="Unknown label type"):
        HandnetClassifier().fit(X, np.linspace(0, 1, len(X)))
    bad_params: list[tuple[dict[str, Any], str]] = [
        ({"lr": -1.0}, "lr=-1.0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"activation": "sigmoid"}, "activation='sigmoid'"),
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
        ({"random_state": -2}, "random_state=-2"),
        # not converted first: 2.9 epochs would have been 2, "no" would have been true
        ({"epochs": 2.9}, "epochs=2.9: must be a whole number"),
        ({"hidden_sizes": (2.7,)}, r"hidden_sizes=\(2\.7,\): must be a list of whole numbers"),
        ({"nesterov": "no"}, "nesterov='no': must be true or false"),
        ({"lr": "a"}, "lr='a': must be a number"),
        ({"batch_size": None}, "batch_size=None: must be a whole number"),
        ({"validation_fraction": "x"}, "validation_fraction='x'"),
    ]
    for bad, msg in bad_params:
        with pytest.raises(ValueError, match=msg):
            HandnetClassifier(**bad).fit(X, y)
    # a fit that fails on a parameter leaves the earlier fit as it was
    clf.set_params(lr=-1.0)
    with pytest.raises(ValueError, match=r"lr=-1\.0"):
        clf.fit(X, y + 10)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.score(X, y) > 0.5


def test_partial_fit_continues_one_epoch_per_call() -> None:
    X, y = blobs(labels=["a", "b", "c"])
    clf = HandnetClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:60], y[:60], classes=["a", "b", "c"])
    first = clf.loss_curve_[0]
    for _ in range(9):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10 and clf.loss_curve_[-1] < first
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"labels \['z'\] that are not in classes_"):
        clf.partial_fit(X[:2], np.array(["a", "z"]))
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(X, y, classes=["a", "b"])
    # partial_fit after fit continues the fitted network
    fitted = HandnetClassifier(epochs=3, random_state=0).fit(X, y).partial_fit(X, y)
    assert fitted.n_iter_ == 4


def test_save_and_load_through_handnet_model_file(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    X, y = blobs(labels=["cat", "dog", "emu"])
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    clf = HandnetClassifier(hidden_sizes=(16,), epochs=5, random_state=0).fit(df, y)
    path = clf.save(tmp_path / "clf.safetensors")
    back = HandnetClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(df), clf.predict_proba(df))
    np.testing.assert_array_equal(back.predict(df), clf.predict(df))
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert list(back.feature_names_in_) == ["f0", "f1", "f2", "f3", "f4"]
    assert back.get_params() == {**clf.get_params(), "random_state": clf.seed_}
    assert back.n_iter_ == 5 and back.loss_curve_ == clf.loss_curve_
    back.partial_fit(df, y)  # a loaded estimator can keep training
    assert back.n_iter_ == 6
    # handnet's own loader reads the same file and predicts the same: the features are
    # standardized as they are, not scaled like pixels first (format 3 says so)
    own = load_model(path)
    assert own.classes == ["cat", "dog", "emu"] and not own.pixels
    assert read_metadata(path)["format_version"] == 3
    np.testing.assert_allclose(own.predict_proba(X * 40), clf.predict_proba(df * 40), atol=1e-5)
    assert own.predict(X * 40) == list(clf.predict(df * 40))
    # integer labels keep their dtype through the file
    ints = HandnetClassifier(epochs=2, random_state=0).fit(X, np.arange(len(X)) % 3 * 10)
    again = HandnetClassifier.load(ints.save(tmp_path / "ints.safetensors"))
    assert again.classes_.dtype == ints.classes_.dtype and list(again.classes_) == [0, 10, 20]


def test_load_rejects_a_model_not_saved_by_the_estimator(tmp_path: Path) -> None:
    net = MLP(4, (3,), 2, rng=np.random.default_rng(0))
    from handnet.data import Normalization

    path = save_model(
        Classifier(net, Normalization(0.0, 1.0), ["0", "1"], (4,)), tmp_path / "cli.safetensors"
    )
    with pytest.raises(ModelFileError, match="not one saved by HandnetClassifier"):
        HandnetClassifier.load(path)
    with pytest.raises(ModelFileError, match="file not found"):
        HandnetClassifier.load(tmp_path / "missing.safetensors")
