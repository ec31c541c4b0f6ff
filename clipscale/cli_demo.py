"""``clipscale demo``: the one-command main job."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="pool -> curation -> tokenizer -> training -> figures, on the built-in emoji world")
    p.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    p.add_argument("--num-samples", type=int, default=40_000, help="emoji-world pool size")
    p.add_argument("--samples-seen", type=int, default=61_440, help="training length")
    p.add_argument("--model", default="tiny", help="registry model name")
    p.add_argument("--workers", type=int, default=2, help="Ray Train workers")
    p.set_defaults(func=run)


def run(args) -> int:
    from clipscale.demo import run_demo

    done = run_demo(Path(args.out), args.num_samples, args.samples_seen, args.model, args.workers)
    print("\n== clipscale demo: done ==")
    for name, path in done["outputs"].items():
        print(f"  {name:18s} {path}")
    return 0
