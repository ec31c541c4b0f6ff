"""Run configs: YAML and CLI flags fill the same typed objects; bad values are refused with the
file and field named, before anything starts."""
from __future__ import annotations

import pytest

from clipscale.cli import build_parser, overrides_from_flags
from clipscale.config import ConfigError, load_run_config
from clipscale.config_core import merge, parse_overrides

BASE = """
name: t
data: {train_shards: pool}
model: {name: tiny}
stages: [{image_size: 64, text_tokens: 16}]
train: {samples_seen: 4096, global_batch_size: 64, num_workers: 2, zero_stage: 2}
"""


def write(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


def test_yaml_and_flags_fill_the_same_config(tmp_path):
    p = write(tmp_path, BASE)
    cfg = load_run_config(p, ["train.zero_stage=3", "stages.0.image_size=32", "model.name=tiny-l"])
    assert cfg.train.zero_stage == 3 and cfg.stages[0].image_size == 32 and cfg.model.name == "tiny-l"
    # relative paths are taken from the YAML's folder (Ray workers run in another cwd)
    assert cfg.data.train_shards == str((tmp_path / "pool").resolve())
    flags = overrides_from_flags(["--train.lr", "3e-4", "--stages.0.text_tokens=8"], build_parser())
    assert flags == ["train.lr=3e-4", "stages.0.text_tokens=8"]
    assert parse_overrides(flags) == {"train": {"lr": 3e-4}, "stages": {"0": {"text_tokens": 8}}}


@pytest.mark.parametrize("override, field, message", [
    (["train.zero_stage=4"], "train.zero_stage", "less than or equal to 3"),
    (["train.num_workers=0"], "train.num_workers", "greater than or equal to 1"),
    (["train.lr=fast"], "train.lr", "valid number"),
    (["train.learning_rate=1e-3"], "train.learning_rate", "unknown key"),
    (["stages.0.image_size=60"], "stages", "not a multiple of tiny's patch size 8"),
    (["stages.0.text_tokens=999"], "stages", "exceeds the context length"),
    (["model.name=ViT-Q-99"], "model", "unknown model"),
    (["train.global_batch_size=63"], "train", "not a multiple of num_workers"),
    (["stages.0.image_reduction=grid"], "stages.0", "grid"),
])
def test_invalid_values_name_file_and_field(tmp_path, override, field, message):
    p = write(tmp_path, BASE)
    with pytest.raises(ConfigError) as e:
        load_run_config(p, override)
    text = str(e.value)
    assert str(p) in text and field in text and message in text, text


def test_unknown_key_in_yaml_and_missing_file(tmp_path):
    p = write(tmp_path, BASE + "optimizer: {name: lamb}\n")
    with pytest.raises(ConfigError, match=r"optimizer: unknown key"):
        load_run_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(tmp_path / "nope.yaml")
    bad = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(bad)


def test_stage_samples_must_add_up(tmp_path):
    two = BASE.replace("stages: [{image_size: 64, text_tokens: 16}]",
                       "stages: [{samples: 3072, image_size: 32, text_tokens: 8}, {image_size: 64}]")
    cfg = load_run_config(write(tmp_path, two))
    assert cfg.stage_samples() == [3072, 1024]
    with pytest.raises(ConfigError, match="do not add up"):
        load_run_config(write(tmp_path, two), ["stages.0.samples=5000"])


def test_cli_refuses_bad_config_before_starting(tmp_path, capsys):
    from clipscale.cli import main

    p = write(tmp_path, BASE)
    assert main(["train", str(p), "--train.zero_stage", "4"]) == 2
    err = capsys.readouterr().err
    assert "train.zero_stage" in err and str(p) in err


def test_choices_are_enums_after_validation_and_plain_strings_in_rows(tmp_path):
    from clipscale.choices import ImageReduction, LossKind, Precision, TextReduction, plain

    cfg = load_run_config(write(tmp_path, BASE), ["train.loss=sigmoid", "train.precision=fp32",
                                                  "stages.0.image_reduction=random", "stages.0.image_keep=0.5",
                                                  "stages.0.text_reduction=block"])
    st = cfg.stages[0]
    assert cfg.train.loss is LossKind.SIGMOID and cfg.train.precision is Precision.FP32
    assert st.image_reduction is ImageReduction.RANDOM and st.text_reduction is TextReduction.BLOCK
    # the YAML/CLI values and string comparisons keep working; f-strings give the value
    assert cfg.train.loss == "sigmoid" and f"{st.image_reduction}/{st.text_reduction}" == "random/block"
    defaults = load_run_config(write(tmp_path, BASE))
    assert defaults.stages[0].image_reduction is ImageReduction.NONE and defaults.train.loss is LossKind.SOFTMAX
    assert type(plain(st.image_reduction)) is str and plain(st.image_reduction) == "random"
    assert cfg.model_dump(mode="json")["train"]["loss"] == "sigmoid"
    # every dump (the W&B config among them) holds plain strings, not enum members
    assert type(cfg.model_dump()["train"]["loss"]) is str and type(cfg.model_dump()["stages"][0]["image_reduction"]) is str
    with pytest.raises(ConfigError, match=r"train.loss: Input should be 'softmax' or 'sigmoid'"):
        load_run_config(write(tmp_path, BASE), ["train.loss=hinge"])


def test_results_rows_store_choices_as_plain_strings(tmp_path):
    import pyarrow.parquet as pq

    from clipscale.choices import ImageReduction, TextReduction
    from clipscale.results import ID_COLUMNS, append_rows

    row = {c: 0 for c in ID_COLUMNS}
    row.update(run_id="r", status="finished", image_reduction=ImageReduction.GRID,
               text_reduction=TextReduction.SYNTAX, model="tiny", sweep="", languages="", timestamp="t")
    from clipscale.results import row_payload

    assert all(type(v) is str for k, v in row_payload(row).items() if k.endswith("_reduction"))
    part = append_rows(tmp_path, [row])
    table = pq.read_table(part)
    assert table.column("image_reduction").to_pylist() == ["grid"]
    assert table.schema.field("text_reduction").type == table.schema.field("model").type   # a plain string column


def test_merge_updates_lists_by_index_and_refuses_past_the_end():
    base = {"stages": [{"a": 1}, {"a": 2}], "x": {"y": 1}}
    assert merge(base, {"stages": {"1": {"a": 3}}, "x": {"z": 2}}) == {"stages": [{"a": 1}, {"a": 3}],
                                                                      "x": {"y": 1, "z": 2}}
    with pytest.raises(ConfigError, match="index 2 is past the 2 items"):
        merge(base, {"stages": {"2": {"a": 0}}})
