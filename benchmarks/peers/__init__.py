"""Benchmark peers (smlmLP, dcnum, MagTrack) run in their own throw-away venvs.

``_find`` (stdlib only) locates or creates the peer interpreters and runs the runner
scripts beside it; the runners themselves execute under the peer's Python. See README.md.
"""
