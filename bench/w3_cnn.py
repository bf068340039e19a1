"""w3_cnn.py - W3 in PyTorch: conv 3x3 1->32, relu, maxpool 2, conv 3x3 32->64, relu,
maxpool 2, linear 3136->10 (padding 1, as cgrad's SAME), batch 64, cross-entropy, Adam 1e-3.
Median training step over Fashion-MNIST batches."""
import sys

import torch
from torch_common import QUICK, batches, load_mnist, median, now, report

nn = torch.nn
steps = 3 if QUICK else int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 30
torch.manual_seed(1)
model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(7 * 7 * 64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
images, labels = load_mnist(True)
t = []
for k, (x, y) in enumerate(batches(images, labels, 64, 1)):
    if k >= 3 + steps:
        break
    t0 = now()
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    loss.item()
    if k >= 3:
        t.append(now() - t0)
report("w3.step_ms", 1e3 * median(t), "ms", "median CNN training step (forward, backward, Adam), batch 64")
