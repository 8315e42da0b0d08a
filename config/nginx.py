"""nginx's configuration for Bytchat (deploy/nginx/), its limits and time-outs filled from the settings.

`python -m config.nginx --upstream 10.0.0.2:8000 --upstream 10.0.0.3:8000 --listen 80` prints the site
(bytchat.conf) for a production nginx; scripts/cluster.py renders both files for `make cluster`.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
MIME_TYPES = "/etc/nginx/mime.types"


def render(template: str, values: dict[str, str]) -> str:
    """The template with each @NAME@ replaced; a name without a value is an error, not an empty string."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"@([A-Z_]+)@", value, (TEMPLATES / template).read_text())


def site(*, upstreams: list[str], listen: str, access_log: str, upstream_header: bool = False) -> str:
    """bytchat.conf: `upstreams` are nginx `server` addresses (`unix:/path.sock`, `10.0.0.2:8000`);
    `upstream_header` adds X-Upstream (which of them answered) to every response."""
    from django.conf import settings

    from config.body_limit import request_limit

    # One failure takes a process out for 2 s (a refused connect: restarting); then nginx tries it again.
    servers = "\n".join(f"    server {address} max_fails=1 fail_timeout=2s;" for address in upstreams)
    whole_answer = settings.LLM_TOTAL_TIMEOUT * (1 + settings.CHAT_AUTOCONTINUE_MAX) + 60
    return render(
        "bytchat.conf.template",
        {
            "UPSTREAM_SERVERS": servers,
            "LISTEN": listen,
            "ACCESS_LOG": access_log,
            "MAX_REQUEST_BYTES": str(request_limit("/")),
            "MAX_UPLOAD_BYTES": str(request_limit("/load_context")),
            "READ_TIMEOUT": str(int(whole_answer)),
            "STATIC_ROOT": str(settings.STATIC_ROOT).rstrip("/"),
            "UPSTREAM_HEADER": "    add_header X-Upstream $upstream_addr always;" if upstream_header else "",
        },
    )


def main_conf(*, runtime_dir: Path) -> str:
    """nginx.conf for an nginx of its own, in the foreground, writing only under `runtime_dir`."""
    # As root, nginx's workers would become `nobody`, who may not read the sockets or STATIC_ROOT.
    user = "user root root;" if os.geteuid() == 0 else ""
    # As many files as this user may open (nginx only warns past the hard limit), up to 65,536.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    values = {"USER": user, "RUNTIME_DIR": str(runtime_dir), "MIME_TYPES": MIME_TYPES, "NOFILE": str(nofile)}
    return render("nginx.conf.template", {**values, "CONNECTIONS": str(min(16384, nofile // 2))})


def main() -> None:
    parser = argparse.ArgumentParser(description="Print Bytchat's nginx site (deploy/nginx/bytchat.conf.template).")
    parser.add_argument("--upstream", action="append", required=True, help="a server process: host:port or unix:path")
    parser.add_argument("--listen", default="80", help="nginx's listen parameters (default: 80)")
    parser.add_argument("--access-log", default="/var/log/nginx/bytchat.access.log")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    print(site(upstreams=args.upstream, listen=args.listen, access_log=args.access_log))


if __name__ == "__main__":
    main()
