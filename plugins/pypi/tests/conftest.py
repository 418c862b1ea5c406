"""Fixtures for the pypi plugin's tests; helpers live in pypi_kit (a unique module name: test modules import
from it, and ``from conftest import`` would find whichever conftest pytest loaded last)."""

from pypi_kit import *  # noqa: F401,F403  (pytest collects the fixtures from this namespace)
