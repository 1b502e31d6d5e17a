"""GraphQL operations and helpers shared by the budgets tests."""

from __future__ import annotations

from typing import Any

from tests.fixtures.app import GraphQLClient

SET_BUDGET = """
mutation($i: SetBudgetInput!) {
  setBudget(input: $i) {
    id period limit timeZone thresholds enforce tenant { id } user { id }
  }
}"""
DELETE_BUDGET = "mutation($id: ID!) { deleteBudget(id: $id) }"
STATUS_FIELDS = """
  periodStart periodEnd used { total stream transcript document records }
  remaining percentUsed projected alerts { id threshold periodStart crossedAt used }
"""
BUDGET = f"""
query($id: ID!, $at: DateTime) {{
  budget(id: $id) {{
    id period limit timeZone thresholds enforce
    status(at: $at) {{ {STATUS_FIELDS} }}
  }}
}}"""
HISTORY = f"""
query($id: ID!, $last: Int) {{
  budget(id: $id) {{ history(last: $last) {{ {STATUS_FIELDS} }} }}
}}"""
TENANT_BUDGETS = """
query($t: ID!, $u: ID!) {
  tenant(id: $t) { budgets { id user { id } } user(id: $u) { budgets { id } } }
}"""
CREDITS = """
query($t: ID!, $from: DateTime, $to: DateTime) {
  tenant(id: $t) { credits(range: {from: $from, to: $to}) { total stream transcript document records } }
}"""
USER_CREDITS = """
query($t: ID!, $u: ID!, $from: DateTime, $to: DateTime) {
  tenant(id: $t) { user(id: $u) {
    credits(range: {from: $from, to: $to}) { total stream transcript document records }
  } }
}"""
CREATE_ENDPOINT = """
mutation($i: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $i) { id url secret eventTypes disabled tenant { id } }
}"""
DELETE_ENDPOINT = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }"
ENDPOINT = """
query($id: ID!) {
  webhookEndpoint(id: $id) {
    id url secret disabled
    deliveries { id eventType status attempts lastError createdAt deliveredAt }
  }
}"""


def codes(body: dict[str, Any]) -> list[str]:
    """The extensions.code of each error."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


async def set_budget(
    gql: GraphQLClient, key: str | None = None, **fields: Any
) -> dict[str, Any]:
    """setBudget; returns the Budget (fails the test on errors)."""
    data = await gql.data(SET_BUDGET, {"i": fields}, key=key)
    budget: dict[str, Any] = data["setBudget"]
    return budget


async def status(
    gql: GraphQLClient, budget_id: str, at: str | None = None
) -> dict[str, Any]:
    """budget(id:).status(at:)."""
    data = await gql.data(BUDGET, {"id": budget_id, "at": at})
    result: dict[str, Any] = data["budget"]["status"]
    return result
