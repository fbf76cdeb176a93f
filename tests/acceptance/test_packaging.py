"""What ``pip install .`` installs: the ``ecmahost`` namespace and nothing else.

The wheel is built from the checkout and installed into a fresh virtual environment
without its dependencies (those are taken from the test environment through a path
file), so the installed copy, not the checkout, is what runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
_NOT_SOURCE = (".git", ".venv", "*.egg-info", "build", "var", "__pycache__", ".*_cache")
FIXTURE = REPO / "tests" / "fixtures" / "Configuration - CSV.redacted.xml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy without the editable install's metadata (``*.egg-info``), which
    # would otherwise add files the packaging settings do not name.
    source = out / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("ecmahost-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment holding the wheel; returns its ``bin`` folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    purelib = Path(
        sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)})
    )
    with zipfile.ZipFile(wheel) as archive:  # a wheel is installed by unpacking it
        archive.extractall(purelib)
    (purelib / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    bin_dir = env_dir / "bin"
    script = bin_dir / "ecmahost"
    script.write_text(
        f"#!{bin_dir / 'python'}\n"
        "import sys\nfrom ecmahost.engine.cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_the_wheel_holds_only_the_ecmahost_namespace(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"ecmahost", wheel.name.split("-py3")[0] + ".dist-info"}
    assert not any(name.startswith("ecmahost/__init__") for name in names)  # a namespace
    for shipped in (
        "ecmahost/migrations/versions/0001_initial.py",
        "ecmahost/migrations/script.py.mako",
        "ecmahost/connectors/script/examples/csv-scripts/import.py",
        "ecmahost/connectors/script/examples/shell-scripts/export.sh",
        *(
            f"ecmahost/engine/scim/templates/{t}.html"
            for t in ("base", "login", "refused", "status")
        ),
    ):
        assert shipped in names


def test_the_installed_copy_renders_the_status_page(installed: Path, tmp_path: Path) -> None:
    login = _run(
        installed,
        installed / "python",
        "-c",
        "from ecmahost.engine.scim import status_page as p; "
        "print(p._render('login.html', error=None).text)",
        cwd=tmp_path,
    )
    assert login.returncode == 0, login.stderr
    assert '<input id="token" name="token" type="password"' in login.stdout


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ECMAHOST_CONFIG")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_installed_copy_runs_from_another_folder(installed: Path, tmp_path: Path) -> None:
    where = _run(
        installed,
        installed / "python",
        "-c",
        "import ecmahost, ecmahost.engine.host as h; print(list(ecmahost.__path__)[0], h.__file__)",
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    package_dir, module = where.stdout.split()
    assert str(installed.parent) in package_dir and str(REPO) not in module

    shown = _run(installed, installed / "ecmahost", "--version", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.startswith("ecmahost 0.")


def test_site_packages_has_no_generic_packages(installed: Path) -> None:
    purelib = next(installed.parent.glob("lib/python*/site-packages"))
    generic = {"engine", "connectors", "migrations", "tests", "bench", "examples"}
    assert generic.isdisjoint(p.name for p in purelib.iterdir())


def test_import_xml_with_the_python_examples_from_the_install(
    installed: Path, tmp_path: Path
) -> None:
    output = tmp_path / "imported" / "ecmahost.toml"
    done = _run(
        installed,
        installed / "ecmahost",
        "connectors",
        "import-xml",
        FIXTURE,
        "--output",
        output,
        "--use-python-examples",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert 'type = "script"' in output.read_text(encoding="utf-8")
    copied = output.parent / "CSV-scripts" / "import.py"
    assert copied.is_file() and "def main" in copied.read_text(encoding="utf-8")
