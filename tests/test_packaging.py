"""A wheel built from this checkout works as a regular (non-editable) install, fully offline.

The wheel is built with hatchling's PEP 517 hook (no build isolation, no download), installed with
``pip --no-index --no-deps`` into a fresh venv, and exercised there from a directory outside the
checkout. The project's dependencies are borrowed from the development environment through a ``.pth``
file holding its site-packages directory as a plain path line: a path line only appends that directory
to ``sys.path``; unlike ``site.addsitedir`` it does not process the ``.pth`` files inside it, so the
editable-install hook there (which puts the checkout on ``sys.path``) never runs in the new venv.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The distribution's name on the package index ("agentmem" there is an unrelated project); the import
# package and the command stay "agentmem".
DIST = "agentmem-layers"
DIST_INFO = "agentmem_layers-0.1.0.dist-info"  # the wheel spec's normalised form of the name
TEMPLATES = ("profile.jinja", "policies.jinja", "knowledge.jinja", "feedback.jinja")
TIMEOUT = 120
DEAD_PROXY = "http://127.0.0.1:9"  # anything that tries HTTP(S) anyway fails fast, on loopback


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    python: Path
    site_packages: Path
    workdir: Path
    env: dict[str, str]


def _offline_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "AGENTMEM_DB_URL")
        and not k.startswith("PIP_")
    }
    env.update(
        HOME=str(home),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONNOUSERSITE="1",
        PIP_CONFIG_FILE=os.devnull,  # no find-links or index from a user or site pip.conf
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        NO_PROXY="",
        no_proxy="",
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    return env


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    home, workdir, dist, venv = root / "home", root / "work", root / "dist", root / "venv"
    for d in (home, workdir, dist):
        d.mkdir()
    env = _offline_env(home)

    # 1. Build the wheel from the checkout with the PEP 517 hook, in the development environment.
    build = "import sys\nfrom hatchling.build import build_wheel\nprint(build_wheel(sys.argv[1]))"
    name = _run([sys.executable, "-c", build, dist], cwd=REPO, env=env).stdout.strip().splitlines()[-1]
    wheel = dist / name
    assert wheel.is_file(), f"hatchling reported {name!r} but {dist} holds {os.listdir(dist)}"

    # 2. A fresh venv, without pip and without the development environment on its path.
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root, env=env)
    python = venv / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=workdir, env=env
    ).stdout.strip()
    site_packages = Path(purelib)

    # 3. Install the wheel (pip from the development environment, acting on the new venv's interpreter).
    # This happens before the dependencies are made visible, so pip sees no other agentmem.
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel],
        cwd=root,
        env=env,
    )

    # 4. Borrow the dependencies: plain path lines, so the .pth files in those directories are not run.
    dev_dirs = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site_packages / "_agentmem_test_deps.pth").write_text("".join(f"{d}\n" for d in dev_dirs))

    return Installed(wheel, venv, python, site_packages, workdir, env)


def test_wheel_ships_package_prompts_marker_and_script(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        for template in TEMPLATES:
            packed = f"agentmem/prompts/{template}"
            assert packed in names, f"{packed} missing from the wheel"
            assert whl.read(packed) == (REPO / "prompts" / template).read_bytes()
        assert "agentmem/py.typed" in names
        inspector = REPO / "agentmem" / "server" / "inspector"
        files = {
            p.relative_to(REPO).as_posix() for d in ("templates", "static") for p in (inspector / d).iterdir()
        }
        assert files, "the inspector's templates and static files are missing from the checkout"
        assert files - names == set(), "the inspector's templates or static files are missing from the wheel"

        sources = {p.relative_to(REPO).as_posix() for p in (REPO / "agentmem").rglob("*.py")}
        assert sources - names == set(), "modules of the checkout missing from the wheel"
        top_level = {n.split("/", 1)[0] for n in names}
        assert top_level == {"agentmem", DIST_INFO}, top_level
        metadata = email.parser.Parser().parsestr(whl.read(f"{DIST_INFO}/METADATA").decode("utf-8"))
        assert (metadata["Name"], metadata["Version"]) == (DIST, "0.1.0")
        assert installed.wheel.name == f"{DIST_INFO.removesuffix('.dist-info')}-py3-none-any.whl"

        entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert len(entry_points) == 1, entry_points
        parser = configparser.ConfigParser()
        parser.read_string(whl.read(entry_points[0]).decode("utf-8"))
        assert parser["console_scripts"]["agentmem"].strip() == "agentmem.cli:main"


PROBE = """
import importlib.metadata as md, json, sys
import agentmem
from agentmem.prompts import default_prompts_dir, default_template
from agentmem.cli import main  # the console script's target imports
dist = md.distribution(sys.argv[1])
print(json.dumps({
    "agentmem": agentmem.__file__,
    "prompts_dir": str(default_prompts_dir()),
    "profile": default_template("profile.jinja"),
    "templates": {n: default_template(n) for n in sys.argv[2:]},
    "name": dist.metadata["Name"],
    "dist_module": str(dist.locate_file("agentmem/__init__.py")),
    "script": [e.value for e in dist.entry_points if (e.group, e.name) == ("console_scripts", "agentmem")],
    "sys_path": sys.path,
}))
"""


def test_installed_wheel_imports_from_venv_and_finds_its_prompts(installed: Installed) -> None:
    out = _run([installed.python, "-c", PROBE, DIST, *TEMPLATES], cwd=installed.workdir, env=installed.env)
    probe = json.loads(out.stdout)
    package = installed.site_packages.resolve() / "agentmem"

    module = Path(probe["agentmem"]).resolve()
    assert module == package / "__init__.py", f"agentmem imported from {module}, not the installed wheel"
    assert not module.is_relative_to(REPO)
    # The editable hook of the development venv did not run: the checkout is not on sys.path.
    assert str(REPO) not in probe["sys_path"]
    assert not any(Path(p).resolve() == REPO for p in probe["sys_path"] if p)

    prompts_dir = Path(probe["prompts_dir"]).resolve()
    assert prompts_dir == package / "prompts"
    assert probe["profile"] == (REPO / "prompts" / "profile.jinja").read_text(encoding="utf-8")
    assert probe["templates"].keys() == set(TEMPLATES)

    # The installed metadata, not the development venv's editable one, is what importlib finds first.
    assert probe["name"] == DIST
    assert Path(probe["dist_module"]).resolve() == package / "__init__.py"
    assert probe["script"] == ["agentmem.cli:main"]


def test_installed_console_script_runs_the_offline_demo(installed: Installed) -> None:
    script = installed.venv / "bin" / "agentmem"
    assert script.is_file()
    assert script.read_text(encoding="utf-8").splitlines()[0] == f"#!{installed.python}"

    out = _run([script, "demo"], cwd=installed.workdir, env=installed.env)
    assert "<user_profile>" in out.stdout
    assert "</user_profile>" in out.stdout
    assert "Traceback" not in out.stderr
