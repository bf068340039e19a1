"""w5_custom.py - W5 in PyTorch: the W2 step with a torch.autograd.Function after the first
layer (identity forward, gradient clamped to [-1, 1]) against the plain step, mixed on one
model in the fixed pseudo-random order w5_custom.c uses, over two epochs; both medians and
the overhead in percent."""
import torch
from torch_common import MLP, QUICK, batches, load_mnist, median, mlp_step, now, report


class ClipGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, dy):
        return dy.clamp(-1, 1)


images, labels = load_mnist(True)
model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
t = ([], [])
order = 1
steps = ((x, y) for epoch in (1, 2) for x, y in batches(images, labels, 128, epoch))
for k, (x, y) in enumerate(steps):
    if QUICK and k >= 20:
        break
    order = (order * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
    custom = order >> 63
    t0 = now()
    mlp_step(model, opt, x, y, ClipGradient.apply if custom else None)
    t[custom].append(now() - t0)
plain, custom = median(t[0][1:]), median(t[1][1:])
report("w5.plain_ms", 1e3 * plain, "ms", "median W2 step without the custom gradient")
report("w5.custom_ms", 1e3 * custom, "ms", "median W2 step with it (alternating steps)")
report("w5.overhead_pct", 100 * (custom - plain) / plain, "%", "cost of the custom gradient, in percent of the plain step")
