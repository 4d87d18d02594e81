"""`fields`: the plugin's field table (name, type, flags, description) from the get_fields JSON."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

import orjson

__all__ = ["add_parser", "rows"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "fields",
        help="list the ka.* fields the plugin exports",
        description="Prints the plugin's field table (name, type, flags, description): the fields Falco "
        "rules and output formats can use, the same 100 ka.* fields as the official k8saudit-eks plugin.",
    )
    p.add_argument("--json", action="store_true", help="print the raw get_fields JSON")
    p.set_defaults(func=main)


def _flags(field: dict[str, Any]) -> str:
    flags = []
    if field.get("isList"):
        flags.append("list")
    arg = field.get("arg") or {}
    kinds = [k for k, key in (("index", "isIndex"), ("key", "isKey")) if arg.get(key)]
    if kinds:
        flags.append(("arg:" if arg.get("isRequired") else "arg?:") + "|".join(kinds))
    return ",".join(flags)


def rows(fields_json: str) -> list[tuple[str, str, str, str]]:
    """(name, type, flags, description) per field, in get_fields order."""
    return [(f["name"], f["type"], _flags(f), f.get("desc", "")) for f in orjson.loads(fields_json)]


def main(args: argparse.Namespace) -> int:
    from k8saudit_eks_py.fields import FIELDS_JSON

    if args.json:
        sys.stdout.write(FIELDS_JSON.rstrip("\n") + "\n")
        return 0
    table = rows(FIELDS_JSON)
    name_w = max(len(r[0]) for r in table)
    type_w = max(len(r[1]) for r in table)
    flag_w = max(4, *(len(r[2]) for r in table))
    head = f"{'FIELD':<{name_w}}  {'TYPE':<{type_w}}  {'FLAGS':<{flag_w}}  DESCRIPTION"
    lines = [head]
    indent = " " * (name_w + type_w + flag_w + 6)
    for name, ftype, flags, desc in table:
        desc_lines = textwrap.wrap(" ".join(desc.split()), 70) or [""]
        lines.append(f"{name:<{name_w}}  {ftype:<{type_w}}  {flags:<{flag_w}}  {desc_lines[0]}")
        lines.extend(indent + more for more in desc_lines[1:])
    lines.append(
        f"{len(table)} fields; flags: list = list value, arg:index|key = takes [arg] (arg? optional)"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
