"""What a person reads: known-discrepancy rules, run records and summaries.

This package knows nothing of Hypothesis and never imports the implementations.
"""
