"""The cluster files as the tests read them: where they are, the shell command lines they hold
(Markdown code, YAML strings and command comments, Dockerfile RUN lines), the clipscale commands in
those lines, parsed the way `clipscale` parses them, and the repository paths they name."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHERS = {"aws": CLUSTER / "aws.yaml", "gcp": CLUSTER / "gcp.yaml"}
MANIFESTS = {p.stem: p for p in sorted((CLUSTER / "kuberay").glob("*.yaml"))}
FILES = sorted(p for p in CLUSTER.rglob("*") if p.is_file())
CLIS = ("ray", "clipscale", "kubectl", "helm", "docker", "bash", "aws", "gcloud", "eksctl")


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@functools.cache
def install_roots() -> dict[str, Path]:
    """Where the cluster files put the repository on a node: the Dockerfile's WORKDIR and the
    launchers' clone (under the SSH user's home), each standing for this checkout."""
    roots = {re.search(r"^WORKDIR (\S+)", (CLUSTER / "Dockerfile").read_text(), re.MULTILINE).group(1): ROOT}
    for path in LAUNCHERS.values():
        cfg = load(path)
        clone = re.search(r"git clone \S+ ~/(\S+)", "\n".join(cfg["setup_commands"])).group(1)
        roots[f"~/{clone}"] = roots[f"/home/{cfg['auth']['ssh_user']}/{clone}"] = ROOT
    return roots


def repo_path(p: str) -> Path | None:
    for root, local in install_roots().items():
        if p.startswith(root + "/"):
            return local / p[len(root) + 1:]
    return None if p.startswith(("/", "~", "$")) else ROOT / p


def command_lines(path: Path) -> list[tuple[str, str]]:
    """(where, line) for the shell command lines of a cluster file: fenced and inline code in
    Markdown; string values and comment lines that start with a command in YAML; RUN and comment
    lines in the Dockerfile. Backslash-continued lines are joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    out = []
    if path.suffix == ".md":
        fences = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
        out += [(rel(path), ln) for block in fences for ln in block.splitlines()]
        prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        spans = [re.sub(r"\s+", " ", m).strip() for m in re.findall(r"`([^`]+)`", prose)]
        out += [(rel(path), m) for m in spans if " " in m]     # one word is a name, not a command
        return out
    for n, line in enumerate(text.splitlines(), 1):
        body = line.strip()
        if body.startswith("#") and body[1:].split()[:1] and body[1:].split()[0] in CLIS:
            out.append((f"{rel(path)}:{n}", body[1:].strip()))
        elif body.startswith("RUN "):
            out.append((f"{rel(path)}:{n}", body[4:]))
    if path.suffix == ".yaml":
        def strings(node, at):
            if isinstance(node, dict):
                for k, v in node.items():
                    yield from strings(v, f"{at}.{k}" if at else str(k))
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    yield from strings(v, f"{at}[{i}]")
            elif isinstance(node, str) and re.search(r"\s", node.strip()):
                yield at, node
        out += [(f"{rel(path)}: {at}", s) for at, s in strings(load(path), "")]
    return out


def clipscale_commands(line: str) -> list[list[str]]:
    """The argv (after `clipscale`) of every clipscale command in a shell line: one that starts a
    command (the line, after an operator, or after `ray job submit ... --`)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    found, current, head = [], None, None
    for tok in lex:
        if set(tok) <= set("();<>|&"):
            current, head = None, None
        elif current is not None:
            current.append(tok)
        elif head is None and re.fullmatch(r"[A-Za-z_]\w*=.*", tok):
            continue                                   # VAR=value before a command
        elif head == "ray" and tok == "--":
            head = None                                # `ray job submit ... -- ENTRYPOINT`
        elif head is None:
            if os.path.basename(tok) == "clipscale":
                current = []
                found.append(current)
            head = tok
    return found


def all_clipscale_commands() -> list[tuple[str, list[str]]]:
    return [(where, argv) for path in FILES for where, line in command_lines(path)
            for argv in clipscale_commands(line)]


def parse(argv: list[str]):
    """Parse as `clipscale` does (clipscale.cli.main): the real parser, then --section.field flags."""
    from clipscale.cli import parse_args

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parse_args(argv)
    except SystemExit:
        return None, (err.getvalue().strip().splitlines() or ["exit"])[-1]
    return args, None


