// The local console of `orders serve`: plain DOM, no framework, no build step. Everything it
// shows goes through textContent (never HTML), since orders carry user strings.
"use strict";

const PAGE_SIZE = 20;
const STATUSES = ["PENDING", "CONFIRMED", "SHIPPED", "CANCELLED"];
const BUS_KEEP = 200;

const $ = (id) => document.getElementById(id);

// An element with text and classes; children appended in order.
function el(tag, { text, cls, title } = {}, ...children) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (cls) node.className = cls;
  if (title) node.title = title;
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}
function clearError() {
  $("error").hidden = true;
}

// GET a JSON resource; a problem+json answer becomes an Error with its title and detail.
async function getJson(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const why = body && (body.detail || body.title);
    throw new Error(`GET ${path}: ${response.status}${why ? ` ${why}` : ""}`);
  }
  return body;
}

function money(minor, currency) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / 10 ** digits);
  } catch {
    return `${minor} ${currency}`;
  }
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString();
}

function badge(status) {
  const known = STATUSES.includes(status) ? ` ${status}` : "";
  return el("span", { text: status, cls: `badge${known}` });
}

const shortId = (id) => "…" + String(id).slice(-12);

// ---------------------------------------------------------------------------------------
// The list: the listing API wants one filter (a customer or a status), so "every order" is
// the four status listings merged newest first, each followed through its own cursor.

// One listing followed page by page; `keep` filters its items (a status within a customer).
class Source {
  constructor(query, keep = () => true) {
    this.query = query;
    this.keep = keep;
    this.cursor = null;
    this.done = false;
    this.buffer = [];
  }
  async fill() {
    while (this.buffer.length === 0 && !this.done) {
      const params = new URLSearchParams(this.query);
      params.set("limit", String(PAGE_SIZE));
      if (this.cursor) params.set("cursor", this.cursor);
      const page = await getJson(`/orders?${params}`);
      this.buffer.push(...page.items.filter(this.keep));
      this.cursor = page.nextCursor;
      this.done = !page.nextCursor;
    }
  }
}

// Newest first (updatedAt, then orderId) over several sources.
class Merged {
  constructor(sources) {
    this.sources = sources;
    this.seen = new Set();
  }
  async next(count) {
    const out = [];
    while (out.length < count) {
      await Promise.all(this.sources.map((s) => s.fill()));
      let best = null;
      for (const s of this.sources) {
        const head = s.buffer[0];
        if (head && (!best || newer(head, best.buffer[0]))) best = s;
      }
      if (!best) break;
      const order = best.buffer.shift();
      if (!this.seen.has(order.orderId)) {
        this.seen.add(order.orderId);
        out.push(order);
      }
    }
    return out;
  }
  get exhausted() {
    return this.sources.every((s) => s.done && s.buffer.length === 0);
  }
}

function newer(a, b) {
  if (a.updatedAt !== b.updatedAt) return a.updatedAt > b.updatedAt;
  return a.orderId > b.orderId;
}

function listing() {
  const customer = $("filter-customer").value.trim();
  const status = $("filter-status").value;
  if (customer) {
    const keep = status ? (o) => o.status === status : undefined;
    return new Merged([new Source({ customerId: customer }, keep)]);
  }
  const statuses = status ? [status] : STATUSES;
  return new Merged(statuses.map((s) => new Source({ status: s })));
}

const list = { pager: null, shown: 0, generation: 0, behind: 0 };

// (Re)loads the list from the top, with at least as many rows as it showed before.
async function loadOrders({ keepLength = false } = {}) {
  const generation = ++list.generation;
  const pager = listing();
  const want = keepLength ? Math.max(PAGE_SIZE, list.shown) : PAGE_SIZE;
  try {
    const orders = await pager.next(want);
    if (generation !== list.generation) return;
    list.pager = pager;
    const body = $("orders").tBodies[0];
    body.replaceChildren(...orders.map(orderRow));
    list.shown = orders.length;
    $("orders-empty").hidden = orders.length > 0 || isFiltered();
    $("more").hidden = pager.exhausted;
    clearError();
    // The projector and the publisher are separate consumers: the bus may announce a
    // version before the list's read model has it. Look again shortly if so.
    // Ten looks at most: a view that stays behind is the projector's trouble, not the page's.
    const behind = orders.some((o) => (busVersions.get(o.orderId) || 0) > o.version);
    list.behind = behind ? list.behind + 1 : 0;
    if (behind && list.behind <= 10) reloadSoon(500);
  } catch (error) {
    if (generation === list.generation) showError(error.message);
  }
}

async function loadMore() {
  const generation = list.generation;
  try {
    const orders = await list.pager.next(PAGE_SIZE);
    if (generation !== list.generation) return;
    $("orders").tBodies[0].append(...orders.map(orderRow));
    list.shown += orders.length;
    $("more").hidden = list.pager.exhausted;
  } catch (error) {
    showError(error.message);
  }
}

const isFiltered = () => $("filter-customer").value.trim() !== "" || $("filter-status").value !== "";

function orderRow(order) {
  const row = el(
    "tr",
    {},
    el("td", {}, el("code", { text: shortId(order.orderId), title: order.orderId })),
    el("td", { text: order.customerId, title: order.customerId }),
    el("td", {}, badge(order.status)),
    el("td", { text: money(order.total, order.currency), cls: "num" }),
    el("td", { text: when(order.updatedAt), title: order.updatedAt }),
  );
  row.dataset.orderId = order.orderId;
  row.dataset.status = order.status;
  if (order.orderId === detail.orderId) row.classList.add("selected");
  row.addEventListener("click", () => selectOrder(order.orderId));
  return row;
}

// Reloads the list soon: several bus entries in a burst make one reload.
let reloadTimer = 0;
function reloadSoon(delay = 250) {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => loadOrders({ keepLength: true }), delay);
}

// The newest version the bus announced, per order.
const busVersions = new Map();

// ---------------------------------------------------------------------------------------
// One order: its events (GET /orders/{id}/events) and, at the slider's version, the service's
// own answer for the state then (GET /orders/{id}?atVersion=N).

const detail = { orderId: null, events: [], version: 0, request: 0 };

async function selectOrder(orderId) {
  if (location.hash !== `#${orderId}`) history.replaceState(null, "", `#${orderId}`);
  const switching = detail.orderId !== orderId;
  detail.orderId = orderId;
  for (const row of $("orders").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.orderId === orderId);
  }
  try {
    const loaded = await getJson(`/orders/${encodeURIComponent(orderId)}/events`);
    if (detail.orderId !== orderId) return;
    const latest = loaded.events.length;
    // Stay on the newest version as events arrive, unless the user travelled back.
    const follow = switching || detail.version === detail.events.length;
    detail.events = loaded.events;
    $("order-none").hidden = true;
    $("order-detail").hidden = false;
    $("order-id").textContent = orderId;
    const slider = $("slider");
    slider.max = String(latest);
    slider.disabled = latest <= 1;
    $("slider-max").textContent = String(latest);
    renderTimeline();
    await showVersion(follow ? latest : Math.min(detail.version, latest));
    clearError();
  } catch (error) {
    showError(error.message);
  }
}

function renderTimeline() {
  const items = detail.events.map((event) => {
    const item = el(
      "li",
      {},
      el("span", { text: `v${event.version} `, cls: "event-meta" }),
      el("span", { text: event.eventType, cls: "event-type" }),
      el("div", { text: `${when(event.occurredAt)}${eventNote(event)}`, cls: "event-meta" }),
    );
    item.dataset.version = String(event.version);
    item.addEventListener("click", () => showVersion(event.version));
    return item;
  });
  $("timeline").replaceChildren(...items);
}

// What an event carries worth a glance: a cancel's reason.
function eventNote(event) {
  const reason = event.data && event.data.reason;
  return typeof reason === "string" && reason ? ` · “${reason}”` : "";
}

async function showVersion(version) {
  const request = ++detail.request;
  detail.version = version;
  $("slider").value = String(version);
  $("slider-version").textContent = String(version);
  for (const item of $("timeline").children) {
    const v = Number(item.dataset.version);
    item.classList.toggle("future", v > version);
    item.classList.toggle("current", v === version);
  }
  try {
    const id = encodeURIComponent(detail.orderId);
    const order = await getJson(`/orders/${id}?atVersion=${version}`);
    if (request !== detail.request) return;
    renderState(order);
  } catch (error) {
    if (request === detail.request) showError(error.message);
  }
}

function renderState(order) {
  const status = $("state-status");
  status.textContent = order.status;
  status.className = `badge ${STATUSES.includes(order.status) ? order.status : ""}`;
  $("state").dataset.version = String(order.version);
  $("state-customer").textContent = order.customerId;
  $("state-total").textContent = money(order.total, order.currency);
  $("state-updated").textContent = when(order.updatedAt);
  const reason = order.cancelReason;
  $("state-reason").textContent = reason || "";
  $("state-reason").hidden = $("state-reason-label").hidden = !reason;
  const rows = (order.items || []).map((item) =>
    el(
      "tr",
      {},
      el("td", { text: item.sku }),
      el("td", { text: item.quantity, cls: "num" }),
      el("td", { text: money(item.unitPrice, order.currency), cls: "num" }),
    ),
  );
  $("items").tBodies[0].replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------------
// The live bus feed: GET /local/bus (Server-Sent Events, one per entry, named after its
// DetailType). Read with fetch rather than EventSource, which only delivers the event names
// it was told to listen for.

async function followBus() {
  const state = $("bus-state");
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      const response = await fetch("/local/bus", { headers: { accept: "text/event-stream" } });
      if (!response.ok) throw new Error(`${response.status}`);
      state.textContent = "live";
      state.className = "tile-value ok";
      delay = 1000;
      await readEvents(response.body, onBusEvent);
    } catch {
      // Dropped or not served (e.g. `--consumers none`): say so and try again.
    }
    state.textContent = "offline";
    state.className = "tile-value down";
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

// Parses a text/event-stream body and calls `handle({event, data, id})` per event.
async function readEvents(body, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let event = { event: "message", data: [], id: "" };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    const lines = pending.split(/\r\n|\r|\n/);
    pending = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length > 0) handle({ ...event, data: event.data.join("\n") });
        event = { event: "message", data: [], id: "" };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.event = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id") event.id = value;
    }
  }
}

function onBusEvent({ event, data }) {
  let entry = {};
  let detailBody = {};
  try {
    entry = JSON.parse(data);
    detailBody = typeof entry.Detail === "string" ? JSON.parse(entry.Detail) : entry.Detail || {};
  } catch {
    // Shown as it came.
  }
  const type = entry.DetailType || event;
  const orderId = detailBody.orderId;
  const item = el(
    "li",
    { cls: "fresh" },
    el("span", { text: clock(entry.Time || new Date().toISOString()), cls: "event-meta" }),
    el("span", { text: type, cls: "event-type" }),
    el("span", { text: detailBody.version ? `v${detailBody.version}` : "", cls: "event-meta" }),
    el("code", { text: orderId || data, cls: "bus-order", title: orderId || data }),
  );
  item.dataset.type = type;
  if (orderId) {
    item.dataset.orderId = orderId;
    item.addEventListener("click", () => selectOrder(orderId));
  }
  const bus = $("bus");
  bus.prepend(item);
  while (bus.children.length > BUS_KEEP) bus.lastElementChild.remove();
  $("bus-empty").hidden = true;

  if (orderId && detailBody.version > (busVersions.get(orderId) || 0)) {
    busVersions.set(orderId, detailBody.version);
  }
  reloadSoon();
  if (orderId && orderId === detail.orderId) selectOrder(orderId);
}

// ---------------------------------------------------------------------------------------
// The current lag: the last-event gauges of GET /metrics (Prometheus text); "—" until the
// gauges exist.

const LAGS = {
  "lag-projection": "orders_projection_lag_last_seconds",
  "lag-publish": "orders_publish_lag_last_seconds",
};

// The value of the first sample of `name` in a Prometheus text exposition.
function sample(text, name) {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line.trim());
    if (match && match[1] === name) {
      const value = match[3];
      const number = Number(value);
      return Number.isFinite(number) ? number : null;
    }
  }
  return null;
}

function seconds(value) {
  if (value === null) return "—";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 1)} ms`;
  return `${value.toFixed(2)} s`;
}

async function pollLag() {
  let text = "";
  try {
    const response = await fetch("/metrics");
    if (response.ok) text = await response.text();
  } catch {
    // Shown as unknown.
  }
  for (const [id, name] of Object.entries(LAGS)) {
    const value = sample(text, name);
    const tile = $(id);
    tile.textContent = seconds(value);
    tile.dataset.seconds = value === null ? "" : String(value);
  }
}

// ---------------------------------------------------------------------------------------

function start() {
  $("curl-example").textContent =
    `curl ${location.origin}/orders -H 'content-type: application/json' ` +
    `-d '{"customerId":"cust-42","currency":"EUR","items":[{"sku":"BOOK-1","quantity":1,"unitPrice":1250}]}'`;
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loadOrders();
  });
  $("filter-status").addEventListener("change", () => loadOrders());
  $("refresh").addEventListener("click", () => loadOrders({ keepLength: true }));
  $("more").addEventListener("click", loadMore);
  $("slider").addEventListener("input", (e) => showVersion(Number(e.target.value)));
  loadOrders();
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) selectOrder(wanted);
  followBus();
  pollLag();
  setInterval(pollLag, 2000);
}

start();
