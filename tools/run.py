"""`make run`: start the whole system on embedded defaults and stop it cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.stack import Stack  # noqa: E402


def main() -> int:
    var = Path(os.environ.get("KASEUM_VAR", ROOT / "var"))
    stack = Stack(var=var, gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
                  nats_port=int(os.environ.get("NATS_PORT", "4222")))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stack.start()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    print(f"Gateway: {stack.gateway_url}", flush=True)
    print(f"Mail the portal sends: {stack.mail_dir}/*.eml (a local SMTP sink)", flush=True)
    print(f"Logs in {var / 'log'}; operator CLI: .venv/bin/kaseum --help; Ctrl-C stops everything.", flush=True)
    while not stop.wait(1):
        for name, proc in list(stack.procs.items()):
            if proc.poll() is not None:
                print(f"error: {name} exited with {proc.returncode}; see {var / 'log' / (name + '.log')}",
                      file=sys.stderr)
                stop.set()
    print("stopping…", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
