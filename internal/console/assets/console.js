// The asynclsp console: plain JavaScript, no build step. Everything it shows
// comes from the daemon's APIs under /console/api (the session cookie is the
// admin token); it updates from the sender's event stream (/v1/events).
'use strict';

const ACTIVE = ['CREATED', 'HELD', 'RELEASED', 'FORWARDING'];
const CANCELABLE = ['CREATED', 'HELD', 'RELEASED'];
// The deadline bar: full at a week of blocks, amber within 3 days, red
// within a day.
const SCALE = 1008, SOON = 432, NEAR = 144;
// A payment that became final stays on the held page this long (ms).
const LINGER = 60000;

const S = {
  csrf: '', tokenID: '', height: 0, page: 'held',
  active: new Map(),   // id -> payment not final, or final since finalAt
  finalAt: new Map(),  // id -> when this page saw it become final
  recent: new Map(),   // id -> payment, newest first as loaded
  flash: new Set(),
  pending: new Set(), timer: null,
  released: new Map(), // id -> time of its RELEASED event, seen live
  latency: [],         // seconds from release to settled
  latencyOf: new Set(), // the payments counted in latency
  series: [],          // {t, held, amount} the daemon sampled (/console/api/series)
  detail: null, ended: false,
};

// ---- helpers

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
const $ = (sel) => document.querySelector(sel);
const sat = (msat) => Math.floor(msat / 1000).toLocaleString('en-US');
const short = (s, n = 12) => (s && s.length > n ? s.slice(0, n) + '…' : s || '');
const isFinal = (p) => p.state === 'SETTLED' || p.state === 'CANCELED';

function age(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return Math.floor(s) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}
const when = (t) => new Date(t).toLocaleString('en-GB', { hour12: false });

async function api(path, opts) {
  const r = await fetch('/console/api' + path, Object.assign({ credentials: 'same-origin' }, opts));
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const e = new Error(body && body.error ? body.error.message : 'HTTP ' + r.status);
    e.status = r.status;
    if (r.status === 401) sessionEnded(e.message);
    throw e;
  }
  return body;
}
const post = (path) => api(path, { method: 'POST', headers: { 'X-CSRF-Token': S.csrf } });

function banner(msg, kind) {
  const b = $('#banner');
  b.textContent = msg;
  b.className = kind || '';
  b.hidden = !msg;
}

function sessionEnded(msg) {
  if (S.ended) return;
  S.ended = true;
  if (S.es) S.es.close();
  setLive(false);
  const b = $('#banner');
  b.className = '';
  b.replaceChildren(msg + ' ', el('a', { href: '/console/login' }, 'Log in'));
  b.hidden = false;
}

function setLive(on) {
  const l = $('#live');
  l.className = 'live ' + (on ? 'on' : 'off');
  l.textContent = on ? 'live' : 'reconnecting';
}

// ---- the session and the chain height

async function status() {
  const st = await api('/status');
  // The CSRF token is the one of the session this page was loaded in: if
  // the daemon restarts, the page's actions are refused as stale.
  if (!S.csrf) S.csrf = st.csrf;
  S.tokenID = st.token_id;
  S.height = st.height;
  $('#who').textContent = st.operator;
  $('#height').textContent = st.height ? 'height ' + st.height : '';
}

// ---- live updates: the event stream, then the listing

function connect() {
  const es = new EventSource('/console/api/v1/events');
  S.es = es;
  // The stream is open before the listing is read: no transition falls
  // between the two.
  es.addEventListener('open', () => { setLive(true); loadPayments().catch(showError); });
  es.addEventListener('transition', (m) => {
    const ev = JSON.parse(m.data);
    if (ev.state === 'RELEASED') S.released.set(ev.payment_id, new Date(ev.at));
    if (ev.state === 'SETTLED' && S.released.has(ev.payment_id)) {
      addLatency(ev.payment_id, (new Date(ev.at) - S.released.get(ev.payment_id)) / 1000);
      S.released.delete(ev.payment_id);
    }
    queue(ev.payment_id);
  });
  es.addEventListener('error', () => {
    setLive(false);
    // EventSource reconnects by itself, unless the daemon refused it.
    status().catch(() => {});
  });
}

function queue(id) {
  S.pending.add(id);
  if (!S.timer) S.timer = setTimeout(flush, 50);
}

async function flush() {
  S.timer = null;
  const ids = [...S.pending];
  S.pending.clear();
  await Promise.all(ids.map(async (id) => {
    try { upsert(await api('/v1/payments/' + id)); } catch (e) { if (e.status !== 404) showError(e); }
  }));
  render();
  if (S.page === 'receivers') loadReceivers().catch(showError);
}

function upsert(p) {
  const old = S.active.get(p.id) || S.recent.get(p.id);
  if (!old || old.state !== p.state) S.flash.add(p.id);
  if (isFinal(p)) {
    if (S.active.has(p.id) && !S.finalAt.has(p.id)) S.finalAt.set(p.id, Date.now());
    if (S.active.has(p.id)) S.active.set(p.id, p);
  } else {
    S.active.set(p.id, p);
  }
  const recent = new Map([[p.id, p]]);
  for (const [k, v] of S.recent) if (k !== p.id) recent.set(k, v);
  S.recent = recent;
  if (S.detail === p.id) showDetail(p.id);
}

async function loadPayments() {
  const q = ACTIVE.map((s) => 'state=' + s).join('&');
  const [act, rec] = await Promise.all([
    api('/v1/payments?limit=1000&' + q), api('/v1/payments?limit=300')]);
  const active = new Map();
  for (const p of act.payments) active.set(p.id, p);
  for (const [id, p] of S.active) if (S.finalAt.has(id)) active.set(id, p);
  S.active = active;
  S.recent = new Map(rec.payments.map((p) => [p.id, p]));
  render();
}

// ---- pages

function render() {
  renderHeld();
  renderRecent();
  if (S.page === 'charts') renderCharts();
  S.flash.clear();
}

function releaseStatus(p) {
  switch (p.state) {
    case 'CREATED': return 'awaiting the sender\u2019s HTLC';
    case 'HELD': return 'waiting for the receiver\u2019s release';
    case 'RELEASED': return 'release received; paying the receiver';
    case 'FORWARDING': return 'paying the receiver (attempt ' + p.attempts + ')';
    case 'SETTLED': return 'released and settled';
    default: return 'canceled: ' + p.reason;
  }
}

function deadlineBar(p) {
  if (!S.height || !p.deadline_height || isFinal(p)) return el('span', { class: 'blocks' }, '\u2013');
  const left = p.deadline_height - S.height;
  const cls = left <= NEAR ? 'bar near' : left <= SOON ? 'bar soon' : 'bar';
  const fill = el('span');
  fill.style.width = Math.max(0, Math.min(100, (100 * left) / SCALE)) + '%';
  const title = left + ' blocks left (deadline at height ' + p.deadline_height + ')';
  return el('span', { class: 'deadline', title: title, 'data-blocks-left': left },
    el('span', { class: cls }, fill), el('span', { class: 'blocks' }, left + ' blocks'));
}

function stateBadge(p) {
  return el('span', { class: 'state state-' + p.state }, p.state);
}

function renderHeld() {
  const now = Date.now();
  for (const [id, t] of S.finalAt) {
    if (now - t > LINGER) { S.finalAt.delete(id); S.active.delete(id); }
  }
  const rows = [...S.active.values()].sort((a, b) =>
    (a.deadline_height || 1e12) - (b.deadline_height || 1e12) || a.created_at.localeCompare(b.created_at));
  const body = $('#held tbody');
  body.replaceChildren(...rows.map((p) => {
    const cancel = CANCELABLE.includes(p.state)
      ? el('button', { class: 'act cancel', type: 'button', on: { click: (e) => { e.stopPropagation(); cancelPayment(p); } } }, 'cancel')
      : null;
    return el('tr', { 'data-id': p.id, class: S.flash.has(p.id) ? 'flash' : '', on: { click: () => showDetail(p.id) } },
      el('td', {}, el('code', {}, short(p.id))), el('td', { class: 'num' }, sat(p.amount_msat)),
      el('td', { class: 'num' }, sat(p.fee_msat)), el('td', {}, p.owner),
      el('td', { title: p.receiver_key + ' at ' + p.receiver_lsp }, el('code', {}, short(p.receiver_key, 16))),
      el('td', { class: 'state-cell' }, stateBadge(p)), el('td', {}, age(p.created_at)),
      el('td', {}, deadlineBar(p)), el('td', { class: 'release' }, releaseStatus(p)), el('td', {}, cancel));
  }));
  const held = rows.filter((p) => !isFinal(p));
  const amount = held.reduce((s, p) => s + p.amount_msat, 0);
  $('#held-summary').textContent = held.length + ' not final, ' + sat(amount) + ' sat';
  $('#held-empty').hidden = rows.length > 0;
}

function renderRecent() {
  const st = $('#f-state').value, reason = $('#f-reason').value;
  const text = $('#f-text').value.trim().toLowerCase();
  const reasons = new Set();
  const rows = [];
  for (const p of S.recent.values()) {
    if (p.reason) reasons.add(p.reason);
    if (st === '' && !isFinal(p)) continue;
    if (st !== '' && st !== '*' && p.state !== st) continue;
    if (reason && p.reason !== reason) continue;
    if (text && ![p.id, p.owner, p.receiver_key, p.receiver_lsp].some((s) => s.toLowerCase().includes(text))) continue;
    rows.push(p);
  }
  const sel = $('#f-reason');
  const have = new Set([...sel.options].map((o) => o.value));
  for (const r of [...reasons].sort()) if (!have.has(r)) sel.append(el('option', {}, r));
  $('#recent tbody').replaceChildren(...rows.map((p) =>
    el('tr', { 'data-id': p.id, class: S.flash.has(p.id) ? 'flash' : '', on: { click: () => showDetail(p.id) } },
      el('td', {}, el('code', {}, short(p.id))), el('td', {}, when(p.updated_at)),
      el('td', { class: 'num' }, sat(p.amount_msat)), el('td', {}, p.owner),
      el('td', {}, el('code', {}, short(p.receiver_key, 16))), el('td', {}, stateBadge(p)),
      el('td', { class: 'reason' }, p.reason || ''))));
}

async function loadReceivers() {
  const [stats, recv, mb] = await Promise.all([api('/v1/admin/stats'),
    api('/v1/admin/receivers?limit=1000'), api('/v1/admin/mailbox?limit=200')]);
  const card = (label, v) => el('div', {}, el('b', {}, v), label);
  $('#stats').replaceChildren(card('receivers', stats.receivers),
    card('invoices available', stats.invoices.available), card('invoices reserved', stats.invoices.reserved),
    card('invoices expired', stats.invoices.expired),
    ...Object.entries(stats.mailbox).map(([k, v]) => card('mailbox ' + k, v)));
  $('#receivers tbody').replaceChildren(...recv.receivers.map((r) =>
    el('tr', { 'data-key': r.node_key }, el('td', {}, el('code', {}, short(r.node_key, 20))),
      el('td', {}, r.webhook_url || '\u2013'), el('td', { class: 'num' }, r.invoices.available),
      el('td', { class: 'num' }, r.invoices.reserved), el('td', { class: 'num' }, r.invoices.expired),
      el('td', { class: 'num' }, r.pending_items), el('td', {}, when(r.registered_at)))));
  $('#mailbox tbody').replaceChildren(...mb.items.map((i) =>
    el('tr', { 'data-id': i.hold_id }, el('td', {}, el('code', {}, short(i.hold_id))),
      el('td', {}, el('code', {}, short(i.receiver_key, 16))), el('td', {}, el('code', {}, short(i.sender_lsp, 16))),
      el('td', { class: 'num' }, sat(i.amount_msat)), el('td', {}, 'height ' + i.deadline_height),
      el('td', {}, i.state), el('td', {}, i.reason || ''), el('td', {}, i.relayed ? 'yes' : 'no'),
      el('td', {}, when(i.updated_at)))));
}

async function loadTokens() {
  const list = await api('/v1/admin/tokens');
  $('#tokens tbody').replaceChildren(...list.tokens.map((t) =>
    el('tr', { 'data-id': t.id }, el('td', {}, el('code', {}, t.id)), el('td', {}, t.name),
      el('td', {}, t.role), el('td', {}, when(t.created_at)),
      el('td', {}, t.revoked ? when(t.revoked_at) : ''),
      el('td', {}, t.revoked ? null : el('button', { class: 'act revoke', type: 'button',
        on: { click: () => revokeToken(t) } }, 'revoke')))));
}

// ---- actions: each asks first, and says what came of it

function showError(e) { banner(e.message || String(e)); }

async function cancelPayment(p) {
  const ok = window.confirm('Cancel payment ' + p.id + ' of ' + sat(p.amount_msat) + ' sat from ' +
    p.owner + '?\n\nThe hold invoice is canceled and the sender gets the funds back at once.');
  if (!ok) return;
  try {
    const got = await post('/v1/payments/' + p.id + '/cancel');
    banner('Payment ' + short(got.id) + ' canceled (' + got.reason + ').', 'info');
    upsert(got);
    render();
  } catch (e) {
    banner('Not canceled: ' + e.message);
  }
}

async function revokeToken(t) {
  let msg = 'Revoke token "' + t.name + '" (' + t.id + ', ' + t.role + ')?\n\nAnything using it stops working at once.';
  if (t.id === S.tokenID) msg += '\nIt is the token of this console session: you will be logged out.';
  if (!window.confirm(msg)) return;
  try {
    await post('/v1/admin/tokens/' + t.id + '/revoke');
    banner('Token "' + t.name + '" revoked.', 'info');
    await loadTokens();
  } catch (e) {
    banner('Not revoked: ' + e.message);
  }
}

// ---- a payment's whole history

async function showDetail(id) {
  S.detail = id;
  try {
    const [p, h] = await Promise.all([api('/v1/payments/' + id), api('/payments/' + id + '/history')]);
    if (S.detail !== id) return;
    $('#detail-id').textContent = p.id;
    const f = [['state', stateBadge(p)], ['reason', p.reason || '\u2013'], ['release', releaseStatus(p)],
      ['amount', sat(p.amount_msat) + ' sat'], ['fee', sat(p.fee_msat) + ' sat'],
      ['held (amount + fee)', sat(p.hold_amount_msat) + ' sat'], ['sender wallet', p.owner],
      ['receiver', p.receiver_key], ['receiver LSP', p.receiver_lsp], ['payment hash', p.payment_hash],
      ['retry policy', p.retry_policy], ['lnd payment attempts', p.attempts],
      ['incoming expiry', p.incoming_expiry ? 'height ' + p.incoming_expiry : '\u2013'],
      ['deadline', (p.deadline_height ? 'height ' + p.deadline_height + ', ' : '') + 'by ' + when(p.deadline_time)],
      ['blocks left', S.height && p.deadline_height ? p.deadline_height - S.height : '\u2013'],
      ['created', when(p.created_at)], ['updated', when(p.updated_at)],
      ['resolved in lnd', p.resolved ? 'yes' : 'no'], ['hold invoice', short(p.hold_invoice, 40)]];
    $('#detail-fields').replaceChildren(...f.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('#detail-history tbody').replaceChildren(...h.events.map((ev) =>
      el('tr', {}, el('td', {}, ev.seq), el('td', {}, when(ev.at)), el('td', {}, ev.from || '\u2013'),
        el('td', {}, el('span', { class: 'state state-' + ev.state }, ev.state)), el('td', {}, ev.reason || ''))));
    $('#detail').hidden = false;
  } catch (e) {
    showError(e);
  }
}

// ---- charts: inline SVG

// svgCanvas is an SVG of W x H user units, full width, and add(tag,
// attrs, text), which appends an element to it.
function svgCanvas(W, H) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.setAttribute('width', '100%');
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  return { svg, add };
}

function lineChart(points, fmt) {
  const W = 420, H = 140, P = 30;
  const { svg, add } = svgCanvas(W, H);
  add('line', { class: 'axis', x1: P, y1: H - P / 2, x2: W, y2: H - P / 2 });
  if (points.length === 0) { add('text', { x: P, y: H / 2 }, 'no data yet'); return svg; }
  const max = Math.max(1, ...points.map((p) => p[1]));
  const t0 = points[0][0], t1 = Math.max(t0 + 1, points[points.length - 1][0]);
  const x = (t) => P + ((W - P - 4) * (t - t0)) / (t1 - t0);
  const y = (v) => H - P / 2 - ((H - P) * v) / max;
  add('polyline', { class: 'line', points: points.map((p) => x(p[0]) + ',' + y(p[1])).join(' ') });
  const last = points[points.length - 1];
  add('circle', { class: 'barfill', cx: x(last[0]), cy: y(last[1]), r: 2.5 });
  add('text', { x: 2, y: y(max) + 4 }, fmt(max));
  add('text', { x: 2, y: H - P / 2 }, '0');
  const hm = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false, hour: '2-digit', minute: '2-digit' });
  add('text', { x: P, y: H - 2 }, hm(t0));
  add('text', { x: W - 34, y: H - 2 }, hm(last[0]));
  return svg;
}

function barChart(pairs) {
  const W = 420, rowH = 18;
  const H = Math.max(1, pairs.length) * rowH + 4;
  const { svg, add } = svgCanvas(W, H);
  if (pairs.length === 0) add('text', { x: 4, y: 14 }, 'none');
  const max = Math.max(1, ...pairs.map((p) => p[1]));
  pairs.forEach(([label, v], i) => {
    add('text', { x: 4, y: i * rowH + 13 }, label);
    add('rect', { class: 'barfill', x: 170, y: i * rowH + 3, height: rowH - 6, width: Math.max(1, (230 * v) / max) });
    add('text', { x: 174 + (230 * v) / max, y: i * rowH + 13 }, v);
  });
  return svg;
}

function renderCharts() {
  $('#chart-held').replaceChildren(lineChart(S.series.map((s) => [s.t, s.held]), String));
  $('#chart-amount').replaceChildren(lineChart(S.series.map((s) => [s.t, s.amount]), (v) => v.toLocaleString('en-US')));
  const buckets = [1, 2, 5, 10, 30, 60, 300];
  const lat = buckets.map((b, i) => ['\u2264 ' + b + 's', S.latency.filter((v) => v <= b && (i === 0 || v > buckets[i - 1])).length]);
  lat.push(['> 300s', S.latency.filter((v) => v > 300).length]);
  $('#chart-latency').replaceChildren(barChart(lat));
  const by = new Map();
  for (const p of S.recent.values()) if (p.state === 'CANCELED') by.set(p.reason, (by.get(p.reason) || 0) + 1);
  $('#chart-reasons').replaceChildren(barChart([...by.entries()].sort((a, b) => b[1] - a[1])));
}

// The holds the daemon sampled since it started (a day at most).
async function loadSeries() {
  const s = await api('/series');
  S.series = s.points.map((p) => ({ t: new Date(p.at).getTime(), held: p.held,
    amount: Math.floor(p.pending_amount_msat / 1000) }));
  if (S.page === 'charts') renderCharts();
}

// addLatency counts a payment's release-to-settled time once, whether
// seen live or read from its history.
function addLatency(id, seconds) {
  if (S.latencyOf.has(id)) return;
  S.latencyOf.add(id);
  S.latency.push(seconds);
}

// Release-to-settled latency of recent settled payments, from the
// histories of those not counted yet, when the charts are opened.
async function loadLatency() {
  const settled = [...S.recent.values()].filter((p) => p.state === 'SETTLED')
    .slice(0, 50).filter((p) => !S.latencyOf.has(p.id));
  await Promise.all(settled.map(async (p) => {
    const h = await api('/payments/' + p.id + '/history');
    const rel = h.events.find((e) => e.state === 'RELEASED');
    const set = h.events.find((e) => e.state === 'SETTLED');
    if (rel && set) addLatency(p.id, (new Date(set.at) - new Date(rel.at)) / 1000);
  }));
  renderCharts();
}

// ---- navigation

function show(page) {
  const pages = S.sender ? ['held', 'recent', 'receivers', 'tokens', 'charts'] : ['receivers', 'tokens'];
  if (!pages.includes(page)) page = pages[0];
  if (S.page !== page) banner('');
  S.page = page;
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page);
  if (page === 'receivers') loadReceivers().catch(showError);
  if (page === 'tokens') loadTokens().catch(showError);
  if (page === 'charts') { renderCharts(); loadSeries().catch(showError); loadLatency().catch(showError); }
}

async function main() {
  $('#detail-close').addEventListener('click', () => { S.detail = null; $('#detail').hidden = true; });
  for (const id of ['#f-state', '#f-reason']) $(id).addEventListener('change', renderRecent);
  $('#f-text').addEventListener('input', renderRecent);
  window.addEventListener('hashchange', () => show(location.hash.slice(1)));
  try {
    await status();
    const info = await api('/v1/admin/info');
    S.sender = info.roles.includes('sender');
  } catch (e) { showError(e); return; }
  if (S.sender) {
    connect();
  } else {
    // A receiver LSP alone has no payment events: its pages are read
    // again every few seconds instead.
    for (const p of ['held', 'recent', 'charts']) document.querySelector('nav a[data-page="' + p + '"]').hidden = true;
    const l = $('#live');
    l.className = 'live on';
    l.textContent = 'every 5s';
  }
  show(location.hash.slice(1));
  // The tables are drawn again when the height moves, and every 15s for
  // the ages: not more, so that a row does not change under the pointer.
  let drawn = Date.now();
  setInterval(() => {
    if (S.ended) return;
    const h = S.height;
    status().then(() => {
      if (S.height !== h || Date.now() - drawn > 15000) { drawn = Date.now(); render(); }
    }).catch(() => {});
  }, 5000);
  setInterval(() => { if (!S.ended && S.page === 'charts') loadSeries().catch(() => {}); }, 30000);
  setInterval(() => { if (!S.ended && S.page === 'receivers') loadReceivers().catch(showError); },
    S.sender ? 10000 : 5000);
}

document.addEventListener('DOMContentLoaded', main);
