"""The PDF renderer, run as a bounded child process: `python -m exams.pdf FONT_DIR SECONDS MEMORY_MB`.

HTML on stdin, the PDF on stdout; exit 0 on success, 3 when the render ran past its time limit,
2 on any other failure (the reason on stderr). The only module that imports xhtml2pdf, and it
imports no Django: the web process never runs xhtml2pdf itself (docs/reliability.md H3-H5).

Bounds: the address space (RLIMIT_AS) and CPU time (RLIMIT_CPU) are limited here (core/sandbox.py),
before the HTML is read; xhtml2pdf's own `max_render_seconds` stops a slow render cleanly; the parent's wall-clock
timeout kills whatever is left. Resources: `ResourceAccessPolicy.server` with remote fetches off and
local reads confined to the font directory, and a link callback that resolves only the two font
names the template uses (`exam-font:regular`, `exam-font:bold`) and refuses every other URI.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from core.sandbox import limit_resources

FONT_FILES = {"exam-font:regular": "DejaVuSans.ttf", "exam-font:bold": "DejaVuSans-Bold.ttf"}
# Not a scheme xhtml2pdf knows: the resource policy refuses it and the render goes on without it.
REFUSED = "refused:resource"
EXIT_FAILED = 2
EXIT_TIME_LIMIT = 3


def link_callback_for(font_dir: Path):
    def link_callback(uri: object, _relative: object) -> str:
        name = FONT_FILES.get(str(uri))
        if name is not None and (font_dir / name).is_file():
            return str(font_dir / name)
        return REFUSED

    return link_callback


def render(html: str, *, font_dir: Path, seconds: float) -> bytes:
    from xhtml2pdf import pisa
    from xhtml2pdf.files import ResourceAccessPolicy

    policy = ResourceAccessPolicy.server(
        base_dir=font_dir if font_dir.is_dir() else None, allow_remote=False, max_render_seconds=seconds
    )
    buffer = io.BytesIO()
    status = pisa.CreatePDF(
        html, dest=buffer, link_callback=link_callback_for(font_dir), resource_policy=policy, encoding="utf-8"
    )
    if status.err:
        raise RuntimeError(f"xhtml2pdf reported {status.err} error(s)")
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    font_dir, seconds, memory_mb = Path(argv[1]), float(argv[2]), int(argv[3])
    limit_resources(seconds=seconds, memory_mb=memory_mb)
    html = sys.stdin.buffer.read().decode("utf-8")
    try:
        pdf = render(html, font_dir=font_dir, seconds=seconds)
    except Exception as exc:
        from xhtml2pdf.config.resources import RenderLimitError

        print(f"{type(exc).__name__}: {str(exc)[:500]}", file=sys.stderr)
        return EXIT_TIME_LIMIT if isinstance(exc, RenderLimitError) else EXIT_FAILED
    sys.stdout.buffer.write(pdf)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
