"""Does a moto server apply two conditional UpdateItems on one item as DynamoDB does (one wins)? Races
`--clients` identical lease takes (condition `owner = :old AND lease_counter = :counter`) for `--rounds`
rounds against plain `python -m moto.server` and against the tests' moto (tests.support.moto_main, atomic
DynamoDB), and prints the rounds where several takes succeeded. Asserts nothing.

    PYTHONPATH=. .venv/bin/python benchmarks/moto_conditional_writes.py [--rounds 300] [--clients 6]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import _setup

from tests.support.conditional_race import race_takes
from tests.support.moto_server import dummy_environ, free_port


def plain_moto_url() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dummy_environ(),
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def report(name: str, url: str, rounds: int, clients: int) -> None:
    result = race_takes(url, rounds, clients)
    for counter, winners in result.several_won:
        print(f"{name}: counter {counter}: {len(winners)} conditional takes succeeded ({', '.join(winners)})")
    print(f"{name}: {result.rounds} rounds, {len(result.several_won)} with several winners")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()
    proc, url = plain_moto_url()
    try:
        report("moto.server", url, args.rounds, args.clients)
    finally:
        proc.terminate()
        proc.wait(10)
    with _setup.local_aws() as server:
        report("tests.support.moto_main", server.url, args.rounds, args.clients)


if __name__ == "__main__":
    main()
