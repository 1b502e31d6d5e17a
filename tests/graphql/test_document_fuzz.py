"""Random documents are judged (parsed, limited, validated, costed) within a
fixed CPU budget per KB of text (issue #10: limits linear in the document).

The documents mix what makes limits expensive: fragments spreading later
fragments several times (chains that expand to 2**n fields), cycles, aliases,
nesting, inline fragments and directives, over the real schema's fields.
"""

from __future__ import annotations

import gc
import time

from graphql import (
    FragmentDefinitionNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_named_type,
    parse,
)
from graphql.error import GraphQLError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.graphql.document_limits import judge
from service.graphql.limits import operation_cost
from service.graphql.schema import MAX_TOKENS, schema

SCHEMA = schema._schema
BUDGET_SECONDS = 0.05  # per document, plus:
BUDGET_PER_KB = 0.025  # generous for a shared machine; an expansion takes seconds


def _selection(
    draw: st.DrawFn, parent: GraphQLObjectType, depth: int, fragments: int
) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["field", "field", "field", "spread", "inline"]))
        if kind == "spread" and fragments:
            times = draw(st.integers(1, 3))
            name = draw(st.integers(0, fragments - 1))
            parts.extend([f"...F{name}"] * times)
            continue
        if kind == "inline" and depth > 0:
            directive = draw(
                st.sampled_from(["", " @include(if: true)", " @skip(if: false)"])
            )
            inner = _selection(draw, parent, depth - 1, fragments)
            parts.append(f"... on {parent.name}{directive} {{ {inner} }}")
            continue
        name = draw(st.sampled_from(sorted(parent.fields)))
        field = parent.fields[name]
        alias = draw(st.sampled_from(["", "", f"a{draw(st.integers(0, 40))}: "]))
        args = ""
        if "first" in field.args:
            args = f"(first: {draw(st.integers(0, 100))})"
        named = get_named_type(field.type)
        if isinstance(named, GraphQLObjectType):
            inner = (
                _selection(draw, named, depth - 1, fragments)
                if depth > 0
                else "__typename"
            )
            parts.append(f"{alias}{name}{args} {{ {inner} }}")
        else:
            parts.append(f"{alias}{name}{args}")
    return " ".join(parts)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A random document: an operation and fragments that spread each other."""
    count = draw(st.integers(0, 30))
    types = [SCHEMA.query_type] + [
        t
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLObjectType) and not t.name.startswith("__")
    ]
    definitions = []
    for n in range(count):
        on = draw(st.sampled_from(types[:8]))
        assert isinstance(on, GraphQLObjectType)
        # Mostly later fragments (chains), sometimes earlier ones (cycles).
        body = _selection(draw, on, draw(st.integers(0, 4)), count)
        chain = (
            f"...F{n + 1} ...F{n + 1}" if n + 1 < count and draw(st.booleans()) else ""
        )
        definitions.append(f"fragment F{n} on {on.name} {{ {body} {chain} }}")
    query = SCHEMA.query_type
    assert query is not None
    root = _selection(draw, query, draw(st.integers(0, 8)), count)
    if count and draw(st.booleans()):
        root += " ...F0 ...F0"
    return "{ " + root + " } " + " ".join(definitions)


def judge_text(text: str) -> None:
    """What a request costs before any resolver runs."""
    try:
        document = parse(text, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return
    if judge(SCHEMA, document):
        return
    fragments = {
        d.name.value: d
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    for operation in document.definitions:
        if isinstance(operation, OperationDefinitionNode):
            operation_cost(SCHEMA, operation, fragments, {})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_random_documents_are_judged_within_a_budget_per_kb(text: str) -> None:
    gc.collect()  # this thread's CPU only: the session's server threads run beside it
    started = time.thread_time()
    judge_text(text)
    spent = time.thread_time() - started
    budget = BUDGET_SECONDS + BUDGET_PER_KB * len(text.encode()) / 1024
    assert spent < budget, f"{spent * 1000:.0f} ms for {len(text)} bytes"


def test_a_fragment_chain_of_any_length_is_judged_in_linear_time() -> None:
    for length in (10, 40, 400):
        links = " ".join(
            f"fragment G{n} on Query {{ ...G{n + 1} ...G{n + 1} }}"
            for n in range(length)
        )
        text = f"{{ ...G0 }} {links} fragment G{length} on Query {{ a: tenants {{ totalCount }} }}"
        gc.collect()
        started = time.thread_time()
        judge_text(text)
        spent = time.thread_time() - started
        assert spent < BUDGET_SECONDS + BUDGET_PER_KB * len(text) / 1024, (
            length,
            spent,
        )
