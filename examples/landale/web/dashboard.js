// The dashboard: connection state with the socket's correlation id, service
// modes and breakers, Nurvus processes, takeover / OBS / Rainwave / queue
// controls with their replies, and the live event log.
//
// Channels: dashboard:main (events, OBS and Rainwave commands),
// dashboard:services (telemetry, Nurvus commands), stream:overlays
// (takeovers, stream state), stream:queue (queue), overlay:obs (scene list).
// phoenix.js reconnects and rejoins them by itself.
import { connect, environment, nonce, lookupCorrelationId, h, clock, label } from './landale.js';
import { Presence } from './vendor/phoenix.mjs';

const $ = (id) => document.getElementById(id);
const SERVICES = ['obs', 'twitch', 'rainwave', 'ironmon', 'nurvus', 'stream'];
const MODES = ['up', 'slow', 'failing', 'down'];
const PROCESSES = ['phononmaser', 'seed'];
const MAX_EVENTS = 150;
const MAX_REPLIES = 40;

// ---- connection ----------------------------------------------------------------

const name = `dashboard ${nonce()}`;
const joined = new Set();
const topics = ['dashboard:main', 'dashboard:services', 'dashboard:overlays', 'stream:overlays', 'stream:queue', 'overlay:obs'];
let opens = 0;

$('conn-env').textContent = environment();

function setState(state, openCount) {
  document.body.dataset.socket = state;
  $('conn').dataset.state = state;
  $('conn-state').textContent = state;
  if (state === 'connected') {
    opens = openCount;
    $('conn-reconnects').textContent = opens > 1 ? `· reconnected ${opens - 1}×` : '';
  } else {
    joined.clear();
    updateReady();
    setCid('');
  }
}

function setCid(cid) {
  document.body.dataset.cid = cid;
  $('conn-cid').textContent = cid || '–';
}

function updateReady() {
  document.body.dataset.ready = String(topics.every((t) => joined.has(t)));
}

const socket = connect(setState);

function join(topic, payload, onOk) {
  const ch = socket.channel(topic, payload);
  ch.onError(() => { joined.delete(topic); updateReady(); });
  ch.onClose(() => { joined.delete(topic); updateReady(); });
  ch.join()
    .receive('ok', (resp) => { joined.add(topic); updateReady(); onOk?.(ch, resp); })
    .receive('error', (resp) => addReply(`join ${topic}`, 'error', resp?.reason ?? JSON.stringify(resp)));
  return ch;
}

// ---- dashboard:overlays: connected overlays, through Presence --------------------------
// The server tracks every overlay channel in this topic (presence_state after
// the join, presence_diff on each change, the same list on every node).

const overlays = join('dashboard:overlays', {});
const presence = new Presence(overlays);
presence.onSync(() => {
  const rows = presence.list((name, { metas }) => metas.map((m) => ({ name, ...m }))).flat()
    .sort((a, b) => String(a.joined_at).localeCompare(String(b.joined_at)));
  const list = $('overlays');
  if (rows.length === 0) {
    list.replaceChildren(h('li.empty', 'No overlay connected.'));
    return;
  }
  list.replaceChildren(...rows.map((o) => h('li', { dataset: { topic: o.topic, name: o.name, cid: o.correlation_id } },
    h('span.name', o.name), h('span.type', o.topic), h('span.meta', `${o.correlation_id} · ${o.environment}`))));
});

// ---- replies ---------------------------------------------------------------------

// summary turns a reply (envelope or raw) into one line.
function summary(resp) {
  if (resp == null) return '';
  if (resp.success === false && resp.error) return `${resp.error.code}: ${resp.error.message}`;
  const d = resp.success === true ? resp.data : resp;
  if (d == null) return 'ok';
  if (typeof d !== 'object') return String(d);
  if (d.operation) return [d.operation, d.type, d.station_id, d.enabled, d.id].filter((x) => x !== undefined).join(' ');
  if (d.message) return d.message;
  if (d.reason) return d.reason;
  if (Array.isArray(d)) return `${d.length} item${d.length === 1 ? '' : 's'}`;
  // A status map: its plain fields, e.g. "connected: true · current_scene: Coding".
  const plain = Object.entries(d).filter(([, v]) => v === null || typeof v !== 'object').slice(0, 5);
  return plain.length ? plain.map(([k, v]) => `${k}: ${v}`).join(' · ') : JSON.stringify(d).slice(0, 160);
}

function addReply(what, status, text) {
  const list = $('replies');
  list.querySelector('.empty')?.remove();
  list.prepend(h('li', { dataset: { status, what } }, h('span.time', clock()), h('span.src', { dataset: { status } }, status),
    h('span.text', { title: text }, h('span.type', what), text)));
  while (list.children.length > MAX_REPLIES) list.lastElementChild.remove();
}

// send pushes a command and logs its reply (ok, error or timeout).
function send(ch, event, payload = {}, onOk) {
  ch.push(event, payload, 10000)
    .receive('ok', (resp) => { addReply(event, 'ok', summary(resp)); onOk?.(resp); })
    .receive('error', (resp) => addReply(event, 'error', summary(resp)))
    .receive('timeout', () => addReply(event, 'timeout', 'no reply within 10 s'));
}

$('replies').append(h('li.empty', 'Replies to your commands appear here.'));

// ---- dashboard:main: events, OBS, Rainwave ------------------------------------------

const main = join('dashboard:main', {}, (ch) => {
  // A server that knows connection:info tells the correlation id directly
  // (see e2e/SERVER_NEEDS.md); otherwise stream:overlays' lookup finds it.
  ch.push('connection:info', {}, 1500).receive('ok', (resp) => {
    const cid = resp?.data?.correlation_id;
    if (cid) setCid(cid);
  });
  ch.push('obs:get_status', {}).receive('ok', (resp) => renderObsStatus(resp.data)).receive('error', () => renderObsStatus(null));
  ch.push('rainwave:get_status', {}).receive('ok', (resp) => renderRainwave(resp.data));
});

const EVENT_PUSHES = ['twitch_event', 'obs_event', 'ironmon_event', 'rainwave_event', 'health_update',
  'performance_update', 'system_event', 'twitch_connected', 'twitch_disconnected', 'twitch_connection_changed'];
let eventCount = 0;
for (const ev of EVENT_PUSHES) main.on(ev, (e) => { addEvent(ev, e); react(e); });

function describe(e) {
  switch (e.type) {
    case 'channel.chat.message': return `${e.user_name ?? '?'}: ${e.message ?? ''}`;
    case 'channel.follow': return `${e.user_name ?? '?'} followed`;
    case 'channel.subscribe': return `${e.user_name ?? '?'} subscribed (tier ${String(e.tier ?? '1000').charAt(0)})`;
    case 'channel.subscription.gift': return `${e.user_name ?? 'Anonymous'} gifted ${e.total ?? 1}`;
    case 'channel.cheer': return `${e.user_name ?? 'Anonymous'} cheered ${e.bits} bits`;
    case 'channel.raid': return `${e.from_broadcaster_user_name ?? '?'} raided with ${e.viewers}`;
    case 'channel.update': return `${e.title ?? ''} · ${e.category_name ?? ''}`;
    case 'obs.scene_changed': return `scene → ${e.scene_name}`;
    case 'rainwave.update': return e.song_title ? `♪ ${e.song_title} — ${e.artist ?? ''}` : `station ${e.station_name ?? e.station_id}`;
    case 'ironmon.checkpoint': return `${e.checkpoint_name} (seed ${e.seed_count})`;
    case 'ironmon.seed': return `new seed #${e.seed_count}`;
    case 'system.health_check': return `${e.service_name}: ${e.health_status}`;
    case 'system.performance_metric':
      return `${e.metric_name} = ${typeof e.metric_value === 'number' ? e.metric_value.toFixed(1) : e.metric_value} ${e.metric_unit ?? ''}`;
    case 'system.service_started': case 'system.service_stopped': return `${e.service_name} ${e.service_status}`;
    case 'stream.takeover_started': return `${e.takeover_type}: ${e.message ?? ''}`;
  }
  return e.message ?? '';
}

function addEvent(push, e) {
  const list = $('events');
  list.querySelector('.empty')?.remove();
  const src = e.source ?? 'stream';
  list.prepend(h('li', { dataset: { id: e.id ?? '', type: e.type ?? push } },
    h('span.time', clock(e.timestamp)), h('span.src', { dataset: { src } }, src),
    h('span.text', { title: JSON.stringify(e, null, 2) }, h('span.type', e.type ?? push), describe(e))));
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  $('event-count').textContent = `${++eventCount} received`;
}
$('events').append(h('li.empty', 'Waiting for events…'));

// react keeps the cards in step with the events.
function react(e) {
  switch (e.type) {
    case 'obs.scene_changed': return setScene(e.scene_name);
    case 'obs.stream_started': case 'obs.stream_stopped': case 'obs.recording_started': case 'obs.recording_stopped':
    case 'obs.connection_established': case 'obs.connection_lost':
      main.push('obs:get_status', {}).receive('ok', (r) => renderObsStatus(r.data)).receive('error', () => renderObsStatus(null));
      return;
    case 'rainwave.update': return renderRainwave({ ...e, current_song: { title: e.song_title, artist: e.artist } });
  }
}

// OBS card.
let scenes = [];
let currentScene = null;

function renderObsStatus(st) {
  const badge = $('obs-state');
  if (!st || st.connected === false) {
    badge.textContent = 'offline';
    badge.dataset.tone = 'bad';
    return;
  }
  const live = st.streaming ? 'live' : st.recording ? 'recording' : 'idle';
  badge.textContent = st.streaming && st.recording ? 'live · recording' : live;
  badge.dataset.tone = st.streaming ? 'bad' : st.recording ? 'warn' : 'good';
  if (st.current_scene) setScene(st.current_scene);
}

function setScene(scene) {
  currentScene = scene;
  $('obs-scene').textContent = scene ?? '…';
  for (const b of $('scenes').children) b.setAttribute('aria-pressed', String(b.dataset.scene === scene));
}

function renderScenes() {
  $('scenes').replaceChildren(...scenes.map((s) => h('button.chip', {
    type: 'button', dataset: { scene: s }, 'aria-pressed': String(s === currentScene),
    onclick: () => send(main, 'obs:set_current_scene', { scene_name: s }),
  }, s)));
}

for (const b of document.querySelectorAll('[data-obs]')) {
  b.addEventListener('click', () => {
    const event = `obs:${b.dataset.obs}`;
    send(main, event, {}, (resp) => { if (event === 'obs:get_status') renderObsStatus(resp.data); });
  });
}

// Rainwave card.
function renderRainwave(st) {
  if (!st) return;
  const song = st.current_song?.title;
  $('rw-song').textContent = st.enabled === false ? 'disabled' : song ? `${song} — ${st.current_song.artist ?? ''}` : 'nothing';
  $('rw-station').textContent = `${st.station_name ?? '?'} (#${st.station_id ?? '?'})${st.listening ? ' · listening' : ''}`;
  if (st.station_id) $('rw-station-id').value = String(st.station_id);
}
$('rw-set-station').addEventListener('click', () => send(main, 'rainwave:set_station', { station_id: Number($('rw-station-id').value) }));
$('rw-enable').addEventListener('click', () => send(main, 'rainwave:set_enabled', { enabled: true }));
$('rw-disable').addEventListener('click', () => send(main, 'rainwave:set_enabled', { enabled: false }));

// ---- dashboard:services: telemetry and Nurvus ------------------------------------

let telemetry = {};
const services = join('dashboard:services', {}, (ch) => ch.push('get_telemetry', {}));
services.on('telemetry_update', (t) => { telemetry = t?.services ?? {}; renderProcesses(); renderServices(); });
services.on('command_result', (r) => {
  addReply('command_result', r.success ? 'ok' : 'error', summary(r));
  services.push('get_telemetry', {});
});
for (const ev of ['service_starting', 'service_stopping', 'service_restarting']) {
  services.on(ev, (p) => addReply(ev, 'ok', `${p.service} ${p.action}`));
}
setInterval(() => { if (joined.has('dashboard:services')) services.push('get_telemetry', {}); }, 10000);

function renderProcesses() {
  $('processes').replaceChildren(...PROCESSES.map((p) => {
    const t = telemetry[p];
    const running = t?.connected && t.status === 'running';
    const tone = !t ? 'idle' : running ? 'good' : t.connected ? 'warn' : 'bad';
    const text = !t ? '…' : t.connected ? t.status ?? 'unknown' : t.error ?? 'unreachable';
    return h('div.process', { dataset: { process: p } }, h('span.name', p), h('span.badge', { dataset: { tone } }, text),
      h('div.buttons', ...['start', 'stop', 'restart', 'get_status'].map((cmd) => h('button.small', {
        type: 'button',
        onclick: () => {
          // Nurvus commands never reply (Landale): the result comes as command_result.
          services.push(cmd, { service: p });
          addReply(cmd, 'sent', `${p} · awaiting command_result`);
        },
      }, cmd === 'get_status' ? 'status' : cmd))));
  }));
}

// ---- services table: /api/status ---------------------------------------------------

let apiStatus = null;
let streamFallback = false;

function breakerBadge(b) {
  const tone = { closed: 'good', open: 'bad', 'half-open': 'warn' }[b] ?? 'idle';
  return h('span.badge', { dataset: { tone } }, b ?? '?');
}

function statusCell(svc, mode, breaker) {
  if (svc === 'stream' && (streamFallback || mode === 'down' || mode === 'failing')) {
    return h('span.badge', { dataset: { tone: 'warn' }, title: 'StreamChannel pushes the fallback state' }, 'fallback');
  }
  if (breaker === 'open') return h('span.badge', { dataset: { tone: 'bad' } }, 'failing fast');
  const t = telemetry[svc === 'nurvus' ? 'seed' : svc];
  if (t && t.connected === false) return h('span.badge', { dataset: { tone: 'bad' } }, t.error ?? 'disconnected');
  if (mode === 'up') return h('span.badge', { dataset: { tone: 'good' } }, 'ok');
  return h('span.badge', { dataset: { tone: mode === 'slow' ? 'warn' : 'bad' } }, mode);
}

function renderServices() {
  if (!apiStatus) return;
  $('services').replaceChildren(...SERVICES.map((svc) => {
    const s = apiStatus.services?.[svc] ?? {};
    const select = h('select', { 'aria-label': `${svc} mode`, dataset: { service: svc } },
      ...MODES.map((m) => h('option', { value: m, selected: m === s.mode }, m)));
    select.addEventListener('change', () => simulate(svc, select.value));
    const status = statusCell(svc, s.mode, s.breaker);
    return h('tr', { dataset: { service: svc, mode: s.mode ?? '', breaker: s.breaker ?? '', status: status.textContent } },
      h('td', svc), h('td', select), h('td', breakerBadge(s.breaker)), h('td', status));
  }));
  const c = apiStatus;
  const rows = [['connections', c.connections], ['connections total', c.connections_total], ['events published', c.events_published],
    ['overlays joined', c.overlays], ['demo', c.demo ? (c.demo.running ? `on · ${c.demo.rate}/s` : 'off') : '–'],
    ['slow call', `${(c.slow_delay_ms ?? 0) / 1000} s`], ['slow consumers', c.slow_consumers], ['mailbox drops', c.mailbox_drops]];
  $('counters').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', k), h('dd', v ?? '–')]));
}

async function simulate(service, mode) {
  try {
    const res = await fetch('/api/simulate', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service, mode }),
    });
    const body = await res.json();
    addReply(`simulate ${service}`, res.ok ? 'ok' : 'error', res.ok ? `${service} → ${mode}` : body.error);
  } catch (err) {
    addReply(`simulate ${service}`, 'error', String(err));
  }
  pollStatus();
}

async function pollStatus() {
  try {
    const res = await fetch('/api/status', { cache: 'no-store' });
    apiStatus = await res.json();
    $('api-state').textContent = `updated ${clock()}`;
    renderServices();
  } catch {
    $('api-state').textContent = 'API unreachable';
  }
}
pollStatus();
setInterval(pollStatus, 2000);

// ---- stream:overlays: takeovers and state -------------------------------------------

const stream = join('stream:overlays', { overlay_type: name }, async () => {
  try {
    const cid = await lookupCorrelationId(name);
    if (!document.body.dataset.cid) setCid(cid);
  } catch (err) {
    console.warn(err);
  }
});
stream.on('stream_state', (s) => {
  const fb = Boolean(s.metadata?.fallback_mode);
  if (fb !== streamFallback) { streamFallback = fb; renderServices(); }
});
let takeoverTimer = null;
stream.on('takeover', (p) => {
  const el = $('takeover-state');
  el.textContent = `${label(p.type)}${p.message ? `: ${p.message}` : ''}`;
  el.dataset.tone = 'accent';
  clearTimeout(takeoverTimer);
  takeoverTimer = setTimeout(takeoverIdle, Number(p.duration) > 0 ? Number(p.duration) : 10000);
  addEvent('takeover', { source: 'stream', type: 'stream.takeover_started', takeover_type: p.type, message: p.message, timestamp: p.timestamp });
});
stream.on('takeover_clear', (p) => {
  takeoverIdle();
  addEvent('takeover_clear', { source: 'stream', type: 'stream.takeover_cleared', timestamp: p.timestamp });
});
stream.on('show_changed', (p) => addEvent('show_changed', { source: 'stream', type: 'stream.show_changed', message: `show → ${p.show}`, timestamp: p.changed_at }));

function takeoverIdle() {
  clearTimeout(takeoverTimer);
  $('takeover-state').textContent = 'idle';
  $('takeover-state').dataset.tone = 'idle';
}

$('takeover-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const payload = { type: $('takeover-type').value, message: $('takeover-message').value.trim() };
  const secs = Number($('takeover-duration').value);
  if (secs > 0) payload.duration = Math.round(secs * 1000);
  if (!payload.message && payload.type === 'screen-cover') delete payload.message;
  send(stream, 'takeover', payload);
});
$('takeover-clear').addEventListener('click', () => send(stream, 'takeover_clear', {}));

// ---- stream:queue -------------------------------------------------------------------

const queue = join('stream:queue', {});
queue.on('queue_state', (q) => {
  const items = q.queue ?? [];
  $('queue-count').textContent = `${items.length} item${items.length === 1 ? '' : 's'}${q.fallback_mode ? ' · fallback' : ''}`;
  if (!items.length) {
    $('queue').replaceChildren(h('li.empty', 'Nothing queued: alerts, sub trains and overrides show up here.'));
    return;
  }
  $('queue').replaceChildren(...items.map((it) => h('li', { dataset: { id: it.id } },
    h('span.badge', { dataset: { tone: it.type === 'manual_override' ? 'accent' : 'info' } }, label(it.content_type ?? it.type)),
    h('span.what', queueText(it)),
    h('span.muted', `${Math.round((it.duration ?? 0) / 1000)} s`),
    h('button.small', { type: 'button', onclick: () => send(queue, 'remove_queue_item', { id: it.id }) }, 'remove'))));
});

function queueText(it) {
  const d = it.data ?? {};
  switch (d.type) {
    case 'cheer_celebration': return `${d.user_name ?? 'Anonymous'} · ${d.bits} bits`;
    case 'raid_alert': return `${d.raider ?? '?'} · ${d.viewers ?? 0} viewers`;
    case 'checkpoint_clear': return `${d.checkpoint_name ?? '?'} cleared`;
  }
  if (it.content_type === 'sub_train') return `${d.count ?? 1} sub${d.count === 1 ? '' : 's'} · latest ${d.latest_subscriber ?? d.subscriber ?? '?'}`;
  return d.message ?? d.raider ?? d.user_name ?? d.latest_subscriber ?? d.subscriber ?? d.checkpoint_name ?? label(d.type ?? '');
}

$('force-content').addEventListener('click', () => send(stream, 'force_content', {
  type: 'manual_override', data: { message: 'Hello from the dashboard' }, duration: 8000,
}));

// ---- overlay:obs: the scene list ------------------------------------------------------

join('overlay:obs', {}, (ch) => {
  ch.push('obs:scenes', {}).receive('ok', (r) => {
    scenes = (r.scenes ?? []).slice().sort((a, b) => b.sceneIndex - a.sceneIndex).map((s) => s.sceneName);
    if (r.currentProgramSceneName) currentScene = r.currentProgramSceneName;
    renderScenes();
  });
});
