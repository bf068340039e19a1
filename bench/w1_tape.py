"""w1_tape.py - W1 in PyTorch: 1000 x y = tanh(y*w + b) on 1x1 and 64x64 tensors, then the
gradient of y w.r.t. w and b; ns per op (elapsed / 3000) for the forward without autograd,
under autograd, forward+backward eager, and forward+backward of the loop traced with
torch.jit.trace. The JIT's optimising executor is off: on this 3000-op graph its profiling
runs take 10-16 s each and the optimised graph runs no faster (4.5 us/op either way)."""
import torch
from torch_common import QUICK, median, now, report

torch._C._set_graph_executor_optimize(False)

ITERS = 1000


def chain(y, w, b):
    for _ in range(ITERS):
        y = torch.tanh(y * w + b)
    return y


def run(mode, fn, y0, w, b):
    t0 = now()
    if mode == "forward":
        with torch.no_grad():
            fn(y0, w, b)
    elif mode == "taped":
        fn(y0, w, b)
    else:
        y = fn(y0, w, b)
        torch.autograd.grad(y, (w, b), torch.ones_like(y))
    return (now() - t0) * 1e9 / (3 * ITERS)


def measure(n, repeats):
    g = torch.Generator().manual_seed(1)
    y0 = torch.rand(n, n, generator=g) * 2 - 1
    w = (torch.rand(n, n, generator=g) * 2 - 1).requires_grad_()
    b = ((torch.rand(n, n, generator=g) * 2 - 1) * 0.1).requires_grad_()
    traced = torch.jit.trace(chain, (y0, w, b), check_trace=False)
    what = {"forward": "ns/op forward, no autograd", "taped": "ns/op forward under autograd",
            "fwd_bwd": "ns/op forward+backward, eager", "traced": "ns/op forward+backward, torch.jit.trace"}
    for mode in ("forward", "taped", "fwd_bwd", "traced"):
        fn = traced if mode == "traced" else chain
        mode_run = "fwd_bwd" if mode == "traced" else mode
        run(mode_run, fn, y0, w, b)
        t = [run(mode_run, fn, y0, w, b) for _ in range(repeats)]
        report(f"w1.{n}x{n}.{mode}", median(t), "ns", f"{what[mode]}, {n}x{n}, median of {repeats}")


measure(1, 3 if QUICK else 21)
measure(64, 3 if QUICK else 9)
