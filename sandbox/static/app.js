// The sandbox page: renders what pgconn posted to the Slack emulator and sends what the
// person does back through the emulator (signed, like Slack). No framework, no build step.
// Every piece of text from the server is put in the page with textContent/createTextNode,
// never innerHTML, so a message cannot inject markup.
"use strict";

const POLL_MS = 1000;
const state = {
  data: null,
  expanded: new Set(), // ts of threads the person opened
  rendered: new Map(), // channel id -> JSON of what was drawn last
  edits: new Map(), // message ts -> edit count seen, to flash updated messages
  pendingConfirm: null,
};

const EMOJI = {
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", no_entry: "⛔", no_entry_sign: "🚫",
  pager: "📟", raising_hand: "🙋", zzz: "💤",
  hourglass: "⌛", hourglass_flowing_sand: "⏳", rotating_light: "🚨", warning: "⚠️", fire: "🔥",
  red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡", large_orange_circle: "🟠",
  white_circle: "⚪", large_blue_circle: "🔵", arrows_counterclockwise: "🔄", wrench: "🔧", mag: "🔍",
  bar_chart: "📊", chart_with_upwards_trend: "📈", information_source: "ℹ️", zap: "⚡", bulb: "💡",
  eyes: "👀", stopwatch: "⏱️", rocket: "🚀", construction: "🚧", lock: "🔒", point_right: "👉",
  elephant: "🐘", thumbsup: "👍", "+1": "👍", sparkles: "✨", tada: "🎉", bell: "🔔", package: "📦",
  skull: "💀", repeat: "🔁", octagonal_sign: "🛑", bangbang: "‼️", question: "❓", memo: "📝",
  heavy_plus_sign: "➕", heavy_minus_sign: "➖", hammer_and_wrench: "🛠️", gear: "⚙️", scroll: "📜",
  busts_in_silhouette: "👥", sleeping: "😴", traffic_light: "🚥", vertical_traffic_light: "🚦",
};

// ---- small DOM helpers ------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function toast(message, isError) {
  const box = document.getElementById("toasts");
  const item = el("div", "toast" + (isError ? " error" : ""), message);
  box.appendChild(item);
  setTimeout(() => item.remove(), isError ? 7000 : 3500);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* not JSON: use the status */ }
  if (!response.ok || data.ok === false) {
    throw new Error(data.error || `pgconn answered HTTP ${data.status || response.status}`);
  }
  return data;
}

// ---- Slack mrkdwn, minimal and safe -------------------------------------------------------

// Slack escapes &, < and > in message text; control sequences use real < and >.
function decode(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function mrkdwn(text, users) {
  const frag = document.createDocumentFragment();
  const parts = String(text || "").split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < parts.length - 1) {
      const pre = el("pre");
      pre.textContent = decode(part.replace(/^\n/, "").replace(/\n$/, ""));
      frag.appendChild(pre);
    } else {
      inlineCode(i % 2 === 1 ? "```" + part : part, frag, users);
    }
  });
  return frag;
}

function inlineCode(text, parent, users) {
  const re = /`([^`\n]+)`/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    formatted(text.slice(last, m.index), parent, users);
    parent.appendChild(el("code", null, decode(m[1])));
    last = re.lastIndex;
  }
  formatted(text.slice(last), parent, users);
}

const TOKEN = /<([^<>\n]+)>|\*(?!\s)([^*\n]+?)(?<!\s)\*|(?<![\w])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w])|~(?!\s)([^~\n]+?)(?<!\s)~|:([a-z0-9_+-]+):|\n/g;

function formatted(text, parent, users) {
  let last = 0;
  let m;
  const re = new RegExp(TOKEN.source, "g");
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.appendChild(document.createTextNode(decode(text.slice(last, m.index))));
    last = re.lastIndex;
    if (m[1] !== undefined) parent.appendChild(control(m[1], users));
    else if (m[2] !== undefined) formatted(m[2], parent.appendChild(el("strong")), users);
    else if (m[3] !== undefined) formatted(m[3], parent.appendChild(el("em")), users);
    else if (m[4] !== undefined) formatted(m[4], parent.appendChild(el("del")), users);
    else if (m[5] !== undefined) parent.appendChild(document.createTextNode(EMOJI[m[5]] || m[0]));
    else parent.appendChild(el("br"));
  }
  if (last < text.length) parent.appendChild(document.createTextNode(decode(text.slice(last))));
}

function control(inner, users) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return el("span", "mention", "@" + (label || users[id] || id));
  }
  if (target.startsWith("#")) return el("span", "mention", "#" + (label || target.slice(1)));
  if (target.startsWith("!subteam^")) return el("span", "mention", label || "@group");
  if (target.startsWith("!date^")) {
    // <!date^EPOCH^{token}|fallback>: shown in the reader's time zone, as Slack does.
    const epoch = parseInt(target.split("^")[1], 10);
    return el("span", null, Number.isFinite(epoch) ? new Date(epoch * 1000).toLocaleString() : decode(label || ""));
  }
  if (target.startsWith("!")) return el("span", "mention", "@" + target.slice(1).split("^")[0]);
  if (/^(https?:\/\/|mailto:)/i.test(target)) {
    const a = el("a", null, decode(label || target));
    a.href = decode(target);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  return document.createTextNode(decode("<" + inner + ">"));
}

function textObject(obj, users) {
  const span = el("div", "text");
  if (!obj) return span;
  if (obj.type === "mrkdwn") span.appendChild(mrkdwn(obj.text, users));
  else {
    String(obj.text || "").split("\n").forEach((line, i) => {
      if (i) span.appendChild(el("br"));
      span.appendChild(document.createTextNode(obj.emoji === false ? line : line.replace(/:([a-z0-9_+-]+):/g, (w, n) => EMOJI[n] || w)));
    });
  }
  return span;
}

// ---- Block Kit ----------------------------------------------------------------------------

function renderBlocks(blocks, ctx) {
  const box = el("div", "blocks");
  for (const block of blocks) {
    switch (block.type) {
      case "header": {
        const header = el("div", "bk-header");
        header.appendChild(textObject(block.text, ctx.users));
        box.appendChild(header);
        break;
      }
      case "section": {
        const section = el("div", "bk-section");
        const main = el("div", "bk-main");
        if (block.text) main.appendChild(textObject(block.text, ctx.users));
        if (Array.isArray(block.fields) && block.fields.length) {
          const fields = el("div", "bk-fields");
          block.fields.forEach((f) => fields.appendChild(textObject(f, ctx.users)));
          main.appendChild(fields);
        }
        section.appendChild(main);
        if (block.accessory && block.accessory.type === "button") {
          section.appendChild(button(block.accessory, ctx));
        } else if (block.accessory && block.accessory.type === "overflow") {
          section.appendChild(overflow(block.accessory, block.block_id, ctx));
        }
        box.appendChild(section);
        break;
      }
      case "context": {
        const context = el("div", "bk-context");
        for (const item of block.elements || []) {
          if (item.type === "image") context.appendChild(el("span", null, "🖼 " + (item.alt_text || "")));
          else context.appendChild(textObject(item, ctx.users));
        }
        box.appendChild(context);
        break;
      }
      case "divider":
        box.appendChild(el("hr", "bk-divider"));
        break;
      case "actions": {
        const actions = el("div", "bk-actions");
        for (const item of block.elements || []) {
          if (item.type === "button") actions.appendChild(button(item, ctx));
          else actions.appendChild(el("span", "bk-unknown", `[${item.type}]`));
        }
        box.appendChild(actions);
        break;
      }
      case "rich_text":
        box.appendChild(el("div", "text", richText(block)));
        break;
      case "image":
        box.appendChild(el("div", "bk-unknown", "🖼 " + (block.alt_text || "image")));
        break;
      default:
        box.appendChild(el("div", "bk-unknown", `[${block.type} block]`));
    }
  }
  return box;
}

function richText(block) {
  const out = [];
  const walk = (node) => {
    if (!node || typeof node !== "object") return;
    if (node.type === "text" && typeof node.text === "string") out.push(node.text);
    (node.elements || []).forEach(walk);
  };
  walk(block);
  return out.join("");
}

function button(item, ctx) {
  const b = el("button", "bk-button" + (item.style ? " " + item.style : ""), (item.text && item.text.text) || "");
  b.type = "button";
  b.dataset.actionId = item.action_id || "";
  b.dataset.value = item.value || "";
  b.addEventListener("click", () => pressButton(item, ctx, b));
  return b;
}

// An overflow menu ("⋯"): choosing an option is the click, carrying that option's value.
function overflow(item, blockId, ctx) {
  const select = el("select", "bk-overflow");
  select.setAttribute("aria-label", "More actions");
  select.appendChild(el("option", null, "⋯"));
  (item.options || []).forEach((o, i) => {
    const option = el("option", null, (o.text && o.text.text) || o.value);
    option.value = String(i);
    select.appendChild(option);
  });
  select.addEventListener("change", () => {
    const chosen = (item.options || [])[parseInt(select.value, 10)];
    select.selectedIndex = 0;
    if (chosen) pressButton({ ...item, value: chosen.value }, { ...ctx, blockId }, select);
  });
  return select;
}

function pressButton(item, ctx, node) {
  const send = async () => {
    node.disabled = true;
    if (ctx.threadOf) state.expanded.add(ctx.threadOf); // the result lands in the thread
    try {
      if (ctx.home) await post("/sandbox/home/click", { action_id: item.action_id, value: item.value || "" });
      else await post("/sandbox/click", {
        channel: ctx.channel, ts: ctx.ts, action_id: item.action_id, value: item.value || "", block_id: ctx.blockId || "",
      });
    } catch (e) {
      toast(e.message, true);
    } finally {
      node.disabled = false;
      poll();
    }
  };
  if (item.confirm) showConfirm(item.confirm, send);
  else send();
}

// ---- the confirm dialog (Block Kit `confirm`) --------------------------------------------

function showConfirm(confirm, onConfirm) {
  const modal = document.getElementById("modal");
  document.getElementById("modal-title").textContent = (confirm.title && confirm.title.text) || "Are you sure?";
  const text = document.getElementById("modal-text");
  text.textContent = "";
  text.appendChild(textObject(confirm.text, (state.data && state.data.slack.users) || {}));
  const ok = document.getElementById("modal-confirm");
  ok.textContent = (confirm.confirm && confirm.confirm.text) || "Yes";
  ok.className = "btn " + (confirm.style === "danger" ? "danger" : "primary");
  document.getElementById("modal-deny").textContent = (confirm.deny && confirm.deny.text) || "Cancel";
  state.pendingConfirm = onConfirm;
  modal.hidden = false;
  ok.focus();
}

function closeConfirm(confirmed) {
  const action = state.pendingConfirm;
  state.pendingConfirm = null;
  document.getElementById("modal").hidden = true;
  if (confirmed && action) action();
}

// ---- channels -----------------------------------------------------------------------------

// Files pgconn uploaded (the post-mortem's chart and Markdown): images shown, others linked.
function renderFiles(files) {
  const box = el("div", "files");
  for (const f of files) {
    const card = el("div", "file");
    card.dataset.fileId = f.id;
    if ((f.mimetype || "").startsWith("image/")) {
      const img = document.createElement("img");
      img.src = f.url;
      img.alt = f.title || f.name;
      img.className = "file-image";
      card.appendChild(img);
    }
    const link = el("a", "file-name", `${f.title || f.name} · ${f.name} · ${Math.max(1, Math.round(f.size / 1024))} KB`);
    link.href = f.url;
    link.target = "_blank";
    link.rel = "noopener";
    card.appendChild(link);
    box.appendChild(card);
  }
  return box;
}

function renderMessage(msg, channel, users, threadOf) {
  const row = el("div", "message" + (msg.ephemeral ? " ephemeral" : ""));
  row.dataset.ts = msg.ts;
  row.dataset.testid = "message";
  const seen = state.edits.get(msg.ts);
  if (seen !== undefined && msg.edited > seen) row.classList.add("flash");
  state.edits.set(msg.ts, msg.edited || 0);

  const avatar = el("div", "avatar" + (msg.bot ? " bot" : ""), (msg.author || "?").slice(0, 1).toUpperCase());
  const body = el("div", "body");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "author", msg.author || "?"));
  if (msg.bot) meta.appendChild(el("span", "app-badge", "APP"));
  meta.appendChild(document.createTextNode(" "));
  meta.appendChild(el("time", null, clock(parseFloat(msg.ts))));
  if (msg.edited) meta.appendChild(el("span", "edited", " (edited)"));
  if (!msg.ephemeral) meta.appendChild(shortcutButton(channel, msg.ts, threadOf || msg.ts));
  body.appendChild(meta);

  const ctx = { channel, ts: msg.ts, users, threadOf: threadOf || msg.ts };
  if (Array.isArray(msg.blocks) && msg.blocks.length) body.appendChild(renderBlocks(msg.blocks, ctx));
  else body.appendChild(textObject({ type: "mrkdwn", text: msg.text }, users));
  if (Array.isArray(msg.files) && msg.files.length) body.appendChild(renderFiles(msg.files));
  if (msg.ephemeral) body.appendChild(el("div", "ephemeral-note", "Only visible to you"));

  const replies = msg.replies || [];
  if (!threadOf && replies.length) {
    const thread = el("div", "thread");
    const open = state.expanded.has(msg.ts);
    const toggle = el("button", "thread-toggle",
      `${open ? "▾" : "▸"} ${replies.length} ${replies.length === 1 ? "reply" : "replies"} · last ${clock(parseFloat(replies[replies.length - 1].ts))}`);
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(open));
    toggle.addEventListener("click", () => {
      if (state.expanded.has(msg.ts)) state.expanded.delete(msg.ts);
      else state.expanded.add(msg.ts);
      state.rendered.delete(channel);
      renderChannels();
    });
    thread.appendChild(toggle);
    if (open) {
      const list = el("div", "replies");
      replies.forEach((r) => list.appendChild(renderMessage(r, channel, users, msg.ts)));
      thread.appendChild(list);
    }
    body.appendChild(thread);
  }
  row.appendChild(avatar);
  row.appendChild(body);
  return row;
}

function renderChannels() {
  const data = state.data;
  if (!data) return;
  const users = data.slack.users;
  for (const channel of data.slack.channels) {
    const section = document.getElementById("channel-" + channel.id);
    if (!section) continue;
    const key = JSON.stringify([channel, [...state.expanded]]);
    if (state.rendered.get(channel.id) === key) continue;
    state.rendered.set(channel.id, key);

    // Ephemerals answer in the channel (or in a thread) and only this person sees them.
    const top = channel.messages.map((m) => ({ ...m, replies: [...m.replies] }));
    const byTs = new Map(top.map((m) => [m.ts, m]));
    for (const e of channel.ephemerals) {
      const parent = e.thread_ts && byTs.get(e.thread_ts);
      if (parent) parent.replies.push({ ...e, replies: [] });
      else top.push({ ...e, replies: [] });
    }
    top.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    top.forEach((m) => m.replies.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts)));

    const list = section.querySelector(".messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.textContent = "";
    if (!top.length) list.appendChild(el("div", "empty", "No messages yet."));
    top.forEach((m) => list.appendChild(renderMessage(m, channel.id, users, null)));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
}

// A message's "More actions" menu, reduced to pgconn's one message shortcut (manifest.yml).
function shortcutButton(channel, ts, threadOf) {
  const b = el("button", "shortcut", "⋯ Diagnose with pgconn");
  b.type = "button";
  b.title = "Message shortcut: the report of the app this message names, in its thread";
  b.addEventListener("click", async () => {
    b.disabled = true;
    state.expanded.add(threadOf); // the answer lands in the thread
    try {
      await post("/sandbox/shortcut", { channel, ts });
    } catch (e) {
      toast(e.message, true);
    } finally {
      b.disabled = false;
      poll();
    }
  });
  return b;
}

// ---- the Home tab -------------------------------------------------------------------------

function renderHome(home, users) {
  const box = document.getElementById("home-view");
  const key = JSON.stringify(home);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (!home) return;
  box.textContent = "";
  box.dataset.publishedAt = String(home.published_at || "");
  box.appendChild(renderBlocks(home.blocks, { home: true, users }));
}

// ---- the console --------------------------------------------------------------------------

function row(cells, header) {
  const tr = el("tr");
  cells.forEach((c) => {
    const cell = el(header ? "th" : "td", typeof c === "number" ? "num" : null, c);
    tr.appendChild(cell);
  });
  return tr;
}

function renderDatabase(db) {
  const used = document.getElementById("role-used");
  const bar = document.getElementById("role-bar");
  const table = document.getElementById("activity");
  table.textContent = "";
  if (db.error) {
    used.textContent = "?";
    table.appendChild(row(["Postgres: " + db.error]));
    return;
  }
  used.textContent = db.used;
  document.getElementById("role-limit").textContent = db.limit;
  const share = db.limit > 0 ? db.used / db.limit : 0;
  bar.style.width = Math.min(100, share * 100) + "%";
  bar.className = share >= 1 ? "full" : share >= 0.8 ? "tight" : "";
  const byName = new Map();
  for (const a of db.activity) {
    const entry = byName.get(a.application_name) || { active: 0, idle: 0, tx: 0, total: 0 };
    if (a.state === "active") entry.active += a.count;
    else if (a.state.startsWith("idle in transaction")) entry.tx += a.count;
    else entry.idle += a.count;
    entry.total += a.count;
    byName.set(a.application_name, entry);
  }
  table.appendChild(row(["application_name", "active", "idle", "idle in tx", "total"], true));
  for (const [name, e] of [...byName.entries()].sort()) {
    table.appendChild(row([name || "(none)", e.active, e.idle, e.tx, e.total]));
  }
}

function renderLoad(load) {
  const status = document.getElementById("load-status");
  const exhaust = document.getElementById("exhaust");
  let text;
  if (load.mode === "pgbouncer") {
    text = `${load.connected}/${load.clients} app threads connected through PgBouncer · ${load.queries} transactions run · ${load.errors} errors`;
    if (load.last_error) text += ` (last: ${load.last_error})`;
    exhaust.textContent = "Exhaust connections";
  } else if (load.mode === "direct" && load.held) {
    text = `The dynos hold ${load.held} direct connections.`;
  } else if (load.mode === "direct") {
    text = `The dynos' ${load.opened} connections were terminated; press Exhaust and they connect again.`;
  } else {
    text = "The dynos hold no connections. Press Exhaust: every dyno opens what its processes ask for (the budget in the Heroku card). At 3 web dynos that fits; scale web to 6 first to see it fail.";
  }
  if (load.refused && load.mode !== "pgbouncer") text += ` Postgres refused ${load.refused} so far: ${load.last_refusal}`;
  status.textContent = text;
}

function renderPgBouncer(pgb) {
  const status = document.getElementById("pgbouncer-status");
  const headline = document.getElementById("pgbouncer-headline");
  const table = document.getElementById("pools");
  table.textContent = "";
  headline.textContent = "";
  const words = {
    "not installed": "Not running. pgconn's Add PgBouncer button starts it here, with the pool size pgconn chooses.",
    installing: "Installing PgBouncer with apt-get…",
    ready: `${pgb.version} is installed; not running until a release adds it (click Add PgBouncer).`,
    running: `${pgb.version}: one per dyno, as the heroku/pgbouncer buildpack runs it.`,
    unavailable: "Unavailable: " + (pgb.error || "unknown error"),
  };
  status.textContent = words[pgb.status] || pgb.status;
  if (!pgb.dynos.length) return;
  headline.textContent = `${pgb.clients} clients → ${pgb.servers} server connections`;
  headline.dataset.clients = pgb.clients;
  headline.dataset.servers = pgb.servers;
  table.appendChild(row(["dyno", "clients", "waiting", "server conns", "pool"], true));
  for (const d of pgb.dynos) {
    if (d.error) table.appendChild(row([d.dyno, "error: " + d.error]));
    else table.appendChild(row([d.dyno, d.clients, d.cl_waiting, d.servers, `${d.pool_size}+${d.reserve_pool_size}`]));
  }
}

function renderHeroku(h) {
  const box = document.getElementById("app-info");
  box.textContent = "";
  const kv = (label, value) => {
    const p = el("div", "kv");
    p.appendChild(el("b", null, label + ": "));
    if (value instanceof Node) p.appendChild(value);
    else p.appendChild(document.createTextNode(value));
    box.appendChild(p);
  };
  kv("plan", `heroku-postgresql:${h.plan} (${h.budget.limit} connections)`);
  for (const f of h.formation) {
    const p = el("span");
    p.appendChild(document.createTextNode(`${f.quantity} × `));
    p.appendChild(el("code", null, f.command));
    kv(f.type, p);
  }
  const verdict = el("span", "verdict-" + h.budget.verdict, `${h.budget.total} of ${h.budget.limit} — ${h.budget.verdict}`);
  kv("budget", verdict);
  for (const line of h.budget.lines) kv(`  ${line.type}`, `${line.total}: ${line.explanation}`);
  kv("headroom", String(h.budget.headroom));
  kv("buildpacks", h.buildpacks.join(", "));
  const vars = Object.entries(h.config);
  if (vars.length) kv("config", vars.map(([k, v]) => `${k}=${v}`).join(" "));
  kv("dynos", h.dynos.map((d) => `${d.name} ${d.state}`).join(", "));
  kv("releases", h.releases.map((r) => `v${r.version} ${r.description}`).join(" · "));
  kv("log drains", h.drains.length ? h.drains.join(", ") : "none (alerts from logs are off)");
}

function renderList(id, items, text) {
  const list = document.getElementById(id);
  list.textContent = "";
  for (const item of items) {
    const li = el("li", item.level || (item.status && item.status < 300 ? "ok" : item.status ? "error" : ""));
    li.appendChild(el("time", null, clock(item.at)));
    li.appendChild(document.createTextNode(text(item)));
    list.appendChild(li);
  }
  if (!items.length) list.appendChild(el("li", "muted", "nothing yet"));
}

// PagerDuty's incidents as its incident list would show them, and the last events pgconn sent.
function renderPagerDuty(pd) {
  const list = document.getElementById("pagerduty-incidents");
  list.textContent = "";
  for (const i of pd.incidents) {
    const li = el("li", i.status === "resolved" ? "ok" : i.status === "triggered" ? "error" : "warn");
    li.dataset.status = i.status;
    li.appendChild(el("strong", null, `#${i.number} ${i.status}`));
    li.appendChild(document.createTextNode(` · ${i.severity} · ${i.summary} · ${i.log.join(" → ")}`));
    list.appendChild(li);
  }
  if (!pd.incidents.length) list.appendChild(el("li", "muted", "no incident: nothing escalated yet"));
  renderList("pagerduty-events", pd.events, (e) => `${e.action} → HTTP ${e.status} (${e.outcome})`);
}

function renderConsole() {
  const data = state.data;
  renderHome(data.home, data.slack.users);
  renderDatabase(data.database);
  renderLoad(data.load);
  renderPgBouncer(data.pgbouncer);
  renderHeroku(data.heroku);
  renderList("events", data.events, (e) => e.text);
  renderList("drain", data.drain, (d) =>
    `${d.lines.length} line${d.lines.length === 1 ? "" : "s"} → ${d.url}: ${d.status || d.error} · ${d.lines[0] || ""}`);
  renderPagerDuty(data.pagerduty);
  const health = document.getElementById("health");
  health.textContent = "";
  health.appendChild(data.bot.alive ? el("span", null, "pgconn running") : el("span", "down", "pgconn is not running"));
}

// ---- polling and wiring -------------------------------------------------------------------

let polling = false;
let timer = null;

async function poll() {
  if (polling) return;
  polling = true;
  clearTimeout(timer);
  try {
    const response = await fetch("/sandbox/state", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    state.data = await response.json();
    renderChannels();
    renderConsole();
    document.body.dataset.ready = "true";
  } catch (e) {
    const health = document.getElementById("health");
    health.textContent = "";
    health.appendChild(el("span", "down", "sandbox unreachable (" + e.message + ")"));
  } finally {
    polling = false;
    timer = setTimeout(poll, POLL_MS);
  }
}

function wireComposer(section) {
  const form = section.querySelector(".composer");
  const input = form.querySelector("input");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try {
      await post("/sandbox/command", { channel: section.dataset.channel, text });
    } catch (e) {
      input.value = text;
      toast(e.message, true);
    }
    poll();
  });
  form.querySelectorAll("[data-fill]").forEach((chip) =>
    chip.addEventListener("click", () => { input.value = chip.dataset.fill; input.focus(); }));
}

async function consoleAction(button, path, label, body = {}) {
  button.disabled = true;
  try {
    const result = await post(path, body);
    if (label) toast(label(result));
  } catch (e) {
    toast(e.message, true);
  } finally {
    button.disabled = false;
    poll();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".channel").forEach(wireComposer);
  const exhaust = document.getElementById("exhaust");
  exhaust.addEventListener("click", () => consoleAction(exhaust, "/sandbox/exhaust", (r) =>
    r.clients ? `${r.clients} app threads run through PgBouncer`
      : `asked for ${r.asked} connections: ${r.opened} opened, ${r.refused} refused by Postgres`));
  for (const id of ["scale-up", "scale-down"]) {
    const button = document.getElementById(id);
    const body = { type: button.dataset.type, quantity: Number(button.dataset.quantity) };
    button.addEventListener("click", () => consoleAction(button, "/sandbox/scale", (r) =>
      `scaled ${r.type} ${r.before} → ${r.quantity}: Heroku sends the formation webhook to pgconn`, body));
  }
  const ramp = document.getElementById("ramp");
  ramp.addEventListener("click", () => consoleAction(ramp, "/sandbox/ramp", (r) =>
    r.already ? "worker.1 is already leaking" : `worker.1 opens one more connection every ${r.every_s}s`));
  const flood = document.getElementById("flood");
  flood.addEventListener("click", () => consoleAction(flood, "/sandbox/flood", (r) =>
    `run.1 opened ${r.opened} connections; Postgres refused ${r.refused}`));
  const openHome = document.getElementById("open-home");
  openHome.addEventListener("click", () => consoleAction(openHome, "/sandbox/home/open", null));
  const stop = document.getElementById("stop-load");
  stop.addEventListener("click", () => consoleAction(stop, "/sandbox/stop-load", () => "load stopped"));
  document.getElementById("modal-confirm").addEventListener("click", () => closeConfirm(true));
  document.getElementById("modal-deny").addEventListener("click", () => closeConfirm(false));
  document.getElementById("modal").addEventListener("click", (e) => { if (e.target.id === "modal") closeConfirm(false); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && state.pendingConfirm) closeConfirm(false); });
  poll();
});
