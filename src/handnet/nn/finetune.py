"""Least-squares fine-tuning of the output layer (the seed's last step).

With the hidden layers frozen, the output layer is a linear regression from the last hidden
activation to the one-hot labels. With x_i = [h_i; 1] (the activation with a 1 appended for the
bias) and y_i one-hot, ridge regression gives

    W_out = (sum_i x_i x_i^T + ridge I)^-1 sum_i x_i y_i^T            (hidden + 1, classes)

The sums are accumulated in float64 over batches, so memory stays O(hidden^2) whatever the
training set size. The system is solved by Cholesky, falling back to lstsq if the matrix is not
numerically positive definite (ridge 0 and a rank-deficient activation matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import to_numpy
from handnet.nn.layers import Dense
from handnet.nn.model import MLP

Array = npt.NDArray[np.floating]


def hidden_features(net: MLP, X: Array) -> Array:
    """The last hidden activation (eval mode: no dropout) for a batch of inputs.

    Parameters
    ----------
    net : MLP
        The network.
    X : array, shape (N, n_in)
        Standardized inputs.

    Returns
    -------
    array, shape (N, hidden)
        h, the output layer's input, in a layer's buffer: valid until the next forward pass.
    """
    for layer in net.layers[:-1]:
        X = layer.forward(X, train=False)
    return X


def accuracy(net: MLP, X: Array, y: npt.NDArray[np.integer]) -> float:
    """Share of rows whose largest logit is the label (eval mode).

    Parameters
    ----------
    net : MLP
        The network.
    X : array, shape (N, n_in)
        Standardized inputs.
    y : array of int, shape (N,)
        Their labels, in ``X``'s library.

    Returns
    -------
    float
        The accuracy, in [0, 1] (NaN for N = 0).
    """
    return float((net.predict_logits(X).argmax(axis=1) == y).mean())


def normal_equations(
    net: MLP, X: Array, y: npt.NDArray[np.integer], n_classes: int, batch_size: int = 2048
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(sum x x^T, sum x y^T) in float64, x = [h; 1], accumulated batch by batch.

    Parameters
    ----------
    net : MLP
        The network; h is its last hidden activation.
    X : array, shape (N, n_in)
        Standardized inputs.
    y : ndarray of int, shape (N,)
        Their labels, in [0, n_classes).
    n_classes : int
        C, the number of columns of the one-hot y.
    batch_size : int, default=2048
        Rows per forward pass.

    Returns
    -------
    XtX : ndarray of float64, shape (hidden + 1, hidden + 1)
        sum_i x_i x_i^T.
    XtY : ndarray of float64, shape (hidden + 1, C)
        sum_i x_i y_i^T.
    """
    h = net.layers[-1].params["W"].shape[0]
    XtX = np.zeros((h + 1, h + 1))
    XtY = np.zeros((h + 1, n_classes))
    for i in range(0, X.shape[0], batch_size):
        H = hidden_features(net, X[i : i + batch_size])
        A = np.empty((H.shape[0], h + 1))
        A[:, :h] = to_numpy(H)
        A[:, h] = 1.0
        XtX += A.T @ A
        XtY += A.T @ np.eye(n_classes)[y[i : i + batch_size]]  # y one-hot (batch, classes)
    return XtX, XtY


def solve_ridge(
    XtX: npt.NDArray[np.float64], XtY: npt.NDArray[np.float64], ridge: float
) -> tuple[npt.NDArray[np.float64], str]:
    """(XtX + ridge I)^-1 XtY by Cholesky, or by lstsq if that fails.

    The ridge covers the bias row too (x ends in a 1), as the formula says: unlike the L2 penalty
    of training, which leaves biases alone. With ridge 1 against sums over ~55,000 rows, the bias
    is barely touched either way.

    Parameters
    ----------
    XtX : ndarray of float64, shape (hidden + 1, hidden + 1)
        sum_i x_i x_i^T (`normal_equations`).
    XtY : ndarray of float64, shape (hidden + 1, C)
        sum_i x_i y_i^T.
    ridge : float
        The ridge, >= 0.

    Returns
    -------
    W : ndarray of float64, shape (hidden + 1, C)
        The output layer's weights, with its bias as the last row.
    method : str
        ``"cholesky"``, or ``"lstsq"`` when the matrix was not numerically positive definite.
    """
    M = XtX + ridge * np.eye(XtX.shape[0])
    try:
        L = np.linalg.cholesky(M)
        Z = np.linalg.solve(L, XtY)  # L z = b
        W: npt.NDArray[np.float64] = np.linalg.solve(L.T, Z)  # L^T w = z
        return W, "cholesky"
    except np.linalg.LinAlgError:
        W = np.asarray(np.linalg.lstsq(M, XtY, rcond=None)[0], dtype=np.float64)
        return W, "lstsq"


@dataclass
class FinetuneResult:
    """What `finetune_output` did: the method, and the validation accuracy before and after.

    Parameters
    ----------
    val_before : float or None
        Validation accuracy with the trained output layer; None without a validation split.
    val_after : float or None
        Validation accuracy with the least-squares output layer; None without a validation split.
    kept : bool
        Whether the least-squares layer was kept (validation accuracy did not drop).
    method : str
        How the system was solved, ``"cholesky"`` or ``"lstsq"`` (`solve_ridge`).
    ridge : float
        The ridge used.
    """

    val_before: float | None
    val_after: float | None
    kept: bool
    method: str
    ridge: float

    @property
    def message(self) -> str:
        """One line for the terminal: method, ridge, validation before -> after, kept or not."""
        if self.val_before is None or self.val_after is None:
            return f"least-squares output layer ({self.method}, ridge {self.ridge:g}) kept: no validation split to check it on"
        verdict = "kept" if self.kept else "discarded (validation accuracy dropped)"
        return (
            f"least-squares output layer ({self.method}, ridge {self.ridge:g}): validation "
            f"{self.val_before:.2%} -> {self.val_after:.2%}, {verdict}"
        )

    def to_dict(self) -> dict[str, object]:
        """The fields by name, as the run's metrics.json stores them under ``finetune``.

        Returns
        -------
        dict of str to object
            ``val_before``, ``val_after``, ``kept``, ``method`` and ``ridge``.
        """
        return {
            "val_before": self.val_before,
            "val_after": self.val_after,
            "kept": self.kept,
            "method": self.method,
            "ridge": self.ridge,
        }


def finetune_output(
    net: MLP,
    X_train: Array,
    y_train: npt.NDArray[np.integer],
    X_val: Array,
    y_val: npt.NDArray[np.integer],
    ridge: float = 1.0,
) -> FinetuneResult:
    """Replace the output layer by its least-squares fit, unless validation accuracy drops.

    Inputs are standardized as the network expects. The layer is modified in place.

    Parameters
    ----------
    net : MLP
        The trained network; its output layer is replaced in place.
    X_train : array, shape (n_train, n_in)
        Training inputs, for the normal equations.
    y_train : ndarray of int, shape (n_train,)
        Training labels.
    X_val : array, shape (n_val, n_in)
        Validation inputs; n_val may be 0 (the fit is then kept unchecked).
    y_val : array of int, shape (n_val,)
        Validation labels.
    ridge : float, default=1.0
        The ridge added to the diagonal of sum x x^T.

    Returns
    -------
    FinetuneResult
        The method, the validation accuracy before and after, and whether the fit was kept.
    """
    out = net.layers[-1]
    assert isinstance(out, Dense)
    has_val = len(y_val) > 0
    before = accuracy(net, X_val, y_val) if has_val else None
    XtX, XtY = normal_equations(net, X_train, y_train, net.n_out)
    W, method = solve_ridge(XtX, XtY, ridge)
    old = {k: v.copy() for k, v in out.params.items()}
    out.params["W"][...] = W[:-1]
    out.params["b"][...] = W[-1]
    after = accuracy(net, X_val, y_val) if has_val else None
    kept = before is None or after is None or after >= before
    if not kept:
        for k, v in old.items():
            out.params[k][...] = v
    return FinetuneResult(before, after, kept, method, ridge)
