"""torch_common.py - what the PyTorch workloads share: thread settings, the clock and the
output format bench/run reads ("key value unit  what", as `cgrad bench` prints), Fashion-MNIST
kept as bytes and converted per batch, and the W2-sized MLP with its Adam step."""
import gzip
import os
import resource
import struct
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
DATA_DIR = os.environ.get("BENCH_DATA", "/usr/share/datasets/fashion-mnist")
QUICK = "--quick" in sys.argv


def now():
    return time.perf_counter()


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def report(key, value, unit, what):
    print(f"{key:<22} {value:12.6g} {unit:<6} {what}", flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(shape)


def load_mnist(train):
    """Images as uint8 [n, 1, 28, 28] and labels as int64 [n]: the bytes, not floats."""
    split = "train" if train else "t10k"
    find = lambda base: next(p for p in (f"{DATA_DIR}/{base}.gz", f"{DATA_DIR}/{base}")
                             if os.path.exists(p))
    images = _idx(find(f"{split}-images-idx3-ubyte")).unsqueeze(1)
    labels = _idx(find(f"{split}-labels-idx1-ubyte")).long()
    return images, labels


def batches(images, labels, batch, epoch, shuffle=True):
    """Batches of one epoch, each converted to float32 / 255 when it is taken."""
    n = labels.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)) if shuffle \
        else torch.arange(n)
    for i in range(0, n, batch):
        idx = order[i:i + batch]
        yield images[idx].float().div_(255), labels[idx]


class MLP(torch.nn.Module):
    """784-256-256-10 with ReLU (W2, W5) or tanh (W4); `after_first` runs after layer 1."""

    def __init__(self, act=torch.relu):
        super().__init__()
        torch.manual_seed(1)
        self.l1 = torch.nn.Linear(784, 256)
        self.l2 = torch.nn.Linear(256, 256)
        self.l3 = torch.nn.Linear(256, 10)
        self.act = act

    def forward(self, x, after_first=None):
        h = self.act(self.l1(x.flatten(1)))
        if after_first is not None:
            h = after_first(h)
        return self.l3(self.act(self.l2(h)))


def mlp_step(model, opt, x, y, after_first=None):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x, after_first), y)
    loss.backward()
    opt.step()
    return loss.item()


def accuracy(model):
    images, labels = load_mnist(False)
    correct = 0
    with torch.no_grad():
        for x, y in batches(images, labels, 1000, 0, shuffle=False):
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / labels.shape[0]
