"""A Ray cluster of separate nodes on one machine, started the way a user starts one: a head and
worker nodes, each its own `ray start --block` process (own raylet, object store, agents and CPU
count), joined over the head's GCS port. Killing a node's process group is losing that node."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
NODE_TAG = "test_node_"  # a custom resource naming each node ("node:" is Ray's own prefix)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    """Every port a node listens on, chosen free: two nodes on one host must not share one."""
    args = []
    for flag in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"):
        args += [flag, str(free_port())]
    return args


class NodeExited(RuntimeError):
    """A node's `ray start` process ended while the cluster was waiting for it."""


class LocalCluster:
    def __init__(self, log_dir: Path, env: dict | None = None):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.temp_dirs: list[str] = []  # one per node
        self.nodes: dict[str, subprocess.Popen] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, name: str, args: list[str]) -> None:
        # Its own temp folder, as on a separate machine: nodes sharing one would also share the
        # runtime-env cache, and one node's cache clean-up would delete another's working_dir.
        # Short, because Unix socket paths are limited to ~107 bytes.
        temp_dir = tempfile.mkdtemp(prefix=f"rc{name[:4]}", dir="/tmp")
        self.temp_dirs.append(temp_dir)
        with open(self.log_dir / f"node-{name}.log", "w") as log:  # the child keeps its own fd
            self.nodes[name] = subprocess.Popen(
                [RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
                 "--temp-dir", temp_dir, *node_ports(), *args],
                env=self.env, start_new_session=True, stdout=log,
                stderr=subprocess.STDOUT)

    def start_head(self, num_cpus: int, object_store_bytes: int = 10**9) -> None:
        def args() -> list[str]:
            self.gcs_port, self.dashboard_port = free_port(), free_port()  # fresh on a retry
            return ["--head", "--port", str(self.gcs_port), "--num-cpus", str(num_cpus),
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port),
                    "--ray-client-server-port", str(free_port()),
                    "--object-store-memory", str(object_store_bytes), "--resources",
                    json.dumps({NODE_TAG + "head": 1})]
        self._start_and_wait("head", args, 1)

    def add_worker(self, name: str, num_cpus: int, object_store_bytes: int = 10**9) -> None:
        self._start_and_wait(name, lambda: ["--address", self.address, "--num-cpus", str(num_cpus),
                                            "--object-store-memory", str(object_store_bytes),
                                            "--resources", json.dumps({NODE_TAG + name: 1})],
                             len(self.nodes) + 1)

    def _start_and_wait(self, name: str, args, n: int, tries: int = 3) -> None:
        """Start a node and wait until the cluster has ``n`` live nodes. On a loaded 2-core
        machine a starting node can miss Ray 2.60's fixed start-up waits (30 s for the raylet to
        register with the GCS, ray/_private/node.py; the raylet's wait for its dashboard agent,
        after which it aborts) and its `ray start` process exits: it is started again, at most
        ``tries`` times. Only start-up is retried; a node lost later is the test's business."""
        for attempt in range(1, tries + 1):
            self._start(name, args())
            try:
                self.wait_for(n)
                return
            except NodeExited:
                if attempt == tries:
                    raise
                try:  # what the failed start left running (its GCS, for a head)
                    os.killpg(self.nodes[name].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def alive_nodes(self) -> list[dict]:
        """The GCS's view: each live node's id and resources (asked from a separate process so
        the test process never joins the cluster as a driver)."""
        code = (f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
                "print('NODES ' + json.dumps([{'id': n['NodeID'], 'resources': n['Resources']} "
                "for n in ray.nodes() if n['Alive']]))")
        try:
            out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                                 text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the cluster at {self.address} did not answer in 120 s") from None
        # the driver's stdout also carries the cluster's forwarded log lines (a crashing raylet's
        # stack trace, say): the answer is the line this probe marked
        answer = [ln for ln in out.stdout.splitlines() if ln.startswith("NODES ")]
        if out.returncode or not answer:
            raise RuntimeError(f"cannot reach the cluster at {self.address}: {out.stderr[-2000:]}")
        return json.loads(answer[-1].removeprefix("NODES "))

    def node_ids(self) -> dict[str, str]:
        """Node name (head, or the name given to add_worker) -> Ray node id, for live nodes."""
        ids = {}
        for n in self.alive_nodes():
            for key in n["resources"]:
                if key.startswith(NODE_TAG) and key[len(NODE_TAG):] in self.nodes:
                    ids[key[len(NODE_TAG):]] = n["id"]
        return ids

    def wait_for(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.nodes.items():
                if p.poll() is not None:
                    raise NodeExited(f"node {name} exited: " + (self.log_dir / f"node-{name}.log").read_text()[-2000:])
            try:
                if len(self.alive_nodes()) == n:
                    return
            except RuntimeError:
                pass
            time.sleep(1)
        raise TimeoutError(f"{n} live nodes not reached in {timeout} s")

    def kill(self, name: str) -> None:
        """Lose a node: SIGKILL its `ray start` process and everything in its process group
        (raylet, object store, agents, and the workers the raylet started)."""
        p = self.nodes[name]
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    def submit(self, entrypoint: list[str], log: Path, working_dir: Path | None = None,
               env_vars: dict | None = None) -> subprocess.Popen:
        """`ray job submit` to the head's job server, as a user does; returns the waiting client."""
        args = [RAY, "job", "submit", "--address", self.dashboard]
        if working_dir:
            args += ["--working-dir", str(working_dir)]
        if env_vars:
            args += ["--runtime-env-json", json.dumps({"env_vars": env_vars})]
        with open(log, "w") as out:
            return subprocess.Popen([*args, "--", *entrypoint], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for p in self.nodes.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        # Driver and worker processes the nodes started but that left their process groups.
        for d in self.temp_dirs:
            subprocess.run(["pkill", "-9", "-f", d], check=False)
