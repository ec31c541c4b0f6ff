"""A trained model, loaded from wherever training or export left it.

``load_trained(path)`` accepts
- a run folder (``output_dir/NAME``: ``run_config.json``, ``run_info.json``, ``tokenizer.model`` and
  Ray's ``checkpoint_*`` folders): its last checkpoint;
- one checkpoint folder (``checkpoint_*``: DeepSpeed's ``latest`` file and its tag folder of model and
  ZeRO stage 0-3 optimizer shards, ``train_state.json``); the run files are its parent's;
- an exported folder (``clipscale export``: ``clipscale_model.json`` beside open_clip's files).

ZeRO shards are consolidated into one fp32 state dict with DeepSpeed's own
``zero_to_fp32.get_fp32_state_dict_from_zero_checkpoint`` (the fp32 master weights held by the
optimizer shards); a stage-0 fp32 checkpoint has no shards and its model file holds the weights.
A missing, truncated or corrupt file is a ``CheckpointError`` naming it.
"""
from __future__ import annotations

import contextlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from clipscale.errors import CheckpointError  # noqa: F401  (raised here; part of this module's API)
from clipscale.models.registry import ModelSpec
from clipscale.train.checkpoint import TAG, TrainState

EXPORT_MANIFEST = "clipscale_model.json"
CHECKPOINT_GLOB = "checkpoint_*"


@dataclass(frozen=True)
class TrainedModel:
    model: torch.nn.Module           # clipscale.models.clip.CLIP, fp32, eval mode
    spec: ModelSpec
    loss: str                        # "softmax" or "sigmoid"
    tokenizer_path: Path
    state: TrainState                # step, samples_seen, compute, ...
    run_config: dict | None          # the run's RunConfig as JSON (None if unknown)
    source: Path                     # the folder given to load_trained
    kind: Literal["run", "checkpoint", "export"]
    checkpoint: Path | None          # the checkpoint folder read (None for an export)

    @property
    def name(self) -> str:
        return (self.run_config or {}).get("name") or self.source.name

    def tokenizer(self):
        from clipscale.text.tokenizer import load_tokenizer
        return load_tokenizer(self.tokenizer_path)


# ---------------------------------------------------------------------------- locating

def last_checkpoint(run_dir: str | Path) -> Path:
    """The run's newest checkpoint folder. Ray names them ``checkpoint_<timestamp>`` (older versions
    ``checkpoint_<zero-padded index>``): both sort by name."""
    run_dir = Path(run_dir)
    found = sorted(p for p in run_dir.glob(CHECKPOINT_GLOB) if p.is_dir())
    if not found:
        raise CheckpointError(f"{run_dir}: no {CHECKPOINT_GLOB} folder (has the run saved a checkpoint?)")
    return found[-1]


def classify(path: str | Path) -> Literal["run", "checkpoint", "export"]:
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"{p}: not a folder (expected a run, checkpoint or exported model folder)")
    if (p / EXPORT_MANIFEST).is_file():
        return "export"
    if (p / "latest").is_file() or (p / TAG).is_dir() or (p / "train_state.json").is_file():
        return "checkpoint"
    if (p / "run_info.json").is_file() or any(p.glob(CHECKPOINT_GLOB)):
        return "run"
    raise CheckpointError(f"{p}: neither a run folder (run_info.json), a checkpoint folder (latest, "
                          f"{TAG}/) nor an exported model ({EXPORT_MANIFEST})")


# ---------------------------------------------------------------------------- reading

def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def read_train_state(checkpoint: Path) -> TrainState:
    raw = _read_json(checkpoint / "train_state.json")
    try:
        return TrainState(**raw)
    except TypeError as e:
        raise CheckpointError(f"{checkpoint / 'train_state.json'}: {e}") from None


def _check_torch_file(path: Path) -> None:
    """torch.save writes a zip archive whose index sits at the end: a truncated or overwritten file
    fails here, before DeepSpeed's loader reports it without the file's name."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint file ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint file (bad CRC in member {bad})")


def consolidated_state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """One fp32 state dict (clipscale's parameter names) from a checkpoint folder of any ZeRO stage."""
    checkpoint = Path(checkpoint)
    latest = checkpoint / "latest"
    tag = latest.read_text().strip() if latest.is_file() else TAG
    shards_dir = checkpoint / tag
    if not shards_dir.is_dir():
        raise CheckpointError(f"{shards_dir}: missing (the checkpoint's DeepSpeed folder)")
    files = sorted(shards_dir.glob("*.pt"))
    model_files = [f for f in files if f.name.endswith("_model_states.pt")]
    if not model_files:
        raise CheckpointError(f"{shards_dir}: no *_model_states.pt file (incomplete checkpoint)")
    for f in files:
        _check_torch_file(f)
    zero_shards = [f for f in files if "zero_pp_rank" in f.name and f.name.endswith("_optim_states.pt")]
    if zero_shards:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
        # DeepSpeed prints its progress and shard bars; a user of export/eval sees only our lines
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), tag=tag)
        except (ValueError, KeyError, RuntimeError, FileNotFoundError, EOFError) as e:
            raise CheckpointError(f"{shards_dir}: cannot consolidate the ZeRO shards ({e})") from None
    else:  # stage 0 without a ZeRO optimizer: the model file holds the (fp32) weights
        blob = torch.load(model_files[0], map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or "module" not in blob:
            raise CheckpointError(f"{model_files[0]}: no 'module' weights in the model states file")
        state = blob["module"]
    return {k.removeprefix("module."): v.float() for k, v in state.items()}


def build_model(spec: ModelSpec, loss: str, state_dict: dict[str, torch.Tensor], source: Path):
    """A CLIP with these weights in eval mode; missing or unexpected weights name ``source``."""
    from clipscale.models.clip import CLIP

    model = CLIP(spec, loss=loss)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the {spec.name} model "
                              f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})")
    for key, value in model.state_dict().items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{source}: weight {key} has shape {tuple(state_dict[key].shape)}, "
                                  f"the model expects {tuple(value.shape)}")
    model.load_state_dict(state_dict)
    return model.eval()


def _run_spec(run_dir: Path) -> tuple[dict, ModelSpec, str, Path]:
    from clipscale.config import build_run_config
    from clipscale.train.plan import model_spec

    raw = _read_json(run_dir / "run_config.json")
    info = _read_json(run_dir / "run_info.json")
    try:
        cfg = build_run_config(raw, source=str(run_dir / "run_config.json"))
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if "vocab_size" not in info:
        raise CheckpointError(f"{run_dir / 'run_info.json'}: no vocab_size field")
    tokenizer = run_dir / "tokenizer.model"
    if not tokenizer.is_file():
        raise CheckpointError(f"{tokenizer}: missing (the run's tokenizer)")
    return raw, model_spec(cfg, vocab_size=int(info["vocab_size"])), cfg.train.loss, tokenizer


def load_trained(path: str | Path) -> TrainedModel:
    """Load a run folder's last checkpoint, one checkpoint folder, or an exported folder (CPU, fp32)."""
    source = Path(path).resolve()
    kind = classify(source)
    if kind == "export":
        from clipscale.export.open_clip_format import load_export
        return load_export(source)
    checkpoint = last_checkpoint(source) if kind == "run" else source
    run_dir = checkpoint.parent
    raw, spec, loss, tokenizer = _run_spec(run_dir)
    state = read_train_state(checkpoint)
    model = build_model(spec, loss, consolidated_state_dict(checkpoint), checkpoint)
    return TrainedModel(model=model, spec=spec, loss=loss, tokenizer_path=tokenizer, state=state,
                        run_config=raw, source=source, kind=kind, checkpoint=checkpoint)
