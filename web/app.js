// imgsim web page: search by an image (drop, pick, paste) or by a result; browse random items.
// Vanilla JS, no dependencies. Talks to the JSON API described in docs/API.md.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    file: $('file'), drop: $('dropzone'), k: $('k'), label: $('label'), category: $('category'),
    random: $('random'), results: $('results'), status: $('status'), error: $('error'),
    query: $('query'), queryImg: $('query-img'), queryCaption: $('query-caption'),
    predicted: $('predicted'), stats: $('stats'), home: $('home'),
  };

  // The last thing shown, so that changing k / label / category re-runs it.
  // {kind: 'random'} | {kind: 'image', blob, name} | {kind: 'id', id, label}
  let current = { kind: 'random' };
  let seq = 0;            // request sequence: only the newest response is drawn
  let inflight = null;    // AbortController of the request in flight
  let previewUrl = null;  // object URL of the uploaded query image

  // ---- helpers ------------------------------------------------------------------------------

  function itemPath(id) { return '/api/items/' + encodeURIComponent(id); }

  function params() {
    const p = ['k=' + encodeURIComponent(el.k.value)];
    if (el.label.value) p.push('where=' + encodeURIComponent('label=' + el.label.value));
    if (el.category.checked) p.push('category=auto');
    return p.join('&');
  }

  // Content type for an uploaded blob: its own when it says image/*, else sniffed.
  async function imageType(blob) {
    if (blob.type && blob.type.startsWith('image/')) return blob.type;
    const b = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
    const s = String.fromCharCode.apply(null, b);
    if (b[0] === 0xff && b[1] === 0xd8) return 'image/jpeg';
    if (s.startsWith('\x89PNG')) return 'image/png';
    if (s.startsWith('GIF8')) return 'image/gif';
    if (s.startsWith('RIFF') && s.slice(8, 12) === 'WEBP') return 'image/webp';
    if (s.startsWith('BM')) return 'image/bmp';
    if (s.startsWith('II*\0') || s.startsWith('MM\0*')) return 'image/tiff';
    return blob.type || 'application/octet-stream';
  }

  function showError(msg) {
    el.error.textContent = msg;
    el.error.hidden = !msg;
  }

  function setStatus(msg) { el.status.textContent = msg; }

  function setBusy(busy) {
    el.results.setAttribute('aria-busy', busy ? 'true' : 'false');
    document.body.classList.toggle('busy', busy);
  }

  // fetch JSON; throws Error with the server's {"error"} message (or a plain description).
  async function api(url, opts) {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    let res;
    try {
      res = await fetch(url, Object.assign({ signal: inflight.signal }, opts || {}));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new Error('cannot reach the server (' + e.message + ')');
    }
    let body = null;
    const text = await res.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!res.ok) {
      let msg = body && typeof body.error === 'string' ? body.error : (text.trim().slice(0, 200) || res.statusText);
      msg = 'Error ' + res.status + ': ' + msg;
      if (res.status === 503) {
        const ra = res.headers.get('Retry-After');
        msg += ' (server busy' + (ra ? ', retry in ' + ra + ' s' : '') + ')';
      }
      throw new Error(msg);
    }
    if (body === null) throw new Error('the server sent an unreadable answer');
    return body;
  }

  // ---- drawing ------------------------------------------------------------------------------

  function card(item, withScore) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'result';
    b.dataset.id = item.id;
    b.dataset.label = item.label == null ? '' : item.label;
    b.dataset.score = withScore && typeof item.score === 'number' ? String(item.score) : '';
    const labelText = item.label == null ? 'unlabelled' : item.label;
    b.title = 'Find pictures like ' + item.id;

    const img = document.createElement('img');
    img.src = (item.image_url || itemPath(item.id) + '/image') + '?size=256';
    img.alt = labelText + ' — ' + item.id;
    img.loading = 'lazy';
    img.decoding = 'async';
    img.addEventListener('error', () => { b.classList.add('broken'); });
    b.appendChild(img);

    const cap = document.createElement('span');
    cap.className = 'caption';
    if (b.dataset.score) {
      const sc = document.createElement('span');
      sc.className = 'score';
      sc.textContent = item.score.toFixed(3);
      cap.appendChild(sc);
    }
    const lb = document.createElement('span');
    lb.className = 'label' + (item.label == null ? ' none' : '');
    lb.textContent = labelText;
    cap.appendChild(lb);
    b.appendChild(cap);

    b.addEventListener('click', () => searchById(item.id, item.label, b));
    li.appendChild(b);
    return li;
  }

  function draw(items, view, withScore) {
    const frag = document.createDocumentFragment();
    for (const it of items) frag.appendChild(card(it, withScore));
    el.results.replaceChildren(frag);
    el.results.dataset.view = view;
    el.results.dataset.seq = String(seq);
  }

  function showQuery(src, caption) {
    if (!src) { el.query.hidden = true; return; }
    el.queryImg.hidden = false;
    el.queryImg.src = src;
    el.queryImg.alt = 'Query: ' + caption;
    el.queryCaption.textContent = caption;
    el.query.hidden = false;
  }

  function showPredicted(label) {
    if (label) {
      el.predicted.textContent = 'Predicted category: ';
      const s = document.createElement('strong');
      s.textContent = label;
      el.predicted.appendChild(s);
      el.predicted.dataset.label = label;
      el.predicted.hidden = false;
    } else {
      el.predicted.textContent = '';
      delete el.predicted.dataset.label;
      el.predicted.hidden = true;
    }
  }

  function fmtMs(ms) { return typeof ms === 'number' ? ms.toFixed(ms < 10 ? 1 : 0) + ' ms' : '? ms'; }

  async function run(label, fn) {
    const my = ++seq;
    showError('');
    setBusy(true);
    setStatus(label);
    try {
      await fn(my);
    } catch (e) {
      if (e.name === 'AbortError' || my !== seq) return;
      showError(e.message);
      setStatus('');
      // results of an earlier query under this one would mislead: clear them
      el.results.replaceChildren();
      el.results.dataset.view = 'error';
    } finally {
      if (my === seq) setBusy(false);
    }
  }

  function drawSearch(my, r) {
    if (my !== seq) return;
    const res = Array.isArray(r.results) ? r.results : [];
    draw(res, 'search', true);
    showPredicted(el.category.checked && r.query ? r.query.predicted_label : null);
    const n = res.length;
    setStatus(n + (n === 1 ? ' result' : ' results') + ' in ' + fmtMs(r.took_ms) +
      (n === 0 && el.label.value ? ' (no pictures labelled “' + el.label.value + '” match)' : ''));
  }

  // ---- actions ------------------------------------------------------------------------------

  function showRandom() {
    current = { kind: 'random' };
    showQuery(null);
    showPredicted(null);
    const n = 24;
    const url = '/api/random?n=' + n + (el.label.value ? '&label=' + encodeURIComponent(el.label.value) : '');
    return run('Loading random items…', async (my) => {
      const t0 = performance.now();
      const r = await api(url);
      if (my !== seq) return;
      const res = Array.isArray(r.results) ? r.results : [];
      draw(res, 'random', false);
      setStatus(res.length ? res.length + ' random items' + (el.label.value ? ' labelled “' + el.label.value + '”' : '') +
        ' in ' + fmtMs(performance.now() - t0) + ' — click one to search by it'
        : 'The collection is empty: index some images first.');
    });
  }

  async function searchByImage(blob, name) {
    if (!blob) return;
    if (blob.size === 0) { showError('That file is empty.'); return; }
    current = { kind: 'image', blob, name };
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    showQuery(previewUrl, name || 'pasted image');
    const type = await imageType(blob);
    return run('Searching…', async (my) => {
      const r = await api('/api/search?' + params(), {
        method: 'POST', headers: { 'Content-Type': type }, body: blob,
      });
      drawSearch(my, r);
    });
  }

  function searchById(id, label, from) {
    current = { kind: 'id', id, label };
    const hadFocus = !!from && document.activeElement === from;
    showQuery(itemPath(id) + '/image?size=256', id + (label ? ' (' + label + ')' : ''));
    return run('Searching…', async (my) => {
      const r = await api(itemPath(id) + '/similar?' + params());
      drawSearch(my, r);
      if (my === seq && hadFocus) {
        // the focused card is gone with the old grid: keep keyboard users in the results
        const first = el.results.querySelector('.result');
        if (first) first.focus();
      }
    });
  }

  function rerun() {
    if (current.kind === 'image') return searchByImage(current.blob, current.name);
    if (current.kind === 'id') return searchById(current.id, current.label);
    return showRandom();
  }

  // a query file the browser cannot show (or the server refuses) leaves no broken-image icon
  el.queryImg.addEventListener('error', () => { el.queryImg.hidden = true; });

  // ---- inputs -------------------------------------------------------------------------------

  function firstImageFile(list) {
    for (const f of list || []) if (f && (!f.type || f.type.startsWith('image/'))) return f;
    return null;
  }

  el.file.addEventListener('change', () => {
    const f = el.file.files && el.file.files[0];
    if (f) searchByImage(f, f.name);
    el.file.value = '';   // picking the same file again still fires 'change'
  });

  let dragDepth = 0;
  document.addEventListener('dragenter', (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes('Files')) return;
    dragDepth++;
    el.drop.classList.add('over');
  });
  document.addEventListener('dragleave', () => {
    if (dragDepth > 0 && --dragDepth === 0) el.drop.classList.remove('over');
  });
  document.addEventListener('dragover', (e) => { e.preventDefault(); });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    el.drop.classList.remove('over');
    const dt = e.dataTransfer;
    if (!dt) return;
    const f = firstImageFile(dt.files);
    if (f) { searchByImage(f, f.name); return; }
    // a result thumbnail dragged within the page: search by its id
    const uri = dt.getData('text/uri-list') || dt.getData('text/plain');
    const m = uri && /\/api\/items\/([^?#]+)\/image/.exec(uri);
    if (m) { searchById(decodeURIComponent(m[1])); return; }
    showError(dt.files && dt.files.length ? 'That file is not an image.' : 'Drop an image file (from your computer).');
  });

  document.addEventListener('paste', (e) => {
    const items = e.clipboardData ? Array.from(e.clipboardData.items || []) : [];
    for (const it of items) {
      if (it.kind === 'file' && it.type.startsWith('image/')) {
        const f = it.getAsFile();
        if (f) { e.preventDefault(); searchByImage(f, f.name && f.name !== 'image.png' ? f.name : 'pasted image'); return; }
      }
    }
    // plain text pasted into nothing: tell the user what paste is for
    if (!(e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement)) {
      showError('The clipboard holds no image: copy a picture, then paste it here.');
    }
  });

  el.k.addEventListener('change', () => { if (current.kind !== 'random') rerun(); });
  el.label.addEventListener('change', rerun);
  el.category.addEventListener('change', () => { if (current.kind !== 'random') rerun(); });
  el.random.addEventListener('click', showRandom);
  el.home.addEventListener('click', (e) => { e.preventDefault(); showRandom(); });

  // ---- start --------------------------------------------------------------------------------

  async function loadLabels() {
    try {
      const r = await fetch('/api/labels');
      if (!r.ok) return;
      const j = await r.json();
      const labels = Array.isArray(j.labels) ? j.labels : [];
      for (const l of labels) {
        if (!l || typeof l.label !== 'string') continue;
        const o = document.createElement('option');
        o.value = l.label;
        o.textContent = l.label + (typeof l.count === 'number' ? ' (' + l.count + ')' : '');
        el.label.appendChild(o);
      }
      el.label.disabled = labels.length === 0;
    } catch (e) { /* the filter stays at "all labels" */ }
  }

  async function loadStats() {
    try {
      const r = await fetch('/api/stats');
      if (!r.ok) return;
      const s = await r.json();
      const parts = [];
      if (typeof s.items === 'number') parts.push(s.items + ' images');
      if (s.model) parts.push('model ' + s.model);
      if (parts.length) el.stats.textContent = parts.join(' · ');
    } catch (e) { /* optional */ }
  }

  loadLabels();
  loadStats();
  showRandom();
})();
