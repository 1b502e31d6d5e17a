"""The per-request context handed to every resolver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from service.auth.principal import Principal
from service.config import Settings
from service.db.session import Database
from service.errors import AppError, Unauthenticated
from service.graphql.loaders import Loaders
from service.usage.reads import UsageReader, read_service


@dataclass
class Context:
    """Database, caller and loaders of one GraphQL operation."""

    db: Database
    settings: Settings
    principal: Principal | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    auth_error: AppError | None = None
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # graphql-transport-ws: the connection_init payload (see subscriptions.py).
    connection_params: dict[str, Any] | None = None
    # Built for this context's caller on first use (see loaders).
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @property
    def loaders(self) -> Loaders:
        """This operation's loaders, built when a resolver first asks: a webhook
        mutation reads nothing through them, and building the eleven of them
        was about a tenth of a registration's CPU (py-spy, bench --profile)."""
        if self._loaders is None:
            self._loaders = Loaders(self.db, lambda: self.caller)
        return self._loaders

    def reset_loaders(self) -> None:
        """Fresh loaders (empty caches) for this context's caller."""
        self._loaders = None

    @property
    def caller(self) -> Principal:
        """The authenticated principal; UNAUTHENTICATED if there is none."""
        if self.principal is None:
            raise self.auth_error or Unauthenticated("an API key is required")
        return self.principal

    @property
    def usage(self) -> UsageReader:
        """The caller's usage read service; FORBIDDEN unless it may read usage."""
        return read_service(self.caller)


Info = StrawberryInfo[Context, None]
