"""The gate as another project runs it: a wheel installed in a fresh environment, ``convt gate`` from that
project's own folder (which has its own ``reports``, ``suites``, ``impls`` and ``tests`` packages), and
the pytest plugin inside a user's own session."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from .conftest import ROOT

FAULTY_PLUGIN = '''
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive

@register("doubled", dims=(1, 2, 3), devices=("cpu",), dtypes=("float32",), version="1.2.3")
def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return 2 * naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
'''
USER_PACKAGES = ("reports", "suites", "impls", "tests")
SKIPPED_IN_THE_COPY = shutil.ignore_patterns(".git", ".venv", ".tox", "build", "dist", "*.egg-info", "convt-reports",
                                             ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__")


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


def _environment_with_the_wheel(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh virtual environment holding only the built wheel; torch and the other requirements are the
    ones this interpreter has (preinstalled, as a user brings their own torch)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED_IN_THE_COPY)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
          str(source)])
    (wheel,) = wheels.glob("convt_conformance-*.whl")
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)])
    return env, site / "convt_conformance"


def _files(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


@pytest.mark.slow
def test_the_installed_gate_runs_from_another_project_and_writes_there(tmp_path: Path):
    env, installed = _environment_with_the_wheel(tmp_path)
    before = _files(installed)
    project = tmp_path / "project"
    for package in USER_PACKAGES:
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"WHOSE = 'the project {package}'\n")
    (project / "my_kernel.py").write_text(FAULTY_PLUGIN)

    gate = subprocess.run([str(env / "bin" / "convt"), "gate", "-q", "-p", "no:xdist", "--impl-module", "my_kernel.py",
                           "--impl", "doubled", "-k", "test_exact"], cwd=project, capture_output=True, text=True,
                          timeout=600)

    assert gate.returncode == 1, gate.stdout[-3000:] + gate.stderr[-3000:]
    reports = project / "convt-reports"
    assert {"report.json", "report.md", "report.html"} <= {path.name for path in reports.iterdir()}
    report = json.loads((reports / "report.json").read_text())
    assert report["summary"]["verdict"] == "fail"
    assert {d["impl"] for d in report["discrepancies"]} == {"doubled"}
    environment = report["summary"]["environment"]
    assert environment["convt_conformance"] and environment["convt_conformance_commit"] is None
    assert environment["profile"] == "ci" and environment["hypothesis"] and environment["torch"]
    assert environment["implementation_versions"] == {"doubled": "1.2.3"}
    assert _files(installed) == before, "the gate wrote inside the installed package"
    whose = _run([str(env / "bin" / "python"), "-c", "import reports, convt_conformance as c; print(reports.WHOSE); "
                  "print(c.__file__)"], cwd=project).stdout.splitlines()
    assert whose[0] == "the project reports" and Path(whose[1]).is_relative_to(env)


def test_the_plugin_leaves_a_users_other_tests_alone(pytester: pytest.Pytester):
    profile = settings.get_current_profile_name()  # this session's own, which the gate must leave alone
    pytester.makepyfile(test_mine=f'''
        import torch
        from hypothesis import settings

        def test_no_gate_state(pytestconfig):
            assert settings.get_current_profile_name() == "{profile}"
            assert pytestconfig.pluginmanager.get_plugin("convt_conformance.suites.plugin.setup") is None
            assert pytestconfig.getoption("report_dir") == "convt-reports"  # its options are there, inert
    ''')
    threads = torch.get_num_threads()
    result = pytester.runpytest_inprocess("-p", "convt_conformance.suites.plugin", "-p", "no:cacheprovider",
                                          "--torch-threads", str(threads + 1))
    result.assert_outcomes(passed=1)
    assert torch.get_num_threads() == threads


def test_an_implementation_the_users_conftest_registers_is_selected(pytester: pytest.Pytester, gate):
    pytester.makeconftest('''
        from convt_conformance import register
        from convt_conformance.impls.naive import conv_transpose as naive

        register("from-my-conftest", dtypes=("float64",))(naive)
    ''')
    run = gate(str(pytester.path), "--impl", "from-my-conftest", "-k", "test_shape")
    assert run.returncode == 0, run.output[-3000:]
    assert "from-my-conftest" in run.output
