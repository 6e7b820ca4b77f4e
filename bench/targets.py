"""The servers of a run: the fast upstreams (nginx, the paced SSE server), the minimal relay and the gateway.

Each starts as its own process with the same uvicorn settings where uvicorn is involved, and each is reached
over loopback only, so that the side-by-side figures differ by the application and nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.payloads import TOKEN, StreamShape, generate_body
from bench.procs import Proc, Processes, children_of, free_port, python

#: Pool keys for the gateway: the fake upstreams accept any key; several keys exercise round-robin.
BENCH_KEYS = "ok-b1,ok-b2,ok-b3,ok-b4"

_NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ":generateContent$" {{
            default_type "application/json; charset=UTF-8";
            return 200 '{body}';
        }}
        location / {{
            default_type "application/json; charset=UTF-8";
            return 404 '{{"error": {{"code": 404, "message": "not found", "status": "NOT_FOUND"}}}}';
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def start_nginx(group: Processes, work: Path) -> Proc:
    """nginx, one worker, answering ``:generateContent`` with the recorded body from memory (``return``)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    body = generate_body().decode()
    if "$" in body or "'" in body or "\\" in body:
        raise RuntimeError("the recorded body needs escaping for nginx's return directive")
    directory = work / "nginx"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(dir=directory, port=port, body=body))
    proc = group.start("nginx", [binary, "-p", str(directory), "-e", str(directory / "nginx-error.log"),
                                 "-c", str(conf)], port=port)
    for _ in range(100):  # the master listens before it forks its worker
        proc.extra_pids = children_of(proc.pid)  # the worker does the work; count its CPU too
        if proc.extra_pids:
            break
        time.sleep(0.02)
    return proc


def start_stream_upstream(group: Processes, name: str, shape: StreamShape) -> Proc:
    """The paced raw-protocol fake (bench/upstream.py), on its own core-sharing process."""
    return group.start(name, [python(), "-m", "bench.upstream", "--port", "0", "--chunks", str(shape.chunks),
                              "--delay-ms", str(shape.delay_ms)], port=0, announce=True)


def start_relay(group: Processes, name: str, upstream: Proc) -> Proc:
    port = free_port()
    env = {**os.environ, "RELAY_UPSTREAM": upstream.url, "PYTHONUNBUFFERED": "1"}
    return group.start(name, [python(), "-m", "bench.relay", "--port", str(port)], env=env, port=port)


def gateway_env(upstream: Proc, port: int, *, impl: str = "lean", extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing from the caller's shell that could switch stores or exporters on."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("API_", "REDIS_", "RECONIFY_", "GATEWAY_", "UPSTREAM_", "STREAM_"))}
    env.update({
        "GATEWAY_ENV_FILE": "", "HOST": "127.0.0.1", "PORT": str(port), "API_KEYS": BENCH_KEYS,
        "ALLOWED_TOKENS": TOKEN, "BASE_URL": upstream.url + "/v1beta", "LOG_LEVEL": "WARNING",
        "INTERACTION_LOG": "", "PYTHONUNBUFFERED": "1", "BENCH_STREAM_IMPL": impl,
        # The durable store on (as deployed), in a folder of its own so runs never share state.
        "DATA_DIR": tempfile.mkdtemp(prefix="bench-data-"),
    })
    env.update(extra or {})
    return env


def start_gateway(group: Processes, name: str, upstream: Proc, *, impl: str = "lean",
                  extra: dict[str, str] | None = None) -> Proc:
    """``python -m app`` exactly as deployed (uvicorn, uvloop, httptools, one worker); the stock stream
    responses it is compared with run through ``bench.variant``."""
    port = free_port()
    entry = "app" if impl == "lean" else "bench.variant"
    return group.start(name, [python(), "-m", entry], env=gateway_env(upstream, port, impl=impl, extra=extra),
                       port=port)
