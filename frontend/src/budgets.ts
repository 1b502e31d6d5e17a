// The budgets panel: a gauge per budget with its thresholds, the users nearest their
// quota, the period's projection, and alerts as they arrive (budgetAlerts).

import type { Client } from "graphql-ws";
import { ApiError, query, type GraphQLErrorBody } from "./api";
import { credits, timestamp } from "./format";

interface Status {
  periodStart: string;
  periodEnd: string;
  used: { total: string };
  remaining: string;
  percentUsed: string;
  projected: string;
}
interface Budget {
  id: string;
  period: string;
  limit: string;
  thresholds: number[];
  enforce: boolean;
  user: { id: string } | null;
  status: Status;
}
export interface BudgetAlert {
  id: string;
  threshold: number;
  periodStart: string;
  crossedAt: string;
  used: string;
  budget: { id: string; period: string; limit: string; user: { id: string } | null };
}

const BUDGETS = `
query Budgets($tenant: ID!) {
  tenant(id: $tenant) {
    budgets {
      id period limit thresholds enforce user { id }
      status { periodStart periodEnd used { total } remaining percentUsed projected }
    }
  }
}`;
const BUDGET_ALERTS = `
subscription BudgetAlerts($tenantId: ID!) {
  budgetAlerts(tenantId: $tenantId) {
    id threshold periodStart crossedAt used
    budget { id period limit user { id } }
  }
}`;
const MAX_ALERTS = 50;
const NEAREST = 5;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing`);
  return found as T;
}

function owner(budget: { period: string; user: { id: string } | null }): string {
  return `${budget.user ? budget.user.id : "whole tenant"} · ${budget.period.toLowerCase()}`;
}

/** A horizontal gauge: used against limit, with a mark per threshold. */
function gauge(budget: Budget): HTMLElement {
  const item = document.createElement("li");
  item.className = "budget";
  item.dataset.budget = budget.id;
  const percent = Number(budget.status.percentUsed);
  const scale = Math.max(100, ...budget.thresholds, percent);
  const title = document.createElement("div");
  title.className = "budget-title";
  title.textContent = `${owner(budget)}${budget.enforce ? " · enforced" : ""}`;
  const figures = document.createElement("div");
  figures.className = "budget-figures num";
  figures.dataset.testid = "budget-used";
  figures.textContent = `${credits(budget.status.used.total)} of ${credits(budget.limit)} (${budget.status.percentUsed} %)`;
  const bar = document.createElement("div");
  bar.className = "gauge";
  bar.setAttribute("role", "meter");
  bar.setAttribute("aria-valuenow", budget.status.percentUsed);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", String(scale));
  const fill = document.createElement("div");
  fill.className = percent >= 100 ? "fill over" : "fill";
  fill.style.width = `${Math.min(100, (percent / scale) * 100)}%`;
  bar.append(fill);
  for (const threshold of budget.thresholds) {
    const mark = document.createElement("span");
    mark.className = percent >= threshold ? "mark crossed" : "mark";
    mark.style.left = `${(threshold / scale) * 100}%`;
    mark.title = `${threshold} %`;
    bar.append(mark);
  }
  const projection = document.createElement("div");
  projection.className = "note";
  projection.dataset.testid = "budget-projected";
  projection.textContent = `projected ${credits(budget.status.projected)} by ${budget.status.periodEnd.slice(0, 10)}`;
  item.append(title, figures, bar, projection);
  return item;
}

/** Read the tenant's budgets and draw them. */
export async function renderBudgets(key: string, tenant: string): Promise<void> {
  const list = element<HTMLOListElement>("budgets");
  const nearest = element<HTMLTableElement>("nearest");
  const note = element<HTMLParagraphElement>("budgets-note");
  const data = await query<{ tenant: { budgets: Budget[] } | null }>(key, BUDGETS, { tenant });
  const budgets = data.tenant?.budgets ?? [];
  list.replaceChildren(...budgets.map(gauge));
  const users = budgets
    .filter((budget) => budget.user)
    .sort((a, b) => Number(b.status.percentUsed) - Number(a.status.percentUsed))
    .slice(0, NEAREST);
  const body = nearest.tBodies[0];
  body.replaceChildren(
    ...users.map((budget) => {
      const row = document.createElement("tr");
      for (const [text, numeric] of [
        [budget.user?.id ?? "", false],
        [`${budget.status.percentUsed} %`, true],
        [credits(budget.status.remaining), true],
        [credits(budget.status.projected), true],
      ] as const) {
        const cell = row.insertCell();
        cell.textContent = text;
        if (numeric) cell.className = "num";
      }
      return row;
    }),
  );
  note.textContent = budgets.length
    ? `${budgets.length} budget${budgets.length === 1 ? "" : "s"}, current periods.`
    : "No budgets for this tenant (setBudget creates one).";
  document.body.dataset.budgets = String(budgets.length);
}

/** Show each new alert of the tenant; returns an unsubscribe function. */
export function subscribeAlerts(
  client: Client,
  tenantId: string,
  zone: () => string,
  onAlert: () => void,
  onError: (error: ApiError) => void,
): () => void {
  const alerts = element<HTMLOListElement>("alerts");
  alerts.replaceChildren();
  return client.subscribe<{ budgetAlerts: BudgetAlert }>(
    { query: BUDGET_ALERTS, variables: { tenantId } },
    {
      next: (result) => {
        if (result.errors?.length) {
          const [first] = result.errors;
          onError(new ApiError(first.message, (first.extensions?.code as string | undefined) ?? "INTERNAL"));
          return;
        }
        const alert = result.data?.budgetAlerts;
        if (!alert) return;
        const item = document.createElement("li");
        item.className = "fresh";
        const badge = document.createElement("span");
        badge.className = "badge alert";
        badge.textContent = `${alert.threshold} %`;
        const what = document.createElement("span");
        what.textContent = `${owner(alert.budget)} · ${timestamp(alert.crossedAt, zone())}`;
        const amount = document.createElement("span");
        amount.className = "num";
        amount.textContent = `${credits(alert.used)} of ${credits(alert.budget.limit)}`;
        item.append(badge, what, amount);
        alerts.prepend(item);
        while (alerts.children.length > MAX_ALERTS) alerts.lastElementChild?.remove();
        onAlert();
      },
      error: (error) => {
        if (Array.isArray(error) && error.length) {
          const first = error[0] as GraphQLErrorBody;
          onError(new ApiError(first.message, first.extensions?.code ?? "INTERNAL"));
        }
      },
      complete: () => undefined,
    },
  );
}
