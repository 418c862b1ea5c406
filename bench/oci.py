"""Docker/OCI throughput: Stowage against Debian's docker-registry (CNCF distribution) on this machine.

    .venv/bin/python bench/oci.py [--big-mib 256] [--small-layers 50] [--clients 16] [--runs 1]
    .venv/bin/python bench/oci.py --metadata-only [--seconds 3] [--rounds 3]    # under 2 minutes
    .venv/bin/python bench/oci.py --push-only [--runs 3]                         # about two minutes

Each scenario runs skopeo against both registries in the same run; the ratio is Stowage's time over the
Go registry's (below 1.0: Stowage is faster). Everything stays on 127.0.0.1.

First, the metadata GETs (issue 16): a hot manifest ``GET`` by tag and a blob ``HEAD``, ``stowage serve``
with no tuning flags against docker-registry, rate and server CPU per request (``rates.py``: wrk and ab;
medians of --rounds runs taken in turn); the goal is at least half of docker-registry's rate.

``--push-only`` measures the large-layer push alone (issue 16's goal: no slower than docker-registry);
``--runs`` pushes a new large layer that many times to each registry, interleaved (medians).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "docker" / "tests"))

from oci_layout import Layout  # noqa: E402

from stowage.checksums import ChecksumFiller  # noqa: E402
from stowage.testing.harness import LiveServer, build_stowage, free_port  # noqa: E402


def skopeo(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def push(layout: Path, tag: str, host: str, name: str) -> float:
    return skopeo("copy", f"oci:{layout}:{tag}", f"docker://{host}/{name}:{tag}", "--dest-tls-verify=false",
                  "--dest-creds", "admin:admin123")


def pull(host: str, name: str, tag: str, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return skopeo("copy", "--src-tls-verify=false", "--src-creds", "admin:admin123",
                  f"docker://{host}/{name}:{tag}", f"dir:{out}")


#: the most Stowage's time may be of docker-registry's for the large-layer push (issue 16).
BIG_PUSH_GOAL = 1.0


def big_pushes(layout: Path, runs: int, registries: "dict[str, tuple[str, Callable[[], float], Callable[[], None]]]"
               ) -> dict[str, tuple[float, float]]:
    """Per registry (``label: (host, cpu, settle)``): median seconds of ``runs`` pushes and its CPU seconds
    per push (``cpu()``: its process CPU time so far; on a loaded machine the steadier figure).

    Each run pushes its own big image (``big``, ``big1``...: random layers, none already there) to every
    registry, in alternating order (the first after a layout read has the warmer page cache). ``settle()``
    runs after each push, untimed: Stowage's background checksums of the layer finish before the next push.
    """
    import statistics

    times: dict[str, list[float]] = {label: [] for label in registries}
    used = dict.fromkeys(registries, 0.0)
    for run in range(runs):
        order = list(registries) if run % 2 == 0 else list(reversed(registries))
        for label in order:
            host, cpu, settle = registries[label]
            before = cpu()
            times[label].append(push(layout, f"big{run or ''}", host, f"bench/big{run or ''}"))
            used[label] += cpu() - before
            settle()
    return {label: (statistics.median(times[label]), used[label] / runs) for label in registries}


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--small-layers", type=int, default=50)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--metadata-only", action="store_true",
                        help="only the hot manifest GET and blob HEAD against docker-registry (< 2 minutes)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each metadata rate run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="metadata rate runs per server, taken in turn with the other's (medians)")
    parser.add_argument("--push-only", action="store_true", help="only the large-layer push (the goal)")
    parser.add_argument("--runs", type=int, default=1, help="pushes of the large layer (median)")
    args = parser.parse_args()
    big_label = f"push 1 x {args.big_mib} MiB layer"
    if not args.push_only:
        run_metadata_gets(args.seconds, args.rounds)
    if args.metadata_only:
        return
    work = Path(tempfile.mkdtemp(prefix="oci-bench-"))
    try:
        layout = Layout(work / "layout")
        for run in range(args.runs):
            layout.tag(layout.big_layer_image(args.big_mib * 1024 * 1024), f"big{run or ''}")
        layout.tag(layout.image([{f"f{i}.txt": os.urandom(20_000)} for i in range(args.small_layers)]), "small")

        go_port = free_port()
        (work / "go.yml").write_text(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work / 'go'}\n"
            f"http:\n  addr: 127.0.0.1:{go_port}\n")
        go = subprocess.Popen(["docker-registry", "serve", str(work / "go.yml")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        os.environ["STOWAGE_ADMIN_PASSWORD"] = "admin123"
        port = free_port()
        ts = build_stowage(work / "stowage", repositories=[
            dict(name="docker-hosted", format="docker", type="hosted", docker={"httpPort": port})])
        server = LiveServer(ts).start()
        time.sleep(1.0)
        hosts = {"docker-registry": f"127.0.0.1:{go_port}", "stowage": f"127.0.0.1:{port}"}
        results: dict[str, dict[str, float]] = {}
        push_cpu: dict[str, float] = {}
        filler = ChecksumFiller.of(ts.stowage)
        # Stowage serves from this process (its main thread only waits for skopeo meanwhile)
        pushed = big_pushes(layout.root, args.runs, {
            "docker-registry": (hosts["docker-registry"], lambda: process_cpu(go.pid), lambda: None),
            "stowage": (hosts["stowage"], time.process_time, lambda: filler.wait_idle(300))})
        for label, host in hosts.items():
            r = results.setdefault(label, {})
            r[big_label], push_cpu[label] = pushed[label]
            if args.push_only:
                continue
            r[f"pull 1 x {args.big_mib} MiB layer"] = pull(host, "bench/big", "big", work / f"out-{label}")
            r[f"push {args.small_layers} small layers"] = push(layout.root, "small", host, "bench/small")
            r[f"pull {args.small_layers} small layers"] = pull(host, "bench/small", "small", work / f"out-{label}")
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda i: pull(host, "bench/small", "small", work / f"c-{label}-{i}"),
                              range(args.clients)))
            r[f"{args.clients} concurrent pulls ({args.small_layers} layers)"] = time.perf_counter() - started
        print(f"{'scenario':45} {'docker-registry':>16} {'stowage':>10} {'ratio':>7}  goal")
        for scenario, go_seconds in results["docker-registry"].items():
            ours = results["stowage"][scenario]
            # issue 16: a large layer pushed no slower than docker-registry (ratio = Stowage's time / its time)
            goal = BIG_PUSH_GOAL if scenario == big_label else None
            verdict = "" if goal is None else f"<= {goal:.2f}: {'met' if ours / go_seconds <= goal else 'MISSED'}"
            print(f"{scenario:45} {go_seconds:15.2f}s {ours:9.2f}s {ours / go_seconds:7.2f}  {verdict}")
        print(f"server CPU per {args.big_mib} MiB push: docker-registry {push_cpu['docker-registry']:.2f} s, "
              f"stowage {push_cpu['stowage']:.2f} s (skopeo gzips the layer on the fly: the client's CPU is "
              f"the same for both; Stowage's includes its md5/sha1/sha512 where they overlap the push)")
        server.stop()
        go.terminate()
        go.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)



# -- metadata GETs against docker-registry (issue 16) -----------------------------------------------------
#: what docker/containerd ask a registry for when they resolve a tag
MANIFEST_ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json",
                             "application/vnd.docker.distribution.manifest.v2+json"])
#: the least Stowage's hot rate may be of docker-registry's (issue 16)
METADATA_GOAL = 0.5


def run_metadata_gets(seconds: float, rounds: int) -> None:
    from rates import print_verdicts, require_tools

    require_tools()
    work = Path(tempfile.mkdtemp(prefix="oci-bench-meta-"))
    try:
        print_verdicts(metadata_gets(work, seconds, rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def metadata_gets(work: Path, seconds: float, rounds: int) -> list[tuple[str, bool]]:
    """Hot ``GET`` of a manifest by tag and ``HEAD`` of a layer by digest: ``stowage serve`` with no tuning
    flags (a ``docker.httpPort`` repository, bearer token as a client holds it) against docker-registry."""
    import json as json_module
    import re

    import urllib3

    from rates import compare, interleaved, measure

    layout = Layout(work / "meta-layout")
    image = layout.image([{f"f{i}.txt": os.urandom(2_000)} for i in range(3)])
    layout.tag(image, "meta")
    layer = json_module.loads((layout.root / "blobs" / "sha256" / image["digest"][7:]).read_bytes())["layers"][0]
    go_port, port, api_port = free_port(), free_port(), free_port()
    # as Debian's /etc/docker/registry/config.yml (in-memory blob descriptor cache), without its htpasswd
    # auth (bcrypt per request) and without access logs: the registry at its fastest
    (work / "meta-go.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  cache:\n"
        f"    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {work / 'meta-go'}\n"
        f"http:\n  addr: 127.0.0.1:{go_port}\n")
    (work / "meta-stowage.toml").write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {api_port}\n\n[[repositories]]\nname = "docker-hosted"\n'
        f'format = "docker"\ntype = "hosted"\ndocker = {{ httpPort = {port} }}\n')
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": "admin123"}
    servers = {
        "docker-registry": subprocess.Popen(["docker-registry", "serve", str(work / "meta-go.yml")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "stowage": subprocess.Popen([str(Path(sys.executable).with_name("stowage")), "--log-level", "WARNING",
                                     "serve", "--config", str(work / "meta-stowage.toml"), "--data-dir",
                                     str(work / "meta-stowage")], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)}
    hosts = {"docker-registry": f"127.0.0.1:{go_port}", "stowage": f"127.0.0.1:{port}"}
    try:
        manifests, blobs = {}, {}
        for label, host in hosts.items():
            deadline = time.monotonic() + 60
            while True:  # up once /v2/ answers (401 or 200)
                try:
                    urllib3.request("GET", f"http://{host}/v2/", retries=False, timeout=2)
                    break
                except urllib3.exceptions.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            push(layout.root, "meta", host, "bench/meta")
            headers: dict[str, str] = {}
            challenge = urllib3.request("GET", f"http://{host}/v2/", retries=False).headers.get("WWW-Authenticate", "")
            if challenge.startswith("Bearer"):  # a token as docker holds it after `docker login`
                realm = re.search(r'realm="([^"]+)"', challenge).group(1)
                service = re.search(r'service="([^"]+)"', challenge).group(1)
                token = urllib3.request("GET", realm, fields={"service": service,
                                                              "scope": "repository:bench/meta:pull"},
                                        headers=urllib3.make_headers(basic_auth="admin:admin123")).json()["token"]
                headers["Authorization"] = f"Bearer {token}"
            pid = servers[label].pid
            manifests[label] = measure(label, f"http://{host}/v2/bench/meta/manifests/meta", pid,
                                       headers={**headers, "Accept": MANIFEST_ACCEPT}, seconds=seconds)
            blobs[label] = measure(label, f"http://{host}/v2/bench/meta/blobs/{layer['digest']}", pid,
                                   method="HEAD", headers=headers, seconds=seconds)
        manifest, blob = interleaved(manifests, rounds), interleaved(blobs, rounds)
        return (compare("manifest GET by tag", manifest["stowage"], manifest["docker-registry"], METADATA_GOAL)
                + compare("blob HEAD", blob["stowage"], blob["docker-registry"], METADATA_GOAL))
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
