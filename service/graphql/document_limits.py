"""Limits on a document's shape, judged in time linear in the document.

Depth, aliases, fields and nesting are measured in one pass: every fragment
is measured once (in dependency order, without recursion) and a spread adds
its fragment's measure instead of walking its body again, so a chain of
fragments that each spread the next twice costs its length, not 2**length.
A spread of a fragment that is still being measured (a cycle, which
graphql-core's NoFragmentCycles rejects) counts as empty.

`validate_document` runs these limits first and graphql-core's rules only on
documents within them (some of those rules are quadratic in the fields that
share a response name), and caches the answer per parsed document: the parse
cache hands out the same document object for the same text, and the rules
are fixed at import, so a repeated request skips validation entirely.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

MAX_DEPTH = 10  # levels of object fields; introspection (`__`) fields excepted
MAX_ALIASES = 30  # per operation, fragments counted where they are spread
MAX_FIELDS = 1_000  # field selections per operation or fragment, once expanded
MAX_NESTING = 64  # selection sets inside each other, any field and spread counted
# Fields one selection set merges, its inline fragments and spread fragments
# counted: graphql-core's OverlappingFieldsCanBeMerged compares those in pairs,
# and compares the sub-selections of two fields with one response name, so
# repeated object fields (`a { b { c } } a { b { c } }` nested) cost it the
# square of the document. A selection set may merge at most MAX_WIDTH fields.
# An object field may come more than once under one response name (as
# fragments composed by Relay or Apollo Client select it) only in operations
# of up to MAX_FIELDS_WITH_REPEATS expanded fields, where that square stays
# small (about 25 ms of validation at 100 fields); larger operations must
# merge them into one field (leaves may always repeat).
MAX_WIDTH = 100
MAX_FIELDS_WITH_REPEATS = 100
VALIDATION_CACHE_SIZE = 256
MAX_LIMIT_ERRORS = 4  # of a chain of 1,000 fragments over the limit, name a few

# graphql-core's rules and strawberry's two additions, built once.
RULES: tuple[type[ASTValidationRule], ...] = (
    *specified_rules,
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)

_SATURATED = 10**12  # counts stop growing here (an exponential spread is "huge")


@dataclass(frozen=True)
class Measure:
    """What a selection set expands to."""

    depth: int = 0  # strawberry's depth: non-introspection fields with selections
    nesting: int = 0  # selection sets inside each other, fragments spread
    aliases: int = 0
    fields: int = 0
    top: int = 0  # fields merged into the outermost selection set
    width: int = 0  # the most fields merged into any selection set inside
    objects: frozenset[str] = frozenset()  # response names of top object fields
    repeated: bool = False  # an object field's response name twice in one set


_EMPTY = Measure()


def _add(a: int, b: int) -> int:
    return min(a + b, _SATURATED)


def _merged(
    selection_set: SelectionSetNode, fragment: Callable[[str], Measure]
) -> tuple[int, frozenset[str], bool]:
    """What one selection set merges: its own fields, its inline fragments'
    and each spread fragment's (once per fragment, as graphql-core collects
    them). Returns the field count, the response names of the fields that
    have a selection set, and whether such a name comes twice."""
    count = 0
    objects: set[str] = set()
    repeated = False
    spread: set[str] = set()
    stack = [selection_set]
    while stack and count <= MAX_WIDTH:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                count = _add(count, 1)
                if selection.selection_set is not None:
                    name = (selection.alias or selection.name).value
                    repeated = repeated or name in objects
                    objects.add(name)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif (
                isinstance(selection, FragmentSpreadNode)
                and selection.name.value not in spread
            ):
                spread.add(selection.name.value)
                inner = fragment(selection.name.value)
                count = _add(count, inner.top)
                if count <= MAX_WIDTH:
                    repeated = repeated or not objects.isdisjoint(inner.objects)
                    objects |= inner.objects
    return count, frozenset(objects), repeated


def measure(
    selection_set: SelectionSetNode, fragment: Callable[[str], Measure]
) -> Measure:
    """The measure of one selection set; `fragment(name)` measures a spread.

    One pass over the set and everything inside it, without recursion; a
    spread adds its fragment's measure.
    """
    depth = nesting = aliases = fields = width = 0
    top, objects, repeated = _merged(selection_set, fragment)
    # (selection set, enclosing counted fields, nesting, outside introspection,
    # a field's own set rather than an inline fragment's)
    stack: list[tuple[SelectionSetNode, int, int, bool, bool]] = [
        (selection_set, 0, 1, True, False)
    ]
    while stack:
        current, level, nest, counted, own = stack.pop()
        nesting = max(nesting, nest)
        if own:
            count, _, twice = _merged(current, fragment)
            width = max(width, count)
            repeated = repeated or twice
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                fields = _add(fields, 1)
                if selection.alias is not None:
                    aliases = _add(aliases, 1)
                if selection.selection_set is None:
                    continue
                inner = counted and not selection.name.value.startswith("__")
                if inner:
                    depth = max(depth, level + 1)
                stack.append(
                    (selection.selection_set, level + inner, nest + 1, inner, True)
                )
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, level, nest + 1, counted, False))
            elif isinstance(selection, FragmentSpreadNode):
                spread = fragment(selection.name.value)
                fields = _add(fields, spread.fields)
                aliases = _add(aliases, spread.aliases)
                nesting = max(nesting, nest + spread.nesting)
                width = max(width, spread.width)
                repeated = repeated or spread.repeated
                if counted:
                    depth = max(depth, level + spread.depth)
    return Measure(
        depth=depth,
        nesting=nesting,
        aliases=aliases,
        fields=fields,
        top=top,
        width=max(width, top),
        objects=objects,
        repeated=repeated,
    )


def _spreads(selection_set: SelectionSetNode) -> Iterator[str]:
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                stack.append(selection.selection_set)


def fragment_measures(document: DocumentNode) -> dict[str, Measure]:
    """Every fragment's measure, each fragment walked once."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    done: dict[str, Measure] = {}
    started: set[str] = set()

    def lookup(name: str) -> Measure:
        return done.get(name, _EMPTY)  # unknown, or on a cycle

    for root, definition in fragments.items():
        if root in started:
            continue
        started.add(root)
        path = [(root, iter(dict.fromkeys(_spreads(definition.selection_set))))]
        while path:
            name, pending = path[-1]
            following = next(pending, None)
            if following is None:
                path.pop()
                done[name] = measure(fragments[name].selection_set, lookup)
            elif following in fragments and following not in started:
                started.add(following)
                body = fragments[following].selection_set
                path.append((following, iter(dict.fromkeys(_spreads(body)))))
    return done


def _shown(count: int) -> str:
    return f"more than {_SATURATED:,}" if count >= _SATURATED else str(count)


def limit_errors(document: DocumentNode) -> list[GraphQLError]:
    """The errors of the operations, then the fragments, over a limit (a few)."""
    fragments = fragment_measures(document)
    errors: list[GraphQLError] = []
    operations_first = sorted(
        document.definitions,
        key=lambda d: not isinstance(d, OperationDefinitionNode),
    )
    for definition in operations_first:
        if len(errors) >= MAX_LIMIT_ERRORS:
            break
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else "anonymous"
            found = measure(
                definition.selection_set, lambda n: fragments.get(n, _EMPTY)
            )
            if found.depth > MAX_DEPTH:
                errors.append(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}",
                        definition,
                    )
                )
            if found.aliases > MAX_ALIASES:
                errors.append(
                    GraphQLError(
                        f"{_shown(found.aliases)} aliases found in '{name}'. "
                        f"Allowed: {MAX_ALIASES}",
                        definition,
                    )
                )
        elif isinstance(definition, FragmentDefinitionNode):
            name = f"fragment {definition.name.value}"
            found = fragments.get(definition.name.value, _EMPTY)
        else:
            continue
        if found.fields > MAX_FIELDS:
            errors.append(
                GraphQLError(
                    f"'{name}' selects {_shown(found.fields)} fields once its "
                    f"fragments are expanded; the limit is {MAX_FIELDS}",
                    definition,
                )
            )
        if found.width > MAX_WIDTH:
            errors.append(
                GraphQLError(
                    f"'{name}' merges {_shown(found.width)} fields into one "
                    "selection set (its fragments included); the limit is "
                    f"{MAX_WIDTH}",
                    definition,
                )
            )
        if found.repeated and found.fields > MAX_FIELDS_WITH_REPEATS:
            errors.append(
                GraphQLError(
                    f"'{name}' selects a field that has a selection set twice "
                    "under one response name in one selection set (fragments "
                    f"included) and {_shown(found.fields)} fields in all; above "
                    f"{MAX_FIELDS_WITH_REPEATS} fields, merge them into one, or "
                    "give them aliases",
                    definition,
                )
            )
        if found.nesting > MAX_NESTING:
            errors.append(
                GraphQLError(
                    f"'{name}' nests selections {found.nesting} deep (fragments "
                    f"included); the limit is {MAX_NESTING}",
                    definition,
                )
            )
    return errors[:MAX_LIMIT_ERRORS]


def judge(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    """Validation without the cache: the limits, then graphql-core's rules."""
    return limit_errors(document) or validate(schema, document, RULES)


class _Cache:
    """A bounded LRU of validation results, keyed by the document object."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[
            tuple[int, int], tuple[GraphQLSchema, DocumentNode, list[GraphQLError]]
        ] = OrderedDict()

    def validate(
        self, schema: GraphQLSchema, document: DocumentNode
    ) -> list[GraphQLError]:
        key = (id(schema), id(document))
        entry = self._entries.get(key)
        if entry is not None and entry[0] is schema and entry[1] is document:
            self.hits += 1
            self._entries.move_to_end(key)
            return list(entry[2])
        self.misses += 1
        errors = judge(schema, document)
        self._entries[key] = (schema, document, errors)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return list(errors)  # the caller's copy: ErrorCodes rewrites lists in place


CACHE = _Cache(VALIDATION_CACHE_SIZE)


_parse = lru_cache(maxsize=VALIDATION_CACHE_SIZE)(parse)


class ValidateDocument(SchemaExtension):
    """Parsing and validation, cached: the same text gives the same document
    object, whose validation (the document limits, then graphql-core's rules)
    is looked up by identity. strawberry's ParserCache is not used: it raises
    syntax errors from its hook, outside strawberry's error handling."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            try:
                context.graphql_document = _parse(
                    context.query, **context.parse_options
                )
            except GraphQLError:
                pass  # strawberry parses it again and reports the error
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = CACHE.validate(
                context.schema._schema, document
            )
        yield
