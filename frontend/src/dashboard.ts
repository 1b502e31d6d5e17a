// The usage dashboard: the public GraphQL API only, with the key typed into the page.

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import type { Client } from "graphql-ws";
import { ApiError, apiKey, liveClient, query, subscribeUsage, type LiveState, type UsageEvent } from "./api";
import { renderBudgets, subscribeAlerts } from "./budgets";
import {
  addDays,
  approx,
  bucketLabel,
  credits,
  fromInput,
  localDate,
  midnight,
  timestamp,
  toInput,
  weekday,
  type LocalDate,
} from "./format";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, DoughnutController, ArcElement, Tooltip, Legend);

const SOURCES = ["stream", "transcript", "document", "facts", "coding", "dictation"] as const;
const COLORS: Record<(typeof SOURCES)[number], string> = {
  stream: "#3056d3",
  transcript: "#12a38a",
  document: "#e8903a",
  facts: "#8e44ad",
  coding: "#c0392b",
  dictation: "#7f8c8d",
};
const TENANT_STORAGE = "cortiUsageTenant";
const PAGE = 25;
const MAX_EVENTS = 50;

interface Credits {
  total: string;
  stream: string;
  transcript: string;
  document: string;
  facts: string;
  coding: string;
  dictation: string;
  records: number;
}
interface InteractionRow {
  id: string;
  createdAt: string;
  user: { id: string };
  credits: Credits;
}
interface InteractionPage {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: InteractionRow[];
}
interface DashboardData {
  tenant: {
    id: string;
    credits: Credits;
    usage: { start: string; end: string; credits: Credits }[];
    users: { totalCount: number; nodes: { id: string; credits: Credits }[] };
    interactions: InteractionPage;
  } | null;
}

const CREDITS = "total stream transcript document facts coding dictation records";
const INTERACTIONS = `
  interactions(range: $range, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id createdAt user { id } credits(range: $range) { ${CREDITS} } }
  }`;
const DASHBOARD = `
query Dashboard($tenant: ID!, $range: TimeRange!, $granularity: Granularity!, $timeZone: String!,
                $first: Int!, $after: String) {
  tenant(id: $tenant) {
    id
    credits(range: $range) { ${CREDITS} }
    usage(range: $range, granularity: $granularity, timeZone: $timeZone) {
      start end credits { ${CREDITS} }
    }
    users(range: $range, first: 10, orderBy: CREDITS_DESC) {
      totalCount
      nodes { id credits(range: $range) { ${CREDITS} } }
    }
    ${INTERACTIONS}
  }
}`;
const MORE_INTERACTIONS = `
query MoreInteractions($tenant: ID!, $range: TimeRange!, $first: Int!, $after: String) {
  tenant(id: $tenant) { ${INTERACTIONS} }
}`;
const TENANTS = `query Tenants { tenants(first: 100) { totalCount nodes { id } } }`;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing`);
  return found as T;
}

const ui = {
  keyForm: element<HTMLFormElement>("key-form"),
  key: element<HTMLInputElement>("key"),
  forget: element<HTMLButtonElement>("forget"),
  live: element<HTMLSpanElement>("live"),
  message: element<HTMLParagraphElement>("message"),
  main: element<HTMLElement>("main"),
  tenant: element<HTMLSelectElement>("tenant"),
  preset: element<HTMLSelectElement>("preset"),
  from: element<HTMLInputElement>("from"),
  to: element<HTMLInputElement>("to"),
  granularity: element<HTMLSelectElement>("granularity"),
  zone: element<HTMLSelectElement>("zone"),
  users: element<HTMLTableElement>("users"),
  usersNote: element<HTMLParagraphElement>("users-note"),
  interactions: element<HTMLTableElement>("interactions"),
  interactionsNote: element<HTMLSpanElement>("interactions-note"),
  more: element<HTMLButtonElement>("more"),
  events: element<HTMLOListElement>("events"),
};

const state = {
  key: null as string | null,
  client: null as Client | null,
  unsubscribe: null as (() => void) | null,
  after: null as string | null,
  generation: 0,
  refreshTimer: 0,
  range: { from: "", to: "" },
};

let usageChart: Chart<"bar"> | null = null;
let sourceChart: Chart<"doughnut"> | null = null;

function say(text: string, kind: "error" | "info" = "error"): void {
  ui.message.textContent = text;
  ui.message.className = kind === "info" ? "message info" : "message";
  ui.message.hidden = false;
}

function quiet(): void {
  ui.message.hidden = true;
}

function explain(error: unknown): string {
  if (!(error instanceof ApiError)) return "Something went wrong; see the browser console.";
  if (error.code === "UNAUTHENTICATED") return `The key was refused: ${error.message}.`;
  if (error.code === "FORBIDDEN") return `This key may not do that: ${error.message}.`;
  return error.message;
}

function zone(): string {
  return ui.zone.value || "UTC";
}

function setRange(from: LocalDate, to: LocalDate): void {
  ui.from.value = toInput(from);
  ui.to.value = toInput(to);
}

function applyPreset(preset: string): void {
  const today = localDate(new Date(), zone());
  switch (preset) {
    case "today":
      setRange(today, today);
      ui.granularity.value = "HOUR";
      break;
    case "30d":
      setRange(addDays(today, -29), today);
      ui.granularity.value = "DAY";
      break;
    case "12w":
      setRange(addDays(today, -weekday(today) - 77), today);
      ui.granularity.value = "WEEK";
      break;
    case "12m": {
      const months = today.year * 12 + (today.month - 1) - 11;
      setRange({ year: Math.floor(months / 12), month: (months % 12) + 1, day: 1 }, today);
      ui.granularity.value = "MONTH";
      break;
    }
    case "7d":
      setRange(addDays(today, -6), today);
      ui.granularity.value = "DAY";
      break;
    default:
      break;
  }
}

/** [from 00:00, day after `to` 00:00) in the chosen zone, or null if invalid. */
function currentRange(): { from: string; to: string } | null {
  const from = fromInput(ui.from.value);
  const to = fromInput(ui.to.value);
  if (!from || !to) return null;
  const start = midnight(from, zone());
  const end = midnight(addDays(to, 1), zone());
  if (end <= start) return null;
  return { from: start.toISOString(), to: end.toISOString() };
}

function setLive(live: LiveState): void {
  ui.live.dataset.state = live;
  ui.live.textContent = { connecting: "connecting…", live: "live", offline: "offline", refused: "key refused" }[live];
}

function cell(row: HTMLTableRowElement, text: string, numeric = false): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  if (numeric) td.className = "num";
  return td;
}

function renderCards(summary: Credits): void {
  for (const name of [...SOURCES, "total"] as const) {
    element<HTMLOutputElement>(name).textContent = credits(summary[name]);
  }
  element<HTMLOutputElement>("records").textContent = summary.records.toLocaleString("en-US");
}

function renderCharts(data: NonNullable<DashboardData["tenant"]>): void {
  const labels = data.usage.map((bucket) => bucketLabel(bucket.start, ui.granularity.value, zone()));
  const datasets = SOURCES.map((source) => ({
    label: source[0].toUpperCase() + source.slice(1),
    data: data.usage.map((bucket) => approx(bucket.credits[source])),
    backgroundColor: COLORS[source],
    stack: "credits",
  }));
  if (!usageChart) {
    usageChart = new Chart(element<HTMLCanvasElement>("usage-chart"), {
      type: "bar",
      data: { labels, datasets },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  } else {
    usageChart.data.labels = labels;
    usageChart.data.datasets = datasets;
    usageChart.update();
  }
  const split = SOURCES.map((source) => approx(data.credits[source]));
  if (!sourceChart) {
    sourceChart = new Chart(element<HTMLCanvasElement>("source-chart"), {
      type: "doughnut",
      data: {
        labels: ["Stream", "Transcript", "Document"],
        datasets: [{ data: split, backgroundColor: SOURCES.map((s) => COLORS[s]) }],
      },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom" } } },
    });
  } else {
    sourceChart.data.datasets[0].data = split;
    sourceChart.update();
  }
}

function renderUsers(users: NonNullable<DashboardData["tenant"]>["users"]): void {
  const body = ui.users.tBodies[0];
  body.replaceChildren();
  for (const user of users.nodes) {
    const row = body.insertRow();
    cell(row, user.id);
    cell(row, credits(user.credits.total), true);
    cell(row, user.credits.records.toLocaleString("en-US"), true);
  }
  ui.usersNote.textContent = users.totalCount
    ? `${users.nodes.length} of ${users.totalCount} users with usage in the range.`
    : "No usage in this range.";
}

function renderInteractions(page: InteractionPage, append: boolean): void {
  const body = ui.interactions.tBodies[0];
  if (!append) body.replaceChildren();
  for (const interaction of page.nodes) {
    const row = body.insertRow();
    const id = cell(row, "");
    const code = document.createElement("code");
    code.textContent = interaction.id;
    id.append(code);
    cell(row, interaction.user.id);
    cell(row, timestamp(interaction.createdAt, zone()));
    for (const source of SOURCES) cell(row, credits(interaction.credits[source]), true);
    cell(row, credits(interaction.credits.total), true);
    cell(row, interaction.credits.records.toLocaleString("en-US"), true);
  }
  state.after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  ui.more.hidden = state.after === null;
  ui.interactionsNote.textContent = `${body.rows.length} of ${page.totalCount} interactions with usage in the range, latest usage first.`;
}

async function refresh(): Promise<void> {
  const key = state.key;
  const tenant = ui.tenant.value;
  const range = currentRange();
  if (!key || !tenant) return;
  if (!range) {
    say("Pick a range whose end is not before its start.");
    return;
  }
  state.range = range;
  const generation = ++state.generation;
  try {
    const data = await query<DashboardData>(key, DASHBOARD, {
      tenant,
      range,
      granularity: ui.granularity.value,
      timeZone: zone(),
      first: PAGE,
      after: null,
    });
    if (generation !== state.generation) return;
    if (!data.tenant) {
      say(`Tenant ${tenant} is not visible to this key.`);
      return;
    }
    quiet();
    renderCards(data.tenant.credits);
    renderCharts(data.tenant);
    renderUsers(data.tenant.users);
    renderInteractions(data.tenant.interactions, false);
    await renderBudgets(key, tenant);
    if (generation !== state.generation) return;
    document.body.dataset.loaded = String(generation);
  } catch (error) {
    if (generation === state.generation) say(explain(error));
  }
}

async function loadMore(): Promise<void> {
  if (!state.key || !state.after) return;
  try {
    const data = await query<{ tenant: { interactions: InteractionPage } | null }>(state.key, MORE_INTERACTIONS, {
      tenant: ui.tenant.value,
      range: state.range,
      first: PAGE,
      after: state.after,
    });
    if (data.tenant) renderInteractions(data.tenant.interactions, true);
  } catch (error) {
    say(explain(error));
  }
}

function scheduleRefresh(): void {
  window.clearTimeout(state.refreshTimer);
  state.refreshTimer = window.setTimeout(() => void refresh(), 300);
}

function showEvent(event: UsageEvent): void {
  const item = document.createElement("li");
  item.className = "fresh";
  const badge = document.createElement("span");
  badge.className = `badge ${event.source}`;
  badge.textContent = event.source.toLowerCase();
  const what = document.createElement("span");
  what.textContent = `${event.externalId} · ${event.interactionId} · ${timestamp(event.createdAt, zone())}`;
  const amount = document.createElement("span");
  amount.className = "num";
  amount.textContent = credits(event.credits);
  item.append(badge, what, amount);
  ui.events.prepend(item);
  while (ui.events.children.length > MAX_EVENTS) ui.events.lastElementChild?.remove();
  const at = Date.parse(event.createdAt);
  if (at >= Date.parse(state.range.from) && at < Date.parse(state.range.to)) scheduleRefresh();
}

function resubscribe(): void {
  state.unsubscribe?.();
  state.unsubscribe = null;
  ui.events.replaceChildren();
  if (!state.client || !ui.tenant.value) return;
  const usage = subscribeUsage(state.client, ui.tenant.value, showEvent, (error) => say(explain(error)));
  const alerts = subscribeAlerts(state.client, ui.tenant.value, zone, scheduleRefresh, (error) => say(explain(error)));
  state.unsubscribe = () => {
    usage();
    alerts();
  };
}

function disconnect(): void {
  state.unsubscribe?.();
  state.unsubscribe = null;
  void state.client?.dispose();
  state.client = null;
  state.key = null;
  setLive("offline");
}

async function connect(key: string): Promise<void> {
  disconnect();
  say("Connecting…", "info");
  let tenants: { totalCount: number; nodes: { id: string }[] };
  try {
    tenants = (await query<{ tenants: typeof tenants }>(key, TENANTS)).tenants;
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") apiKey.clear();
    ui.main.hidden = true;
    say(explain(error));
    return;
  }
  apiKey.set(key);
  state.key = key;
  ui.key.value = "";
  ui.key.placeholder = "key set for this tab";
  ui.forget.hidden = false;
  ui.tenant.replaceChildren(
    ...tenants.nodes.map((tenant) => new Option(tenant.id, tenant.id)),
  );
  const remembered = sessionStorage.getItem(TENANT_STORAGE);
  if (remembered && tenants.nodes.some((tenant) => tenant.id === remembered)) ui.tenant.value = remembered;
  if (!tenants.nodes.length) {
    ui.main.hidden = true;
    say("No tenants yet: usage appears here once an interaction is registered.", "info");
    return;
  }
  quiet();
  ui.main.hidden = false;
  state.client = liveClient(key, setLive);
  resubscribe();
  await refresh();
}

function setUpZones(): void {
  const browser = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const zones = Array.from(new Set([browser, "UTC"]));
  ui.zone.replaceChildren(...zones.map((name) => new Option(name, name)));
  ui.zone.value = browser;
}

function start(): void {
  setUpZones();
  applyPreset(ui.preset.value);
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.key.value.trim();
    if (key) void connect(key);
  });
  ui.forget.addEventListener("click", () => {
    apiKey.clear();
    disconnect();
    ui.main.hidden = true;
    ui.forget.hidden = true;
    ui.key.placeholder = "cul_…";
    say("The key was removed from this tab.", "info");
  });
  ui.tenant.addEventListener("change", () => {
    sessionStorage.setItem(TENANT_STORAGE, ui.tenant.value);
    resubscribe();
    void refresh();
  });
  ui.preset.addEventListener("change", () => {
    applyPreset(ui.preset.value);
    void refresh();
  });
  for (const input of [ui.from, ui.to]) {
    input.addEventListener("change", () => {
      ui.preset.value = "custom";
      void refresh();
    });
  }
  ui.granularity.addEventListener("change", () => void refresh());
  ui.zone.addEventListener("change", () => {
    if (ui.preset.value !== "custom") applyPreset(ui.preset.value);
    void refresh();
  });
  ui.more.addEventListener("click", () => void loadMore());
  const saved = apiKey.get();
  if (saved) void connect(saved);
  else say("Enter an API key (role reader or admin) to see usage.", "info");
}

start();
