"""Run as a script: import every module of qwen_free_api from the directory given, and report.

An audit hook (PEP 578) set before the first import records what the imports do to the world
(sockets, processes, writes); the report also holds the threads left running, signal handlers
changed and where each module came from. Printed as one JSON object; the test judges it.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import signal
import sys
import threading
from typing import Any

WORLD = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
         "os.fork", "os.kill", "pty.", "urllib.", "http.client.", "ftplib.", "smtplib.",
         "os.mkdir", "os.remove", "os.rename", "os.rmdir", "shutil.", "os.chmod", "os.chown",
         "os.symlink", "os.link", "os.truncate", "os.putenv", "os.unsetenv", "webbrowser.",
         "ctypes.dlopen", "winreg.", "sys.setprofile", "sys.settrace")  # fmt: skip
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE)
events: list[str] = []


def _writes(args: tuple[Any, ...]) -> bool:
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    if isinstance(mode, str):
        return any(letter in mode for letter in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event.startswith(WORLD) or (event == "open" and _writes(args)):
        events.append(f"{event} {str(args)[:200]}")


def main(target: str) -> None:
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    sys.addaudithook(_hook)
    package = importlib.import_module("qwen_free_api")
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, "qwen_free_api."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # __main__ runs the CLI by design
            names.append(info.name)
            importlib.import_module(info.name)
    files = {name: str(getattr(sys.modules[name], "__file__", "")) for name in names}
    report = {
        "events": list(events),
        "threads": [thread.name for thread in threading.enumerate()],
        "signals": [sig.name for sig in SIGNALS if signal.getsignal(sig) != handlers[sig]],
        "outside": sorted(name for name, file in files.items() if not file.startswith(target)),
        "modules": len(names),
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
