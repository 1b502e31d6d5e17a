"""The shape of a GraphQL HTTP request body, checked before anything runs.

Every malformed shape (a body that is not a JSON object, JSON nested beyond
Python's recursion limit, multipart `operations` or `map` sent as files, a
`map` that points nowhere, broken multipart framing) is a `MalformedRequest`:
HTTP 400 with `BAD_USER_INPUT`, never an unhandled exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol

from service.errors import AppError

# Audio uploads carry one file; the rest are the spec's two fields.
MAX_FORM_FILES = 8
MAX_FORM_FIELDS = 16
MAX_FIELD_BYTES = 4 * 1024 * 1024
MAX_MAP_PATHS = 64


class MalformedRequest(AppError):
    """The request body does not have a GraphQL request's shape: HTTP 400."""

    code = "BAD_USER_INPUT"
    status = 400


def media_type(content_type: str | None) -> str:
    """`multipart/form-data` of `multipart/form-data; boundary=x`, lower case."""
    media, _ = parse_options_header(content_type or "")
    return media.decode("latin-1").strip().lower()


def request_data(data: object, protocol: GraphQLRequestProtocol) -> GraphQLRequestData:
    """A checked GraphQL request from a decoded body or query string."""
    if isinstance(data, list):
        raise MalformedRequest("Batching is not enabled")
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    query = data.get("query")
    if not isinstance(query, str | None):
        raise MalformedRequest(
            "The GraphQL operation's `query` must be a string or null, if provided."
        )
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise MalformedRequest(
            "The GraphQL operation's `variables` must be an object or null, "
            "if provided."
        )
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise MalformedRequest(
            "The GraphQL operation's `extensions` must be an object or null, "
            "if provided."
        )
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise MalformedRequest("`operationName` must be a string or null")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=operation_name,
        extensions=extensions,
        protocol=protocol,
    )


async def read_form(request: Request) -> FormData:
    """The multipart form, bounded in files, fields and field size.

    The caller closes it (`Request.close()` closes the parsed form) on every
    path; the view does so after the response.
    """
    try:
        return await request.form(
            max_files=MAX_FORM_FILES,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=MAX_FIELD_BYTES,
        )
    except (MultiPartException, StarletteHTTPException, ValueError) as error:
        detail = getattr(error, "detail", None) or getattr(error, "message", None)
        raise MalformedRequest(
            f"Unable to parse the multipart body: {detail or 'malformed'}"
        ) from None


def multipart_operations(
    form: FormData, parse_json: Callable[[str | bytes], Any]
) -> dict[str, Any]:
    """`operations` with each file put where `map` says (the multipart spec)."""
    fields: dict[str, Any] = {}
    for name in ("operations", "map"):
        value = form.get(name)
        if value is None:
            raise MalformedRequest(f"the multipart field `{name}` is missing")
        if not isinstance(value, str):
            raise MalformedRequest(
                f"the multipart field `{name}` must be a form field, not a file"
            )
        fields[name] = parse_json(value)
    operations, files_map = fields["operations"], fields["map"]
    if not isinstance(operations, dict):
        raise MalformedRequest("multipart `operations` must be a JSON object")
    if not isinstance(files_map, dict):
        raise MalformedRequest("multipart `map` must be a JSON object")
    placed = 0
    for name, paths in files_map.items():
        upload = form.get(name)
        if not isinstance(upload, UploadFile):
            raise MalformedRequest("File(s) missing in form data")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise MalformedRequest("multipart `map` values must be lists of paths")
        for path in paths:
            placed += 1
            if placed > MAX_MAP_PATHS:
                raise MalformedRequest("multipart `map` has too many paths")
            _place(operations, path, upload)
    return operations


def _place(operations: dict[str, Any], path: str, upload: UploadFile) -> None:
    """Put `upload` at a dotted path such as `variables.input.audio` or `variables.a.0`."""
    *parents, last = path.split(".")
    target: Any = operations
    try:
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = upload
        elif isinstance(target, dict):
            target[last] = upload
        else:
            raise TypeError(path)
    except (KeyError, IndexError, ValueError, TypeError):
        raise MalformedRequest(
            f"multipart `map` path {path[:100]!r} does not name a variable"
        ) from None
