"""Starting (or joining) Ray: one place for the settings every clipscale job needs."""
from __future__ import annotations

import logging
import os

# CPUs each Ray Data decoding task of the training stream reserves: decoding is light at these
# sizes, and it leaves CPU for the train workers. The sweep planner counts trials' resources with it.
DECODE_TASK_CPUS = 0.25

# Train V2's placement-group cleaner logs a State-API failure every second when the dashboard is
# off; it is noise, not a fault. It runs in its own actor, so the level is set in every worker.
NOISY_LOGGERS = ("ray.train.v2._internal.execution.controller.placement_group_cleaner",)
# Train V2's per-report info lines ("Reporting training result ..." with the whole metrics dict,
# from a logger named by its module's file path, and "Checkpoint successfully created at ...")
# repeat what the loop prints; warnings and errors from them still show.
CHATTY_MODULES = ("ray.train.v2._internal.execution.context", "ray.train.v2._internal.execution.storage")


def chatty_logger_names() -> list[str]:
    """Both names each chatty module's logger may have: its dotted name and its file path (found
    from Ray's package folder, without importing the module: this runs in every Ray worker)."""
    import ray

    root = os.path.dirname(os.path.dirname(ray.__file__))
    return [n for m in CHATTY_MODULES for n in (m, os.path.join(root, *m.split(".")) + ".py")]


def quiet_noisy_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in chatty_logger_names():
        logging.getLogger(name).setLevel(logging.WARNING)


def ray_env(use_gpu: bool) -> dict:
    # RAY_TRAIN_ENABLE_PRINT_PATCH=0: Train V2 turns a worker's print into a log record and, when
    # stdout is wrapped (it is in a Ray worker), prints it as well, so every loop line reached the
    # driver twice (once from stdout, once from stderr); plain print writes it once, to stdout.
    env = {"TOKENIZERS_PARALLELISM": "false", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
    if not use_gpu:
        env["DS_ACCELERATOR"] = "cpu"  # DeepSpeed's CPU accelerator: gloo, fp32
    return env


# On a local cluster of our own nothing drains a node, so Ray Train's preemption watcher (an actor
# per worker group that polls Ray Core's drain state) only costs a process start per Train run;
# on a cluster a user started (RAY_ADDRESS) it stays on. clipscale's own preemption path is
# SIGTERM on the driver (train/preemption.py).
LOCAL_ONLY_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}

MIN_LOCAL_CPUS = 4
START_ATTEMPTS = 3  # local Ray starts tried before giving up (see init_ray)


def local_cpus() -> int:
    """Logical CPUs a local Ray declares (see ``init_ray``)."""
    return max(MIN_LOCAL_CPUS, os.cpu_count() or 1)


def init_ray(use_gpu: bool = False, num_cpus: int | None = None) -> None:
    """Join the cluster named by RAY_ADDRESS, or start a local one. Locally at least 4 logical
    CPUs are declared: with fewer, train workers or curation actors can take every CPU and Ray
    Data's read tasks never get one (the stream then hangs)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.60 writes an auth token otherwise
    for k, v in ray_env(use_gpu).items():
        os.environ.setdefault(k, v)
    quiet_noisy_loggers()
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": ray_env(use_gpu),
                   "worker_process_setup_hook": "clipscale.ray_setup.quiet_noisy_loggers"}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(runtime_env=runtime_env, logging_level=logging.WARNING)
    else:
        # address="local": a new cluster of our own. Without it Ray joins the last cluster that
        # `ray start` began on this machine (someone else's, running other code).
        runtime_env["env_vars"] = {**runtime_env["env_vars"], **LOCAL_ONLY_ENV}
        for attempt in range(START_ATTEMPTS):
            try:
                ray.init(address="local", num_cpus=num_cpus or local_cpus(), include_dashboard=False,
                         runtime_env=runtime_env, logging_level=logging.WARNING)
                return
            except Exception as e:
                # On an overloaded machine the raylet gives its agent process a fixed time to
                # start and then aborts ("timed out during startup"); nothing was started, and a
                # second start usually gets through.
                if "timed out during startup" not in str(e) or attempt == START_ATTEMPTS - 1:
                    raise
                ray.shutdown()
                print("[clipscale] Ray's local node timed out starting (machine overloaded?); starting it again",
                      flush=True)
