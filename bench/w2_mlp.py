"""w2_mlp.py - W2 in PyTorch: Fashion-MNIST, 784-256-256-10 ReLU, cross-entropy, Adam 1e-3,
batch 128, data kept as bytes and converted per batch. Median step (forward, backward,
update), median epoch (batching included), test accuracy after each epoch, peak RSS."""
import sys

import torch
from torch_common import (MLP, QUICK, accuracy, batches, load_mnist, median, mlp_step, now,
                          peak_rss_mb, report)

epochs = 1 if QUICK else int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 2
images, labels = load_mnist(True)
model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
steps, epoch_s = [], []
for e in range(1, epochs + 1):
    t0 = now()
    for k, (x, y) in enumerate(batches(images, labels, 128, e)):
        if QUICK and k >= 40:
            break
        ts = now()
        mlp_step(model, opt, x, y)
        steps.append(now() - ts)
    epoch_s.append(now() - t0)
    report(f"w2.acc_epoch{e}", 100 * accuracy(model), "%", f"test accuracy after epoch {e}")
report("w2.step_ms", 1e3 * median(steps), "ms", "median training step (forward, backward, Adam), batch 128")
if not QUICK:
    report("w2.epoch_s", median(epoch_s), "s", "median epoch, 60,000 images, batching included")
report("w2.rss_mb", peak_rss_mb(), "MiB", "peak resident memory of the process")
