"""The command line's one error path and its one flag style: every verb's bad input ends with exit
code 2 and one message on stderr naming the field; flags come from typed models."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from clipscale.cli import main, parse_args
from clipscale.cli.flags import add_model_flags, model_from_args
from clipscale.errors import ClipscaleError, ConfigError

REPO = Path(__file__).resolve().parents[1]

RUN = """\
data: {train_shards: shards}
stages: [{image_size: 64, text_tokens: 16}]
train: {samples_seen: 4096, global_batch_size: 64}
"""


@pytest.fixture
def run_yaml(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(RUN, encoding="utf-8")
    return p


@pytest.fixture
def sweep_yaml(tmp_path, run_yaml):
    p = tmp_path / "sweep.yaml"
    p.write_text("name: s\nbase: run.yaml\naxes: {train.num_worker: [1, 2]}\n", encoding="utf-8")
    return p


def every_verb_case(tmp_path, run_yaml, sweep_yaml):
    return {
        "train": (["train", str(run_yaml), "--train.zero_stage", "4"], "train.zero_stage"),
        "train unknown field": (["train", str(run_yaml), "--train.zero_stag", "1"], "train.zero_stag: unknown key"),
        "sweep": (["sweep", str(sweep_yaml), "--dry-run"], "axes.train.num_worker"),
        "sweep options": (["sweep", str(sweep_yaml), "--startup-s", "-1"], "startup_s"),
        "curate": (["curate", "--input", "a", "--output", "b", "--metadata", "c", "--workers", "0"], "workers"),
        "curate missing field": (["curate", "--output", "b", "--metadata", "c"], "input: Field required"),
        "build-metadata": (["curate", "build-metadata", "--out", str(tmp_path / "md")], "nothing to build"),
        "emoji-world": (["data", "emoji-world", "--out", str(tmp_path / "w"), "--noise-share", "2"], "noise_share"),
        "lexicons": (["data", "lexicons", "--out", str(tmp_path / "lx"), "--languages", "xx"], "unknown language 'xx'"),
        "tokenizer": (["tokenizer", "train", "--shards", "x", "--out", "t.model", "--vocab-size", "10"], "vocab_size"),
        "flops": (["flops", "--models", "ViT-X"], "known models"),
        "demo": (["demo", "--num-samples", "0"], "num_samples"),
        "analyze": (["analyze", str(tmp_path / "missing")], "no such file or folder"),
        # a location pyarrow cannot open: the StorageError reaches the one handler
        "analyze storage": (["analyze", "hdfs://nohost:1/x", "--out", str(tmp_path / "f")], "results table: hdfs://"),
    }


CASES = ["train", "train unknown field", "sweep", "sweep options", "curate", "curate missing field",
         "build-metadata", "emoji-world", "lexicons", "tokenizer", "flops", "demo", "analyze", "analyze storage"]


@pytest.mark.parametrize("case", CASES)
def test_every_verb_reports_bad_input_on_stderr_with_exit_2(case, tmp_path, run_yaml, sweep_yaml, capsys):
    argv, field = every_verb_case(tmp_path, run_yaml, sweep_yaml)[case]
    assert main(argv) == 2
    captured = capsys.readouterr()
    verb = argv[0]
    assert captured.err.startswith(f"clipscale {verb}: error: "), captured.err
    assert field in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_python_m_clipscale_cli_is_the_same_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "clipscale.cli", "demo", "--num-samples", "0"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.startswith("clipscale demo: error: invalid demo options") and "num_samples" in proc.stderr


def test_every_error_class_shares_one_base():
    from analysis.checks import DegenerateInputError
    from analysis.wandb_records import CorruptRunFile
    from clipscale.curation.balance import ThresholdError
    from clipscale.curation.job import CurationError
    from clipscale.curation.metadata import MetadataError
    from clipscale.data.images import ImageDecodeError
    from clipscale.data.shards import ShardError
    from clipscale.storage import StorageError
    from clipscale.sweep.cluster_file import CostError
    from clipscale.text.tokenizer import TokenizerNotFoundError

    classes = [ConfigError, StorageError, CostError, ShardError, ThresholdError, MetadataError, CurationError,
               ImageDecodeError, TokenizerNotFoundError, CorruptRunFile, DegenerateInputError]
    assert all(issubclass(c, ClipscaleError) for c in classes)
    # the standard bases callers catch stay what they were
    assert issubclass(StorageError, OSError) and issubclass(ConfigError, ValueError)
    assert issubclass(TokenizerNotFoundError, FileNotFoundError)


class Knobs(BaseModel):
    path: str = Field(description="where")
    size: int = Field(3, ge=1, description="how many")
    on: bool = Field(True, description="switch")
    mode: str = Field("a", description="mode")
    names: list[str] | None = Field(None, description="names")
    mix: dict[str, float] | None = Field(None, description="shares")


def test_flags_are_generated_from_the_model():
    parser = argparse.ArgumentParser()
    add_model_flags(parser, Knobs, positional=("path",))
    args = parser.parse_args(["p", "--size", "5", "--no-on", "--names", "a,b", "c", "--mix", "en=1,ja=3"])
    k = model_from_args(args, Knobs)
    assert (k.path, k.size, k.on, k.names, k.mix) == ("p", 5, False, ["a", "b", "c"], {"en": 1.0, "ja": 3.0})
    defaults = model_from_args(parser.parse_args(["p"]), Knobs)
    assert defaults == Knobs(path="p")   # unset flags keep the model's defaults
    with pytest.raises(ConfigError, match=r"invalid options command line:\n  size: Input should be greater"):
        model_from_args(parser.parse_args(["p", "--size", "0"]), Knobs)


def test_dotted_flags_become_overrides(run_yaml):
    args = parse_args(["train", str(run_yaml), "--train.lr", "3e-4", "--stages.0.image_size=32",
                       "--set", "model.name=tiny-s", "--resume"])
    assert args.overrides == ["model.name=tiny-s", "train.lr=3e-4", "stages.0.image_size=32"]
    assert args.resume is True
