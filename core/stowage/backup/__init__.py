"""Backups of a data directory (``stowage backup`` / ``restore``), incremental by blob digest.

A backup directory holds one content-addressed blob area shared by every generation, and one directory
per generation with its catalog snapshot, configuration, secrets and manifest (see :mod:`.layout`).
"""
