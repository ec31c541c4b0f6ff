"""Does ``train.compile`` (torch.compile of the towers) help on CPU? Times a training step
(forward + backward + SGD) of a tiny CLIP eagerly and compiled, in one process, and prints the
median step times, their ratio and the one-off compile time.

    python benchmarks/compile_cpu.py [--model tiny] [--batch 32] [--steps 10]

Measured (tiny-s, batch 8, 1 thread, 5 steps, on a shared 2-core node under heavy load):
eager median step 721.7 ms; compiled 683.6 ms (ratio 0.947) after a first step of 745.9 s of
compilation, so compiling pays off only after ~19,000 steps. That is why train.compile is
refused on CPU. (tiny, batch 32: the eager median was 12.5 s per step under that load and the
compiled first step did not finish within the 15 min limit.)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from clipscale.models.clip import CLIP
from clipscale.models.registry import get_spec
from clipscale.train.step import compute_loss


def step_times(model: CLIP, images, tokens, steps: int) -> tuple[float, list[float]]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = compute_loss(model(images, tokens), "softmax")
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return times[0], times[1:]          # the first step includes compilation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = get_spec(args.model)
    images = torch.randn(args.batch, 3, spec.image.image_size, spec.image.image_size)
    tokens = torch.randint(1, spec.text.vocab_size, (args.batch, spec.text.context_length))
    results = {}
    for name in ("eager", "compiled"):
        torch.manual_seed(0)
        model = CLIP(spec)
        if name == "compiled":
            model.visual.compile()
            model.text.compile()
        first, rest = step_times(model, images, tokens, args.steps)
        results[name] = (first, statistics.median(rest))
        print(f"{name}: first step {first:.2f} s, median step {statistics.median(rest) * 1e3:.1f} ms")
    eager, compiled = results["eager"][1], results["compiled"][1]
    print(f"compiled/eager median step time: {compiled / eager:.3f} "
          f"(compile overhead {results['compiled'][0] - compiled:.1f} s)")


if __name__ == "__main__":
    main()
