"""A TCP proxy that cuts connections in the middle of an answer: the first `cuts` connections are closed
once `cut_after` bytes of the server's answers went through (an S3 download dropped by the network)."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

__all__ = ["CutProxy"]


class CutProxy:
    def __init__(self, upstream_port: int, cut_after: int, cuts: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._cut_after = cut_after
        self._cuts_left = cuts
        self.cut = 0  # connections cut so far
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                limit = self._cut_after if self._cuts_left > 0 else None
                if limit is not None:
                    self._cuts_left -= 1
            upstream = socket.create_connection(self._upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, limit), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.cut += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _close(s)

    def close(self) -> None:
        self._closed = True
        _close(self._server)

    def __enter__(self) -> CutProxy:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
