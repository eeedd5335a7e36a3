// Shared by overlay.html and dashboard.html: the phoenix socket with
// Landale's settings (packages/shared/src/phoenix-connection.ts) and a few
// DOM helpers. The client is the official phoenix.js 1.8.0 browser build,
// vendored unmodified in vendor/phoenix.mjs.
import { Socket } from './vendor/phoenix.mjs';

// Landale's reconnect schedule: 10 ms for the first retry ... 5 s for the
// 10th, then 10 s.
const RECONNECT_MS = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000];

// environment is Landale's currentEnvironment: obs inside OBS, tauri inside
// the Tauri shell, development on local hosts, else production.
export function environment() {
  if (window.obsstudio) return 'obs';
  if (window.__TAURI__) return 'tauri';
  const h = location.hostname;
  if (h === 'localhost' || h === '127.0.0.1' || h.startsWith('192.168.') || h.startsWith('10.')) return 'development';
  return 'production';
}

// connect opens the socket on this page's own server (/socket/websocket).
// onState is called with "connecting", "connected" or "disconnected".
export function connect(onState) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new Socket(`${scheme}://${location.host}/socket`, {
    params: { environment: environment() },
    heartbeatIntervalMs: 15000,
    reconnectAfterMs: (tries) => RECONNECT_MS[tries - 1] ?? 10000,
  });
  let opened = 0;
  socket.onOpen(() => { opened++; onState('connected', opened); });
  socket.onClose(() => onState('disconnected', opened));
  socket.onError(() => onState('disconnected', opened));
  onState('connecting', 0);
  socket.connect();
  return socket;
}

// nonce is a short random id that tells this page apart from others.
export function nonce() {
  const b = new Uint8Array(3);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// lookupCorrelationId finds the correlation id of the connection that joined
// stream:overlays with overlay_type name, through GET /api/overlays.
export async function lookupCorrelationId(name) {
  const res = await fetch('/api/overlays', { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET /api/overlays: ${res.status}`);
  const body = await res.json();
  const mine = (body.overlays || []).filter((o) => o.topic === 'stream:overlays' && o.name === name);
  if (!mine.length) throw new Error('this page is not listed in /api/overlays');
  mine.sort((a, b) => String(b.joined_at).localeCompare(String(a.joined_at)));
  return mine[0].correlation_id;
}

// h builds an element: h('div.card.big', {title: 'x', dataset: {k: 'v'}}, child...).
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs !== undefined && attrs !== null && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') el.style.cssText = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// clock formats an ISO timestamp (or now) as HH:MM:SS local time.
export function clock(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return d.toLocaleTimeString([], { hour12: false });
}

// label turns "technical-difficulties" / "sub_train" into "Technical difficulties".
export function label(s) {
  const t = String(s ?? '').replace(/[-_.]+/g, ' ').trim();
  return t.charAt(0).toUpperCase() + t.slice(1);
}
