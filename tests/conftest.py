"""Shared test setup. Its presence puts tests/ on sys.path (pytest's default "prepend"
import mode), so any test can ``from strategies import specs`` (tests/strategies.py)."""
