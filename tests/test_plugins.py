"""The plugin API: a plugin file written exactly as the README shows is picked up by --impl-module
and selected by --impl; a broken plugin or an unknown name gives one clear error line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from convt_conformance import impls
from convt_conformance.impls.registry import RegistryError
from convt_conformance.reports.records import read_report

from .conftest import ROOT

PLUGIN = '''
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose as naive

@register("my-kernel", dims=(1, 2, 3), devices=("cpu",), dtypes=("float32", "float64"))
def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return naive(input, weight, bias, stride, padding, output_padding, groups, dilation)
'''


def test_a_plugin_file_is_listed_and_run(tmp_path: Path, gate):
    plugin = tmp_path / "my_kernels.py"
    plugin.write_text(PLUGIN)
    listing = subprocess.run([sys.executable, "-m", "convt_conformance", "list", "--impl-module", str(plugin)],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "my-kernel" in listing and "available" in listing
    run = gate("--impl-module", str(plugin), "--impl", "my-kernel", "-k", "test_shape or test_exact")
    assert run.returncode == 0, run.output
    checked = {check: int(n) for check, n in re.findall(r"^my-kernel\s+(\S+)\s+(\d+)\s+0\s+0$", run.output, re.M)}
    assert checked.get("shape", 0) > 0 and checked.get("exact", 0) > 0, run.output[-3000:]
    assert "my-kernel" in run.output  # the run summary names it


def test_a_dotted_module_plugin_is_imported(gate):
    run = gate("--impl-module", "tests.planted.correct_variants", "--impl", "correct-reversed-order",
               "--dtype", "float64", "-k", "test_shape")
    assert run.returncode == 0, run.output


def test_a_broken_plugin_gives_one_clear_line(tmp_path: Path, gate):
    plugin = tmp_path / "broken.py"
    plugin.write_text("import no_such_module_anywhere\n")
    run = gate("--impl-module", str(plugin))
    assert run.returncode != 0
    errors = [line for line in run.output.splitlines() if "broken.py" in line]
    assert errors and "failed to import: ModuleNotFoundError" in errors[0]
    assert "Traceback" not in run.output


def test_a_missing_plugin_file_is_named(gate):
    run = gate("--impl-module", "does/not/exist.py")
    assert run.returncode != 0 and "does/not/exist.py" in run.output and "no such file" in run.output


def test_an_unknown_implementation_lists_the_available_ones(gate):
    run = gate("--impl", "no-such-kernel")
    assert run.returncode != 0
    line = next(line for line in run.output.splitlines() if "no-such-kernel" in line)
    assert "available:" in line and "naive" in line and "im2col" in line


def test_registration_checks_its_declaration():
    with pytest.raises(RegistryError, match="dims"):
        impls.register("bad-dims", dims=(4,))(lambda *a: None)
    with pytest.raises(RegistryError, match="unknown dtypes"):
        impls.register("bad-dtype", dtypes=("float8",))(lambda *a: None)
    with pytest.raises(RegistryError, match="devices"):
        impls.register("bad-device", devices=("tpu",))(lambda *a: None)
    with pytest.raises(RegistryError, match="already registered"):
        impls.register("naive")(lambda *a: None)
    with pytest.raises(RegistryError, match="fixed_geometries"):
        impls.register("bad-share", fixed_geometries=1.5)(lambda *a: None)


def test_a_plugin_that_kills_the_interpreter_on_import_is_one_line_naming_it(tmp_path: Path, gate):
    plugin = tmp_path / "segfaults.py"
    plugin.write_text("import ctypes\nctypes.string_at(0)\n")
    run = gate("--impl-module", str(plugin))
    assert run.returncode != 0 and "Traceback" not in run.output
    line = next(line for line in run.output.splitlines() if "segfaults.py" in line)
    assert "ended the interpreter (SIGSEGV) on import" in line


_FIRST = """
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose

@register("first-plugin", dims=(1,), dtypes=("float64",))
def first(*args, **kwargs):
    return conv_transpose(*args, **kwargs)
"""
_SECOND = """
import sys
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose
{crash}

@register("second-plugin", dims=(1,), dtypes=("float64",))
def second(*args, **kwargs):
    if any(name.startswith("convt_plugin_") and name != __name__ for name in sys.modules):
        raise RuntimeError("another plugin is loaded in this process")
    return conv_transpose(*args, **kwargs)
"""


def test_plugins_that_conflict_on_import_are_named_together(tmp_path: Path, gate):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(_FIRST)
    crash = "if any(n.startswith('convt_plugin_') and n != __name__ for n in sys.modules):\n" \
            "    import os, signal\n    os.kill(os.getpid(), signal.SIGABRT)"
    second.write_text(_SECOND.format(crash=crash))
    run = gate("--impl-module", str(first), "--impl-module", str(second))
    assert run.returncode != 0 and "Traceback" not in run.output
    line = next(line for line in run.output.splitlines() if "second.py" in line)
    assert "(SIGABRT) on import after" in line and "first.py" in line and "separate runs" in line


def test_a_contained_worker_imports_only_the_plugin_it_runs(tmp_path: Path, gate):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text(_FIRST)
    second.write_text(_SECOND.format(crash=""))
    run = gate("--impl-module", str(first), "--impl-module", str(second), "--impl", "second-plugin",
               "--contain", "plugins", "-k", "test_valid_accepted")
    assert run.returncode == 0, run.output[-3000:]


_NARROW = """
from convt_conformance import register
from convt_conformance.impls.naive import conv_transpose


@register("narrow", dims=(1, 2), dtypes=("float64",), {domain})
def narrow(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if groups != 1:
        raise NotImplementedError("groups > 1 is not supported")
    return conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)
"""


def test_a_declared_domain_keeps_value_checks_inside_it_and_counts_clean_refusals(tmp_path: Path, gate):
    plugin = tmp_path / "narrow.py"
    plugin.write_text(_NARROW.format(domain='domain={"groups == 1": lambda p: p.groups == 1}'))
    out = tmp_path / "out"
    run = gate("--impl-module", str(plugin), "--report-dir", str(out), "--impl", "narrow",
               "-k", "test_exact or test_valid_accepted or test_outside_domain_refused")
    assert run.returncode == 0, run.output[-3000:]
    summary = read_report(out / "report.json")["summary"]
    (row,) = summary["domain"]
    assert row["impl"] == "narrow" and row["requirement"] == "groups == 1" and row["refused"] > 0 == row["accepted"]
    examples = {r["check"]: r["examples"] for r in summary["table"]}
    assert examples["exact"] >= 30 and examples["valid-refused"] >= 30  # the budget counts checked problems
    assert "needs groups == 1" in run.output and "groups == 1" in (out / "report.md").read_text()

    undeclared = tmp_path / "undeclared.py"
    undeclared.write_text(_NARROW.format(domain="").replace('"narrow"', '"undeclared"'))
    run = gate("--impl-module", str(undeclared), "--impl", "undeclared", "-k", "test_valid_accepted")
    assert run.returncode == 1 and run.failed("test_valid_accepted")


def test_a_crash_outside_the_declared_domain_is_still_a_finding(tmp_path: Path, gate):
    plugin = tmp_path / "narrow.py"
    segfault = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    plugin.write_text(_NARROW.format(domain='domain={"groups == 1": lambda p: p.groups == 1}').replace(
        'raise NotImplementedError("groups > 1 is not supported")', segfault)
        .replace('"narrow"', '"segfaults-outside"'))
    out = tmp_path / "out"
    run = gate("--impl-module", str(plugin), "--report-dir", str(out), "--impl", "segfaults-outside",
               "-k", "test_outside_domain_refused")
    assert run.returncode == 1 and run.failed("test_outside_domain_refused"), run.output[-3000:]
    found = [d for d in read_report(out / "report.json")["discrepancies"] if d["status"] == "unexpected"]
    assert found and {d["check"] for d in found} == {"crash"}


def test_a_domain_declaration_is_checked():
    with pytest.raises(RegistryError, match="domain must map"):
        impls.register("bad-domain", domain={"groups == 1": True})(lambda *a: None)


def test_contained_calls_keep_every_guarantee(tmp_path: Path, gate):
    """Contained calls move tensors as bytes: a kernel writing into its input is still seen, layouts and
    gradients still arrive as they were."""
    planted = ROOT / "tests" / "planted"
    run = gate("--impl-module", str(planted / "oracle_bugs.py"), "--impl", "bug-robust-modifies-input",
               "--contain", "all", "-k", "test_inputs_unmodified")
    assert run.returncode == 1 and run.failed("test_inputs_unmodified"), run.output[-3000:]
    run = gate("--impl-module", str(planted / "custom_backward.py"), "--impl", "correct-custom-backward",
               "--contain", "all", "--dtype", "float32", "-k", "test_grad_bound or test_double_backward or "
               "test_layout_invariance or test_exact")
    assert run.returncode == 0, run.output[-3000:]
