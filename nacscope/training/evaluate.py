"""Quick evaluation during and after training: k-NN on features, Hamming mAP and k-NN on codes."""

from __future__ import annotations


import numpy as np
import torch


from nacscope.training.config import TrainConfig


@torch.no_grad()
def embed(model: torch.nn.Module, data, device: torch.device, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Features h (N, F) float32 and codes (N, D) bool of ``data`` (normalised, no augmentation)."""
    was_training = model.training
    model.eval()
    feats, codes = [], []
    for i in range(0, len(data), batch_size):
        x = data.normalize(data.images[i : i + batch_size].to(device))
        out = model(x)
        feats.append(out.h.float().cpu())
        codes.append((out.a > 0).cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(codes).numpy()


def _code_retrieval(q_codes: np.ndarray, g_codes: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray) -> dict:
    """Hamming-ranking mAP over the whole gallery (tie-aware) and Hamming k-NN accuracy of the codes."""
    from nacscope.analysis.retrieval import knn_accuracy, mean_average_precision

    q = np.packbits(q_codes, axis=1, bitorder="big")
    g = np.packbits(g_codes, axis=1, bitorder="big")
    return {
        "map": mean_average_precision(q, g, q_labels, g_labels, tie_aware=True),
        "code_knn_acc": knn_accuracy(q, g, q_labels, g_labels, k=20),
    }


def _knn_accuracy(q_feats: np.ndarray, g_feats: np.ndarray, q_labels: np.ndarray, g_labels: np.ndarray, k: int = 20) -> float:
    """Majority vote of the k nearest gallery features by cosine similarity (scikit-learn)."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(g_feats)), metric="cosine", algorithm="brute")
    clf.fit(g_feats, g_labels)
    return float((clf.predict(q_feats) == q_labels).mean())


def quick_eval(model, gallery, queries, device, max_gallery: int = 10000, max_queries: int = 2000) -> dict:
    """Quick evaluation of ``queries`` against ``gallery``.

    Keys: ``knn_acc`` (features, cosine, k=20), ``map`` (codes, Hamming ranking of the whole gallery,
    tie-aware), ``code_knn_acc`` (codes, Hamming, k=20), ``distinct_codes`` (among the queries).

    Large sets are capped to the first ``max_gallery`` / ``max_queries`` samples of a fixed permutation.
    """
    if gallery.labels is None or queries.labels is None:
        return {}
    perm_g = torch.randperm(len(gallery), generator=torch.Generator().manual_seed(0))[:max_gallery]
    perm_q = torch.randperm(len(queries), generator=torch.Generator().manual_seed(1))[:max_queries]
    gallery, queries = gallery.subset(perm_g), queries.subset(perm_q)
    g_feats, g_codes = embed(model, gallery, device)
    q_feats, q_codes = embed(model, queries, device)
    g_lab, q_lab = gallery.labels.numpy(), queries.labels.numpy()
    # k-NN classification needs one class per sample; multi-hot sets (FLICKR-25K) get retrieval only
    out = {"knn_acc": _knn_accuracy(q_feats, g_feats, q_lab, g_lab) if q_lab.ndim == 1 else None}
    out.update(_code_retrieval(q_codes, g_codes, q_lab, g_lab))
    out["distinct_codes"] = int(len(np.unique(np.packbits(q_codes, axis=1), axis=0)))
    return out


def baseline_eval(cfg: TrainConfig, seed: int | None = None) -> dict:
    """The same quick evaluation for a randomly initialised model of the same architecture."""
    from nacscope.data import load_dataset
    from nacscope.nets import random_init

    train_data = load_dataset(cfg.dataset, "train", root=cfg.root)
    test_data = load_dataset(cfg.dataset, "test", root=cfg.root)
    kw = {"hidden": tuple(cfg.hidden)} if cfg.arch == "mlp" else {}
    model = random_init(cfg.arch, cfg.bits, cfg.seed if seed is None else seed, train_data.channels,
                        train_data.image_size, head_dim=cfg.head_dim, **kw)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu")
    return quick_eval(model.to(device), train_data, test_data, device)
