"""JSON schemas for the KubeRay custom resources clipscale ships (ray.io/v1 RayCluster and RayJob),
written from KubeRay's API types (ray-operator/apis/ray/v1: RayClusterSpec, HeadGroupSpec,
WorkerGroupSpec, AutoscalerOptions, RayJobSpec) and its documentation. Every KubeRay-defined
object is closed (an unknown or misspelt field is an error); pod templates are only required to
be objects here, because the tests check them against the Kubernetes models themselves.

Beyond the schema, ``semantic_errors`` checks what KubeRay's validation refuses at apply time:
replicas outside [minReplicas, maxReplicas], minReplicas above maxReplicas, duplicate group names.
"""
from __future__ import annotations

INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
POD_TEMPLATE = {"type": "object"}           # corev1.PodTemplateSpec: checked with the Kubernetes models
DNS_LABEL = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
MANAGED_BY = {"enum": ["ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"]}

# metadata is corev1.ObjectMeta (checked with the Kubernetes models too); KubeRay derives service
# and pod names from the resource's name, so it must be a DNS label.
METADATA = {"type": "object", "required": ["name"], "properties": {"name": DNS_LABEL}}

AUTOSCALER_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "resources": {"type": "object"},
        "image": {"type": "string"},
        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "securityContext": {"type": "object"},
        "idleTimeoutSeconds": INT32,
        "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
        "version": {"enum": ["v1", "v2"]},
        "env": {"type": "array", "items": {"type": "object"}},
        "envFrom": {"type": "array", "items": {"type": "object"}},
        "volumeMounts": {"type": "array", "items": {"type": "object"}},
    },
}

HEAD_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "template": POD_TEMPLATE,
        "rayStartParams": STRING_MAP,      # map[string]string: every value is a string ("0", not 0)
        "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
        "headService": {"type": "object"},
        "enableIngress": {"type": "boolean"},
        "resources": STRING_MAP,
        "labels": STRING_MAP,
    },
}

WORKER_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template"],
    "properties": {
        "groupName": DNS_LABEL,
        "replicas": INT32,
        "minReplicas": INT32,
        "maxReplicas": INT32,
        "numOfHosts": {"type": "integer", "minimum": 1},
        "idleTimeoutSeconds": INT32,
        "rayStartParams": STRING_MAP,
        "template": POD_TEMPLATE,
        "scaleStrategy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"workersToDelete": {"type": "array", "items": {"type": "string"}}},
        },
        "suspend": {"type": "boolean"},
        "resources": STRING_MAP,
        "labels": STRING_MAP,
    },
}

CLUSTER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headGroupSpec"],
    "properties": {
        "headGroupSpec": HEAD_GROUP,
        "workerGroupSpecs": {"type": "array", "items": WORKER_GROUP},
        "rayVersion": {"type": "string"},
        "enableInTreeAutoscaling": {"type": "boolean"},
        "autoscalerOptions": AUTOSCALER_OPTIONS,
        "headServiceAnnotations": STRING_MAP,
        "suspend": {"type": "boolean"},
        "managedBy": MANAGED_BY,
        "gcsFaultToleranceOptions": {
            "type": "object",
            "additionalProperties": False,
            "required": ["redisAddress"],
            "properties": {"redisAddress": {"type": "string"}, "redisUsername": {"type": "object"},
                           "redisPassword": {"type": "object"},
                           "externalStorageNamespace": {"type": "string"}},
        },
        "authOptions": {"type": "object"},
        "upgradeStrategy": {"type": "object"},
    },
}

RAYCLUSTER = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,          # no `status` in a manifest
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": METADATA,
        "spec": CLUSTER_SPEC,
    },
}

DELETION_POLICY = {"type": "object", "required": ["policy"], "additionalProperties": False,
                   "properties": {"policy": {"enum": ["DeleteCluster", "DeleteWorkers", "DeleteSelf",
                                                      "DeleteNone"]}}}

RAYJOB_SPEC = {
    "type": "object",
    "additionalProperties": False,
    # a RayJob runs on the cluster it creates (rayClusterSpec) or on an existing one (clusterSelector)
    "anyOf": [{"required": ["rayClusterSpec"]}, {"required": ["clusterSelector"]}],
    "properties": {
        "entrypoint": {"type": "string"},
        "runtimeEnvYAML": {"type": "string"},
        "jobId": {"type": "string"},
        "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"]},
        "shutdownAfterJobFinishes": {"type": "boolean"},
        "ttlSecondsAfterFinished": INT32,
        "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
        "backoffLimit": INT32,
        "suspend": {"type": "boolean"},
        "rayClusterSpec": CLUSTER_SPEC,
        "clusterSelector": STRING_MAP,
        "submitterPodTemplate": POD_TEMPLATE,
        "submitterConfig": {"type": "object", "additionalProperties": False,
                            "properties": {"backoffLimit": INT32}},
        "metadata": STRING_MAP,
        "entrypointNumCpus": {"type": "number", "minimum": 0},
        "entrypointNumGpus": {"type": "number", "minimum": 0},
        "entrypointResources": {"type": "string"},
        "managedBy": MANAGED_BY,
        "deletionStrategy": {"type": "object", "additionalProperties": False,
                             "properties": {"onSuccess": DELETION_POLICY, "onFailure": DELETION_POLICY}},
        "schedule": {"type": "string"},
    },
}

RAYJOB = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayJob"},
        "metadata": METADATA,
        "spec": RAYJOB_SPEC,
    },
}

SCHEMAS = {"RayCluster": RAYCLUSTER, "RayJob": RAYJOB}


def cluster_spec(doc: dict) -> tuple[str, dict]:
    """The RayCluster spec inside a RayCluster or RayJob document, with its field path."""
    if doc.get("kind") == "RayJob":
        return "spec.rayClusterSpec", doc["spec"].get("rayClusterSpec") or {}
    return "spec", doc["spec"]


def schema_errors(doc: dict) -> list[str]:
    """``field.path: message`` for every place the document breaks its kind's schema."""
    import jsonschema

    schema = SCHEMAS.get(doc.get("kind"))
    if schema is None:
        return [f"kind: {doc.get('kind')!r} is not one of {sorted(SCHEMAS)}"]
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(f"{dotted(e.absolute_path) or '<root>'}: {e.message}" for e in validator.iter_errors(doc))


def semantic_errors(doc: dict) -> list[str]:
    where, spec = cluster_spec(doc)
    errors, names = [], set()
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        at = f"{where}.workerGroupSpecs[{i}]"
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
        n = group.get("replicas", lo)
        if lo > hi:
            errors.append(f"{at}.minReplicas: {lo} is above maxReplicas {hi}")
        if not lo <= n <= hi:
            errors.append(f"{at}.replicas: {n} is outside [minReplicas {lo}, maxReplicas {hi}]")
        if group.get("groupName") in names:
            errors.append(f"{at}.groupName: {group['groupName']!r} is used twice")
        names.add(group.get("groupName"))
    return errors


def dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def k8s_errors(model: str, data: dict, where: str) -> list[str]:
    """Deserialize ``data`` into the official Kubernetes model (client-side validation: required
    fields, types) and serialize it back: a key the model does not know is dropped on the way, so
    the round trip differing from the input names every unknown or mistyped field."""
    from kubernetes import client
    from pydantic import ValidationError

    try:
        obj = getattr(client, model).from_dict(data)
    except ValidationError as e:
        return [f"{where}: {e.title}.{dotted(err['loc'])}: {err['msg']}" for err in e.errors()]
    return [f"{where}{path}: {what}" for path, what in
            roundtrip_diff(data, client.ApiClient().sanitize_for_serialization(obj))]


def roundtrip_diff(orig, back, path=""):
    if isinstance(orig, dict) and isinstance(back, dict):
        for key, value in orig.items():
            if key not in back:
                yield f"{path}.{key}", "not a field of the Kubernetes model"
            else:
                yield from roundtrip_diff(value, back[key], f"{path}.{key}")
    elif isinstance(orig, list) and isinstance(back, list) and len(orig) == len(back):
        for i, (a, b) in enumerate(zip(orig, back)):
            yield from roundtrip_diff(a, b, f"{path}[{i}]")
    elif orig != back:
        yield path, f"{orig!r} is read as {back!r}"
