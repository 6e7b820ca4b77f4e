"""Reproducible load benchmarks of the gateway against fast local fake upstreams (``python -m bench``).

Direct-to-upstream, a minimal relay (the ceiling for any Python relay on this stack) and the gateway are
measured side by side in one run; see docs/benchmarks.md for the method and the latest figures.
"""
