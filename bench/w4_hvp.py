"""w4_hvp.py - W4 in PyTorch: Hessian-vector product of the mean cross-entropy of the
784-256-256-10 tanh network (batch 128) w.r.t. all its parameters, by double backward
(torch.autograd.grad with create_graph, then the gradient of <g, v>). Also times the
product's 22 GEMMs alone (torch.mm on the same shapes and layouts), as bench/w4_hvp.c does
through cgrad's GEMM path."""
import sys

import torch
from torch_common import MLP, QUICK, batches, load_mnist, median, now, report

steps = 3 if QUICK else int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 40
images, labels = load_mnist(True)
x, y = next(batches(images, labels, 128, 1))
model = MLP(torch.tanh)
params = list(model.parameters())
g = torch.Generator().manual_seed(100)
v = [torch.randn(p.shape, generator=g) for p in params]
t = []
for k in range(3 + steps):
    t0 = now()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(grads, v))
    hv = torch.autograd.grad(dot, params)
    hv[0].sum().item()
    if k >= 3:
        t.append(now() - t0)
report("w4.hvp_ms", 1e3 * median(t), "ms", "median Hessian-vector product (double backward), batch 128")

# (m, n, k, transpose_a, transpose_b), as in bench/w4_hvp.c
GEMMS = [(128, 256, 784, 0, 0), (128, 256, 256, 0, 0), (128, 10, 256, 0, 0), (256, 10, 128, 1, 0),
         (128, 256, 10, 0, 1), (256, 256, 128, 1, 0), (128, 256, 256, 0, 1), (784, 256, 128, 1, 0),
         (128, 256, 784, 0, 0), (128, 256, 256, 0, 0), (256, 256, 128, 1, 0), (128, 256, 256, 0, 1),
         (128, 256, 256, 0, 0), (128, 10, 256, 0, 0), (256, 10, 128, 1, 0), (128, 256, 10, 0, 1),
         (128, 10, 256, 0, 0), (128, 256, 10, 0, 1), (256, 10, 128, 1, 0), (128, 256, 256, 0, 1),
         (256, 256, 128, 1, 0), (784, 256, 128, 1, 0)]
operands = [(torch.randn(k, m).t() if ta else torch.randn(m, k),
             torch.randn(n, k).t() if tb else torch.randn(k, n)) for m, n, k, ta, tb in GEMMS]
t = []
for k in range(2 + 31):
    t0 = now()
    for a, b in operands:
        torch.mm(a, b)
    if k >= 2:
        t.append(now() - t0)
report("w4.floor_ms", 1e3 * median(t), "ms", "the product's 22 GEMMs alone (362 MFLOP)")
