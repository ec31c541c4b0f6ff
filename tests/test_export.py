"""``clipscale export`` of a really trained tiny model (2 Ray Train workers, ZeRO-2 on CPU) and agreement
with the field's tooling: open_clip 3.3 loads the folder into its own CLIP class with image and text
embeddings equal to clipscale's (1e-5), and clip_benchmark's own zero-shot evaluation of the exported model
on the emoji-world suite in clip_benchmark's webdataset layout gives clipscale's top-1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from clipscale.torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()

REPO = Path(__file__).resolve().parents[1]


def clipscale_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "clipscale.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained_run(tiny_pool, tmp_path_factory):
    """A 512-sample run of tiny-s at 32px through `clipscale train`, evaluated at its end."""
    out = tmp_path_factory.mktemp("export_run")
    cfg = {"name": "exp", "output_dir": str(out),
           "data": {"train_shards": str(tiny_pool / "pool"), "shuffle_buffer": 256, "read_parallelism": 2},
           "model": {"name": "tiny-s"}, "tokenizer": {"vocab_size": 512, "train_samples": 1600},
           "stages": [{"image_size": 32, "text_tokens": 16}],
           "train": {"samples_seen": 512, "global_batch_size": 64, "lr": 2e-3, "warmup_samples": 128,
                     "zero_stage": 2, "num_workers": 2, "checkpoint_every_samples": 512},
           "eval": {"eval_dir": str(tiny_pool / "eval"), "every_samples": 512, "batch_size": 128},
           "logging": {"wandb_mode": "offline", "log_every_steps": 4}}
    (out / "run.yaml").write_text(yaml.safe_dump(cfg))
    proc = clipscale_cli("train", str(out / "run.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "exp"


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "tiny-s-open_clip"
    proc = clipscale_cli("export", str(trained_run), "--format", "hf", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("exported exp (tiny-s, 512 samples seen)")
    return out


def _eval_inputs(tiny_pool, trained):
    from clipscale.data.images import to_tensor_batch
    from clipscale.evaluation.sets import EvalSets

    sets = EvalSets.load(tiny_pool / "eval", 32)
    images = to_tensor_batch(np.asarray(sets.zeroshot_images[:24]))
    captions = [c for lang in sorted(sets.retrieval)[:3] for c in sets.retrieval[lang][1][:8]]
    return images, trained.tokenizer().encode_batch(captions, trained.spec.text.context_length)


@pytest.mark.slow
def test_open_clip_loads_the_export_with_clipscale_embeddings(trained_run, exported, tiny_pool):
    import open_clip

    from clipscale.trained import load_trained

    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md", "clipscale_model.json", "open_clip_config.json", "open_clip_model.safetensors",
        "tokenizer.model"]
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(exported))
    assert type(model) is open_clip.CLIP
    model.eval()
    trained = load_trained(trained_run)
    images, tokens = _eval_inputs(tiny_pool, trained)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images, normalize=True),
                                   trained.model.encode_image(images), rtol=0, atol=1e-5)
        torch.testing.assert_close(model.encode_text(tokens, normalize=True),
                                   trained.model.encode_text(tokens), rtol=0, atol=1e-5)
        assert model.logit_scale.exp().item() == pytest.approx(trained.model.logit_scale.exp().item())
    # the tokenize() of the model card (sentencepiece alone) gives clipscale's token ids
    card = (exported / "README.md").read_text()
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet.split("with torch.no_grad()")[0].replace("PATH", str(exported)), namespace)
    texts = ["a red apple", "ein Hund im Schnee", "猫", "word " * 40]
    assert torch.equal(namespace["tokenize"](texts), trained.tokenizer().encode_batch(texts, 32))
    # the exported folder loads back into clipscale itself (`clipscale eval` takes it)
    again = load_trained(exported)
    assert again.kind == "export" and again.state.samples_seen == 512
    with torch.no_grad():
        torch.testing.assert_close(again.model.encode_image(images), trained.model.encode_image(images),
                                   rtol=0, atol=0)


@pytest.mark.slow
def test_model_card_states_run_data_samples_compute_and_evals(trained_run, exported):
    card = (exported / "README.md").read_text()
    state = json.loads(next(trained_run.glob("checkpoint_*/train_state.json")).read_text())
    assert card.startswith("---\nlibrary_name: open_clip\n")
    assert "samples seen: 512 (8 steps)" in card
    assert f"compute: {state['compute']:.4g} FLOPs" in card
    assert str(Path(json.loads((trained_run / "run_config.json").read_text())["data"]["train_shards"])) in card
    assert "| zeroshot_top1_en |" in card and "At 512 samples seen" in card
    assert '"zero_stage": 2' in card


@pytest.mark.slow
def test_clip_benchmark_top1_on_the_exported_model_equals_clipscale_eval(trained_run, exported, tiny_pool,
                                                                         tmp_path):
    import open_clip
    from clip_benchmark.datasets.builder import build_dataset, get_dataset_collate_fn
    from clip_benchmark.metrics import zeroshot_classification

    from clipscale.data.emoji_suites import write_emoji_suites
    from clipscale.evaluation.suite_config import load_suite_file
    from clipscale.trained import load_trained

    suite_file = write_emoji_suites(tiny_pool / "eval")
    wds_suite = next(s for s in load_suite_file(suite_file) if s.kind == "clip_benchmark_wds")
    # `clipscale eval` of the exported folder, on all the emoji-world suites
    proc = clipscale_cli("eval", str(exported), "--suite", str(suite_file), "--results",
                         str(tmp_path / "table"), "--json-dir", str(tmp_path / "json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(next((tmp_path / "json").glob(f"{wds_suite.name}_*_en_zeroshot_classification.json"))
                     .read_text())
    top1 = doc["metrics"]["acc1"]

    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(exported))
    model.eval()
    dataset = build_dataset("wds/emoji", root=wds_suite.path, transform=preprocess, split="test",
                            download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, num_workers=0,
                                         collate_fn=get_dataset_collate_fn("wds/emoji"))
    trained = load_trained(exported)
    tok, ctx = trained.tokenizer(), trained.spec.text.context_length
    text_tokens = trained.run_config["stages"][-1]["text_tokens"]  # what training and eval feed

    def tokenize(texts):  # clipscale's ids at the run's text length, padded to open_clip's context
        return torch.nn.functional.pad(tok.encode_batch(list(texts), text_tokens), (0, ctx - text_tokens))

    # clip_benchmark's classifier (template ensemble) and classification pass; its `evaluate` wrapper
    # then fails in `accuracy` on numpy 2 (float() of a 1-element array), so top-1 is taken from the
    # logits it returns
    classifier = zeroshot_classification.zero_shot_classifier(model, tokenize, dataset.classes,
                                                              dataset.templates, "cpu", amp=False)
    logits, target = zeroshot_classification.run_classification(model, classifier, loader, "cpu", amp=False)
    theirs = (logits.argmax(dim=1) == target).float().mean().item()
    assert doc["n"] == 40 and len(target) == 40  # 20 classes x 2 images
    assert abs(theirs - top1) <= 1 / doc["n"] + 1e-9, (theirs, top1)
    print(f"clip_benchmark top-1 {theirs:.4f}, clipscale eval top-1 {top1:.4f}")


@pytest.mark.slow
def test_export_refuses_what_open_clip_cannot_express_and_writes_nothing(trained_run, tmp_path):
    cfg = json.loads((trained_run / "run_config.json").read_text())
    run = tmp_path / "mean_pool"
    run.mkdir()
    for name in ("run_info.json", "tokenizer.model"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    cfg["model"]["text_pool"] = "mean"
    (run / "run_config.json").write_text(json.dumps(cfg))
    src = next(trained_run.glob("checkpoint_*"))
    os.symlink(src, run / src.name)
    proc = clipscale_cli("export", str(run), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "model.text_pool='mean'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mean_pool"]
    # an existing output folder is not touched
    (tmp_path / "taken").mkdir()
    proc = clipscale_cli("export", str(trained_run), "--out", str(tmp_path / "taken"))
    assert proc.returncode == 2 and "exists" in proc.stderr and not any((tmp_path / "taken").iterdir())


def test_sigmoid_model_exports_with_its_bias_and_refusals_name_the_field(tmp_path):
    """Fast (no training): a freshly initialised tiny-s SigLIP model through the same export and load."""
    import open_clip

    from clipscale.export.open_clip_format import ExportError
    from clipscale.export.write import export
    from clipscale.models.clip import CLIP
    from clipscale.models.registry import get_spec
    from clipscale.text.tokenizer import train_tokenizer
    from clipscale.train.checkpoint import TrainState
    from clipscale.trained import TrainedModel

    tok_path = train_tokenizer([f"a photo of {w} number {i}" for i in range(300) for w in ("cat", "dog")],
                               tmp_path / "tok.model", vocab_size=300)
    spec = get_spec("tiny-s", vocab_size=300)
    torch.manual_seed(0)
    model = CLIP(spec, loss="sigmoid").eval()
    trained = TrainedModel(model=model, spec=spec, loss="sigmoid", tokenizer_path=tok_path,
                           state=TrainState(step=3, samples_seen=192), run_config=None,
                           source=tmp_path, kind="checkpoint", checkpoint=tmp_path)
    out = export(trained, tmp_path / "out", image_size=64)
    oc, _, _ = open_clip.create_model_and_transforms("local-dir:" + str(out))
    oc.eval()
    images = torch.randn(3, 3, 64, 64)
    tokens = torch.nn.functional.pad(torch.tensor([[2, 40, 41, 3], [2, 7, 3, 0], [2, 3, 0, 0]]), (0, 28))
    with torch.no_grad():
        torch.testing.assert_close(oc.encode_image(images, normalize=True), model.encode_image(images),
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(oc.encode_text(tokens, normalize=True), model.encode_text(tokens),
                                   rtol=0, atol=1e-5)
    assert oc.logit_bias.item() == pytest.approx(model.logit_bias.item())
    bidirectional = trained.__class__(**{**trained.__dict__, "spec": get_spec("tiny-s", causal=False)})
    with pytest.raises(ExportError, match="model.causal_text=false"):
        export(bidirectional, tmp_path / "refused")
    with pytest.raises(ExportError, match="image_size=60 is not a multiple of the patch size 8"):
        export(trained, tmp_path / "refused", image_size=60)
    assert not (tmp_path / "refused").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
