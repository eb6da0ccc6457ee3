// The page of `tailor serve` (docs/serve.md): draw or upload an item and compare what each loaded
// run predicts, with a saliency overlay; browse the test set through a run's confusion matrix.
// Plain script, no build step; vega, vegaLite and vegaEmbed are globals from the <script> tags.
'use strict';

const SIDE = 28;              // model input is 28x28 grey
const TOP_K = 5;              // bars per chart
const THROTTLE_MS = 150;      // at most one drawing prediction per this while the pen moves
const CELL_LIMIT = 60;        // images shown for one confusion cell

const $ = (id) => document.getElementById(id);
const state = {
  runs: [],                   // from /api/runs
  classes: [],
  selected: new Set(),        // run ids ticked in #runs
  source: null,               // what to classify: {kind: 'drawing'} or {kind, blob, convert, label}
  inFlight: false,            // one prediction request at a time ...
  pending: false,             // ... and at most one more, sent with the newest source
  views: new Map(),           // run id -> vega View of its chart
  predictions: 0,
  confusion: null,            // the last /api/confusion answer shown
};

// ---------------------------------------------------------------------------------------------
// Errors and fetching

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

// fetch that resolves to parsed JSON, or throws an Error carrying the server's {"error": ...} line.
async function fetchJson(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error('cannot reach the server (' + url + '): ' + e.message);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    if (response.ok) throw new Error(url + ': the answer is not JSON');
  }
  if (!response.ok) {
    const why = body && body.error ? body.error : response.statusText;
    const err = new Error(why + ' (HTTP ' + response.status + ')');
    err.status = response.status;
    throw err;
  }
  return body;
}

// Nothing may escape as an uncaught exception: whatever slips through is shown, not thrown.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showError(String(event.reason && event.reason.message ? event.reason.message : event.reason));
});

// ---------------------------------------------------------------------------------------------
// Runs

function formatWeights(n) {
  if (typeof n !== 'number') return '?';
  if (n >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return String(n);
}

function runMeta(run) {
  const acc = typeof run.test_acc === 'number' ? run.test_acc.toFixed(2) + '% test' : 'no test accuracy';
  return run.model + ' · ' + run.widths + ' · ' + formatWeights(run.weights) + ' weights · ' + acc;
}

function runShortMeta(run) {
  const acc = typeof run.test_acc === 'number' ? run.test_acc.toFixed(2) + '% test' : '';
  return [run.model, formatWeights(run.weights) + ' weights', acc].filter(Boolean).join(' · ');
}

async function loadRuns() {
  const data = await fetchJson('/api/runs');
  state.runs = data.runs || [];
  state.classes = state.runs.length ? state.runs[0].classes : [];
  const list = $('runs');
  list.replaceChildren();
  if (!state.runs.length) {
    list.textContent = 'The server has no runs loaded.';
    return;
  }
  for (const run of state.runs) {
    state.selected.add(run.id);
    const label = document.createElement('label');
    label.className = 'run';
    label.dataset.run = run.id;
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = true;
    box.value = run.id;
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(run.id); else state.selected.delete(run.id);
      requestPrediction();
    });
    const text = document.createElement('span');
    const name = document.createElement('div');
    name.className = 'run-name';
    name.textContent = run.name;
    const meta = document.createElement('div');
    meta.className = 'run-meta';
    meta.textContent = runMeta(run);
    text.append(name, meta);
    label.append(box, text);
    list.append(label);
  }
  const select = $('confusion-run');
  select.replaceChildren();
  for (const run of state.runs) {
    const option = document.createElement('option');
    option.value = run.id;
    option.textContent = run.name + (run.test_set === false ? ' (no test set)' : '');
    select.append(option);
  }
  select.addEventListener('change', () => loadConfusion(select.value).catch((e) => showError(e.message)));
  await loadConfusion(select.value);
}

function selectedRunIds() {
  return state.runs.map((r) => r.id).filter((id) => state.selected.has(id));
}

// ---------------------------------------------------------------------------------------------
// Drawing

const draw = $('draw');
const pen = draw.getContext('2d');

function clearDrawing() {
  pen.fillStyle = '#000';
  pen.fillRect(0, 0, draw.width, draw.height);
}

function canvasPoint(event) {
  const box = draw.getBoundingClientRect();
  return [(event.clientX - box.left) * draw.width / box.width,
          (event.clientY - box.top) * draw.height / box.height];
}

let stroke = null;            // last point of the stroke in progress
let lastSent = 0;
let throttleTimer = null;

function drawingChanged() {
  state.source = { kind: 'drawing' };
  $('source').textContent = 'Your drawing.';
  const wait = lastSent + THROTTLE_MS - performance.now();
  if (wait <= 0) {
    lastSent = performance.now();
    requestPrediction();
  } else if (!throttleTimer) {
    throttleTimer = setTimeout(() => {
      throttleTimer = null;
      lastSent = performance.now();
      requestPrediction();
    }, wait);
  }
}

draw.addEventListener('pointerdown', (event) => {
  if (event.button !== 0) return;
  draw.setPointerCapture(event.pointerId);
  if (state.source && state.source.kind !== 'drawing') {
    clearDrawing();   // a new drawing replaces a shown upload or test image
  }
  stroke = canvasPoint(event);
  pen.fillStyle = '#fff';
  pen.beginPath();
  pen.arc(stroke[0], stroke[1], pen.lineWidth / 2, 0, 2 * Math.PI);
  pen.fill();
  drawingChanged();
});

draw.addEventListener('pointermove', (event) => {
  if (!stroke) return;
  const point = canvasPoint(event);
  pen.beginPath();
  pen.moveTo(stroke[0], stroke[1]);
  pen.lineTo(point[0], point[1]);
  pen.stroke();
  stroke = point;
  drawingChanged();
});

function endStroke() {
  if (!stroke) return;
  stroke = null;
  clearTimeout(throttleTimer);
  throttleTimer = null;
  lastSent = performance.now();
  requestPrediction();
}
draw.addEventListener('pointerup', endStroke);
draw.addEventListener('pointercancel', endStroke);

function setupPen() {
  pen.lineWidth = 22;         // about two pixels of the 28x28 image, like the data set's strokes
  pen.lineCap = 'round';
  pen.lineJoin = 'round';
  pen.strokeStyle = '#fff';
  clearDrawing();
}

// Shows a picture (upload or test image) on the drawing canvas, fitted and centred.
function showOnCanvas(bitmap, smooth) {
  clearDrawing();
  const scale = Math.min(draw.width / bitmap.width, draw.height / bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  pen.imageSmoothingEnabled = smooth;
  pen.drawImage(bitmap, (draw.width - w) / 2, (draw.height - h) / 2, w, h);
  pen.imageSmoothingEnabled = true;
}

$('clear').addEventListener('click', () => {
  clearDrawing();
  state.source = null;
  $('source').textContent = 'Draw with the mouse (a thick white pen on black).';
  blankConverted();
  clearResults();
});

$('upload').addEventListener('change', async (event) => {
  const file = event.target.files && event.target.files[0];
  event.target.value = '';    // picking the same file again fires change again
  if (!file) return;
  state.source = { kind: 'upload', blob: file, convert: true, label: 'Uploaded ' + file.name };
  $('source').textContent = state.source.label + ' (' + Math.round(file.size / 1024) + ' KB).';
  try {
    showOnCanvas(await createImageBitmap(file), true);
  } catch (e) {
    clearDrawing();           // the browser cannot show it; the server will say what is wrong
  }
  requestPrediction();
});

// ---------------------------------------------------------------------------------------------
// Predictions

function canvasBlob() {
  return new Promise((resolve, reject) => {
    draw.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('cannot encode the drawing'))), 'image/png');
  });
}

// Asks the server about the current source; while a request is out, remembers to ask once more.
async function requestPrediction() {
  if (!state.source) return;
  if (state.inFlight) {
    state.pending = true;
    return;
  }
  state.inFlight = true;
  try {
    do {
      state.pending = false;
      await predictOnce(state.source);
    } while (state.pending && state.source);
  } catch (e) {
    showError(e.message);
  } finally {
    state.inFlight = false;
  }
}

async function predictOnce(source) {
  const ids = selectedRunIds();
  if (!ids.length) {
    clearResults('Tick at least one run.');
    return;
  }
  const body = source.kind === 'drawing' ? await canvasBlob() : source.blob;
  const query = 'runs=' + ids.join(',') + '&saliency=1' + (source.convert === false ? '&convert=0' : '');
  const answer = await fetchJson('/api/predict?' + query, {
    method: 'POST',
    headers: { 'Content-Type': body.type || 'application/octet-stream' },
    body,
  });
  if (!state.source) return;   // cleared while the request was out
  clearError();
  paintPicture($('converted'), answer.image, null);
  await renderResults(answer);
  state.predictions += 1;
  document.body.dataset.source = source.kind;
  document.body.dataset.predictions = String(state.predictions);
}

function clearResults(message) {
  for (const view of state.views.values()) view.finalize();
  state.views.clear();
  const results = $('results');
  const p = document.createElement('p');
  p.className = 'muted placeholder';
  p.textContent = message || 'Draw or upload something to see what each run thinks it is.';
  results.replaceChildren(p);
}

function blankConverted() {
  const c = $('converted');
  const g = c.getContext('2d');
  g.fillStyle = '#000';
  g.fillRect(0, 0, c.width, c.height);
}

// Paints a converted picture {width, height, channels, pixels} onto a canvas, nearest neighbour:
// pixels 0-255, one plane (grey) or three (red, green, blue planes in turn), rows top first. With
// saliency (0-1) the picture is shown in dimmed grey with the saliency in red on top:
// colour = grey * (1 - a) + red * a with a = saliency.
function paintPicture(canvas, picture, saliency) {
  const { width, height, pixels } = picture;
  const plane = width * height;
  const colour = picture.channels === 3;
  const small = document.createElement('canvas');
  small.width = width;
  small.height = height;
  const g = small.getContext('2d');
  const image = g.createImageData(width, height);
  for (let i = 0; i < plane; i++) {
    let r = pixels[i];
    let gr = colour ? pixels[plane + i] : pixels[i];
    let b = colour ? pixels[2 * plane + i] : pixels[i];
    if (saliency) {
      const grey = (colour ? 0.299 * r + 0.587 * gr + 0.114 * b : r) * 0.55;   // dim the item so the overlay stands out
      const a = Math.min(1, Math.max(0, saliency[i]));
      r = grey * (1 - a) + 255 * a;
      gr = grey * (1 - a) + 40 * a;
      b = grey * (1 - a) + 30 * a;
    }
    image.data[4 * i] = r;
    image.data[4 * i + 1] = gr;
    image.data[4 * i + 2] = b;
    image.data[4 * i + 3] = 255;
  }
  g.putImageData(image, 0, 0);
  const big = canvas.getContext('2d');
  big.imageSmoothingEnabled = false;
  big.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function chartValues(result) {
  const classes = state.classes.length === result.probs.length
    ? state.classes : result.probs.map((_, i) => 'class ' + i);
  return result.probs
    .map((p, i) => ({ class: classes[i], prob: p, predicted: i === result.predicted_index }))
    .sort((a, b) => b.prob - a.prob)
    .slice(0, TOP_K);
}

function chartSpec(values) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: 'container',       // as wide as the card leaves it
    height: TOP_K * 22,
    autosize: { type: 'fit-x', contains: 'padding' },
    padding: { left: 4, right: 40, top: 4, bottom: 4 },   // room for the label of a full bar
    background: null,
    data: { name: 'top', values },
    encoding: {
      y: { field: 'class', type: 'nominal', sort: { field: 'prob', op: 'max', order: 'descending' }, title: null, axis: { labelLimit: 90 } },
      x: { field: 'prob', type: 'quantitative', title: 'probability', stack: null,
           scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 5 } },
      tooltip: [{ field: 'class', title: 'class' },
                { field: 'prob', title: 'probability', format: '.2%' }],
    },
    layer: [
      { mark: { type: 'bar', cornerRadiusEnd: 2 },
        encoding: { color: { field: 'predicted', type: 'nominal', legend: null,
                             scale: { domain: [true, false], range: ['#2f6fdf', '#a9b4c8'] } } } },
      { mark: { type: 'text', align: 'left', dx: 3, fontSize: 11, color: '#1d2330' },
        encoding: { text: { field: 'prob', format: '.1%' } } },
    ],
    config: { view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11 } },
  };
}

function resultElement(result) {
  const results = $('results');
  let el = results.querySelector('.result[data-run="' + CSS.escape(result.run) + '"]');
  if (el) return el;
  el = document.createElement('div');
  el.className = 'result';
  el.dataset.run = result.run;
  const run = state.runs.find((r) => r.id === result.run);
  el.innerHTML =
    '<div class="head"><span class="name"></span><span class="meta"></span></div>' +
    '<div class="verdict"><div class="predicted"></div>' +
    '<canvas class="saliency" width="140" height="140"></canvas>' +
    '<div class="caption">saliency of the predicted class (red)</div></div>' +
    '<div class="chart"></div>';
  el.querySelector('.name').textContent = result.name;
  el.querySelector('.meta').textContent = run ? runShortMeta(run) : '';
  return el;
}

async function renderResults(answer) {
  const results = $('results');
  const wanted = new Set(answer.results.map((r) => r.run));
  results.querySelectorAll('.placeholder').forEach((p) => p.remove());
  for (const el of results.querySelectorAll('.result')) {
    if (!wanted.has(el.dataset.run)) {
      const view = state.views.get(el.dataset.run);
      if (view) view.finalize();
      state.views.delete(el.dataset.run);
      el.remove();
    }
  }
  const renders = answer.results.map(async (result) => {
    const el = resultElement(result);
    results.append(el);         // keeps the cards in the order of the answer
    el.querySelector('.predicted').textContent = result.predicted;
    paintPicture(el.querySelector('.saliency'), answer.image, result.saliency || null);
    const values = chartValues(result);
    const view = state.views.get(result.run);
    if (view) {
      // Same chart, new numbers: swap the data instead of building a new view.
      await view.change('top', vega.changeset().remove(() => true).insert(values)).runAsync();
    } else {
      const embedded = await vegaEmbed(el.querySelector('.chart'), chartSpec(values),
                                       { actions: false, renderer: 'svg' });
      state.views.set(result.run, embedded.view);
    }
    el.dataset.rendered = 'true';
  });
  await Promise.all(renders);
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix and browsing the test set

async function loadConfusion(runId) {
  const table = $('confusion');
  table.replaceChildren();
  $('confusion-summary').textContent = '';
  $('cell-images').replaceChildren();
  $('cell-caption').textContent = 'Click a cell to see its test images (the most confident first).';
  state.confusion = null;
  if (runId === undefined || runId === '') return;
  let data;
  try {
    data = await fetchJson('/api/confusion?run=' + encodeURIComponent(runId));
  } catch (e) {
    $('confusion-summary').textContent = e.message;
    showError(e.message);
    return;
  }
  if ($('confusion-run').value !== runId) return;   // another run was picked meanwhile
  state.confusion = data;
  $('confusion-summary').textContent =
    data.count + ' test images, ' + Number(data.accuracy).toFixed(2) + '% correct';
  buildConfusionTable(table, data);
}

function buildConfusionTable(table, data) {
  const classes = data.classes;
  const head = document.createElement('thead');
  const headRow = document.createElement('tr');
  const corner = document.createElement('th');
  corner.className = 'corner';
  corner.textContent = 'true \u2193  predicted \u2192';
  headRow.append(corner);
  for (const name of classes) {
    const th = document.createElement('th');
    th.className = 'pred';
    th.scope = 'col';
    th.textContent = name;
    headRow.append(th);
  }
  head.append(headRow);
  const body = document.createElement('tbody');
  data.counts.forEach((row, t) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.className = 'true';
    th.scope = 'row';
    th.textContent = classes[t];
    tr.append(th);
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      const td = document.createElement('td');
      td.dataset.true = String(t);
      td.dataset.pred = String(p);
      td.textContent = String(count);
      const share = total ? count / total : 0;
      // Right answers in blue, mistakes in red; strength = share of the true class's images.
      const alpha = count ? 0.08 + 0.92 * Math.sqrt(share) : 0;
      td.style.background = t === p ? `rgba(47, 111, 223, ${alpha})` : `rgba(214, 69, 50, ${alpha})`;
      if (alpha > 0.55) td.style.color = '#fff';
      if (!count) td.classList.add('zero');
      td.title = `true ${classes[t]}, predicted ${classes[p]}: ${count} images ` +
                 `(${(100 * share).toFixed(1)}% of ${classes[t]})`;
      td.addEventListener('click', () => showCell(t, p).catch((e) => showError(e.message)));
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(head, body);
}

async function showCell(t, p) {
  const data = state.confusion;
  if (!data) return;
  const runId = data.run;
  for (const td of $('confusion').querySelectorAll('td.selected')) td.classList.remove('selected');
  const td = $('confusion').querySelector(`td[data-true="${t}"][data-pred="${p}"]`);
  if (td) td.classList.add('selected');
  const cell = await fetchJson(`/api/cell?run=${encodeURIComponent(runId)}&true=${t}&pred=${p}&limit=${CELL_LIMIT}`);
  if (state.confusion !== data) return;   // the matrix changed while we waited
  clearError();
  const names = data.classes;
  const shown = cell.images.length;
  let caption = `${names[t]} predicted as ${names[p]}: ${cell.total} image${cell.total === 1 ? '' : 's'}`;
  if (shown < cell.total) caption += ` (showing ${shown})`;
  if (shown) caption += '. Click one to classify it.';
  $('cell-caption').textContent = caption;
  const images = cell.images.map((item) => {
    const img = document.createElement('img');
    img.src = `/api/testimage/${item.index}.png?scale=2`;
    img.alt = `test image ${item.index}`;
    img.title = `test image ${item.index}: ${(100 * item.prob).toFixed(1)}% ${names[p]}`;
    img.dataset.index = String(item.index);
    img.addEventListener('click', () => predictTestImage(item.index).catch((e) => showError(e.message)));
    return img;
  });
  $('cell-images').replaceChildren(...images);
}

// Classifies a test image exactly as stored (28x28, convert=0), and shows it on the drawing canvas.
async function predictTestImage(index) {
  const response = await fetch(`/api/testimage/${index}.png?scale=1`);
  if (!response.ok) {
    let why = response.statusText;
    try { why = (await response.json()).error || why; } catch (e) { /* not JSON */ }
    throw new Error(`test image ${index}: ${why} (HTTP ${response.status})`);
  }
  const blob = await response.blob();
  state.source = { kind: 'testimage', blob, convert: false, label: 'Test image ' + index };
  $('source').textContent = state.source.label + ' (used as is, 28\u00d728).';
  showOnCanvas(await createImageBitmap(blob), false);
  $('input-section').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  await requestPrediction();
}

// ---------------------------------------------------------------------------------------------

$('error-close').addEventListener('click', clearError);
setupPen();
blankConverted();
loadRuns().catch((e) => {
  $('runs').textContent = 'Could not load the runs.';
  showError(e.message);
});
