"""``clipscale demo``: the one-command main job."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="pool -> curation -> tokenizer -> the demo sweep -> figures, on the built-in emoji world")
    p.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    p.add_argument("--num-samples", type=int, default=20_000, help="emoji-world pool size")
    p.add_argument("--sweep", default=None, help="sweep YAML to run (default: sweeps/demo.yaml)")
    p.set_defaults(func=run)


def run(args) -> int:
    from clipscale.demo import REPO_SWEEPS, run_demo

    done = run_demo(Path(args.out), args.num_samples, Path(args.sweep) if args.sweep else REPO_SWEEPS / "demo.yaml")
    print(f"\n== clipscale demo: done in {done['wall_s'] / 60:.1f} min ==")
    for name, path in done["outputs"].items():
        print(f"  {name:18s} {path}")
    return 0
