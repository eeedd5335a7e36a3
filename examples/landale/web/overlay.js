// The overlay (what OBS shows as a browser source): omnibar with the stream
// state's ticker/base layer and foreground alerts, chat, interaction toasts,
// now playing, the OBS scene and the takeover screen.
//
// Channels: stream:overlays (stream_state, takeover, takeover_clear,
// show_changed), overlay:twitch (chat and interactions), overlay:obs (scene,
// live), overlay:music (now playing). phoenix.js rejoins them by itself
// after a reconnect; the server pushes fresh initial states on every join.
import { connect, nonce, lookupCorrelationId, h, label } from './landale.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
if (params.has('transparent')) document.body.classList.add('transparent');
if (params.has('clean')) document.body.classList.add('clean');

// Fit the 1920×1080 stage into the window.
function fit() {
  const s = Math.min(innerWidth / 1920, innerHeight / 1080);
  $('stage').style.transform = `scale(${s})`;
}
addEventListener('resize', fit);
fit();

// ---- connection -----------------------------------------------------------

const name = `overlay ${nonce()}`;
const joined = new Set();
const topics = ['stream:overlays', 'overlay:twitch', 'overlay:obs', 'overlay:music'];

function setState(state) {
  document.body.dataset.socket = state;
  $('pill').dataset.state = state;
  $('pill-state').textContent = state;
  if (state !== 'connected') {
    joined.clear();
    updateReady();
  }
}

function updateReady() {
  document.body.dataset.ready = String(topics.every((t) => joined.has(t)));
}

const socket = connect(setState);

// join joins topic and keeps `joined` in step; onOk runs after every
// (re)join.
function join(topic, payload, onOk) {
  const ch = socket.channel(topic, payload);
  ch.onError(() => { joined.delete(topic); updateReady(); });
  ch.onClose(() => { joined.delete(topic); updateReady(); });
  ch.join()
    .receive('ok', (resp) => { joined.add(topic); updateReady(); onOk?.(ch, resp); })
    .receive('error', (resp) => console.warn(`join ${topic} refused`, resp));
  return ch;
}

// ---- stream:overlays --------------------------------------------------------

const stream = join('stream:overlays', { overlay_type: name }, async () => {
  try {
    const cid = await lookupCorrelationId(name);
    document.body.dataset.cid = cid;
    $('pill-cid').textContent = cid;
  } catch (err) {
    $('pill-cid').textContent = '';
    console.warn(err);
  }
});

stream.on('stream_state', renderState);
stream.on('show_changed', (p) => { $('show').textContent = p.show || 'variety'; });
stream.on('takeover', showTakeover);
stream.on('takeover_clear', hideTakeover);

function renderState(state) {
  $('show').textContent = state.current_show || 'variety';
  document.body.dataset.fallback = String(Boolean(state.metadata?.fallback_mode));
  renderBase(state.base, state);
  renderAlert((state.alerts || [])[0]);
}

function goal(title, g) {
  const cur = Number(g?.current ?? 0);
  const target = Math.max(Number(g?.target ?? 0), 1);
  const pct = Math.min(100, Math.round((cur / target) * 100));
  return h('span.goal', h('span.muted', title), h('span.bar', h('div', { style: `width:${pct}%` })), `${cur} / ${target}`);
}

// baseContent renders one base-layer item (a ticker content or the latest
// meaningful event).
function baseContent(b) {
  switch (b.type) {
    case 'emote_stats': {
      const top = (b.top_emotes || []).slice(0, 4);
      return [h('span.tag', 'Top emotes'),
        top.length ? top.map((e) => h('span.chip', `${e.emote} ×${e.count}`)) : h('span.muted', 'no emotes yet'),
        h('span.muted', `${b.total_emotes ?? 0} total`)];
    }
    case 'recent_follows': {
      const names = (b.recent_followers || []).slice(0, 4);
      return [h('span.tag', 'Recent follows'),
        names.length ? names.map((n) => h('span.chip', n)) : h('span.muted', 'be the first!')];
    }
    case 'stream_goals':
      return [h('span.tag', 'Goals'), goal('Followers', b.follower_goal), goal('Subs', b.sub_goal)];
    case 'daily_stats':
      return [h('span.tag', 'Today'), `${b.total_messages ?? 0} messages`, h('span.muted', '·'), `${b.total_follows ?? 0} follows`];
    case 'ironmon_run_stats':
      return [h('span.tag', 'IronMON'), `Run #${b.run_number ?? 0}`, h('span.muted', '·'),
        `${b.checkpoints_cleared ?? 0} checkpoints`, h('span.muted', '·'), `at ${b.current_checkpoint ?? '?'}`];
    case 'ironmon_progression':
      return [h('span.tag', 'Progress'), `${b.current_checkpoint ?? '?'}`, h('span.muted', 'vs'), `${b.trainer ?? '?'}`,
        h('span.muted', `${Math.round(b.clear_rate_percentage ?? 0)}% cleared`)];
    case 'commit_stats':
      return [h('span.tag', 'Commits'), `${b.commits_today ?? 0} today`, h('span.chip', `+${b.lines_added ?? 0}`),
        h('span.chip', `−${b.lines_removed ?? 0}`)];
    case 'build_status':
      return [h('span.tag', 'Build'), `${b.status ?? 'unknown'}`, h('span.muted', `${b.duration_seconds ?? '?'} s`)];
    case 'channel.follow':
      return [h('span.tag', 'Latest follower'), h('b', b.user_name ?? 'someone')];
    case 'channel.subscribe':
      return [h('span.tag', 'Latest sub'), h('b', b.user_name ?? 'someone'), h('span.muted', tier(b.tier))];
    case 'channel.subscription.gift':
      return [h('span.tag', 'Gift subs'), h('b', b.user_name ?? 'Anonymous'), `gifted ${b.total ?? 1}`];
    case 'channel.cheer':
      return [h('span.tag', 'Latest cheer'), h('b', b.user_name ?? 'Anonymous'), `${b.bits ?? 0} bits`];
  }
  if (b.message) return [h('span.tag', label(b.type)), h('span.muted', b.message)];
  return [h('span.tag', label(b.type))];
}

function tier(t) {
  return { 1000: 'tier 1', 2000: 'tier 2', 3000: 'tier 3' }[t] || '';
}

function renderBase(base, state) {
  const el = $('base');
  el.dataset.type = base?.type || '';
  if (!base) {
    el.replaceChildren(h('span.muted', state.metadata?.fallback_mode ? 'Stream state unavailable: fallback mode' : 'Stream starting…'));
    return;
  }
  el.replaceChildren(...baseContent(base).flat());
}

let alertShown = null;

function alertText(a) {
  const d = a.data || {};
  switch (d.type) {
    case 'raid_alert': return ['Raid', `${d.raider ?? 'Someone'} is raiding`, `with ${d.viewers ?? 0} viewers`];
    case 'cheer_celebration': return ['Cheer', `${d.user_name ?? 'Anonymous'} cheered ${d.bits} bits`, d.message];
    case 'checkpoint_clear': return ['Checkpoint cleared', d.checkpoint_name ?? '?', d.seed_id ? `seed ${d.seed_id}` : ''];
  }
  if (a.type === 'sub_train') {
    return ['Sub train', `${d.count ?? 1} sub${d.count === 1 ? '' : 's'} and counting`, `latest: ${d.latest_subscriber ?? d.subscriber ?? '?'}`];
  }
  if (a.type === 'manual_override') {
    return [label(d.type || 'manual override'), d.message ?? d.title ?? 'Manual override', d.subtitle ?? ''];
  }
  return [label(a.type), d.message ?? label(d.type ?? ''), ''];
}

function renderAlert(a) {
  const el = $('alert');
  if (!a) {
    el.hidden = true;
    alertShown = null;
    el.dataset.id = '';
    return;
  }
  if (alertShown === `${a.id}:${a.started_at}`) return; // same alert, keep its animation
  alertShown = `${a.id}:${a.started_at}`;
  const [kind, title, sub] = alertText(a);
  const left = Math.max(0, new Date(a.started_at).getTime() + Number(a.duration || 0) - Date.now());
  el.dataset.id = a.id;
  el.replaceChildren(h('div.kind', kind), h('div.title', title), sub ? h('div.sub', sub) : null,
    h('div.timer', h('div', { style: `animation-duration:${left || 1}ms` })));
  el.hidden = false;
}

// ---- takeover ---------------------------------------------------------------

let takeoverTimer = null;

function showTakeover(p) {
  const el = $('takeover');
  const duration = Number(p.duration) > 0 ? Number(p.duration) : 10000;
  el.dataset.type = p.type || 'custom';
  $('takeover-kind').textContent = label(p.type || 'takeover');
  $('takeover-message').textContent = p.message || (p.type === 'screen-cover' ? '' : label(p.type));
  const bar = $('takeover-progress');
  bar.getAnimations().forEach((an) => an.cancel());
  bar.animate([{ transform: 'scaleX(1)' }, { transform: 'scaleX(0)' }], { duration, fill: 'forwards' });
  el.dataset.active = 'true';
  clearTimeout(takeoverTimer);
  takeoverTimer = setTimeout(hideTakeover, duration);
}

function hideTakeover() {
  clearTimeout(takeoverTimer);
  $('takeover').dataset.active = 'false';
}

// ---- overlay:twitch: chat and interactions -----------------------------------

const twitch = join('overlay:twitch', {});
twitch.on('twitch_event', (e) => {
  switch (e.type) {
    case 'channel.chat.message': return addChat(e);
    case 'channel.chat.clear': return $('chat-list').replaceChildren();
    case 'channel.chat.message_delete':
      for (const li of $('chat-list').children) if (li.dataset.id === e.message_id) li.classList.add('deleted');
      return;
    case 'channel.follow': return toast('follow', '♥', h('b', e.user_name ?? 'Someone'), ' followed');
    case 'channel.subscribe': return toast('sub', '★', h('b', e.user_name ?? 'Someone'), ` subscribed ${tier(e.tier)}`);
    case 'channel.subscription.gift':
      return toast('sub', '🎁', h('b', e.is_anonymous ? 'Anonymous' : e.user_name ?? 'Someone'), ` gifted ${e.total ?? 1} subs`);
    case 'channel.cheer': return toast('cheer', '◆', h('b', e.is_anonymous ? 'Anonymous' : e.user_name ?? 'Someone'), ` cheered ${e.bits} bits`);
    case 'channel.raid':
      return toast('raid', '⚑', h('b', e.from_broadcaster_user_name ?? 'Someone'), ` raided with ${e.viewers ?? 0}`);
  }
});

function colorFor(e) {
  if (e.color) return e.color;
  let x = 0;
  for (const c of String(e.user_login || e.user_name || '')) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${x % 360} 80% 70%)`;
}

function addChat(e) {
  const parts = [];
  const native = new Set(e.native_emotes || []);
  const frags = Array.isArray(e.fragments) && e.fragments.length ? e.fragments : [{ type: 'text', text: e.message ?? '' }];
  for (const f of frags) {
    if (f.type === 'emote') parts.push(h(native.has(f.text) ? 'span.emote.native' : 'span.emote', f.text));
    else parts.push(f.text ?? '');
  }
  const li = h('li', { dataset: { id: e.message_id || e.id || '' } },
    h('span.who', { style: `color:${colorFor(e)}` }, e.user_name || e.user_login || 'anonymous'), ...parts);
  const list = $('chat-list');
  list.append(li);
  while (list.children.length > 14) list.firstElementChild.remove();
}

function toast(kind, icon, ...body) {
  const el = h(`div.toast.${kind}`, h('span.icon', icon), h('span', ...body));
  const box = $('toasts');
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 450);
  }, 7000);
}

// ---- overlay:obs: scene and live state -----------------------------------------

const obs = join('overlay:obs', {});
obs.on('initial_state', (p) => {
  const st = p.data?.status;
  setScene(p.data?.connected ? st?.current_scene ?? '…' : 'OBS offline');
  $('live').hidden = !st?.streaming;
});
obs.on('obs_event', (e) => {
  switch (e.type) {
    case 'obs.scene_changed': return setScene(e.scene_name);
    case 'obs.stream_started': $('live').hidden = false; return;
    case 'obs.stream_stopped': $('live').hidden = true; return;
    case 'obs.connection_lost': return setScene('OBS offline');
    case 'obs.connection_established':
      obs.push('obs:status', {}).receive('ok', (st) => setScene(st.current_scene ?? '…'));
  }
});

function setScene(sceneName) {
  $('scene-name').textContent = sceneName || '…';
  const el = $('scene');
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 1200);
}

// ---- overlay:music: now playing -------------------------------------------------

const music = join('overlay:music', {}, (ch) => {
  ch.push('rainwave:status', {}).receive('ok', (st) => nowPlaying({
    listening: st.listening, enabled: st.enabled, song_title: st.current_song?.title, artist: st.current_song?.artist,
  }));
});
music.on('music_event', nowPlaying);

function nowPlaying(e) {
  const on = e.listening !== false && e.enabled !== false && e.song_title;
  $('music').hidden = !on;
  if (!on) return;
  $('music-title').textContent = e.song_title;
  $('music-artist').textContent = e.artist || '';
}
