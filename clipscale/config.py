"""Typed run configuration: one pydantic object per component, filled from YAML or CLI flags.

Every field is validated where the config enters (``load_run_config``): an unknown key, a wrong
type or an impossible value raises ``ConfigError`` naming the file and the dotted field, before
Ray or DeepSpeed start. The CLI maps ``--section.field=value`` flags onto the same objects.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from clipscale import storage
from clipscale.choices import ImageReduction, LossKind, Precision, TextReduction, plain
from clipscale.config_core import merge, parse_overrides, read_yaml, validate
from clipscale.errors import ConfigError  # noqa: F401  (raised for every invalid config; imported from here too)
from clipscale.evaluation.suite_config import Suite, check_unique_names



class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_serializer(mode="wrap")
    def _choices_as_values(self, handler):
        # Enums inside the config, plain strings in every dump (YAML, JSON, the W&B config).
        return {k: plain(v) for k, v in handler(self).items()}


def _check_locations(value):
    """Location fields take a local path or a URI (s3://, gs://, file://); a URI's syntax is
    checked here, without the network (the launcher reaches it before workers start)."""
    for v in value if isinstance(value, list) else [value]:
        if storage.is_uri(v):
            storage.check_uri(v)
    return value


class DataConfig(Strict):
    train_shards: str | list[str] = Field(
        description="Training shards: a folder of .tar/.parquet shards, a glob, or a list of either; "
                    "local or a URI (s3://, gs://, file://; a URI's wildcards in its last component only).")
    shuffle_buffer: int = Field(2048, ge=0, description="Rows in each worker's local shuffle buffer (0: no shuffle).")
    read_parallelism: int = Field(4, ge=1, description="Concurrent shard-reading tasks in the Ray Data stream.")
    cache: bool = Field(
        False, description="Decode the training rows once and keep them in Ray's object store for every later "
                           "epoch (pools that fit in memory); the batches are the same as without it.")
    languages: list[str] | None = Field(
        None, min_length=1, description="Train only on captions in these languages (the json `language`); None: all.")
    english_share: float | None = Field(
        None, ge=0.0, le=1.0, description="Subsample the stream so English captions are this share of it "
                                          "(see train/language_mix.py); None: the pool's own mix.")
    online_epochs: int | None = Field(
        None, ge=1, description="Shards from `clipscale curate --mode online`: curation epochs (passes over "
                                "the pool, each with its own draw) the stream holds; None: estimated from the "
                                "first shard's keep probabilities with a margin (train/online_stream.py).")

    _locations = field_validator("train_shards")(_check_locations)

    @model_validator(mode="after")
    def _mix(self):
        if self.languages is not None and self.english_share is not None:
            if "en" not in self.languages and self.english_share > 0:
                raise ValueError(f"english_share={self.english_share} but languages {self.languages} exclude en")
            if self.languages == ["en"] and self.english_share < 1:
                raise ValueError(f"english_share={self.english_share} but languages is English only")
        return self


class ModelConfig(Strict):
    name: str = Field("tiny", description="Registry name: tiny-s, tiny, tiny-l, ViT-S-16, ..., ViT-bigG-14.")
    context_length: int | None = Field(None, ge=2, description="Text context length; default: the registry's.")
    text_pool: Literal["eot", "mean"] = Field("eot", description="Text pooling: the EOT token, or mean over non-pad tokens.")
    causal_text: bool = Field(True, description="Causal (CLIP) or bidirectional text attention.")
    grad_checkpointing: bool = Field(
        False, description="Activation checkpointing per transformer block (both towers): less "
                           "activation memory for one extra forward of each block in backward.")


class TokenizerConfig(Strict):
    path: str | None = Field(None, description="SentencePiece model to reuse (a path or URI); if unset, trained on the training captions and stored with the run.")

    _locations = field_validator("path")(_check_locations)
    vocab_size: int = Field(4096, ge=64, description="Vocabulary size when training a tokenizer.")
    train_samples: int = Field(50_000, ge=100, description="Captions read to train the tokenizer.")


class StageConfig(Strict):
    """One training stage (CLIPA schedules have several: short tokens first, then full length)."""

    samples: int | None = Field(None, gt=0, description="Samples seen in this stage; the last stage may leave it unset to take the rest.")
    image_size: int = Field(64, gt=0, description="Input resolution (pixels per side).")
    image_reduction: ImageReduction = Field(ImageReduction.NONE, description="How image tokens are reduced: resize is expressed by image_size; random/grid/block mask patches.")
    image_keep: float = Field(1.0, gt=0.0, le=1.0, description="Share of patch tokens kept by a mask reduction.")
    text_tokens: int | None = Field(None, ge=2, description="Text tokens fed to the text tower; default: the context length.")
    text_reduction: TextReduction = Field(TextReduction.TRUNCATE, description="How text is cut to text_tokens.")
    # A stage that sets its own optimisation (CLIPA's fine-tuning is a separate run with its own
    # batch, lr and warmup) gets its own warmup + decay over its own samples; see
    # docs/recipes.md. Unset: the run-wide train.* values and one schedule over the whole run.
    global_batch_size: int | None = Field(None, gt=0, description="This stage's global batch; default: train.global_batch_size.")
    lr: float | None = Field(None, gt=0, description="This stage's peak lr, absolute (exclusive with lr_per_256).")
    lr_per_256: float | None = Field(None, gt=0, description="This stage's peak lr per 256 samples of its global batch.")
    warmup_samples: int | None = Field(None, ge=0, description="This stage's warmup; default: train.warmup_samples.")

    @property
    def own_schedule(self) -> bool:
        return self.lr is not None or self.lr_per_256 is not None

    @model_validator(mode="after")
    def _one_lr_rule(self):
        if self.lr is not None and self.lr_per_256 is not None:
            raise ValueError("give lr or lr_per_256, not both")
        if self.warmup_samples is not None and not self.own_schedule:
            raise ValueError("warmup_samples on a stage needs the stage's own lr or lr_per_256")
        return self

    @model_validator(mode="after")
    def _mask_needs_keep(self):
        if self.image_reduction.masks and self.image_keep >= 1.0:
            raise ValueError(f"image_reduction={self.image_reduction.value!r} needs image_keep < 1")
        if self.image_reduction is ImageReduction.GRID and abs(self.image_keep - 0.25) > 1e-9:
            raise ValueError("image_reduction='grid' keeps one patch per 2x2 block: image_keep must be 0.25")
        return self


COMPILE_ON_CPU = ("train.compile=true needs a GPU: on CPU torch.compile was measured not to pay "
                  "off (benchmarks/compile_cpu.py: 5% faster steps after 745 s of compiling, "
                  "break-even after ~19,000 steps); leave it off there")


def lr_rule(lr: float | None, lr_per_256: float | None, global_batch_size: int) -> float:
    """The field's two conventions: an absolute lr (Meta CLIP, OpenCLIP) or an lr per 256 samples
    scaled linearly with the global batch (CLIPA: ``8e-6 * batch // 256``)."""
    if lr_per_256 is not None:
        return lr_per_256 * global_batch_size / 256
    assert lr is not None
    return lr


class TrainConfig(Strict):
    samples_seen: int = Field(20_000, gt=0, description="Training length in samples seen (all stages).")
    global_batch_size: int = Field(128, gt=0, description="Samples per optimizer step over all workers.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate, absolute (exclusive with lr_per_256).")
    lr_per_256: float | None = Field(
        None, gt=0, description="Peak learning rate per 256 samples of global batch (CLIPA's rule: "
                                "lr = lr_per_256 * global_batch_size / 256); exclusive with lr.")
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-6, gt=0)
    warmup_samples: int = Field(2_000, ge=0, description="Linear warmup length; cosine decay to 0 after it.")
    schedule: Literal["cosine", "wsd"] = Field(
        "cosine", description="cosine: warmup then cosine decay to 0 over the run; wsd: warmup, "
                              "constant lr, then a cooldown to 0 over the last cooldown_share of the run.")
    cooldown_share: float = Field(0.2, gt=0.0, le=1.0, description="wsd: share of the run spent cooling down.")
    cooldown_shape: Literal["linear", "1-sqrt"] = Field(
        "1-sqrt", description="wsd: cooldown shape (Hagele et al. 2024: 1-sqrt matches cosine best).")
    grad_clip: float = Field(1.0, ge=0, description="Gradient norm clip (0: off).")
    compile: bool = Field(
        False, description="torch.compile the two towers (GPU only: on CPU it was measured not to "
                            "pay off, see benchmarks/compile_cpu.py).")
    accumulation_steps: int = Field(
        1, ge=1, description="Micro-batches per optimizer step on each worker, with feature caching "
                             "(train/accumulation.py): the loss still sees the whole global batch.")
    loss: LossKind = LossKind.SOFTMAX
    zero_stage: int = Field(2, ge=0, le=3, description="DeepSpeed ZeRO stage 0-3.")
    precision: Precision = Field(Precision.AUTO, description="auto: bf16 on GPU, fp32 on CPU.")
    num_workers: int = Field(2, ge=1, description="Ray Train workers (one process each).")
    use_gpu: bool | Literal["auto"] = "auto"
    cpus_per_worker: float = Field(0.5, gt=0, description="Logical CPUs per worker; leave some for Ray Data's read tasks.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Ray placement of the workers: PACK fills a node first (NCCL stays on "
                            "NVLink); SPREAD puts them on different nodes (e.g. to test node loss).")
    checkpoint_every_samples: int = Field(5_000, gt=0)
    keep_checkpoints: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=0, description="Worker-group restarts from the last checkpoint after a failure.")
    preemption_grace_s: float = Field(30.0, gt=0, description="On SIGTERM, seconds the workers get to checkpoint and stop before the driver exits (keep it below the platform's own grace period).")
    trial_driver_resource: str | None = Field(None, description="Sweeps: the Ray resource that places each trial's driver; default (None) the head node, 'any' anywhere, or a custom resource you gave the nodes that should host drivers.")
    seed: int = 0
    # Cooldown forks (sweep/fork_launch.py; README "Cooldown forks"): set by `clipscale sweep`.
    init_from: str | None = Field(
        None, description="A complete checkpoint (path or URI) a fresh run starts from: weights, optimizer, "
                          "step, samples seen, data position and RNGs, as on resume. Ignored once the run "
                          "has a checkpoint of its own (its resume uses that).")
    fork_points: list[int] = Field(
        default_factory=list, description="Samples-seen values at which the run keeps a copy of its "
                                          "checkpoint under <run>/forks/ for cooldown forks (a wsd trunk).")

    _init_from = field_validator("init_from")(_check_locations)

    @property
    def peak_lr(self) -> float:
        """The effective peak lr: ``lr``, or ``lr_per_256`` scaled by the global batch."""
        return lr_rule(self.lr, self.lr_per_256, self.global_batch_size)

    @model_validator(mode="after")
    def _batch(self):
        if self.compile and self.use_gpu is False:
            raise ValueError(COMPILE_ON_CPU)
        if self.lr_per_256 is not None and "lr" in self.model_fields_set:
            raise ValueError("give lr or lr_per_256, not both (lr is absolute, lr_per_256 scales "
                             "with the global batch)")
        if self.global_batch_size % self.num_workers:
            raise ValueError(f"global_batch_size={self.global_batch_size} is not a multiple of num_workers={self.num_workers}")
        if self.global_batch_size % (self.num_workers * self.accumulation_steps):
            raise ValueError(f"global_batch_size={self.global_batch_size} is not a multiple of num_workers x "
                             f"accumulation_steps={self.num_workers * self.accumulation_steps}")
        if self.samples_seen < self.global_batch_size:
            raise ValueError("samples_seen is smaller than one global batch")
        for p in self.fork_points:
            if p % self.global_batch_size or not 0 < p < self.samples_seen:
                raise ValueError(f"fork_points: {p} is not a step boundary inside the run (a multiple of "
                                 f"global_batch_size={self.global_batch_size} below samples_seen={self.samples_seen})")
        return self


class EvalConfig(Strict):
    eval_dir: str | None = Field(None, description="Held-out sets (emoji-world layout; a path or URI); None: no evaluation.")
    every_samples: int = Field(10_000, gt=0, description="Evaluate every this many samples, and at the end.")
    batch_size: int = Field(256, gt=0)
    suites: list[Suite] = Field(default_factory=list, description="Evaluation suites (clip_benchmark wds, image "
                                "folder, multilingual retrieval; see README), scored at every evaluation.")

    _locations = field_validator("eval_dir")(_check_locations)

    @model_validator(mode="after")
    def _unique_suites(self):
        check_unique_names(self.suites)
        return self


class LoggingConfig(Strict):
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto", description="auto: online with WANDB_API_KEY set, offline otherwise.")
    project: str = "clipscale"
    entity: str | None = None
    group: str | None = Field(None, description="W&B group (a sweep sets it).")
    log_every_steps: int = Field(10, gt=0)


class RunConfig(Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$", description="Run name; the run folder is output_dir/name.")
    output_dir: str = Field("runs", description="Storage: checkpoints, run files, tokenizer, results table. A path "
                                               "or a URI every node reaches (s3://BUCKET/PREFIX, gs://..., file:///...).")
    results_dir: str | None = Field(None, description="Results table folder (a path or URI); default output_dir/results.")
    sweep: str = Field("", description="Sweep name (set by `clipscale sweep`).")
    data: DataConfig
    model: ModelConfig = ModelConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()], min_length=1)
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    logging: LoggingConfig = LoggingConfig()

    _locations = field_validator("output_dir", "results_dir")(_check_locations)

    @model_validator(mode="after")
    def _check_against_model(self):
        from clipscale.models.registry import get_spec

        try:
            spec = get_spec(self.model.name)
        except KeyError as e:  # pydantic reports ValueErrors with the field path
            raise ValueError(f"model.name: {e.args[0]}") from None
        if self.train.schedule == "wsd" and any(st.own_schedule for st in self.stages):
            raise ValueError("train.schedule=wsd runs one schedule over the whole run: a stage "
                             "cannot set its own lr")
        ctx = self.model.context_length or spec.text.context_length
        patch = spec.image.patch_size
        for i, st in enumerate(self.stages):
            if st.image_size % patch:
                raise ValueError(f"stages[{i}].image_size={st.image_size} is not a multiple of "
                                 f"{self.model.name}'s patch size {patch}")
            grid = st.image_size // patch
            if st.image_reduction is ImageReduction.GRID and grid % 2:
                raise ValueError(f"stages[{i}]: a grid mask keeps one patch per 2x2 block; the "
                                 f"{grid}x{grid} patch grid at image_size={st.image_size} is odd")
            if st.image_reduction is ImageReduction.BLOCK:
                from clipscale.models.patch_masks import block_shape
                try:
                    block_shape(grid, grid, max(1, round(grid * grid * st.image_keep)))
                except ValueError as e:
                    raise ValueError(f"stages[{i}].image_keep={st.image_keep}: {e}") from None
            if st.text_tokens is not None and st.text_tokens > ctx:
                raise ValueError(f"stages[{i}].text_tokens={st.text_tokens} exceeds the context length {ctx}")
        for i, st in enumerate(self.stages):
            b = st.global_batch_size
            split = self.train.num_workers * self.train.accumulation_steps
            if b is not None and b % split:
                raise ValueError(f"stages[{i}].global_batch_size={b} is not a multiple of "
                                 f"train.num_workers x train.accumulation_steps={split}")
        fixed = [s.samples for s in self.stages[:-1]]
        if any(s is None for s in fixed):
            raise ValueError("every stage but the last needs `samples`")
        if sum(fixed) + (self.stages[-1].samples or 0) > self.train.samples_seen or (
                self.stages[-1].samples and sum(fixed) + self.stages[-1].samples != self.train.samples_seen):
            raise ValueError(f"stage samples {[s.samples for s in self.stages]} do not add up to "
                             f"train.samples_seen={self.train.samples_seen}")
        return self

    # ---- derived values (kept out of the stored fields so they cannot disagree) ----
    # Locations are strings: an absolute local path, or a URI (see clipscale/storage.py).
    @property
    def run_dir(self) -> str:
        return storage.join(storage.absolute(self.output_dir), self.name)

    @property
    def table_dir(self) -> str:
        if self.results_dir:
            return storage.absolute(self.results_dir)
        return storage.join(storage.absolute(self.output_dir), "results")

    def stage_samples(self) -> list[int]:
        """Samples seen in each stage (the last stage takes the remainder)."""
        fixed = [s.samples for s in self.stages[:-1]]
        return fixed + [self.train.samples_seen - sum(fixed)]

    def stage_batch_size(self, i: int) -> int:
        return self.stages[i].global_batch_size or self.train.global_batch_size

    def stage_peak_lr(self, i: int) -> float:
        """Stage ``i``'s effective peak lr: its own rule if it has one, else the run's."""
        st = self.stages[i]
        if st.own_schedule:
            return lr_rule(st.lr, st.lr_per_256, self.stage_batch_size(i))
        return self.train.peak_lr


# ---------------------------------------------------------------------------- loading
# Reading, overrides, merge and error format are clipscale.config_core's (shared with sweeps,
# curation and the emoji world); this part only says what a run config is built from.

def build_run_config(data: dict, source: str = "<dict>", overrides: list[str] | None = None) -> RunConfig:
    if overrides:
        data = merge(data, parse_overrides(overrides))
        source += " (with overrides " + " ".join(overrides) + ")"
    return validate(RunConfig, data, source, "config")


def load_run_config(path: str | os.PathLike, overrides: list[str] | None = None) -> RunConfig:
    """Read a run YAML, apply ``FIELD=VALUE`` overrides, validate. Relative paths in the file are
    taken relative to the file's folder, so a config works from any cwd (Ray workers' cwd moves)."""
    path = Path(path)
    data = read_yaml(path)
    cfg = build_run_config(data, str(path), overrides)
    return resolve_paths(cfg, path.parent)


def resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    def absolute(p):
        if p is None:
            return None
        if isinstance(p, list):
            return [absolute(x) for x in p]
        return p if os.path.isabs(p) or storage.is_uri(p) else str((base / p).resolve())

    cfg = cfg.model_copy(deep=True)
    cfg.data.train_shards = absolute(cfg.data.train_shards)
    cfg.tokenizer.path = absolute(cfg.tokenizer.path)
    cfg.eval.eval_dir = absolute(cfg.eval.eval_dir)
    cfg.eval.suites = [s.resolved(absolute) for s in cfg.eval.suites]
    cfg.output_dir = absolute(cfg.output_dir)
    cfg.results_dir = absolute(cfg.results_dir)
    return cfg
