"""Every format's hot metadata GETs against its peers (issue 16), one bench after another, then every goal.

    .venv/bin/python bench/metadata.py [--seconds 3] [--only pypi npm oci yum]

Runs the quick metadata part of ``pypi.py``, ``npm.py``, ``oci.py`` and ``yum.py`` (each under two minutes on
2 cores; see each one's docstring, and ``docs/performance.md`` "Metadata GETs against peers" for how to
install the peers), prints their output as it comes, then the goals of all four with met/MISSED. Exits 1 if
a bench failed to run (a missing peer, say); a MISSED goal is a result, not a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "pypi": ["pypi.py", "--quick"],
    "npm": ["npm.py", "--quick"],
    "oci": ["oci.py", "--metadata-only"],
    "yum": ["yum.py", "--repomd-only"],
}
VERDICT = re.compile(r"^\s+(.+?)\s+(met|MISSED)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="length of each rate run (default: each bench's quick one)")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=list(BENCHES))
    args = parser.parse_args()
    verdicts: list[tuple[str, str, str]] = []
    failed = []
    for name in args.only:
        command = [sys.executable, str(HERE / BENCHES[name][0]), *BENCHES[name][1:]]
        if args.seconds:
            command += ["--seconds", str(args.seconds)]
        print(f"== {name}: {' '.join(command[1:])} (load average {os.getloadavg()[0]:.1f})", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            match = VERDICT.match(line.rstrip("\n"))
            if match:
                verdicts.append((name, match.group(1), match.group(2)))
        if process.wait():
            failed.append(name)
        print(f"== {name}: {time.monotonic() - started:.0f} s, exit {process.returncode}\n", flush=True)
    print(f"metadata GETs against peers, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end:")
    for name, text, verdict in verdicts:
        print(f"  {name:5} {text:84} {verdict}")
    if failed:
        print(f"did not run to the end: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
