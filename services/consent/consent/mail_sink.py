"""A local SMTP sink (aiosmtpd): every message received is written, as received, to one .eml file.

`make run` starts it (tools/stack.py) and the tests run the same handler in-process:

    python -m consent.mail_sink --dir var/mail --port 2525
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class EmlWriter:
    """aiosmtpd handler: one file per message; written to a temporary name, then renamed, so a reader
    never sees half a message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, self.folder / name)
        return "250 Message accepted for delivery"


def start(folder: Path, host: str = "127.0.0.1", port: int = 0) -> Controller:
    """Start a sink in this process (a thread); `controller.port` is where it listens."""
    if not port:
        with socket.socket() as probe:  # aiosmtpd needs a known port to check its own start
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
    controller = Controller(EmlWriter(folder), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args()
    controller = start(args.dir, args.host, args.port)
    print(f"SMTP sink on {args.host}:{controller.port}, writing to {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
