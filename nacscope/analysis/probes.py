"""Probes: how much label information the codes and features carry.

* ``linear_probe`` on features: ``protocol="fast"`` (default) is scikit-learn's multinomial logistic
  regression (L-BFGS) on standardised features; ``protocol="paper"`` is the NAC paper's protocol as far
  as stored features allow: a linear layer trained with SGD (Nesterov momentum 0.9, lr 1.0, cosine
  schedule, batch 1000, 100 epochs). The paper also crops and flips images while training the probe;
  features in a code set are fixed, so that part cannot be reproduced from a file.
* ``logistic_code_probe``: logistic regression on the {0,1} bits of a layer, and ``knn_code_probe``:
  k-NN classification by Hamming distance, as in He et al., "Neural networks behave as hash encoders".

Train/test split: the file's gallery trains and its queries test; without a split, a seeded
stratified 80/20 split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nacscope.analysis.cached import ALGORITHM_VERSION, cache_key, cached_or_compute, well_formed
from nacscope.analysis.knn import hamming_topk
from nacscope.analysis.metrics import dense_class_ids, knn_predict
from nacscope.errors import OptionError
from nacscope.progress import Progress

if TYPE_CHECKING:
    from nacscope.codes.format import CodeSet

PROTOCOLS = ("fast", "paper")


def train_test_rows(labels: np.ndarray, query_mask: np.ndarray | None, *, test_fraction: float = 0.2,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): gallery/queries when there is a split, else a stratified random split."""
    n = len(labels)
    if query_mask is not None and query_mask.any() and (~query_mask).any():
        return np.flatnonzero(~query_mask), np.flatnonzero(query_mask)
    if n < 2:
        raise OptionError("a probe needs at least two labelled samples")
    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    _, counts = np.unique(labels, return_counts=True)
    strat = labels if counts.min() >= 2 and int(round(test_fraction * n)) >= len(counts) else None
    tr, te = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=strat)
    return np.sort(tr), np.sort(te)


def _check_xy(x_train, y_train, x_test, y_test) -> None:
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise OptionError("a probe needs one label per training and test row")
    if len(x_train) == 0 or len(x_test) == 0:
        raise OptionError("a probe needs non-empty training and test sets")


def logistic_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                      C: float = 1.0, max_iter: int = 500, standardize: bool = True) -> float:
    """Test accuracy of multinomial logistic regression (scikit-learn, L-BFGS)."""
    _check_xy(x_train, y_train, x_test, y_test)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_train)) < 2:
        return float(np.mean(y_test == y_train[0]))
    steps = [StandardScaler()] if standardize else []
    clf = make_pipeline(*steps, LogisticRegression(C=C, max_iter=max_iter))
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(np.asarray(x_train, dtype=np.float32), y_train)
    return float(np.mean(clf.predict(np.asarray(x_test, dtype=np.float32)) == y_test))


def _paper_linear_probe(x_train, y_train, x_test, y_test, *, epochs: int, batch: int, lr: float, seed: int,
                        progress: Progress | None) -> float:
    import torch

    g = torch.Generator().manual_seed(seed)
    y_train, y_test = dense_class_ids(y_train, y_test)
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32))  # (N, F)
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = torch.nn.Linear(xt.shape[1], n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    for ep in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for s in range(0, len(xt), batch):
            idx = perm[s : s + batch]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if progress is not None:
            progress(ep + 1, epochs, "linear probe")
    with torch.no_grad():
        pred = model(torch.as_tensor(np.asarray(x_test, dtype=np.float32))).argmax(dim=1).numpy()
    return float(np.mean(pred == y_test))


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                 protocol: str = "fast", epochs: int = 100, batch: int = 1000, lr: float = 1.0, seed: int = 0,
                 progress: Progress | None = None) -> float:
    """Test accuracy of a linear classifier on frozen features (see the module docstring for protocols)."""
    if protocol not in PROTOCOLS:
        raise OptionError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    _check_xy(x_train, y_train, x_test, y_test)
    if protocol == "fast":
        return logistic_accuracy(x_train, y_train, x_test, y_test)
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    return _paper_linear_probe((x_train - mu) / sd, y_train, (x_test - mu) / sd, y_test, epochs=epochs, batch=batch,
                               lr=lr, seed=seed, progress=progress)


def logistic_code_probe(bits_train: np.ndarray, y_train: np.ndarray, bits_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of logistic regression on {0,1} code bits (unpacked, (N, units))."""
    return logistic_accuracy(bits_train, y_train, bits_test, y_test, standardize=False)


def knn_code_probe(packed_train: np.ndarray, y_train: np.ndarray, packed_test: np.ndarray, y_test: np.ndarray,
                   k: int = 10) -> float:
    """Test accuracy of k-NN classification by Hamming distance on packed codes (ties: see ``knn_predict``)."""
    _check_xy(packed_train, y_train, packed_test, y_test)
    idx, _ = hamming_topk(packed_test, packed_train, k)  # (T, k)
    y_train, y_test = dense_class_ids(y_train, y_test)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    return float(np.mean(knn_predict(y_train[idx], n_classes) == y_test))


def analyze_probes(cs: "CodeSet", layer: str, *, k: int = 10, protocol: str = "fast", use_cache: bool = True,
                   progress: Progress | None = None) -> dict:
    """Probe accuracies for one layer of a class-labelled code set (cached in the file).

    Returns:
        ``{"train", "test", "logistic_codes", "knn_codes", "knn_k", "linear_features", "features",
        "protocol"}``; ``linear_features`` is None when the file stores no features.
    """
    labels = cs.labels()
    if labels is None or labels.ndim != 1:
        raise OptionError("probes need class labels (one class per sample)")
    params = {"v": ALGORITHM_VERSION, "what": "probes", "layer": layer, "k": k, "protocol": protocol}

    def compute():
        tr, te = train_test_rows(labels, cs.query_mask)
        units = cs.layer(layer).units
        packed = cs.packed(layer)
        from nacscope.codes.format import unpack_bits

        bits = unpack_bits(packed, units)
        out = {
            "train": int(len(tr)),
            "test": int(len(te)),
            "logistic_codes": logistic_code_probe(bits[tr], labels[tr], bits[te], labels[te]),
            "knn_codes": knn_code_probe(packed[tr], labels[tr], packed[te], labels[te], k=k),
            "knn_k": int(min(k, len(tr))),
            "features": None,
            "linear_features": None,
            "protocol": protocol,
        }
        feats = cs.features()
        if feats is not None:
            f = feats.astype(np.float32)
            out["features"] = "h" if "h" in cs.feature_names else cs.feature_names[0]
            out["linear_features"] = linear_probe(f[tr], labels[tr], f[te], labels[te], protocol=protocol,
                                                  progress=progress)
        return out, {}

    def check(result, arrays) -> bool:
        return well_formed(result, arrays, ("train", "test", "logistic_codes", "knn_codes", "knn_k", "features",
                                            "linear_features", "protocol"))

    return cached_or_compute(cs, cache_key("probes", layer), params, use_cache, compute, check)[0]
