"""Shared test infrastructure for tests/ and bench/: platform and LLM emulators on 127.0.0.1,
fresh-database fixtures, and the multi-worker pool. Not part of the installed application."""
