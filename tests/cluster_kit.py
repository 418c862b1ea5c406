"""Several ``stowage serve`` nodes sharing one PostgreSQL catalog and one blob store, behind nginx.

Node ``i`` listens on ``127.0.0.{i+2}`` with the same ports as every other node (the main port and each
Docker repository's ``httpPort``), as on separate machines; nginx on ``127.0.0.1`` spreads requests over
them round-robin, one front port per back-end port. Each node has its own data directory (local state
only: logs, the generated admin password); what they share is the catalog URL and the blob store path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

import urllib3

from core_helpers import ServeProcess
from stowage.testing import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_SERVER = """
    upstream {name} {{ {servers} keepalive 16; }}
    server {{
        listen 127.0.0.1:{front};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        location / {{
            proxy_pass http://{name};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header Connection "";
            proxy_read_timeout 300;
            proxy_next_upstream error timeout;
        }}
    }}
"""


class Cluster:
    def __init__(self, root: Path, config_text: str, catalog_url: str, *, nodes: int = 3,
                 docker_ports: Sequence[int] = (), env: dict | None = None):
        self.root = root
        self.port = free_port()
        self.docker_ports = list(docker_ports)
        root.mkdir(parents=True, exist_ok=True)
        config = root / "cluster.toml"
        config.write_text(config_text)
        self.env = {"STOWAGE_CATALOG": catalog_url, **(env or {})}
        self.nodes = [ServeProcess(config, root / f"node{i}", env=self.env, host=f"127.0.0.{i + 2}", port=self.port)
                      for i in range(nodes)]
        self.front_ports = {port: free_port() for port in self.docker_ports}
        self.lb_port = free_port()
        self.nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def docker_front(self, port: int) -> str:
        return f"127.0.0.1:{self.front_ports[port]}"

    def start(self) -> "Cluster":
        for node in self.nodes:
            node.start(timeout=60)
        self._start_nginx()
        return self

    def _start_nginx(self) -> None:
        work = self.root / "nginx"
        work.mkdir(exist_ok=True)
        servers = {self.port: self.lb_port, **self.front_ports}
        blocks = "".join(NGINX_SERVER.format(
            name=f"back_{back}", front=front,
            servers=" ".join(f"server {node.host}:{back} max_fails=1 fail_timeout=2s;" for node in self.nodes))
            for back, front in servers.items())
        user = "user root;" if os.geteuid() == 0 else ""
        (work / "nginx.conf").write_text(f"""
{user}
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$upstream_addr $status "$request"';
    access_log {work}/access.log upstream;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{blocks}
}}
""")
        self.nginx = subprocess.Popen([NGINX, "-p", str(work), "-c", str(work / "nginx.conf")],
                                      stdout=subprocess.DEVNULL, stderr=open(work / "stderr.log", "ab"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if urllib3.request("GET", f"{self.url}/service/rest/v1/status", timeout=2,
                                   retries=False).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer: {(work / 'error.log').read_text(errors='replace')}")

    def node_served(self) -> list[str]:
        """The upstream address of each request nginx forwarded, from its access log (``$upstream_addr``)."""
        return (self.root / "nginx" / "access.log").read_text().splitlines()

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        for node in self.nodes:
            node.stop(signal.SIGKILL if node.process and node.process.poll() is None else signal.SIGTERM)
