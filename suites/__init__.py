"""The conformance suites: Hypothesis properties over the whole parameter space."""
