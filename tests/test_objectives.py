"""nac_loss against a slow per-sample float64 reference, gradcheck, and 1 vs 2 gloo processes."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.multiprocessing as mp

from nacscope.objectives import channel_kappa, draw_flips, nac_loss, simclr_loss


def slow_nac_loss(a_1, a_2, logits_1, logits_2, p, flips):
    """Straight from NAC-NOTES §2, one view and one bit at a time, in float64 Python arithmetic."""
    b, d = a_1.shape
    kappa = 0.5 * math.log((1 - p) / p)
    a = torch.cat([a_1, a_2]).tolist()
    z = [[math.tanh(v) for v in row] for row in a]
    total = 0.0
    for i in range(2 * b):
        l_row = (logits_2[i] if i < b else logits_1[i - b]).tolist()  # partner's prediction of view i
        y = [flips[i, k].item() * z[i][k] for k in range(d)]
        loglik = sum(0.5 * y[k] * l_row[k] - math.log(2 * math.cosh(0.5 * l_row[k])) + math.log(2) for k in range(d))
        scores = [kappa * sum(y[k] * z[j][k] for k in range(d)) for j in range(2 * b)]
        top = max(scores)
        lse = top + math.log(sum(math.exp(s - top) for s in scores))
        total += -loglik + lse
    return total / (2 * b)


def _inputs(b, d, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g, dtype=torch.float64) * scale for _ in range(4)]


@pytest.mark.parametrize("b,d,p", [(1, 1, 0.1), (3, 5, 0.1), (4, 16, 0.4), (8, 7, 0.25), (5, 32, 0.05)])
@pytest.mark.parametrize("given_flips", [True, False])
def test_nac_loss_matches_slow_reference(b, d, p, given_flips):
    a_1, a_2, l_1, l_2 = _inputs(b, d, seed=b * 100 + d, scale=2.0)
    if given_flips:
        flips = draw_flips((2 * b, d), p, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
        got = nac_loss(a_1, a_2, l_1, l_2, p, flips)
    else:  # flips drawn inside: the same generator state must give the same signs
        got = nac_loss(a_1, a_2, l_1, l_2, p, generator=torch.Generator().manual_seed(7))
        flips = draw_flips((2 * b, d), p, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    want = slow_nac_loss(a_1, a_2, l_1, l_2, p, flips)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert got.item() == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_nac_loss_known_value_and_kappa():
    # B = 1, D = 1, a = 0 everywhere: z = 0, y = 0, so L = -(−log 2cosh(l/2) + log 2) + logsumexp(0, 0)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    l = torch.full((1, 1), 2.0, dtype=torch.float64)
    got = nac_loss(zero, zero, l, l, 0.1, torch.ones(2, 1, dtype=torch.float64))
    assert got.item() == pytest.approx(math.log(2 * math.cosh(1.0)) - math.log(2) + math.log(2), rel=1e-14)
    assert channel_kappa(0.1) == pytest.approx(1.0986, abs=1e-4)
    assert channel_kappa(0.4) == pytest.approx(0.2027, abs=1e-4)


def test_flip_rate_is_p():
    f = draw_flips((400, 250), 0.3, generator=torch.Generator().manual_seed(0))
    assert set(f.unique().tolist()) == {-1.0, 1.0}
    assert (f == -1).float().mean().item() == pytest.approx(0.3, abs=0.005)


def test_nac_loss_gradcheck():
    a_1, a_2, l_1, l_2 = [t.requires_grad_() for t in _inputs(3, 4, seed=1)]
    flips = draw_flips((6, 4), 0.2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(lambda *t: nac_loss(*t, 0.2, flips), (a_1, a_2, l_1, l_2))


def test_bad_shapes_and_p_raise():
    a = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        nac_loss(a, a, a, torch.zeros(2, 4), 0.1)
    with pytest.raises(ValueError):
        nac_loss(a, a, a, a, 0.5)
    with pytest.raises(ValueError):
        nac_loss(a, a, a, a, 0.1, torch.ones(2, 3))


def slow_simclr(z_1, z_2, t):
    z = torch.nn.functional.normalize(torch.cat([z_1, z_2]), dim=1).tolist()
    n, b = len(z), len(z_1)
    total = 0.0
    for i in range(n):
        sims = [sum(x * y for x, y in zip(z[i], z[j])) / t for j in range(n)]
        denom = sum(math.exp(s) for j, s in enumerate(sims) if j != i)
        total += -(sims[(i + b) % n] - math.log(denom))
    return total / n


@pytest.mark.parametrize("b,d,t", [(2, 3, 0.5), (5, 8, 0.1)])
def test_simclr_matches_slow_reference(b, d, t):
    z_1, z_2, _, _ = _inputs(b, d, seed=b + d)
    assert simclr_loss(z_1, z_2, t).item() == pytest.approx(slow_simclr(z_1.float(), z_2.float(), t), rel=1e-5)


# ----------------------------------------------------------------------------- 1 process vs 2 gloo ranks


def _rank_worker(rank: int, world: int, init_file: str, cases: list[dict], out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = []
        for inputs in cases:
            big_b = inputs["a_1"].shape[0]
            b = big_b // world
            rows = slice(rank * b, (rank + 1) * b)
            local = {k: inputs[k][rows].clone().requires_grad_() for k in ("a_1", "a_2", "l_1", "l_2")}
            flips = torch.cat([inputs["flips"][rows], inputs["flips"][big_b + rank * b : big_b + (rank + 1) * b]])
            loss = nac_loss(local["a_1"], local["a_2"], local["l_1"], local["l_2"], inputs["p"], flips, gather=True)
            loss.backward()
            s_in = {k: inputs[k][rows].clone().requires_grad_() for k in ("a_1", "a_2")}
            s_loss = simclr_loss(s_in["a_1"], s_in["a_2"], 0.3, gather=True)
            s_loss.backward()
            results.append({"loss": loss.detach(), "grads": {k: v.grad for k, v in local.items()},
                            "s_loss": s_loss.detach(), "s_grads": {k: v.grad for k, v in s_in.items()}})
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    """Each rank holds half the global batch; the mean of the rank losses and the rank gradients / world
    (what DDP's gradient averaging gives) equal the single-process loss and gradients, for NAC and SimCLR."""
    big_b, d, world = 6, 5, 2
    cases = []
    for p in (0.1, 0.4):
        a_1, a_2, l_1, l_2 = _inputs(big_b, d, seed=int(p * 100))
        flips = draw_flips((2 * big_b, d), p, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        cases.append({"a_1": a_1, "a_2": a_2, "l_1": l_1, "l_2": l_2, "flips": flips, "p": p})
    mp.spawn(_rank_worker, args=(world, str(tmp_path / "init"), cases, str(tmp_path)), nprocs=world, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]

    for c, case in enumerate(cases):
        single = {k: case[k].clone().requires_grad_() for k in ("a_1", "a_2", "l_1", "l_2")}
        loss = nac_loss(single["a_1"], single["a_2"], single["l_1"], single["l_2"], case["p"], case["flips"])
        loss.backward()
        s_single = {k: case[k].clone().requires_grad_() for k in ("a_1", "a_2")}
        s_loss = simclr_loss(s_single["a_1"], s_single["a_2"], 0.3)
        s_loss.backward()
        ranks = [q[c] for q in parts]
        assert torch.stack([q["loss"] for q in ranks]).mean().item() == pytest.approx(loss.item(), rel=1e-12)
        assert torch.stack([q["s_loss"] for q in ranks]).mean().item() == pytest.approx(s_loss.item(), rel=1e-6)
        for k, t in single.items():
            torch.testing.assert_close(torch.cat([q["grads"][k] for q in ranks]) / world, t.grad, rtol=1e-12, atol=1e-14)
        for k, t in s_single.items():
            torch.testing.assert_close(torch.cat([q["s_grads"][k] for q in ranks]) / world, t.grad, rtol=1e-5, atol=1e-7)
