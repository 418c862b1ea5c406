"""Fixtures for the docker plugin's tests; helpers live in docker_kit (a unique module name: test modules import
from it, and ``from conftest import`` would find whichever conftest pytest loaded last)."""

from docker_kit import *  # noqa: F401,F403  (pytest collects the fixtures from this namespace)
