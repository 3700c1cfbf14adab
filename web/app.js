// app.js — daed's browser page: pick a task, a model and an image, ask daed, show the answer.
// Plain JavaScript, no library; every request goes to the daed that served this page.
'use strict';

const $ = (id) => document.getElementById(id);

const TASKS = {
  denoise: { route: 'denoise', models: 'denoise', images: 1 },
  inpaint: { route: 'inpaint', models: 'inpaint', images: 1 },
  superres: { route: 'superres', models: 'superres', images: 1 },
  score: { route: 'score', models: 'score', images: 1 },
  encode: { route: 'encode', models: 'encode', images: 1 },
  interpolate: { route: 'interpolate', models: 'encode', images: 2 },
};

// Sample images (web/samples), offered for the tasks they suit.
const SAMPLES = [
  { file: 'digit-7-noisy.png', label: 'noisy digit 7, 28x28', tasks: ['denoise', 'score'] },
  { file: 'shoe-noisy.png', label: 'noisy shoe, 28x28', tasks: ['denoise', 'score'] },
  { file: 'photo-noisy.png', label: 'noisy colour photo, 260x200', tasks: ['denoise'] },
  { file: 'shoe.png', label: 'shoe, 28x28', tasks: ['inpaint', 'score', 'encode', 'interpolate'] },
  { file: 'pullover.png', label: 'pullover, 28x28', tasks: ['inpaint', 'score', 'encode', 'interpolate'] },
  { file: 'digit-7.png', label: 'digit 7, 28x28', tasks: ['inpaint', 'score', 'encode', 'interpolate'] },
  { file: 'digit-3.png', label: 'digit 3, 28x28', tasks: ['inpaint', 'score', 'encode', 'interpolate'] },
  { file: 'pullover-small.png', label: 'small pullover, 14x14', tasks: ['superres'] },
];

const state = {
  models: [],          // GET /v1/models .models
  defaults: {},        // GET /v1/models .defaults
  picked: false,       // the user chose the model by hand (no automatic switch then)
  img: { a: null, b: null }, // {blob, name, width, height, gray, bitmap}
  abort: null,
  job: null,           // Location of the job running now (/v1/jobs/{id}), or null
  urls: [],            // object URLs of the current answer, revoked on the next one
  zoom: 'fit',
};

// ---------------------------------------------------------------- the API key (this tab only)

function apiKey() {
  return sessionStorage.getItem('daed-key') || '';
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const k = apiKey();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

// ---------------------------------------------------------------- messages

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

// daed's error body {"error":{"code","message"}} as one line.
async function errorText(resp) {
  let detail = '';
  try {
    const j = await resp.json();
    detail = j.error && j.error.message ? `${j.error.code}: ${j.error.message}` : JSON.stringify(j);
  } catch (_) {
    detail = '(no JSON error body)';
  }
  let hint = '';
  if (resp.status === 401) hint = '\nThis daed was started with --api-key: enter the key under "API key".';
  return `HTTP ${resp.status} ${resp.statusText || ''} — ${detail}${hint}`;
}

// ---------------------------------------------------------------- models

async function loadModels() {
  let resp;
  try {
    resp = await fetch('/v1/models', { headers: authHeaders() });
  } catch (err) {
    showError('Cannot reach daed: ' + err.message);
    return;
  }
  if (!resp.ok) {
    showError('Listing the models failed: ' + (await errorText(resp)));
    if (resp.status === 401) {
      document.querySelector('details.key').open = true;
      $('key').focus();
    }
    state.models = [];
    fillModels();
    return;
  }
  const j = await resp.json();
  state.models = j.models || [];
  state.defaults = j.defaults || {};
  showError('');
  fillModels();
}

function task() {
  return $('task').value;
}

function modelsFor(t) {
  const need = TASKS[t].models;
  return state.models.filter((m) => m.tasks.includes(need));
}

function shapeText(s) {
  return `${s[0]}x${s[1]}x${s[2]}`;
}

function fillModels() {
  const t = task();
  const sel = $('model');
  const def = state.defaults[TASKS[t].models];
  sel.textContent = '';
  if (t === 'denoise') {
    const o = new Option('auto — daed picks by size', '');
    sel.add(o);
  }
  for (const m of modelsFor(t)) {
    const size = m.fully_convolutional ? 'any size' : `${m.input[2]}x${m.input[1]} only`;
    const o = new Option(`${m.name}${m.name === def ? ' (default)' : ''} — ${size}`, m.name);
    sel.add(o);
  }
  if (def) sel.value = def;
  state.picked = false;
  autoPick();
  showModelInfo();
}

function modelByName(name) {
  return state.models.find((m) => m.name === name);
}

function showModelInfo() {
  const m = modelByName($('model').value);
  const info = $('model-info');
  if (!state.models.length) {
    info.textContent = 'No model listed (see the message below).';
  } else if (!m) {
    info.textContent = 'daed chooses: the default model for its size, or a model that runs on ' +
      'any size (photo models for photos, grey or colour).';
  } else {
    const size = m.fully_convolutional
      ? `any size (multiples of ${m.size_div}), nominal ${shapeText(m.input)}`
      : `exactly ${shapeText(m.input)} (channels x height x width)`;
    info.textContent = `Tasks: ${m.tasks.join(', ')} · input ${size} · ` +
      `latent ${shapeText(m.latent)} · ${m.parameters.toLocaleString('en')} parameters`;
  }
}

// Denoise of an image the chosen model was not made for: let daed pick (auto), unless the
// user chose the model by hand.
function autoPick() {
  const a = state.img.a;
  if (task() !== 'denoise' || !a || state.picked) return;
  const def = modelByName(state.defaults.denoise);
  const fits = def && def.input[1] === a.height && def.input[2] === a.width;
  $('model').value = fits ? def.name : '';
  showModelInfo();
}

// ---------------------------------------------------------------- images in

function renderSamples() {
  const t = task();
  for (const slot of ['a', 'b']) {
    const box = $('samples-' + slot);
    box.textContent = '';
    for (const s of SAMPLES.filter((x) => x.tasks.includes(t))) {
      const b = document.createElement('button');
      b.type = 'button';
      b.title = s.label;
      b.setAttribute('aria-label', `sample: ${s.label}`);
      b.dataset.sample = s.file;
      const img = document.createElement('img');
      img.src = '/web/samples/' + s.file;
      img.alt = '';
      b.appendChild(img);
      b.addEventListener('click', () => loadSample(slot, s.file));
      box.appendChild(b);
    }
  }
}

async function loadSample(slot, file) {
  const resp = await fetch('/web/samples/' + file);
  if (!resp.ok) {
    showError(`Sample ${file}: HTTP ${resp.status}`);
    return;
  }
  await setImage(slot, await resp.blob(), file);
}

async function setImage(slot, blob, name) {
  if (!/^image\/(png|jpeg)$/.test(blob.type)) {
    showError(`${name}: ${blob.type || 'unknown type'}: daed takes PNG or JPEG images`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch (err) {
    showError(`${name}: the browser cannot decode it (${err.message}); daed may still`);
    bitmap = null;
  }
  const im = { blob, name, bitmap, width: bitmap ? bitmap.width : 0, height: bitmap ? bitmap.height : 0 };
  im.gray = bitmap ? isGray(bitmap) : true;
  state.img[slot] = im;
  showError('');
  if (slot === 'a') {
    drawInput(im);
    $('input-info').textContent = bitmap
      ? `A: ${name} · ${im.width}x${im.height} · ${im.gray ? 'grey' : 'colour'} · ` +
        `${(blob.size / 1024).toFixed(1)} KB`
      : `A: ${name} · ${(blob.size / 1024).toFixed(1)} KB`;
    autoPick();
  } else {
    const url = URL.createObjectURL(blob);
    $('input-b').src = url;
    $('input-b').hidden = false;
  }
}

function isGray(bitmap) {
  const c = document.createElement('canvas');
  const w = Math.min(bitmap.width, 256), h = Math.min(bitmap.height, 256);
  c.width = w; c.height = h;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, h).data;
  for (let i = 0; i < d.length; i += 4)
    if (Math.abs(d[i] - d[i + 1]) > 2 || Math.abs(d[i] - d[i + 2]) > 2) return false;
  return true;
}

function drawInput(im) {
  const c = $('input-canvas'), m = $('mask-canvas');
  $('input-empty').hidden = true;
  $('paint-wrap').hidden = false;
  c.width = m.width = im.width || 1;
  c.height = m.height = im.height || 1;
  if (im.bitmap) c.getContext('2d').drawImage(im.bitmap, 0, 0);
  const shown = Math.max(280, im.width) + 'px';
  c.style.width = m.style.width = shown;
  clearMask();
}

function wireDrop(slot) {
  const zone = $('drop-' + slot), input = $('file-' + slot);
  input.addEventListener('change', () => {
    if (input.files[0]) setImage(slot, input.files[0], input.files[0].name);
  });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) setImage(slot, f, f.name);
  });
}

// ---------------------------------------------------------------- the inpainting mask

let painting = false;

function clearMask() {
  const m = $('mask-canvas');
  m.getContext('2d').clearRect(0, 0, m.width, m.height);
}

function maskBlock() {
  const m = $('mask-canvas');
  const g = m.getContext('2d');
  g.fillStyle = 'rgba(255, 120, 0, 0.85)';
  const w = Math.max(1, Math.round(m.width / 2)), h = Math.max(1, Math.round(m.height / 2));
  g.fillRect(Math.floor((m.width - w) / 2), Math.floor((m.height - h) / 2), w, h);
}

function paintAt(e) {
  const m = $('mask-canvas');
  const r = m.getBoundingClientRect();
  const x = ((e.clientX - r.left) / r.width) * m.width;
  const y = ((e.clientY - r.top) / r.height) * m.height;
  const g = m.getContext('2d');
  g.fillStyle = 'rgba(255, 120, 0, 0.85)';
  g.beginPath();
  g.arc(x, y, Number($('brush').value) / 2 * Math.max(1, m.width / r.width), 0, 2 * Math.PI);
  g.fill();
}

function wireMask() {
  const m = $('mask-canvas');
  m.addEventListener('pointerdown', (e) => {
    if (task() !== 'inpaint') return;
    painting = true;
    m.setPointerCapture(e.pointerId);
    paintAt(e);
  });
  m.addEventListener('pointermove', (e) => { if (painting) paintAt(e); });
  m.addEventListener('pointerup', () => { painting = false; });
  m.addEventListener('pointercancel', () => { painting = false; });
  $('mask-block').addEventListener('click', maskBlock);
  $('mask-clear').addEventListener('click', clearMask);
  $('brush').addEventListener('input', () => { $('brush-out').value = $('brush').value; });
}

// Image A as a PNG whose alpha is 0 where the mask is painted (daed: missing pixels).
async function maskedPng() {
  const im = state.img.a;
  const c = document.createElement('canvas');
  c.width = im.width; c.height = im.height;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(im.bitmap, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height);
  const mk = $('mask-canvas').getContext('2d', { willReadFrequently: true })
    .getImageData(0, 0, c.width, c.height).data;
  let holes = 0;
  for (let i = 3; i < mk.length; i += 4)
    if (mk[i] > 0) { px.data[i] = 0; holes++; }
  if (!holes) return null;
  g.putImageData(px, 0, 0);
  return new Promise((ok) => c.toBlob(ok, 'image/png'));
}

// ---------------------------------------------------------------- asking daed

function pngBase64(im) {
  const c = document.createElement('canvas');
  c.width = im.width; c.height = im.height;
  c.getContext('2d').drawImage(im.bitmap, 0, 0);
  return c.toDataURL('image/png').split(',')[1];
}

function query(extra) {
  const p = new URLSearchParams();
  const model = $('model').value;
  if (model) p.set('model', model);
  if ($('resize').checked) p.set('resize', '1');
  const sigma = $('sigma').value.trim();
  if (task() === 'denoise' && sigma !== '') p.set('sigma', sigma);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

async function post(path, body, type, signal) {
  const t0 = performance.now();
  const resp = await fetch(path, {
    method: 'POST', body, signal, headers: authHeaders({ 'Content-Type': type }),
  });
  const out = resp.ok ? await resp.blob() : null;
  const ms = performance.now() - t0;
  return { resp, out, ms };
}

// ---------------------------------------------------------------- jobs (long requests)

const POLL_MS = 400;

function sleep(ms, signal) {
  return new Promise((ok, no) => {
    const t = setTimeout(ok, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      no(new DOMException('Cancelled', 'AbortError'));
    }, { once: true });
  });
}

// The progress bar: indeterminate (null) or a job's tiles done of total.
function showProgress(j) {
  const bar = $('busy'), txt = $('progress-text');
  if (!j || !j.tiles_total) {
    bar.removeAttribute('value');
    bar.removeAttribute('aria-valuetext');
    bar.setAttribute('aria-label', j ? `request ${j.status}` : 'request running');
    txt.textContent = j ? `job ${j.status}` : '';
    return;
  }
  const pct = Math.round((100 * j.tiles_done) / j.tiles_total);
  bar.max = j.tiles_total;
  bar.value = j.tiles_done;
  const words = `${j.status}: ${j.tiles_done} of ${j.tiles_total} tiles, ${pct}%`;
  bar.setAttribute('aria-label', `request ${words}`);
  bar.setAttribute('aria-valuetext', words);
  txt.textContent = `${j.tiles_done} / ${j.tiles_total} tiles · ${pct}%`;
}

async function jobGet(path, signal) {
  const resp = await fetch(path, { signal, headers: authHeaders() });
  if (!resp.ok) throw new Error('job status: ' + (await errorText(resp)));
  return resp.json();
}

// Poll the job at `loc` until it is finished, then fetch its answer (as `post` gives it)
// and free the job. Cancel (the signal) sends DELETE and ends with an AbortError whose
// `job` is daed's last status of the job.
async function followJob(loc, t0, signal) {
  state.job = loc;
  try {
    let j = await jobGet(loc, signal);
    while (j.status === 'queued' || j.status === 'running') {
      showProgress(j);
      await sleep(POLL_MS, signal);
      j = await jobGet(loc, signal);
    }
    showProgress(j);
    const resp = await fetch(j.result || loc + '/result', { signal, headers: authHeaders() });
    const out = resp.ok ? await resp.blob() : null;
    const r = { resp, out, ms: performance.now() - t0, job: j };
    if (!resp.ok) r.text = await errorText(resp); // read before the job is freed
    state.job = null;
    await fetch(loc, { method: 'DELETE', headers: authHeaders() }).catch(() => null);
    return r;
  } catch (err) {
    if (err.name === 'AbortError' && state.job) err.job = await cancelJob(loc);
    state.job = null;
    throw err;
  }
}

// DELETE the job: daed skips its remaining tiles. Its last status, or null.
async function cancelJob(loc) {
  try {
    const resp = await fetch(loc, { method: 'DELETE', headers: authHeaders() });
    return resp.ok ? await resp.json() : null;
  } catch (_) {
    return null;
  }
}

// An image larger than the model's nominal input (the chosen model, or for auto the
// default one) may run in tiles: it goes as a job (Prefer: respond-async), with progress
// while it runs, and Cancel stops it in daed. Smaller ones are asked directly. A daed
// without jobs answers 200 at once, handled as a direct answer.
function wantsJob(im) {
  const m = modelByName($('model').value) || modelByName(state.defaults[TASKS[task()].models]);
  return !m || !im.width || im.width * im.height > m.input[1] * m.input[2];
}

async function postMaybeJob(path, body, type, signal) {
  if (!wantsJob(state.img.a)) return post(path, body, type, signal);
  const t0 = performance.now();
  const resp = await fetch(path, {
    method: 'POST', body, signal,
    headers: authHeaders({ 'Content-Type': type, Prefer: 'respond-async' }),
  });
  const loc = resp.headers.get('Location');
  if (resp.status === 202 && loc) return followJob(loc, t0, signal);
  const out = resp.ok ? await resp.blob() : null;
  return { resp, out, ms: performance.now() - t0 };
}

function busy(on) {
  $('busy').hidden = !on;
  $('run').disabled = on;
  $('cancel').disabled = !on;
  document.body.classList.toggle('busy', on);
  if (on) showProgress(null);
  else $('progress-text').textContent = '';
}

function resetAnswer() {
  for (const u of state.urls) URL.revokeObjectURL(u);
  state.urls = [];
  for (const id of ['compare', 'score-view', 'strip-view', 'latent-view']) $(id).hidden = true;
  $('meta').textContent = '';
  showError('');
}

function keep(blob) {
  const u = URL.createObjectURL(blob);
  state.urls.push(u);
  return u;
}

function showMeta(r, what) {
  const model = r.resp.headers.get('X-Model') || $('model').value || '(daed\'s pick)';
  const job = r.job ? ` · job of ${r.job.tiles_total} tile${r.job.tiles_total === 1 ? '' : 's'}` : '';
  $('meta').textContent = `${r.resp.status} · ${r.ms.toFixed(1)} ms · X-Model: ${model}` +
    job + (what ? ' · ' + what : '');
}

async function run(e) {
  e.preventDefault();
  const t = task();
  const need = TASKS[t].images;
  if (!state.img.a || (need === 2 && !state.img.b)) {
    showError(need === 2 ? 'Pick two images, A and B.' : 'Pick an image first (or a sample).');
    return;
  }
  const drawn = t === 'inpaint' || t === 'interpolate'; // the page re-encodes these
  if (drawn && (!state.img.a.bitmap || (need === 2 && !state.img.b.bitmap))) {
    showError('This browser cannot decode the image, so it cannot paint or re-encode it: ' +
      'use a PNG or JPEG it can show.');
    return;
  }
  resetAnswer();
  const ctl = new AbortController();
  state.abort = ctl;
  busy(true);
  try {
    await ({ interpolate: runInterpolate, encode: runEncode, score: runScore }[t] || runImage)(ctl.signal);
  } catch (err) {
    showError(err.name === 'AbortError' ? cancelledText(err.job) : 'Request failed: ' + err.message);
  } finally {
    state.abort = null;
    busy(false);
  }
}

function cancelledText(j) {
  if (!j) return 'Cancelled.';
  const tiles = j.tiles_total ? ` after ${j.tiles_done} of ${j.tiles_total} tiles` : '';
  return `Cancelled: daed's job ${j.status}${tiles}.`;
}

async function runImage(signal) {
  const t = task();
  let body = state.img.a.blob;
  if (t === 'inpaint') {
    body = await maskedPng();
    if (!body) {
      showError('Paint the hole first (or press "Centre block").');
      return;
    }
  }
  const r = await postMaybeJob(`/v1/${TASKS[t].route}${query()}`, body, body.type, signal);
  if (!r.resp.ok) {
    showError(r.text || (await errorText(r.resp)));
    return;
  }
  const after = keep(r.out);
  const before = keep(body);
  showMeta(r, `${r.out.size} bytes ${r.out.type}`);
  showCompare(before, after, `daed-${t}.png`);
}

async function runScore(signal) {
  const body = state.img.a.blob;
  const r = await post(`/v1/score${query({ heatmap: '1' })}`, body, body.type, signal);
  if (!r.resp.ok) {
    showError(await errorText(r.resp));
    return;
  }
  const j = JSON.parse(await r.out.text());
  showMeta(r, '');
  $('meta').textContent = $('meta').textContent.replace('(daed\'s pick)', j.model);
  const max = Math.max(j.threshold * 2, j.score * 1.1, 1e-12);
  $('gauge-fill').style.width = `${Math.min(100, (j.score / max) * 100)}%`;
  $('gauge-mark').style.left = `${(j.threshold / max) * 100}%`;
  $('gauge').setAttribute('aria-label', `score ${j.score} against threshold ${j.threshold}`);
  const facts = $('score-facts');
  facts.textContent = '';
  const row = (k, v, cls) => {
    const dt = document.createElement('dt'), dd = document.createElement('dd');
    dt.textContent = k; dd.textContent = v;
    if (cls) dd.className = cls;
    facts.append(dt, dd);
  };
  row('verdict', j.is_anomaly ? 'unusual (score above the threshold)' : 'usual (below the threshold)',
    j.is_anomaly ? 'bad' : 'good');
  row('score', `${fmt(j.score)} (${j.score_kind || 'mse'})`);
  row('threshold', fmt(j.threshold));
  row('percentile', j.percentile == null ? 'no calibration'
    : `${j.percentile.toFixed(1)} — more unusual than ${j.percentile.toFixed(1)}% of the calibration images`);
  if (j.percentile != null) {
    const m = document.createElement('meter');
    m.min = 0; m.max = 100; m.low = 90; m.high = 99; m.optimum = 0; m.value = j.percentile;
    m.setAttribute('aria-label', `percentile ${j.percentile.toFixed(1)} of 100`);
    facts.lastElementChild.prepend(m, ' ');
  }
  $('heat-base').src = keep(state.img.a.blob);
  if (j.heatmap) {
    $('heat-map').src = await heatOverlay(j.heatmap);
    row('heatmap max', fmt(j.heatmap_max));
  }
  $('score-view').hidden = false;
}

function fmt(v) {
  return typeof v === 'number' ? v.toPrecision(4) : String(v);
}

// The gray heatmap PNG (base64) as a red overlay whose opacity is the error.
async function heatOverlay(b64) {
  const bin = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const bm = await createImageBitmap(new Blob([bin], { type: 'image/png' }));
  const c = document.createElement('canvas');
  c.width = bm.width; c.height = bm.height;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(bm, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height);
  for (let i = 0; i < d.data.length; i += 4) {
    const v = d.data[i];
    d.data[i] = 255; d.data[i + 1] = 40; d.data[i + 2] = 0; d.data[i + 3] = v;
  }
  g.putImageData(d, 0, 0);
  const blob = await new Promise((ok) => c.toBlob(ok, 'image/png'));
  return keep(blob);
}

async function runEncode(signal) {
  const body = state.img.a.blob;
  const r = await post(`/v1/encode${query()}`, body, body.type, signal);
  if (!r.resp.ok) {
    showError(await errorText(r.resp));
    return;
  }
  const j = JSON.parse(await r.out.text());
  const d = await post(`/v1/decode${query()}`, JSON.stringify({ latent: j.latent }),
    'application/json', signal);
  if (!d.resp.ok) {
    showError('decode: ' + (await errorText(d.resp)));
    return;
  }
  showMeta(r, `latent ${j.shape.join('x')} · decode ${d.ms.toFixed(1)} ms`);
  $('meta').textContent = $('meta').textContent.replace('(daed\'s pick)', j.model);
  $('latent-shape').textContent = `${j.shape.join('x')} = ${j.latent.length} values; ` +
    'the answer below is its decoding';
  drawLatent(j.latent);
  $('latent-view').hidden = false;
  showCompare(keep(body), keep(d.out), 'daed-decoded.png');
}

function drawLatent(v) {
  const box = $('latent-bars');
  box.textContent = '';
  const c = document.createElement('canvas');
  const n = Math.min(v.length, 512);
  c.width = Math.max(n * 4, 64); c.height = 80;
  c.style.width = '100%'; c.style.height = '80px';
  const g = c.getContext('2d');
  const m = Math.max(...v.slice(0, n).map(Math.abs), 1e-9);
  g.fillStyle = '#1f4e79';
  for (let i = 0; i < n; i++) {
    const h = (v[i] / m) * 38;
    g.fillRect(i * (c.width / n), 40 - Math.max(h, 0), Math.max(1, c.width / n - 1), Math.abs(h));
  }
  box.appendChild(c);
}

async function runInterpolate(signal) {
  const steps = Number($('steps').value);
  const body = JSON.stringify({
    images: [{ png: pngBase64(state.img.a) }, { png: pngBase64(state.img.b) }], steps,
  });
  const r = await post(`/v1/interpolate${query()}`, body, 'application/json', signal);
  if (!r.resp.ok) {
    showError(await errorText(r.resp));
    return;
  }
  showMeta(r, `${steps} steps, ${r.out.size} bytes`);
  const url = keep(r.out);
  const strip = $('strip');
  strip.src = url;
  strip.onload = () => { strip.style.width = Math.min(strip.naturalWidth * 3, 1100) + 'px'; };
  $('download-strip').href = url;
  $('strip-view').hidden = false;
}

// ---------------------------------------------------------------- the before/after view

function showCompare(before, after, filename) {
  $('cmp-before').src = before;
  $('cmp-after').src = after;
  $('download').href = after;
  $('download').download = filename;
  $('compare').hidden = false;
  setZoom(state.zoom);
  setSplit();
}

function setSplit() {
  const v = Number($('split').value);
  $('before-clip').style.clipPath = `inset(0 ${100 - v}% 0 0)`;
  $('divider').style.left = `calc(${v}% - 1px)`;
}

function setZoom(z) {
  state.zoom = z;
  const box = $('compare-box'), after = $('cmp-after');
  box.classList.toggle('fit', z === 'fit');
  // fit: the panel's width, at most 560 pixels (small images scaled up, pixelated)
  const apply = () => {
    const fit = Math.max(64, Math.min($('compare').clientWidth - 2, 560));
    after.style.width = `${z === 'fit' ? fit : after.naturalWidth * Number(z)}px`;
  };
  if (after.complete) apply(); else after.onload = apply;
  for (const b of document.querySelectorAll('[data-zoom]'))
    b.setAttribute('aria-pressed', String(b.dataset.zoom === z));
}

// ---------------------------------------------------------------- the form

function onTask() {
  const t = task();
  const two = TASKS[t].images === 2;
  $('slot-b').hidden = !two;
  document.querySelector('.two').hidden = !two;
  $('steps-row').hidden = t !== 'interpolate';
  $('sigma-row').hidden = t !== 'denoise';
  $('mask-tools').hidden = t !== 'inpaint';
  $('mask-canvas').hidden = t !== 'inpaint';
  $('input-b').hidden = !two || !state.img.b;
  renderSamples();
  fillModels();
  resetAnswer();
}

function init() {
  const key = $('key');
  key.value = apiKey();
  key.addEventListener('change', () => {
    sessionStorage.setItem('daed-key', key.value.trim());
    loadModels();
  });
  $('task').addEventListener('change', onTask);
  $('model').addEventListener('change', () => { state.picked = true; showModelInfo(); });
  $('form').addEventListener('submit', run);
  $('cancel').addEventListener('click', () => state.abort && state.abort.abort());
  $('split').addEventListener('input', setSplit);
  $('steps').addEventListener('input', () => { $('steps-out').value = $('steps').value; });
  $('heat-alpha').addEventListener('input', () => {
    $('heat-map').style.opacity = String(Number($('heat-alpha').value) / 100);
  });
  for (const b of document.querySelectorAll('[data-zoom]'))
    b.addEventListener('click', () => setZoom(b.dataset.zoom));
  window.addEventListener('resize', () => { if (!$('compare').hidden) setZoom(state.zoom); });
  $('heat-map').style.opacity = String(Number($('heat-alpha').value) / 100);
  wireDrop('a');
  wireDrop('b');
  wireMask();
  onTask();
  loadModels();
}

document.addEventListener('DOMContentLoaded', init);
