"""The conformance suite's pytest plugin, one module per concern; the root ``conftest.py`` loads them.

- ``profiles``: Hypothesis profiles, the example database, a campaign's settings;
- ``options``: command-line options, and the :class:`suites.run.Run` built from them at configure
  time and kept in ``config.stash``;
- ``parametrize``: implementation x device x dtype cases, corpus entries, test order and shards;
- ``campaigns``: time-budgeted fuzz campaigns (slices, the shared deadline, Ctrl-C);
- ``summary``: the report and the terminal summary at the end of the session.
"""

PLUGINS = ("suites.plugin.profiles", "suites.plugin.options", "suites.plugin.parametrize", "suites.plugin.campaigns",
           "suites.plugin.summary")
