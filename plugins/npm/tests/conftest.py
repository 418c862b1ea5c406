"""Fixtures for the npm plugin's tests; helpers live in npm_kit (a unique module name: test modules import
from it, and ``from conftest import`` would find whichever conftest pytest loaded last)."""

from npm_kit import *  # noqa: F401,F403  (pytest collects the fixtures from this namespace)
