"""The moto server the tests start, with DynamoDB's atomic conditional writes (tests.support.atomic_dynamodb)
and, with --aws-resharding, Kinesis resharding as AWS does it (tests.support.resharding).

    python -m tests.support.moto_main [--aws-resharding] -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys

from moto.server import main as moto_main

from tests.support import atomic_dynamodb, resharding


def main(argv: list[str]) -> None:
    atomic_dynamodb.install()
    if "--aws-resharding" in argv:
        argv = [a for a in argv if a != "--aws-resharding"]
        resharding.install()
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
