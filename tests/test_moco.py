import math

import torch

from nacscope.moco import CodeQueue, moco_nac_loss


def _slow(a_q, z_k, logits, queue, p, flips, mode, l2):
    kappa = 0.5 * math.log((1 - p) / p)
    s = 1 / kappa if mode == "divide" else kappa
    keys = [z_k[j] for j in range(len(z_k))] + [queue[j] for j in range(len(queue))]
    total = 0.0
    for i in range(a_q.shape[0]):
        z = [math.tanh(float(v)) for v in a_q[i]]
        y = [float(flips[i, d]) * z[d] for d in range(len(z))]
        ll = sum(0.5 * y[d] * float(logits[i, d]) - math.log(2 * math.cosh(0.5 * float(logits[i, d]))) + math.log(2)
                 for d in range(len(z)))
        dots = [s * sum(y[d] * float(k[d]) for d in range(len(z))) for k in keys]
        mx = max(dots)
        lse = mx + math.log(sum(math.exp(v - mx) for v in dots))
        total += lse - ll + l2 * sum(v * v for v in z)
    return total / a_q.shape[0]


def test_loss_matches_slow_reference_both_kappa_modes():
    g = torch.Generator().manual_seed(0)
    b, d, k = 5, 7, 11
    a_q, z_k = torch.randn(b, d, generator=g, dtype=torch.float64), torch.tanh(torch.randn(b, d, generator=g, dtype=torch.float64))
    logits, queue = torch.randn(b, d, generator=g, dtype=torch.float64), torch.tanh(torch.randn(k, d, generator=g, dtype=torch.float64))
    flips = torch.where(torch.rand(b, d, generator=g) < 0.3, -1.0, 1.0).double()
    for mode in ("divide", "multiply"):
        got = moco_nac_loss(a_q, z_k, logits, queue, 0.3, flips, kappa_mode=mode, l2=0.01)
        assert abs(float(got) - _slow(a_q, z_k, logits, queue, 0.3, flips, mode, 0.01)) < 1e-12


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    a_q = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z_k, queue = torch.randn(3, 4, dtype=torch.float64).tanh(), torch.randn(6, 4, dtype=torch.float64).tanh()
    flips = torch.tensor([[1.0, -1, 1, 1], [1, 1, -1, 1], [-1, 1, 1, 1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, l: moco_nac_loss(a, z_k, l, queue, 0.2, flips, l2=0.1), (a_q, logits))


def test_queue_fifo_matches_list_reference():
    q = CodeQueue(5, 2, dtype=torch.float64)
    ref = [[0.0, 0.0]] * 5
    ptr = 0
    for step in range(4):
        keys = torch.full((3, 2), float(step)) + torch.arange(3.0)[:, None]
        q.enqueue(keys)
        for row in keys.tolist():
            ref[ptr] = row
            ptr = (ptr + 1) % 5
        assert q.codes.tolist() == ref and q.ptr == ptr


def test_momentum_update_is_the_convex_combination():
    from nacscope.moco import momentum_update

    torch.manual_seed(0)
    q, k = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    wq, wk = q.weight.detach().clone(), k.weight.detach().clone()
    momentum_update(k, q, 0.9)
    assert torch.allclose(k.weight, 0.9 * wk + 0.1 * wq, atol=1e-7)
    assert torch.equal(q.weight, wq)
