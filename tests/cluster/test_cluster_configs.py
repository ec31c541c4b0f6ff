"""cluster/ checked without a cloud: the Ray launcher YAMLs against Ray's own schema and config
validation, the KubeRay manifests against the Kubernetes models (pod templates, metadata) and a
schema of KubeRay's API (tests/cluster/kuberay_schema.py), every clipscale command in the cluster
files parsed by the real command line parser (sweeps expanded into validated trials), every
repository path they name, and no secret in any of them. A few seconds; default suite."""
from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
from cluster_files import (  # tests/cluster/
    CLUSTER,
    FILES,
    LAUNCHERS,
    MANIFESTS,
    ROOT,
    all_clipscale_commands,
    install_roots,
    load,
    parse,
    rel,
    repo_path,
)
from kuberay_schema import (
    cluster_spec,
    dotted,
    k8s_errors,
    schema_errors,
    semantic_errors,
)

GPU_TYPE, GPU_GROUP = "gpu_8x_h100", "gpu-8x-h100"
REPO_DIRS = r"(?:sweeps|configs|scripts|cluster|tests|analysis)"


def ray_pin() -> str:
    """The Ray version pyproject.toml pins (``"ray[...]==X"``)."""
    return re.search(r'"ray\[[^\]]*\]==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


# ---- launcher YAMLs: Ray's schema and Ray's own validation ----

def launcher_errors(cfg: dict) -> list[str]:
    """What `ray up` refuses: ray-schema.json on the file as written, then Ray's validation of the
    config merged with the provider's defaults (head type, worker bounds)."""
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    errors = [f"{dotted(e.absolute_path) or '<root>'}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(cfg)]
    if errors:
        return errors
    try:
        validate_config(prepare_config(copy.deepcopy(cfg)))
    except (ValueError, RuntimeError, KeyError, jsonschema.ValidationError) as e:
        return [f"{type(e).__name__}: {e}"]
    return []


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_config_passes_rays_validation(name):
    assert launcher_errors(load(LAUNCHERS[name])) == []


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_node_types(name):
    cfg = load(LAUNCHERS[name])
    types = cfg["available_node_types"]
    head, gpu = types[cfg["head_node_type"]], types[GPU_TYPE]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    assert gpu["resources"] == {"CPU": 192, "GPU": 8}
    assert gpu["min_workers"] == 0 and 1 <= gpu["max_workers"] <= cfg["max_workers"]
    assert cfg["idle_timeout_minutes"] > 0
    node = gpu["node_config"]
    if name == "aws":
        assert node["InstanceType"] == "p5.48xlarge"
    else:
        assert node["machineType"] == "a3-highgpu-8g"
        assert node["guestAccelerators"] == [{"acceleratorType": "nvidia-h100-80gb", "acceleratorCount": 8}]
        assert {"onHostMaintenance": "TERMINATE"} in node["scheduling"]


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_installs_the_way_the_readme_does(name):
    cfg = load(LAUNCHERS[name])
    setup = "\n".join(cfg["setup_commands"])
    assert re.search(r"git clone \S+ ~/clipscale\n", setup)
    assert "bash scripts/setup.sh" in setup, "nodes install with the project's own tested script"
    assert "pip install torch" not in setup and "deepspeed" not in setup, "setup.sh pins and orders these"
    assert not cfg.get("file_mounts"), "nothing from the submitting machine is copied onto the nodes"
    for key, start in (("head_start_ray_commands", "ray start --head"),
                       ("worker_start_ray_commands", "ray start --address=$RAY_HEAD_IP:6379")):
        cmds = cfg[key]
        assert cmds[0].endswith("ray stop") and start in cmds[-1], key
        assert all("source ~/clipscale/.venv/bin/activate" in c for c in cmds), f"{key}: the project's Ray"
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in cfg["head_start_ray_commands"][-1]


BROKEN_LAUNCHERS = [
    ("a misspelt node-type field", lambda c: c["available_node_types"][GPU_TYPE].update(min_worker=0),
     "available_node_types.gpu_8x_h100: Additional properties are not allowed ('min_worker'"),
    ("a GPU count written as text", lambda c: c["available_node_types"][GPU_TYPE]["resources"].update(GPU="8"),
     "available_node_types.gpu_8x_h100.resources.GPU: '8' is not of type 'integer'"),
    ("a misspelt top-level field", lambda c: c.update(idle_timeout_minute=5), "'idle_timeout_minute' was unexpected"),
    ("a head type that is not a node type", lambda c: c.update(head_node_type="head"), "head_node_type"),
    ("more minimum workers than max_workers", lambda c: c["available_node_types"][GPU_TYPE].update(min_workers=5),
     "max_workers"),
]


@pytest.mark.parametrize("case,mutate,expected", BROKEN_LAUNCHERS, ids=[c[0] for c in BROKEN_LAUNCHERS])
def test_a_broken_launcher_config_is_refused_naming_the_field(case, mutate, expected):
    cfg = load(LAUNCHERS["aws"])
    mutate(cfg)
    errors = launcher_errors(cfg)
    assert errors and any(expected in e for e in errors), errors


# ---- KubeRay manifests: KubeRay's API and the Kubernetes models ----

def pod_templates(doc: dict) -> list[tuple[str, dict]]:
    where, spec = cluster_spec(doc)
    out = [(f"{where}.headGroupSpec.template", spec["headGroupSpec"]["template"])]
    out += [(f"{where}.workerGroupSpecs[{i}].template", g["template"])
            for i, g in enumerate(spec.get("workerGroupSpecs") or [])]
    if doc["spec"].get("submitterPodTemplate"):
        out.append(("spec.submitterPodTemplate", doc["spec"]["submitterPodTemplate"]))
    return out


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_matches_kuberays_api(name):
    doc = load(MANIFESTS[name])
    assert schema_errors(doc) == [] and semantic_errors(doc) == []


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_pod_templates_are_kubernetes_pod_templates(name):
    doc = load(MANIFESTS[name])
    errors = k8s_errors("V1ObjectMeta", doc["metadata"], "metadata")
    for where, template in pod_templates(doc):
        errors += k8s_errors("V1PodTemplateSpec", template, where)
    assert errors == []


def ray_containers(doc: dict) -> dict[str, dict]:
    """The Ray container (KubeRay takes the first) of the head and of each worker group."""
    _, spec = cluster_spec(doc)
    out = {"head": spec["headGroupSpec"]["template"]["spec"]["containers"][0]}
    out.update({g["groupName"]: g["template"]["spec"]["containers"][0] for g in spec["workerGroupSpecs"]})
    return out


def test_kuberay_cluster_shape():
    doc = load(MANIFESTS["raycluster"])
    spec = doc["spec"]
    assert spec["rayVersion"] == ray_pin() and spec["enableInTreeAutoscaling"] is True
    group = next(g for g in spec["workerGroupSpecs"] if g["groupName"] == GPU_GROUP)
    assert group["minReplicas"] == 0 < group["maxReplicas"]
    containers = ray_containers(doc)
    gpu = containers[GPU_GROUP]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == "8" == gpu["requests"]["nvidia.com/gpu"]
    assert "nvidia.com/gpu" not in containers["head"]["resources"].get("limits", {})
    assert len({c["image"] for c in containers.values()}) == 1, "head and workers run one image"
    for name, container in containers.items():
        key = next(e for e in container["env"] if e["name"] == "WANDB_API_KEY")
        assert "value" not in key and key["valueFrom"]["secretKeyRef"]["name"], f"{name}: key from a Secret"


def test_rayjob_runs_the_raycluster_spec_once():
    job, cluster = load(MANIFESTS["rayjob"]), load(MANIFESTS["raycluster"])
    assert job["spec"]["rayClusterSpec"] == cluster["spec"], "rayjob.yaml's cluster is raycluster.yaml's"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    entrypoint = job["spec"]["entrypoint"]
    # KubeRay pastes the entrypoint into the submitter pod's shell script unquoted: an operator
    # would run the rest in the submitter, and a $VARIABLE would expand there (to nothing).
    assert not re.search(r"[;&|<>$`]", entrypoint), entrypoint
    assert entrypoint.startswith("clipscale sweep ")


BROKEN_MANIFESTS = [
    ("a misspelt worker-group field", lambda d: d["spec"]["workerGroupSpecs"][0].update(maxReplica=4),
     "spec.workerGroupSpecs[0]: Additional properties are not allowed ('maxReplica'"),
    ("a rayStartParams value that is not a string",
     lambda d: d["spec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
     "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'"),
    ("replicas above maxReplicas", lambda d: d["spec"]["workerGroupSpecs"][0].update(replicas=9),
     "spec.workerGroupSpecs[0].replicas: 9 is outside"),
    ("a misspelt container field", lambda d: d["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
     .update(imagee="x"), "spec.workerGroupSpecs[0].template.spec.containers[0].imagee: not a field"),
    ("a container without a name", lambda d: d["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
     .pop("name"), "V1Container.name"),
]


@pytest.mark.parametrize("case,mutate,expected", BROKEN_MANIFESTS, ids=[c[0] for c in BROKEN_MANIFESTS])
def test_a_broken_manifest_is_refused_naming_the_field(case, mutate, expected):
    doc = load(MANIFESTS["raycluster"])
    mutate(doc)
    errors = schema_errors(doc) + semantic_errors(doc)
    for where, template in pod_templates(doc):
        errors += k8s_errors("V1PodTemplateSpec", template, where)
    assert any(expected in e for e in errors), errors


# ---- commands and paths named in the cluster files ----

def test_every_clipscale_command_parses():
    commands = all_clipscale_commands()
    verbs = {argv[0] for _, argv in commands if argv}
    assert {"sweep", "data", "analyze"} <= verbs, verbs
    assert any("--resume" in a for _, a in commands) and any("--dry-run" in a for _, a in commands)
    failures = [f"{where}: clipscale {shlex.join(argv)}: {parse(argv)[1]}"
                for where, argv in commands if parse(argv)[0] is None]
    assert failures == []


def sweep_commands():
    for where, argv in all_clipscale_commands():
        args, _ = parse(argv)
        if args is not None and args.verb == "sweep":
            yield where, argv, args


def test_every_sweep_command_expands_into_valid_trials():
    from clipscale.sweep.expand import load_trials

    seen = 0
    for where, argv, args in sweep_commands():
        path = repo_path(args.config)
        assert path is not None and path.is_file(), f"{where}: {args.config}"
        _, _, trials = load_trials(str(path), args.overrides)
        assert trials, f"{where}: clipscale {shlex.join(argv)}"
        if args.cluster:
            assert repo_path(args.cluster).is_file(), f"{where}: --cluster {args.cluster}"
        seen += 1
    assert seen >= 4


def test_bucket_output_dirs_stay_bucket_uris():
    """`--set output_dir=s3://...` (or gs://) must put the sweep, its checkpoints and its results
    in the bucket, not in a local folder named after the URI."""
    from clipscale.sweep.expand import load_trials

    checked = 0
    for where, _, args in sweep_commands():
        uris = [o.split("=", 1)[1] for o in args.overrides if re.match(r"output_dir=(s3|gs)://", o)]
        if uris:
            _, root, trials = load_trials(str(repo_path(args.config)), args.overrides)
            assert str(root).startswith(uris[-1]), f"{where}: sweep folder {root}"
            assert all(str(cfg.output_dir).startswith(uris[-1]) for _, cfg in trials), where
            checked += 1
    assert checked >= 3


def test_every_repository_path_named_exists():
    roots = "|".join(re.escape(r) for r in install_roots())
    missing = []
    for path in FILES:
        text = path.read_text()
        names = re.findall(rf"(?<![\w./~$-]){REPO_DIRS}/[\w./-]*\w", text)
        names += re.findall(rf"(?:{roots})/{REPO_DIRS}/[\w./-]*\w", text)
        missing += [f"{rel(path)}: {n}" for n in names if not repo_path(n).exists()]
    assert missing == []


# ---- secrets ----

NOT_A_PLACEHOLDER = r"(?!\$|\.\.\.|<|YOUR_)"      # $VARIABLE, ..., <KEY>, YOUR_KEY
SECRET_PATTERNS = [
    (r"\b[0-9a-f]{40}\b", "a 40-hex-digit key (the shape of a W&B API key)"),
    (r"\bAKIA[0-9A-Z]{16}\b", "an AWS access key id"),
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
    (rf"WANDB_API_KEY\\?[\"']?\s*[:=]\s*\\?[\"']?{NOT_A_PLACEHOLDER}[^\s\"'\\}}]+", "a WANDB_API_KEY value"),
    (rf"--from-literal=[\w.-]+={NOT_A_PLACEHOLDER}\S+", "a literal Secret value"),
]


def secrets_in(text: str) -> list[str]:
    return [f"{what}: {m.group(0)[:12]}..." for pattern, what in SECRET_PATTERNS
            for m in re.finditer(pattern, text)]


def test_no_secret_in_the_cluster_files():
    found = [f"{rel(p)}: {s}" for p in FILES for s in secrets_in(p.read_text())]
    assert found == []
    for name, path in MANIFESTS.items():   # secret-looking env vars come from Secrets, not values
        for container in ray_containers(load(path)).values():
            for env in container.get("env", []):
                if re.search(r"KEY|TOKEN|SECRET|PASSWORD", env["name"]):
                    assert "value" not in env, f"{name}: {env['name']}"


def test_the_secret_scan_catches_a_key():
    fake = "0123456789abcdef" * 2 + "01234567"
    for text in (f"WANDB_API_KEY={fake}", f'"WANDB_API_KEY": "{fake}"', "--from-literal=api-key=hunter2"):
        assert secrets_in(text), text


def test_the_guide_creates_the_secrets_the_manifests_read():
    guide = (CLUSTER / "README.md").read_text()
    made = set(re.findall(r"kubectl create secret generic (\S+) --from-literal=([\w.-]+)=\$WANDB_API_KEY", guide))
    for name, path in MANIFESTS.items():
        for container in ray_containers(load(path)).values():
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert (ref["name"], ref["key"]) in made, f"{name}: {env['name']} reads {ref}"
