"""Custom rules: a ReadinessPolicy's own checks, written in CEL (`spec.customRules`).

An expression sees what a ValidatingAdmissionPolicy sees: `object` (the workload as
admitted) and `namespaceObject` (its Namespace; null offline when the input holds none),
so the same text runs here and in the apiserver. It returns a bool: true passes (the VAP
convention). `messageExpression`, when given, returns the failure message.

Engine: `common-expression-language` (the Rust `cel` crate behind a Python API), chosen
over `cel-python` on speed and safety (benchmarks/custom_rules.py; docs/custom-rules.md):
its regular expressions are linear-time (RE2 semantics), it is an order of magnitude faster
per evaluation, and its parse errors carry line and column.

**Compiled once.** `compile_custom_rules` parses every expression when the policy loads and
checks what a type checker would catch without a schema: only `object`, `namespaceObject`
and the macros' own variables may be referenced, only known functions called. A problem is
one message naming the rule ID, the field and the position; the caller makes the policy not
Ready (operator) or fails `validate --policy` (CLI).

**Bounded cost.** The library has no cost limit, so one is estimated here before each
evaluation, from the expression's shape and the size of the object, the way the apiserver
estimates one from a schema's bounds (`estimated_cost`): with `N` one more than the largest
list or map of the object, the Namespace or the expression, and `depth` how deeply the
comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) nest,

- each token may run `N ** depth` times, and may read the longest string;
- each reference to `object` or `namespaceObject` runs `N ** d` times (`d`: the
  comprehensions around it), and the library copies the whole variable at each one;
- `+` may concatenate: `k` of them build strings up to `k + 1` times the longest, and
  copying them costs `k ** 2` times its length.

The units are about 0.1 µs each (measured: benchmarks/custom_rules.py). Above
`COST_BUDGET` the rule is not run: its finding is an error naming the estimate and the
budget. Nesting deeper than `MAX_COMPREHENSION_DEPTH` is refused when compiling, and the
string functions that could build a large value from a small expression (`replace`,
`split`) refuse results past `MAX_BUILT_STRING` characters or `MAX_SPLIT_PARTS` parts.

**Errors fail.** A runtime error (a missing key without `has()`, a type mismatch, a result
that is not a bool) is the rule's failure, with the error as its message: the apiserver's
`failurePolicy: Fail`, so a rule cannot pass by accident in one place and deny in the other.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import cel

from prodready.api.quantity import parse_quantity
from prodready.api.resource import ADMITTED_WORKLOAD_KINDS
from prodready.rules.model import Severity

if TYPE_CHECKING:
    from prodready.api.policy import CustomRule

# The library logs each failing function call with its arguments' error; the failure is
# the rule's finding already, and a log line must not carry a value from a workload.
logging.getLogger("cel").setLevel(logging.CRITICAL)

# What a custom rule applies to when it names no kinds: every kind a VAP would match.
DEFAULT_KINDS: Final = ADMITTED_WORKLOAD_KINDS
MAX_EXPRESSION_LENGTH: Final = 4096
MAX_MESSAGE_LENGTH: Final = 1024
MAX_COMPREHENSION_DEPTH: Final = 3
COST_BUDGET: Final = 5_000_000
WORKLOAD_BUDGET: Final = 4 * COST_BUDGET
"""What all the custom rules of one workload may cost together (up to 64 rules at the
per-rule budget would take half a minute): past it, the remaining rules are not run."""
"""Estimated units one evaluation may cost (module docstring): about half a second."""
MAX_BUILT_STRING: Final = 1 << 20
MAX_SPLIT_PARTS: Final = 10_000
VARIABLES: Final = ("object", "namespaceObject")

_COMPREHENSIONS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TOKEN = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))"""
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>[0-9][0-9.eExXa-fA-FuU+-]*)"
    r"|(?P<other>\S)",
    re.DOTALL,
)
_PARSE_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _parse(text: str) -> Decimal:
    try:
        return parse_quantity(text)
    except ValueError:
        # Not the value itself: it comes from a workload and may be anything.
        raise ValueError("not a Kubernetes quantity (e.g. 100m, 128Mi, 1)") from None


def _quantity_value(value: object) -> Decimal:
    if isinstance(value, Mapping) and isinstance(value.get("@quantity"), str):
        return _parse(value["@quantity"])
    if isinstance(value, str):
        return _parse(value)
    raise ValueError("expected a quantity, e.g. quantity('128Mi')")


def _quantity(text: str) -> dict[str, str]:
    _parse(text)
    return {"@quantity": text}


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def _compare(a: object, b: object) -> int:
    left, right = _quantity_value(a), _quantity_value(b)
    return (left > right) - (left < right)


def _replace(text: str, old: str, new: str, limit: int = -1) -> str:
    occurrences = text.count(old) if old else len(text) + 1
    if limit >= 0:
        occurrences = min(occurrences, limit)
    if len(text) + occurrences * (len(new) - len(old)) > max(MAX_BUILT_STRING, len(text)):
        raise ValueError(f"replace() would build a string over {MAX_BUILT_STRING} characters")
    from cel import stdlib as cel_stdlib

    return cel_stdlib.replace(text, old, new, limit)


def _split(text: str, separator: str, limit: int | None = None) -> list[str]:
    parts = len(text) if separator == "" else text.count(separator) + 1
    if (limit is None or limit < 0 or limit > MAX_SPLIT_PARTS) and parts > MAX_SPLIT_PARTS:
        raise ValueError(f"split() would return over {MAX_SPLIT_PARTS} parts")
    from cel import stdlib as cel_stdlib

    return cel_stdlib.split(text, separator, limit)


# The Kubernetes CEL quantity library (the subset a readiness rule needs), and the
# string extensions the apiserver offers; nothing that allocates in proportion to an
# argument (lists.range) is offered.
# `cel` is imported when a policy has custom rules, not by every `prodready validate`
# (importing it loads its command line's prompt_toolkit: more than a small run's time).
@functools.cache
def functions() -> Mapping[str, Callable[..., Any]]:
    """The functions custom rules may call beside CEL's built-ins."""
    from cel import stdlib as cel_stdlib

    return {
        "quantity": _quantity,
        "isQuantity": _is_quantity,
        "compareTo": _compare,
        "isGreaterThan": lambda a, b: _compare(a, b) > 0,
        "isLessThan": lambda a, b: _compare(a, b) < 0,
        "asInteger": lambda q: int(_quantity_value(q)),
        "asApproximateFloat": lambda q: float(_quantity_value(q)),
        **{
            name: function
            for name, function in cel_stdlib.EXTENSIONS["strings"].items()
            if name not in ("strings.quote", "reverse")
        },
        "replace": _replace,
        "split": _split,
    }


_BUILTIN_FUNCTIONS: Final = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "type",
        "dyn",
        "duration",
        "timestamp",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)


@functools.cache
def known_functions() -> frozenset[str]:
    """Every function name a custom rule may call."""
    return _BUILTIN_FUNCTIONS | frozenset(functions())


@dataclass(frozen=True, slots=True)
class Shape:
    """What bounds an expression's cost: its size, how deeply its comprehensions nest, the
    nesting of each reference to a variable, and its `+` operators."""

    tokens: int
    depth: int
    literal_items: int
    variable_depths: tuple[int, ...] = ()
    plus: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledCustomRule:
    """A custom rule ready to run: its metadata and its compiled programs."""

    id: str
    title: str
    severity: Severity
    kinds: frozenset[str]
    fix: str
    expression: str
    program: cel.Program
    message_program: cel.Program | None
    shape: Shape
    message_shape: Shape | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation: passed, and the message (the error when `error` is set)."""

    passed: bool
    message: str
    error: bool = False


def _position(source: str, offset: int) -> str:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def shape_of(source: str) -> tuple[Shape, list[tuple[int, str]]]:
    """The cost shape of an expression, and its identifiers with their offsets.

    A small scanner rather than the library's AST, which the Python API does not expose:
    string literals are skipped, a parenthesis opened by `.all(` and the other
    comprehension macros counts one level of nesting.
    """
    stack: list[bool] = []
    depth = tokens = commas = plus = 0
    previous: list[str] = []
    identifiers: list[tuple[int, str]] = []
    variable_depths: list[int] = []
    for match in _TOKEN.finditer(source):
        tokens += 1
        text = match.group()
        if match.lastgroup == "ident":
            identifiers.append((match.start(), text))
            if text in VARIABLES and previous[-1:] != ["."]:
                variable_depths.append(sum(stack))
        elif text == "+":
            plus += 1
        elif text == "(":
            comprehension = (
                len(previous) >= 2 and previous[-2] == "." and previous[-1] in _COMPREHENSIONS
            )
            stack.append(comprehension)
            depth = max(depth, sum(stack))
        elif text == ")" and stack:
            stack.pop()
        elif text == ",":
            commas += 1
        previous = [*previous[-1:], text]
    shape = Shape(
        tokens=tokens,
        depth=depth,
        literal_items=commas + 1,
        variable_depths=tuple(variable_depths),
        plus=plus,
    )
    return shape, identifiers


def _bound_names(source: str) -> set[str]:
    return {
        m.group(1)
        for m in re.finditer(
            r"\.(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,", source
        )
    }


def _compile_one(source: str, where: str) -> tuple[cel.Program | None, Shape | None, str | None]:
    """(program, shape, None) or (None, None, the problem with its position)."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        return None, None, f"{where}: longer than {MAX_EXPRESSION_LENGTH} characters"
    try:
        import cel

        program = cel.compile(source)
    except ValueError as error:
        found = _PARSE_POSITION.search(str(error))
        if found is None:
            return None, None, f"{where}: does not compile: {str(error)[:300]}"
        line, column, detail = found.groups()
        return None, None, f"{where}: line {line}, column {column}: {detail[:300]}"
    shape, identifiers = shape_of(source)
    if shape.depth > MAX_COMPREHENSION_DEPTH:
        return (
            None,
            None,
            f"{where}: comprehensions nest {shape.depth} deep; at most "
            f"{MAX_COMPREHENSION_DEPTH} are allowed (each level multiplies the cost)",
        )
    references = program.references()
    allowed = set(VARIABLES) | _bound_names(source)
    for name in references["variables"]:
        if name not in allowed:
            offset = next((o for o, text in identifiers if text == name), 0)
            return (
                None,
                None,
                f"{where}: {_position(source, offset)}: undeclared reference to '{name}' "
                f"(the variables are {' and '.join(VARIABLES)})",
            )
    for name in references["functions"]:
        if name[:1] in ("_", "@", "!", "-") or name in known_functions():
            continue
        offset = next((o for o, text in identifiers if text == name.rsplit(".", 1)[-1]), 0)
        return (
            None,
            None,
            f"{where}: {_position(source, offset)}: undeclared reference to function '{name}'",
        )
    return program, shape, None


def compile_custom_rules(
    spec_rules: Sequence[CustomRule], *, field: str = "spec.customRules"
) -> tuple[list[CompiledCustomRule], list[str]]:
    """Compile a policy's custom rules once; (the rules that compile, one problem per rule
    that does not, naming its ID, the field and the position)."""
    compiled: list[CompiledCustomRule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, rule in enumerate(spec_rules):
        where = f"{field}[{index}] ({rule.id})"
        if rule.id in seen:
            problems.append(f"{where}: rule ID {rule.id} is defined more than once")
            continue
        seen.add(rule.id)
        program, shape, problem = _compile_one(rule.expression, f"{where}.expression")
        message_program = message_shape = None
        if problem is None and rule.message_expression is not None:
            message_program, message_shape, problem = _compile_one(
                rule.message_expression, f"{where}.messageExpression"
            )
        if problem is not None or program is None or shape is None:
            problems.append(problem or f"{where}: does not compile")
            continue
        compiled.append(
            CompiledCustomRule(
                id=rule.id,
                title=rule.title,
                severity=Severity(rule.severity),
                kinds=frozenset(rule.kinds or DEFAULT_KINDS),
                fix=rule.fix or rule.title,
                expression=rule.expression,
                program=program,
                message_program=message_program,
                shape=shape,
                message_shape=message_shape,
            )
        )
    return compiled, problems


@dataclass(frozen=True, slots=True)
class Extent:
    """The size of an evaluation's variables: the largest collection, the longest string,
    and in all, the nodes and the characters of strings."""

    items: int
    string: int
    nodes: int = 0
    characters: int = 0


def extent_of(*values: object, limit: int = 1_000_000) -> Extent:
    """Walk `values` (plain JSON-like data) for their `Extent`; stops counting after `limit`
    nodes, which is already over any budget."""
    items = string = seen = characters = 0
    stack: list[object] = list(values)
    while stack and seen < limit:
        value = stack.pop()
        seen += 1
        if isinstance(value, str):
            string = max(string, len(value))
            characters += len(value)
        elif isinstance(value, Mapping):
            items = max(items, len(value))
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            items = max(items, len(value))
            stack.extend(value)
    if stack:
        items = max(items, limit)
        seen = max(seen, limit)
    return Extent(items=items, string=string, nodes=seen, characters=characters)


def estimated_cost(shape: Shape, extent: Extent) -> int:
    """The bound one evaluation is held to (module docstring)."""
    width: int = max(extent.items, shape.literal_items) + 1
    iterations: int = width**shape.depth
    operations = shape.tokens * iterations * (1 + extent.string // 8192)
    copy = 1 + 2 * extent.nodes + extent.characters // 256
    references: int = sum(width**depth for depth in shape.variable_depths) * copy
    concatenation: int = iterations * shape.plus**2 * (1 + extent.string // 256)
    return operations + references + concatenation


def activation(obj: Mapping[str, Any], namespace: Mapping[str, Any] | None) -> cel.Context:
    """The variables and functions of one evaluation, built once per workload (converting
    the object is most of an evaluation's cost)."""
    import cel

    return cel.Context({"object": obj, "namespaceObject": namespace}, dict(functions()))


def _over_budget(shape: Shape, extent: Extent, what: str) -> Verdict | None:
    cost = estimated_cost(shape, extent)
    if cost <= COST_BUDGET:
        return None
    return Verdict(
        False,
        f"{what} not evaluated: its estimated cost {cost:,} is over the budget of "
        f"{COST_BUDGET:,} for an object of this size (docs/custom-rules.md: cost)",
        error=True,
    )


_QUOTED = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
_FUNCTION = re.compile(r"^Function '([A-Za-z_.]+)' error: ")


def _describe_error(error: Exception) -> str:
    """The error, without the values it may quote (a parse error quotes its input, which
    comes from the workload); a missing key keeps its name."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError):
        return f"no such key: {text}"[:300]
    function = _FUNCTION.match(text)
    prefix = f"{function.group(1)}(): " if function else ""
    text = text[function.end() :] if function else text
    if "regex parse error" in text:
        # It prints the pattern, which may come from the workload, unquoted.
        reason = text.rsplit("error:", 1)[-1].split(".")[0].strip()
        text = f"not a valid regular expression ({reason})"
    text = _QUOTED.sub("'…'", text).replace("Check function arguments and their types.", "")
    return (prefix + " ".join(text.split()))[:300]


@dataclass(slots=True)
class Spent:
    """The estimated cost the custom rules of one workload have run so far."""

    cost: int = 0


def evaluate_rule(
    rule: CompiledCustomRule, context: cel.Context, extent: Extent, spent: Spent | None = None
) -> Verdict:
    """Run one compiled rule over one activation, within the cost budgets (the rule's own,
    and with `spent`, the workload's)."""
    refused = _over_budget(rule.shape, extent, "expression")
    if refused is not None:
        return refused
    if spent is not None:
        cost = estimated_cost(rule.shape, extent)
        if rule.message_shape is not None:
            cost += estimated_cost(rule.message_shape, extent)
        if spent.cost + cost > WORKLOAD_BUDGET:
            return Verdict(
                False,
                f"expression not evaluated: this workload's custom rules have used "
                f"{spent.cost:,} of their budget of {WORKLOAD_BUDGET:,} (docs/custom-rules.md: "
                "cost)",
                error=True,
            )
        spent.cost += cost
    try:
        result = rule.program.execute(context)
    except Exception as error:  # any evaluation error is the rule's failure
        return Verdict(False, f"expression failed to evaluate: {_describe_error(error)}", True)
    if not isinstance(result, bool):
        return Verdict(
            False, f"expression returned {type(result).__name__}, not a bool", error=True
        )
    if result:
        return Verdict(True, rule.title)
    return Verdict(False, _message(rule, context, extent))


def _message(rule: CompiledCustomRule, context: cel.Context, extent: Extent) -> str:
    if rule.message_program is None or rule.message_shape is None:
        return rule.title
    if _over_budget(rule.message_shape, extent, "messageExpression") is not None:
        return rule.title
    try:
        message = rule.message_program.execute(context)
    except Exception as error:  # a broken message must not hide the failure
        return f"{rule.title} (messageExpression failed: {_describe_error(error)})"
    if not isinstance(message, str) or not message.strip():
        return rule.title
    return message[:MAX_MESSAGE_LENGTH]


def custom_ids(rules: Iterable[CompiledCustomRule]) -> frozenset[str]:
    """The IDs of `rules`."""
    return frozenset(rule.id for rule in rules)


__all__ = [
    "COST_BUDGET",
    "DEFAULT_KINDS",
    "MAX_COMPREHENSION_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "WORKLOAD_BUDGET",
    "CompiledCustomRule",
    "Extent",
    "Shape",
    "Spent",
    "Verdict",
    "activation",
    "compile_custom_rules",
    "custom_ids",
    "estimated_cost",
    "evaluate_rule",
    "extent_of",
    "shape_of",
]
