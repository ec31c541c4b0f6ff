"""The run contract: everything a training run's workers need that is not in its config, built
once on the driver (``launch.prepare``) and handed to every worker as one typed object.

The driver computes these facts once, before any worker starts: the tokenizer file and its
vocabulary, the language filter's keep rates and the mix the results rows report, the name of
the skip-counter actor. ``run_info.json`` in the run folder stores them (``record()``), so a
resumed or restarted run gets the same ones (``from_record``) instead of re-deriving them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from clipscale.config import RunConfig


@dataclass(frozen=True)
class RunContract:
    run: RunConfig                          # the validated config, as loaded on the driver
    run_id: str                             # the results rows' run_id (the run's name)
    tokenizer_path: str                     # a location every node reads (a URI on object storage)
    vocab_size: int
    keep_rates: dict[str, float] | None     # per-language keep rate of the language filter; None: keep all
    languages: str                          # comma-joined languages of the mix the run trains on
    english_share: float                    # English share of that mix
    counter_name: str                       # Ray actor counting skipped rows (train/data.py)
    shards: tuple[str, ...] = ()            # training shards: driver only (workers read Ray Data streams)
    # online-mode curated shards: curation epochs the stream draws (train/online_stream.py); None: offline data
    online_epochs: int | None = None

    # the fields run_info.json stores (shards and the counter are looked up again on each start)
    RECORD = ("run_id", "tokenizer_path", "vocab_size", "keep_rates", "languages", "english_share",
              "online_epochs")

    @classmethod
    def from_record(cls, run: RunConfig, record: dict, shards: list[str]) -> RunContract:
        # a run_info.json written before online curation was streamed has no online_captions
        return cls(run=run, **{k: record[k] for k in cls.RECORD if k in record},
                   counter_name=f"skips-{run.name}", shards=tuple(shards))

    def record(self) -> dict:
        """The JSON-able facts ``run_info.json`` keeps (also logged to W&B as the run's ``info``)."""
        return {k: getattr(self, k) for k in self.RECORD}

    @property
    def curation_counter_name(self) -> str:
        """Ray actor counting the online draw's offered and kept images (train/online_stream.py)."""
        return f"curation-{self.run.name}"

    def for_workers(self) -> RunContract:
        """The contract without the driver-only shard list (workers get Ray Data streams)."""
        return replace(self, shards=())
