"""DynamoDB expressions, parsed and evaluated as DynamoDB does, for the subset the lease table sends.

Condition expressions: comparisons (= <> < <= > >=) of attribute paths and values, attribute_exists /
attribute_not_exists, AND / OR / NOT and parentheses. Update expressions: `SET path = value, ...` where a
value is an operand, `if_not_exists(path, operand)` or `operand + operand` / `operand - operand`, and
`REMOVE path, ...`. Paths are top-level attribute names, literal or `#placeholders`.

As in DynamoDB: a comparison involving a missing attribute is false; arithmetic on a missing attribute, a
placeholder that is not defined, a name or value defined but not used, and two actions on one attribute
are ValidationExceptions. Anything outside the subset is a ValidationException too, so a new kind of
expression in the real code fails the simulation loudly instead of being half-evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

__all__ = ["Condition", "DynamoError", "Update", "format_number", "parse_condition", "parse_update"]

Item = dict[str, dict[str, Any]]


class DynamoError(Exception):
    """An error answer of DynamoDB: its code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def _invalid(message: str) -> DynamoError:
    return DynamoError("ValidationException", message)


_TOKEN = re.compile(r"\s*(?:(<>|<=|>=|[=<>(),+-])|([#:][A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*))")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _invalid(f"Invalid expression: syntax error near {text[pos : pos + 10]!r}")
        out.append(m.group(m.lastindex or 0))
        pos = m.end()
    return out


# ---------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Path:
    name: str  # literal attribute name or #placeholder


@dataclass(frozen=True)
class Value:
    placeholder: str  # :placeholder


@dataclass(frozen=True)
class IfNotExists:
    path: Path
    default: Any


@dataclass(frozen=True)
class Arith:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Exists:
    path: Path
    want: bool  # attribute_exists (True) or attribute_not_exists (False)


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    inner: Any


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.placeholders: set[str] = set()

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def peek_kw(self) -> str | None:
        tok = self.peek()
        return tok.upper() if tok is not None else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.upper() != expected):
            raise _invalid(f"Invalid expression {self.text!r}: expected {expected or 'a token'}, got {tok!r}")
        self.i += 1
        return tok

    def end(self) -> None:
        if self.peek() is not None:
            raise _invalid(f"Invalid expression {self.text!r}: unexpected {self.peek()!r}")

    def path(self) -> Path:
        tok = self.take()
        if tok.startswith(":") or not (tok.startswith("#") or tok[0].isalpha() or tok[0] == "_"):
            raise _invalid(f"Invalid expression {self.text!r}: {tok!r} is not an attribute path")
        if tok.startswith("#"):
            self.placeholders.add(tok)
        return Path(tok)

    def operand(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise _invalid(f"Invalid expression {self.text!r}: operand expected")
        if tok.startswith(":"):
            self.i += 1
            self.placeholders.add(tok)
            return Value(tok)
        if tok.lower() == "if_not_exists" and self.toks[self.i + 1 : self.i + 2] == ["("]:
            self.i += 2
            path = self.path()
            self.take(",")
            default = self.operand()
            self.take(")")
            return IfNotExists(path, default)
        if tok.lower() in ("size", "list_append", "begins_with", "contains", "attribute_type"):
            raise _invalid(f"function {tok} is not modelled by the simulation")
        return self.path()

    # conditions: OR < AND < NOT < comparison
    def condition(self) -> Any:
        left = self.conjunction()
        while self.peek_kw() == "OR":
            self.take()
            left = BoolOp("OR", left, self.conjunction())
        return left

    def conjunction(self) -> Any:
        left = self.negation()
        while self.peek_kw() == "AND":
            self.take()
            left = BoolOp("AND", left, self.negation())
        return left

    def negation(self) -> Any:
        if self.peek_kw() == "NOT":
            self.take()
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Any:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        if tok is not None and tok.lower() in ("attribute_exists", "attribute_not_exists"):
            self.take()
            self.take("(")
            path = self.path()
            self.take(")")
            return Exists(path, tok.lower() == "attribute_exists")
        left = self.operand()
        op = self.peek()
        if op not in ("=", "<>", "<", "<=", ">", ">="):
            raise _invalid(f"Invalid ConditionExpression {self.text!r}: comparison expected, got {op!r}")
        self.take()
        return Compare(op, left, self.operand())

    # updates
    def value(self) -> Any:
        left = self.operand()
        if self.peek() in ("+", "-"):
            op = self.take()
            return Arith(op, left, self.operand())
        return left


@dataclass(frozen=True)
class Condition:
    tree: Any
    placeholders: frozenset[str]


@dataclass(frozen=True)
class Update:
    sets: tuple[tuple[Path, Any], ...]
    removes: tuple[Path, ...]
    placeholders: frozenset[str]


@lru_cache(maxsize=256)
def parse_condition(text: str) -> Condition:
    p = _Parser(text)
    tree = p.condition()
    p.end()
    return Condition(tree, frozenset(p.placeholders))


@lru_cache(maxsize=256)
def parse_update(text: str) -> Update:
    p = _Parser(text)
    sets: list[tuple[Path, Any]] = []
    removes: list[Path] = []
    seen: set[str] = set()
    while p.peek() is not None:
        clause = p.take().upper()
        if clause in seen:
            raise _invalid(f"Invalid UpdateExpression {text!r}: the {clause} section can only be used once")
        seen.add(clause)
        if clause == "SET":
            while True:
                path = p.path()
                p.take("=")
                sets.append((path, p.value()))
                if p.peek() != ",":
                    break
                p.take()
        elif clause == "REMOVE":
            while True:
                removes.append(p.path())
                if p.peek() != ",":
                    break
                p.take()
        else:
            raise _invalid(f"Invalid UpdateExpression {text!r}: {clause} is not modelled by the simulation")
    if not sets and not removes:
        raise _invalid("Invalid UpdateExpression: empty")
    return Update(tuple(sets), tuple(removes), frozenset(p.placeholders))


# ---------------------------------------------------------------------------------------------- evaluation


class Context:
    """The placeholders of one request; remembers which ones the expressions used."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        self.names = dict(names or {})
        self.values = dict(values or {})
        self.used: set[str] = set()

    def use(self, placeholders: frozenset[str]) -> None:
        for ph in placeholders:
            table = self.names if ph.startswith("#") else self.values
            if ph not in table:
                kind = "name" if ph.startswith("#") else "value"
                raise _invalid(f"An expression attribute {kind} used in expression is not defined; {ph}")
        self.used |= placeholders

    def check_all_used(self) -> None:
        for what, defined in (("Names", self.names), ("Values", self.values)):
            unused = sorted(set(defined) - self.used)
            if unused:
                keys = ", ".join(unused)
                raise _invalid(
                    f"Value provided in ExpressionAttribute{what} unused in expressions: keys: {{{keys}}}"
                )

    def attr(self, path: Path) -> str:
        return self.names[path.name] if path.name.startswith("#") else path.name


def format_number(d: Decimal) -> str:
    return str(int(d)) if d == d.to_integral_value() else format(d.normalize(), "f")


def _operand(node: Any, item: Item, ctx: Context) -> dict[str, Any] | None:
    """The typed value ({"S": ...} / {"N": ...}) of an operand, None when it is a missing attribute."""
    if isinstance(node, Value):
        return dict(ctx.values[node.placeholder])  # the caller's dict: not shared with the table
    if isinstance(node, Path):
        return item.get(ctx.attr(node))
    if isinstance(node, IfNotExists):
        found = item.get(ctx.attr(node.path))
        return found if found is not None else _operand(node.default, item, ctx)
    if isinstance(node, Arith):
        left, right = _operand(node.left, item, ctx), _operand(node.right, item, ctx)
        if left is None or right is None:
            raise _invalid("The provided expression refers to an attribute that does not exist in the item")
        if "N" not in left or "N" not in right:
            raise _invalid("An operand in the update expression has an incorrect data type")
        a, b = Decimal(left["N"]), Decimal(right["N"])
        return {"N": format_number(a + b if node.op == "+" else a - b)}
    raise _invalid(f"unexpected operand {node!r}")


def _compare(op: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    if left is None or right is None:
        return False
    (lt, lv), (rt, rv) = next(iter(left.items())), next(iter(right.items()))
    if lt != rt:
        return op == "<>"
    if lt == "N":
        lv, rv = Decimal(lv), Decimal(rv)
    elif lt not in ("S", "B") and op not in ("=", "<>"):
        raise _invalid(f"Invalid ConditionExpression: incorrect operand type for operator {op}")
    return {
        "=": lv == rv,
        "<>": lv != rv,
        "<": lv < rv,
        "<=": lv <= rv,
        ">": lv > rv,
        ">=": lv >= rv,
    }[op]


def holds(node: Any, item: Item, ctx: Context) -> bool:
    if isinstance(node, BoolOp):
        left = holds(node.left, item, ctx)
        right = holds(node.right, item, ctx)
        return (left and right) if node.op == "AND" else (left or right)
    if isinstance(node, Not):
        return not holds(node.inner, item, ctx)
    if isinstance(node, Exists):
        return (ctx.attr(node.path) in item) == node.want
    if isinstance(node, Compare):
        return _compare(node.op, _operand(node.left, item, ctx), _operand(node.right, item, ctx))
    raise _invalid(f"unexpected condition {node!r}")


def apply_update(update: Update, item: Item, ctx: Context, key_attrs: frozenset[str]) -> Item:
    """The item after `update` (every value computed from the item before it, as DynamoDB does)."""
    targets = [ctx.attr(p) for p, _ in update.sets] + [ctx.attr(p) for p in update.removes]
    if len(set(targets)) != len(targets):
        raise _invalid("Invalid UpdateExpression: Two document paths overlap with each other")
    for name in targets:
        if name in key_attrs:
            raise _invalid(f"Cannot update attribute {name}. This attribute is part of the key")
    computed = [(ctx.attr(p), _operand(v, item, ctx)) for p, v in update.sets]
    new = dict(item)  # typed values are never changed in place: sharing them is safe
    for name, value in computed:
        if value is None:
            raise _invalid("The provided expression refers to an attribute that does not exist in the item")
        new[name] = value
    for p in update.removes:
        new.pop(ctx.attr(p), None)
    return new
