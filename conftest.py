"""In a checkout: load the gate's pytest plugin (installed, its entry point does) and pytester, with which
the project's own tests run the gate in-process."""

pytest_plugins = ("convt_conformance.suites.plugin", "pytester")
