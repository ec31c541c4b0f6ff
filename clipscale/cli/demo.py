"""``clipscale demo``: the one-command main job."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class DemoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: str = Field("demo", description="output folder")
    num_samples: int | None = Field(None, ge=1, description="emoji-world pool size (unset: the demo's own, demo.DEMO_POOL_SAMPLES)")
    sweep: str | None = Field(None, description="sweep YAML to run (unset: sweeps/demo.yaml)")


def register(sub) -> None:
    p = sub.add_parser("demo", help="pool -> curation -> tokenizer -> the demo sweep -> figures, on the built-in emoji world")
    add_model_flags(p, DemoOptions)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipscale.demo import DEMO_POOL_SAMPLES, REPO_SWEEPS, run_demo

    opts = model_from_args(args, DemoOptions, kind="demo options")
    done = run_demo(Path(opts.out), opts.num_samples or DEMO_POOL_SAMPLES, Path(opts.sweep) if opts.sweep else REPO_SWEEPS / "demo.yaml")
    quiet_ray()
    print(f"\n== clipscale demo: done in {done['wall_s'] / 60:.1f} min ==")
    for name, path in done["outputs"].items():
        print(f"  {name:18s} {path}")
    if "summary" in done["outputs"]:
        print_verdicts(Path(done["outputs"]["summary"]))
    return 0


def quiet_ray() -> None:
    """Stop Ray (and its log streaming) before the result lines, so no worker chatter follows them."""
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
    sys.stderr.flush()


def print_verdicts(summary: Path) -> None:
    """The three effects' verdict lines, the demo's last output."""
    import json

    from analysis.effects_report import summary_verdicts

    print("\n== effects (95% intervals; see report.md) ==")
    for line in summary_verdicts(json.loads(summary.read_text())):
        print(f"  {line}")
    print(end="", flush=True)
