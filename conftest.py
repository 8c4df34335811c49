"""Loads the conformance suite's pytest plugin (``suites/plugin/``) for every session run from this
checkout; pytester lets the project's own tests run the gate in-process."""

from suites.plugin import PLUGINS

pytest_plugins = (*PLUGINS, "pytester")
