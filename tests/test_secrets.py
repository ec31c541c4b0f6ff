"""No secret from the environment lands in anything a run or a sweep writes: logs, results rows,
W&B offline files (config included), Tune results, checkpoints, and the Ray session's own files.
A tiny real run and a one-trial real sweep with fake keys set; every file they wrote is searched
byte-wise. Slow (~1-2 minutes)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_train import REPO, tiny_config, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.long]

SECRET_VARS = ("WANDB_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
               "GOOGLE_OAUTH_ACCESS_TOKEN", "AZURE_STORAGE_KEY", "HF_TOKEN", "GITHUB_TOKEN")


def files_containing(root: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and not p.name.endswith((".sock", ".lock")):
            try:
                data = p.read_bytes()
            except OSError:
                continue
            for var, value in needles.items():
                if value in data:
                    hits.setdefault(var, []).append(str(p.relative_to(root)))
    return hits


def test_no_secret_in_any_file_a_run_and_a_sweep_write(tiny_pool, tmp_path):
    fake = {v: f"fake-{v.lower()}-{secrets.token_hex(12)}" for v in SECRET_VARS}
    ray_tmp = Path(f"/tmp/cs-sec-{secrets.token_hex(3)}")  # Ray's socket paths must stay short
    env = {**os.environ, **fake, "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled",
           "RAY_TMPDIR": str(ray_tmp), "WANDB_SILENT": "true"}
    try:
        run = tiny_config(tiny_pool, tmp_path / "runs", "sec", samples_seen=1024,
                          checkpoint_every_samples=512)
        run["eval"]["every_samples"] = 1024
        cfg = write_yaml(run, tmp_path / "sec.yaml")
        log = tmp_path / "runs" / "train.log"
        log.parent.mkdir()
        with open(log, "w") as out:
            r = subprocess.run([sys.executable, "-m", "clipscale.cli", "train", str(cfg)], cwd=REPO, env=env,
                               stdout=out, stderr=subprocess.STDOUT, timeout=600)
        assert r.returncode == 0, log.read_text()[-3000:]

        base = {k: v for k, v in run.items() if k != "name"}
        base["output_dir"] = str(tmp_path / "sweeps")
        sweep = tmp_path / "sec-sweep.yaml"
        sweep.write_text(yaml.safe_dump({"name": "secsweep", "base": base, "axes": {"train.lr": [2e-3]}}))
        (tmp_path / "sweeps").mkdir()
        with open(tmp_path / "sweeps" / "sweep.log", "w") as out:
            r = subprocess.run([sys.executable, "-m", "clipscale.cli", "sweep", str(sweep)], cwd=REPO, env=env,
                               stdout=out, stderr=subprocess.STDOUT, timeout=600)
        assert r.returncode == 0, (tmp_path / "sweeps" / "sweep.log").read_text()[-3000:]

        written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
        assert any(p.suffix == ".wandb" for p in written) and any("checkpoint_" in str(p) for p in written)
        assert list((tmp_path / "sweeps").rglob("result.json")) and list((tmp_path / "sweeps").rglob("*.parquet"))
        needles = {v: s.encode() for v, s in fake.items()}
        assert files_containing(tmp_path, needles) == {}
        assert ray_tmp.is_dir()
        # Known leak, not ours: Ray 2.60's runtime-env agent writes the AWS_* variables of the
        # environment it starts in to its own log (docs/reliability.md, "Secrets"). Anything more
        # (another file, another variable, the W&B key) fails here.
        leaks = files_containing(ray_tmp, needles)
        assert set(leaks) <= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}, leaks
        assert all(f.endswith("logs/runtime_env_agent.log") for files in leaks.values() for f in files), leaks
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], timeout=60)
