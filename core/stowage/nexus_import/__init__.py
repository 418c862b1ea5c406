"""``stowage import nexus``: copy a running Nexus (or Stowage) into a running Stowage, through REST only.

:mod:`.client` speaks HTTP to both servers, :mod:`.settings` copies configuration, :mod:`.content` copies
hosted repositories' files through each format's own upload path, :mod:`.report` keeps the outcome.
"""
