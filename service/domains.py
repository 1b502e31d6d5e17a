"""The domain modules whose import registers event handlers and job kinds.

Handlers (service/events.py) and job kinds (service/jobs/registry.py) are
declared next to the code of the domain that owns them; importing this module
imports all of them, so the app and the worker import it at start (and call
`load()` to say so). A new domain adds its handler and job modules here.
"""

from __future__ import annotations

from types import ModuleType

from service.budgets import handlers as budget_handlers
from service.jobs import tasks as corti_jobs
from service.live import handlers as live_handlers
from service.usage import statistics as usage_statistics
from service.webhooks import jobs as webhook_jobs

DOMAIN_MODULES: tuple[ModuleType, ...] = (
    live_handlers,  # after_commit(UsageRecorded): the live feed
    corti_jobs,  # job kinds createInteraction, requestTranscript, ...
    budget_handlers,  # in_transaction(UsageRecorded, InteractionMoved): alerts
    webhook_jobs,  # job kind webhook.deliver
    usage_statistics,  # after_commit(UsageRecorded): the rollups' statistics
)


def load() -> tuple[ModuleType, ...]:
    """The domain modules (imported, so their handlers are registered)."""
    return DOMAIN_MODULES
