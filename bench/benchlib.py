"""Helpers shared by the stand-alone benchmark scripts of bench/ (python3, standard library)."""

import socket
import time

# The backend every proxy benchmark puts behind the proxy: nginx answering a fixed 100-byte body.
BACKEND_BODY = "ok" + "-" * 97 + "\\n"


def wait_port(port, timeout=10):
    """Returns once something accepts on 127.0.0.1:port; exits the script after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def nginx_backend_conf(run, port):
    """nginx.conf text for the fixed-answer backend on 127.0.0.1:port, state under `run`."""
    temp = "".join(f"    {k}_temp_path {run}/tmp/{k};\n"
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
daemon off;
pid {run}/backend.pid;
error_log {run}/backend.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
{temp}    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "{BACKEND_BODY}"; }}
    }}
}}
"""
