import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Config } from '../config.js';

/**
 * The admin web page at `/admin/`. A browser's navigation carries no bearer
 * header, so it gets the small login page (401); its script keeps the token in
 * sessionStorage for the tab, asks `/admin/` again with the header and writes
 * the answer, the page itself, into the document. The page then polls the
 * admin API with the same header. Script and style are inline and allowed by
 * their hashes, which one Content-Security-Policy lists for both documents:
 * the page is written into the login document and keeps its policy.
 *
 * The browser code is plain ES2020 without template literals (it lives in
 * template strings here) and sets anything that came from outside — ids,
 * error messages — as textContent, never as markup.
 */

const STYLE = `
:root { color-scheme: light; --fg: #1d232b; --muted: #5d6773; --line: #dde2e8; --bg: #f5f7f9; --card: #fff;
  --accent: #2563eb; --store: #16a34a; --head: #dc2626; --danger: #b91c1c; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
h2 .count, h2 code { text-transform: none; letter-spacing: 0; font-weight: 400; margin-left: 6px; }
h2 code { color: var(--fg); }
button, input { font: inherit; }
button { border: 1px solid var(--line); background: var(--card); border-radius: 6px; padding: 4px 10px; cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--danger); }
button.danger.primary { background: var(--danger); border-color: var(--danger); color: #fff; }
input { border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; background: #fff; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.muted { color: var(--muted); }
[hidden] { display: none !important; }
#result:empty, #public-note:empty, #prune-list:empty { display: none; }
.login { max-width: 340px; margin: 15vh auto; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 24px; }
.login form { display: grid; gap: 10px; margin-top: 16px; }
.alert { color: var(--danger); margin: 0; min-height: 1.4em; }
header { display: flex; align-items: center; gap: 16px; padding: 12px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
header .grow { flex: 1; }
main.page { padding: 16px 24px; display: grid; gap: 16px; max-width: 1280px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card, section.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.big { font-size: 26px; font-weight: 600; }
.card table { width: 100%; }
table { border-collapse: collapse; }
th { text-align: left; font-weight: 500; color: var(--muted); }
td, th { padding: 3px 8px 3px 0; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.card.wide { grid-column: span 2; }
.meter { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin-top: 6px; }
.meter span { display: block; height: 100%; width: 0; background: var(--accent); }
.actions { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.actions form { display: flex; gap: 6px; align-items: center; }
#videos { width: 100%; }
#videos td, #videos th { border-bottom: 1px solid var(--line); padding: 6px 10px 6px 0; white-space: nowrap; }
#videos td.bar-cell { width: 40%; min-width: 160px; }
#videos td.row-actions { text-align: right; }
#videos td.row-actions button { margin-left: 4px; }
.bar { position: relative; height: 12px; background: var(--line); border-radius: 3px; }
.bar .seg { position: absolute; top: 0; bottom: 0; background: var(--store); }
.bar .head { position: absolute; top: -3px; bottom: -3px; width: 2px; background: var(--head); }
.legend span { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 12px; vertical-align: -1px; }
.legend .k-store { background: var(--store); } .legend .k-none { background: var(--line); } .legend .k-head { background: var(--head); width: 3px; }
#result { margin: 8px 0 0; white-space: pre-wrap; }
#prune-list { margin: 6px 0 0; padding-left: 20px; max-height: 160px; overflow: auto; }
.preview { display: flex; gap: 16px; align-items: flex-start; }
.preview video { width: 384px; max-width: 100%; background: #000; border-radius: 6px; }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 20px; max-width: 420px; }
dialog::backdrop { background: rgba(15, 23, 42, .35); }
dialog .buttons { display: flex; justify-content: flex-end; gap: 8px; margin-top: 16px; }
`;

const LOGIN_SCRIPT = `
(function () {
  'use strict';
  var KEY = 'tubecache-admin-token';
  var form = document.getElementById('login');
  var input = document.getElementById('token');
  var alert = document.getElementById('login-error');
  function enter(token) {
    alert.textContent = '';
    fetch(location.pathname, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' }).then(function (response) {
      if (!response.ok) {
        sessionStorage.removeItem(KEY);
        alert.textContent = response.status === 403 ? 'That token is not the admin token.' : 'Sign-in failed (HTTP ' + response.status + ').';
        input.focus();
        return;
      }
      return response.text().then(function (html) {
        sessionStorage.setItem(KEY, token);
        document.open();
        document.write(html);
        document.close();
      });
    }, function (error) {
      alert.textContent = 'The service did not answer: ' + error.message;
    });
  }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (input.value.trim() !== '') enter(input.value.trim());
  });
  var kept = sessionStorage.getItem(KEY);
  if (kept) enter(kept);
})();
`;

const PAGE_SCRIPT = `
(function () {
  'use strict';
  var KEY = 'tubecache-admin-token';
  var POLL_MS = 3000;
  var ID = /^[A-Za-z0-9_-]{11}$/;
  var token = sessionStorage.getItem(KEY);
  if (!token) { location.reload(); return; }
  var $ = function (id) { return document.getElementById(id); };
  // Undefined: preview and prefetch have no public listener to go to; '' is this origin.
  var publicUrl = document.body.dataset.publicUrl;
  var crossOrigin = publicUrl !== undefined && publicUrl !== '';
  // The service's FORMATS names; a stored format not among them (written under an older setting) can be listed and deleted, not played.
  var formats = document.body.dataset.formats.split(' ');
  var known = function (format) { return formats.indexOf(format) >= 0; };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '-';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }
  function percent(ratio) { return ratio === null || ratio === undefined ? '-' : (ratio * 100).toFixed(1) + ' %'; }
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function set(id, text) { $(id).textContent = String(text); }
  function say(text, isError) {
    var result = $('result');
    result.textContent = text;
    result.className = isError ? 'alert' : '';
  }

  function api(method, path, body) {
    var init = { method: method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (response) {
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem(KEY);
        location.reload();
        throw new Error('the token is no longer accepted');
      }
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) throw new Error((data && data.error && data.error.message) || 'HTTP ' + response.status);
        return data;
      });
    });
  }

  function renderStats(s) {
    set('hit-ratio', percent(s.requests.hitRatio));
    var storeLabel = s.store.kind === 's3' ? 'S3' : s.store.kind;
    set('requests', s.requests.total + ' requests: ' + (s.requests.HIT || 0) + ' memory, ' + ((s.requests['HIT-S3'] || 0) + (s.requests['HIT-DISK'] || 0)) + ' ' + storeLabel + ', ' + (s.requests.MISS || 0) + ' origin');
    set('tier-store-label', storeLabel);
    ['memory', 'store', 'origin'].forEach(function (tier) {
      var t = s.tiers[tier === 'store' ? s.store.kind : tier];
      set('tier-' + tier + '-ratio', percent(t.byteRatio));
      set('tier-' + tier + '-bytes', bytes(t.bytes));
      set('tier-' + tier + '-slices', t.slices);
    });
    set('inflight', s.inFlight.sliceFetches);
    set('ytdlp', s.inFlight.ytdlpRuns);
    set('joins', s.inFlight.joins);
    set('upload-queue', s.uploads.queued);
    set('upload-running', s.uploads.running);
    set('upload-dropped', s.uploads.dropped);
    var used = s.memory.maxBytes > 0 ? s.memory.bytes / s.memory.maxBytes : 0;
    set('memory-used', percent(used));
    set('memory-detail', bytes(s.memory.bytes) + ' of ' + bytes(s.memory.maxBytes) + ', ' + s.memory.entries + ' entries, ' + s.memory.evictions + ' evicted');
    $('memory-meter').style.width = Math.min(100, used * 100) + '%';
    set('store-state', storeLabel + (s.store.available ? ' available' : ' unavailable'));
    $('store-state').className = s.store.available ? 'muted' : 'alert';
  }

  function bar(video) {
    var total = video.totalSlices || video.persistedRanges.reduce(function (n, r) { return Math.max(n, r[1] + 1); }, 0) || 1;
    var node = el('div', 'bar');
    video.persistedRanges.forEach(function (range) {
      var seg = el('span', 'seg');
      seg.style.left = (range[0] / total) * 100 + '%';
      seg.style.width = ((range[1] - range[0] + 1) / total) * 100 + '%';
      node.appendChild(seg);
    });
    if (video.headSlices !== null) {
      var head = el('span', 'head');
      head.style.left = 'calc(' + (Math.min(video.headSlices, total) / total) * 100 + '% - 1px)';
      node.appendChild(head);
    }
    node.title = video.persistedSlices + ' of ' + (video.totalSlices === null ? '?' : video.totalSlices) + ' slices stored' +
      (video.headSlices === null ? '' : '; the head is ' + video.headSlices + ' slices');
    return node;
  }

  function renderVideos(list) {
    var videos = list.videos.slice().sort(function (a, b) { return b.lastAccess.localeCompare(a.lastAccess); });
    var rows = videos.map(function (video) {
      var row = el('tr');
      row.dataset.id = video.id;
      var id = el('td');
      id.appendChild(el('code', '', video.id));
      row.appendChild(id);
      row.appendChild(el('td', '', video.format));
      row.appendChild(el('td', 'num', bytes(video.size === null ? video.bytes : video.size)));
      var cell = el('td', 'bar-cell');
      cell.appendChild(bar(video));
      row.appendChild(cell);
      row.appendChild(el('td', 'num', video.persistedSlices + '/' + (video.totalSlices === null ? '?' : video.totalSlices)));
      row.appendChild(el('td', 'num', video.headSeconds === null ? '-' : video.headSeconds + ' s'));
      var access = el('td', '', ago(video.lastAccess));
      access.title = video.lastAccess;
      row.appendChild(access);
      var actions = el('td', 'row-actions');
      var preview = el('button', 'preview-button', 'Preview');
      preview.disabled = publicUrl === undefined || !known(video.format);
      preview.addEventListener('click', function () { showPreview(video.id, video.format); });
      var remove = el('button', 'danger delete-button', 'Delete');
      remove.addEventListener('click', function () { confirmDelete(video); });
      actions.appendChild(preview);
      actions.appendChild(remove);
      row.appendChild(actions);
      return row;
    });
    $('video-rows').replaceChildren.apply($('video-rows'), rows);
    $('no-videos').hidden = rows.length > 0;
    set('video-count', videos.length + (list.nextCursor ? '+' : '') + ' cached');
  }

  var timer;
  function refresh() {
    clearTimeout(timer);
    return Promise.all([api('GET', '/admin/stats'), api('GET', '/admin/videos?limit=1000')]).then(function (answers) {
      renderStats(answers[0]);
      renderVideos(answers[1]);
      $('error').hidden = true;
      set('updated', 'updated ' + new Date().toLocaleTimeString());
    }, function (error) {
      set('error', 'Refresh failed: ' + error.message);
      $('error').hidden = false;
    }).then(function () { timer = setTimeout(refresh, POLL_MS); });
  }

  var pending;
  function ask(text, confirmLabel, action) {
    set('confirm-text', text);
    set('confirm-ok', confirmLabel);
    pending = action;
    $('confirm').showModal();
  }
  $('confirm-cancel').addEventListener('click', function () { pending = undefined; $('confirm').close(); });
  $('confirm-ok').addEventListener('click', function () {
    var action = pending;
    pending = undefined;
    $('confirm').close();
    if (action) action();
  });

  function confirmDelete(video) {
    // A format the service no longer names can only go with the whole video (every format).
    var which = known(video.format) ? video.format + ', ' + bytes(video.bytes) : 'every format';
    ask('Delete ' + video.id + ' (' + which + ') from this node\\'s memory and from the store?', 'Delete', function () {
      api('DELETE', '/admin/videos/' + encodeURIComponent(video.id) + (known(video.format) ? '?format=' + video.format : '')).then(function (answer) {
        say('Deleted ' + answer.id + ': ' + answer.s3.objects + ' objects (' + bytes(answer.s3.bytes) + ') from the store, ' + answer.memory.entries + ' memory entries.');
        return refresh();
      }, function (error) { say('Delete failed: ' + error.message, true); });
    });
  }

  function showPreview(id, format) {
    var video = $('preview-video');
    video.src = publicUrl + '/proxy/' + encodeURIComponent(id) + '?format=' + format;
    set('preview-id', id + ' (' + format + ')');
    $('preview').hidden = false;
  }

  if (publicUrl === undefined) {
    $('prefetch-id').disabled = true;
    $('prefetch-format').disabled = true;
    $('prefetch-go').disabled = true;
    set('public-note', 'Preview and prefetch need ADMIN_PUBLIC_URL (the admin API has its own port).');
  }
  $('prefetch').addEventListener('submit', function (event) {
    event.preventDefault();
    var id = $('prefetch-id').value.trim();
    var format = $('prefetch-format').value;
    if (!ID.test(id)) return say('A video id is 11 characters of A-Z, a-z, 0-9, _ and -.', true);
    // Another origin answers without CORS headers: the request goes out, its answer is not readable.
    fetch(publicUrl + '/prefetch/' + encodeURIComponent(id) + '?format=' + format, { method: 'POST', mode: crossOrigin ? 'no-cors' : 'same-origin' }).then(function (response) {
      if (crossOrigin || response.ok) {
        say('Prefetch of ' + id + ' accepted (' + format + '); it appears in the list once its manifest is stored.');
        $('prefetch-id').value = '';
      } else {
        return response.json().then(function (data) { say('Prefetch failed: ' + data.error.message, true); });
      }
    }).catch(function (error) { say('Prefetch failed: ' + error.message, true); });
  });

  var dryRunTtl;
  function pruneBody(dryRun) {
    var ttl = $('prune-ttl').value.trim();
    return ttl === '' ? { dryRun: dryRun } : { dryRun: dryRun, ttl: ttl };
  }
  function tally(summary) {
    var d = summary.deleted;
    return d.videos + ' videos, ' + d.objects + ' objects, ' + bytes(d.bytes) + (d.orphans ? ' (' + d.orphans + ' left-behind uploads)' : '') +
      '; ' + summary.kept.videos + ' videos kept; scanned in ' + summary.ms + ' ms';
  }
  $('prune-ttl').addEventListener('input', function () { $('prune-run').disabled = true; dryRunTtl = undefined; });
  $('prune').addEventListener('submit', function (event) {
    event.preventDefault();
    $('prune-run').disabled = true;
    var body = pruneBody(true);
    api('POST', '/admin/prune', body).then(function (summary) {
      say('Dry run: would delete ' + tally(summary) + '.');
      var items = summary.videos.map(function (video) {
        var item = el('li');
        item.appendChild(el('code', '', video.id));
        item.appendChild(el('span', 'muted', ' ' + video.format + ', ' + video.reason + ', last read ' + ago(video.lastAccess) + ', ' + bytes(video.bytes)));
        return item;
      });
      $('prune-list').replaceChildren.apply($('prune-list'), items);
      dryRunTtl = body.ttl;
      $('prune-run').disabled = summary.videos.length === 0;
    }, function (error) { say('Prune dry run failed: ' + error.message, true); });
  });
  $('prune-run').addEventListener('click', function () {
    var body = pruneBody(false);
    if (body.ttl !== dryRunTtl) return;
    ask('Prune for real: delete every video the dry run listed (and any that expired since)?', 'Prune', function () {
      $('prune-run').disabled = true;
      api('POST', '/admin/prune', body).then(function (summary) {
        say('Pruned: deleted ' + tally(summary) + (summary.failures.length ? '; ' + summary.failures.length + ' objects not deleted' : '') + '.');
        $('prune-list').replaceChildren();
        return refresh();
      }, function (error) { say('Prune failed: ' + error.message, true); });
    });
  });

  $('signout').addEventListener('click', function () {
    sessionStorage.removeItem(KEY);
    location.reload();
  });
  refresh();
})();
`;

const head = `<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer"><title>tubecache admin</title><style>${STYLE}</style>`;

const LOGIN_HTML = `<!DOCTYPE html>
<html lang="en"><head>${head}</head>
<body><main class="login">
<h1>tubecache admin</h1>
<form id="login">
<label for="token">Admin token</label>
<input id="token" type="password" autocomplete="current-password" autofocus>
<button class="primary">Sign in</button>
<p id="login-error" class="alert" role="alert"></p>
</form>
<p class="muted">The token stays in this tab (sessionStorage) and is sent as a bearer header.</p>
</main><script>${LOGIN_SCRIPT}</script></body></html>
`;

const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

function pageHtml(publicUrl: string | undefined, formats: readonly string[]): string {
  const tierRow = (tier: string, label: string) =>
    `<tr><td id="tier-${tier}-label">${label}</td><td class="num" id="tier-${tier}-ratio">-</td><td class="num" id="tier-${tier}-bytes">-</td><td class="num" id="tier-${tier}-slices">-</td></tr>`;
  return `<!DOCTYPE html>
<html lang="en"><head>${head}</head>
<body data-formats="${formats.join(' ')}"${publicUrl === undefined ? '' : ` data-public-url="${escapeAttribute(publicUrl)}"`}>
<header><h1>tubecache admin</h1><span id="store-state" class="muted"></span><span class="grow"></span><span id="updated" class="muted"></span><button id="signout">Sign out</button></header>
<main class="page">
<p id="error" class="alert" role="alert" hidden></p>
<div class="cards">
<div class="card"><h2>Hit ratio</h2><div class="big" id="hit-ratio">-</div><div class="muted" id="requests"></div></div>
<div class="card wide"><h2>Served by tier</h2><table><thead><tr><th></th><th class="num">share</th><th class="num">bytes</th><th class="num">slices</th></tr></thead><tbody>
${tierRow('memory', 'memory')}${tierRow('store', 'store')}${tierRow('origin', 'origin')}</tbody></table></div>
<div class="card"><h2>In flight</h2><table>
<tr><td>slice fetches</td><td class="num" id="inflight">-</td></tr><tr><td>yt-dlp runs</td><td class="num" id="ytdlp">-</td></tr><tr><td>joined readers</td><td class="num" id="joins">-</td></tr></table></div>
<div class="card"><h2>Uploads to the store</h2><table>
<tr><td>queued</td><td class="num" id="upload-queue">-</td></tr><tr><td>running</td><td class="num" id="upload-running">-</td></tr><tr><td>dropped</td><td class="num" id="upload-dropped">-</td></tr></table></div>
<div class="card"><h2>Memory budget</h2><div class="big" id="memory-used">-</div><div class="meter"><span id="memory-meter"></span></div><div class="muted" id="memory-detail"></div></div>
</div>
<section class="panel"><h2>Actions</h2><div class="actions">
<form id="prefetch"><input id="prefetch-id" placeholder="video id" maxlength="11" size="14" spellcheck="false" aria-label="video id to prefetch"><select id="prefetch-format" aria-label="format to prefetch">${formats.map((name) => `<option>${name}</option>`).join('')}</select><button id="prefetch-go">Prefetch</button></form>
<form id="prune"><label for="prune-ttl">Prune videos not read for</label><input id="prune-ttl" placeholder="PRUNE_TTL" size="8" spellcheck="false"><button>Dry run</button><button type="button" id="prune-run" class="danger" disabled>Prune for real</button></form>
</div><p id="public-note" class="muted"></p><p id="result" role="status"></p><ul id="prune-list"></ul></section>
<section class="panel"><h2>Cached videos <span class="count muted" id="video-count"></span></h2>
<table id="videos"><thead><tr><th>id</th><th>format</th><th class="num">size</th><th>slices stored<span class="legend"><span class="k-store"></span>persisted<span class="k-none"></span>not<span class="k-head"></span>head ends</span></th><th class="num">slices</th><th class="num">head</th><th>last access</th><th></th></tr></thead>
<tbody id="video-rows"></tbody></table><p id="no-videos" class="muted" hidden>No video is in the store.</p></section>
<section class="panel" id="preview" hidden><h2>Preview <code id="preview-id"></code></h2><div class="preview"><video id="preview-video" controls preload="metadata"></video></div></section>
</main>
<dialog id="confirm"><p id="confirm-text"></p><div class="buttons"><button id="confirm-cancel">Cancel</button><button id="confirm-ok" class="danger primary">Delete</button></div></dialog>
<script>${PAGE_SCRIPT}</script></body></html>
`;
}

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export interface AdminPage {
  /** `/admin/` with a valid bearer header: the page (200). */
  page(ctx: Context): void;
  /** `/admin/` without one: the login page (401). */
  login(ctx: Context): void;
}

/**
 * The page's preview and prefetch go to the public listener: this origin when
 * the admin API shares it, ADMIN_PUBLIC_URL when set; with ADMIN_PORT and no
 * ADMIN_PUBLIC_URL the page cannot know it and leaves them off.
 */
export function adminPage(config: Pick<Config, 'ADMIN_PORT' | 'ADMIN_PUBLIC_URL' | 'FORMATS'>): AdminPage {
  const publicUrl = config.ADMIN_PUBLIC_URL !== '' ? config.ADMIN_PUBLIC_URL : config.ADMIN_PORT === 0 ? '' : undefined;
  const publicOrigin = publicUrl ? ` ${new URL(publicUrl).origin}` : '';
  const policy = [
    "default-src 'none'",
    `script-src ${hash(LOGIN_SCRIPT)} ${hash(PAGE_SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    `connect-src 'self'${publicOrigin}`,
    `media-src 'self'${publicOrigin}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  // Names are [a-z0-9-] (FORMATS is checked at start-up): safe in HTML as they are.
  const pageBody = pageHtml(publicUrl, [...config.FORMATS.selectors.keys()]);
  const send = (ctx: Context, status: number, body: string) => {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set({ 'Content-Security-Policy': policy, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
    ctx.body = body;
  };
  return {
    page: (ctx) => send(ctx, 200, pageBody),
    login(ctx) {
      ctx.set('WWW-Authenticate', 'Bearer realm="tubecache admin"');
      send(ctx, 401, LOGIN_HTML);
    },
  };
}
