"""Run one command inside a private network namespace, with the test server bridged in.

Usage (started by tests/test_agents.py as `unshare -n` / `unshare -rn` + this script):

    python netns_run.py --bridge SOCKET --port PORT [--strace LOG] -- COMMAND...

Inside the namespace only loopback exists, and it starts down: this brings it up, listens on
127.0.0.1:PORT and forwards every connection to the Unix socket SOCKET (Unix sockets live in the
file system, so they cross network namespaces); the test process forwards that socket to the real
server. COMMAND then sees the server at http://127.0.0.1:PORT and has no route anywhere else.
With --strace LOG, COMMAND runs under `strace -f -e trace=connect`, so the test can also count
every connection attempt it made. Exits with COMMAND's exit code. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import socket
import struct
import subprocess
import sys
import threading

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes one way until EOF, then pass the EOF on."""
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def splice(first: socket.socket, second: socket.socket) -> None:
    """Forward both ways between two connected sockets; close both when done."""
    back = threading.Thread(target=pump, args=(second, first), daemon=True)
    back.start()
    pump(first, second)
    back.join()
    first.close()
    second.close()


def serve(listener: socket.socket, bridge: str) -> None:
    while True:
        conn, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(bridge)
        except OSError:
            conn.close()
            upstream.close()
            continue
        threading.Thread(target=splice, args=(conn, upstream), daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bridge", required=True, help="Unix socket of the outside server")
    parser.add_argument("--port", type=int, required=True, help="loopback port to serve it on")
    parser.add_argument("--strace", help="write strace's connect() log here")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    loopback_up()
    listener = socket.create_server(("127.0.0.1", args.port))
    threading.Thread(target=serve, args=(listener, args.bridge), daemon=True).start()
    command = list(args.command)
    if args.strace:
        trace = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-e", "signal=none"]
        command = [*trace, "-o", args.strace, *command]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL) as child:
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.terminate()
            return child.wait()


if __name__ == "__main__":
    sys.exit(main())
