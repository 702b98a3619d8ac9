"""Every command in the README and docs parses with the real argument parsers.

Behaviour is tested elsewhere (and `scripts/demo.sh` runs in CI); this test makes sure the
documentation never names a module, sub-command, flag or script that does not exist.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable
from typing import Any

import pytest
from conftest import REPO

DOCS = [REPO / "README.md", REPO / "data" / "README.md", REPO / "models" / "README.md",
        *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def _parsers() -> dict[str, Callable[[list[str]], Any]]:
    from inference import benchmark, cli, distributed, export, publish
    from training import (
        agreement,
        al_simulation,
        audit,
        data,
        evaluate,
        labelstudio,
        linear_probe,
        merge,
        real_gain,
        real_texts,
        select,
        step_benchmark,
        stopping,
        train,
    )

    def parse_with(build: Callable[[], Any]) -> Callable[[list[str]], Any]:
        return lambda argv: build().parse_args(argv)

    return {
        "inference": parse_with(cli.build_parser),
        "inference.export": parse_with(export.build_parser),
        "inference.benchmark": parse_with(benchmark.build_parser),
        "inference.distributed": parse_with(distributed.build_parser),
        "inference.publish": parse_with(publish.build_parser),
        "training.data": parse_with(data.build_parser),
        "training.labelstudio": parse_with(labelstudio.build_parser),
        "training.agreement": parse_with(agreement.build_parser),
        "training.evaluate": parse_with(evaluate.build_parser),
        "training.step_benchmark": parse_with(step_benchmark.build_parser),
        "training.linear_probe": parse_with(linear_probe.build_parser),
        "training.select": parse_with(select.build_parser),
        "training.merge": parse_with(merge.build_parser),
        "training.real_texts": parse_with(real_texts.build_parser),
        "training.real_gain": parse_with(real_gain.build_parser),
        "training.audit": parse_with(audit.build_parser),
        "training.stopping": parse_with(stopping.build_parser),
        "training.al_simulation": parse_with(al_simulation.build_parser),
        "training.train": train.parse_args,
    }


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text("utf-8")):
            if lang != "bash":
                continue
            for line in body.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#"):
                    found.append((f"{doc.relative_to(REPO)}: {line}", line))
    return found


COMMANDS = documented_commands()


def test_docs_contain_commands() -> None:
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_is_valid(where: str, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    argv = shlex.split(line)
    for i, token in enumerate(argv):
        if token in {">", ">>", "<", "|", "&&", ";"}:
            argv = argv[:i]  # shell redirection or a second command
            break
    while argv and "=" in argv[0] and not argv[0].startswith("-"):
        argv = argv[1:]  # leading VAR=value assignments
    if argv[:1] in (["bash"], ["make"]):
        if argv[0] == "bash":
            assert (REPO / argv[1]).is_file(), f"{where}: no script {argv[1]}"
        else:
            assert f"\n{argv[1]}:" in (REPO / "Makefile").read_text("utf-8"), f"{where}: no make target"
        return
    if "-m" not in argv:
        return  # pip, venv and other third-party commands
    module = argv[argv.index("-m") + 1]
    if module in {"pip", "venv"}:
        return
    parsers = _parsers()
    assert module in parsers, f"{where}: unknown module {module}"
    args = argv[argv.index("-m") + 2:]
    try:
        parsers[module](args)
    except SystemExit as exc:
        pytest.fail(f"{where}: arguments rejected ({exc})")


def test_python_snippets_are_valid_and_import_real_names() -> None:
    import importlib

    for doc in DOCS:
        for lang, body in FENCE.findall(doc.read_text("utf-8")):
            if lang != "python":
                continue
            tree = ast.parse(body)
            for node in ast.walk(tree):
                ours = isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in {
                    "inference", "training"}
                if ours:
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), f"{doc.name}: {node.module}.{alias.name} does not exist"
