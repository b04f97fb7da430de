/* bump map page for road crews: defects on a map and in a ranked table, a defect's detail with its hits and
 * history, crew decisions (PATCH with a crew token) and the roughness / coverage cell layers.
 *
 * Plain ES2019, no build step; Leaflet 1.9.4 is vendored under static/vendor/leaflet. Every URL is relative to
 * the page, so nothing is fetched from another host unless /v1/config names a tile server.
 *
 * API used: GET v1/config, GET v1/defects.geojson?status&kind&min_confidence&limit, GET v1/defects/{id},
 * PATCH v1/defects/{id} {status, note}, GET v1/roughness.geojson, GET v1/coverage.geojson.
 * Errors arrive as {"error": {"code", "message", "field"?}}.
 */
(() => {
  'use strict';

  // Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
  const KIND_COLOURS = {
    pothole: '#d55e00',
    cover: '#cc79a7',
    rough: '#e69f00',
    unknown: '#7f7f7f',
    speed_bump: '#0072b2',
    joint: '#009e73',
  };
  const KIND_LABELS = { speed_bump: 'speed bump' };
  const STATUS_LABELS = { likely_repaired: 'likely repaired' };
  const DEFECT_LIMIT = 5000;                       // the API's maximum page size
  const TOKEN_KEY = 'bump.crewToken';
  const IRI_STOPS = [[1.5, '#1a9850'], [2.7, '#fee08b'], [4.0, '#f46d43'], [6.0, '#a50026']];   // m/km (FHWA)
  const COVERAGE_STOPS = [[0, '#c6dbef'], [1, '#08306b']];

  const $ = (selector) => document.querySelector(selector);

  const state = {
    config: null,             // GET v1/config: {tile_url, public_read}
    map: null,
    defectLayer: null,
    markers: new Map(),       // defect id -> L.CircleMarker
    defects: [],              // GeoJSON features in rank order
    selectedId: null,
    fitted: false,
    cellLayers: { roughness: null, coverage: null },
    legend: null,
    busy: 0,
    listSeq: 0,
    detailSeq: 0,
  };

  // ------------------------------------------------------------------------------------------------ helpers

  /** Create an element; `props` go to properties (className, textContent, dataset...) or attributes. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'style') Object.assign(node.style, value);
      else if (key in node && typeof value !== 'string') node[key] = value;
      else if (key === 'className' || key === 'textContent' || key === 'title') node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const label = (kind) => KIND_LABELS[kind] || kind || 'unknown';
  const statusLabel = (status) => STATUS_LABELS[status] || status || '–';

  function num(value, digits) {
    return value === null || value === undefined || Number.isNaN(Number(value)) ? '–' : Number(value).toFixed(digits);
  }

  function pct(value) {
    return value === null || value === undefined ? '–' : `${Math.round(Number(value) * 100)} %`;
  }

  /** ISO 8601 UTC ("2026-05-09T17:18:26Z") -> "2026-05-09 17:18". */
  function when(iso) {
    if (!iso) return '–';
    return String(iso).replace('T', ' ').replace(/(:\d\d)?(\.\d+)?(Z|[+-]\d\d:\d\d)$/, '');
  }

  /** Colour at `value` on a ramp of [value, '#rrggbb'] stops (clamped at both ends). */
  function ramp(stops, value) {
    if (!(value > stops[0][0])) return stops[0][1];
    for (let i = 1; i < stops.length; i += 1) {
      const [v1, c1] = stops[i];
      if (value <= v1) {
        const [v0, c0] = stops[i - 1];
        const f = (value - v0) / (v1 - v0);
        const mix = (k) => Math.round(parseInt(c0.substr(k, 2), 16) * (1 - f) + parseInt(c1.substr(k, 2), 16) * f);
        return `rgb(${mix(1)}, ${mix(3)}, ${mix(5)})`;
      }
    }
    return stops[stops.length - 1][1];
  }

  /** Marker radius [px] from priority: logarithmic, so one busy deep pothole does not hide the rest. */
  const radiusFor = (priority) => 4 + 4 * Math.log1p(Math.max(Number(priority) || 0, 0) / 5);

  function setBusy(delta) {
    state.busy += delta;
    document.body.dataset.busy = String(state.busy);
  }

  function showError(node, error) {
    node.textContent = error ? messageOf(error) : '';
    node.hidden = !error;
  }

  function messageOf(error) {
    if (error instanceof ApiError) {
      const field = error.field ? ` (field: ${error.field})` : '';
      return `${error.status} ${error.code}: ${error.message}${field}`;
    }
    return String(error && error.message ? error.message : error);
  }

  // ---------------------------------------------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }
  }

  function token() {
    return $('#token').value.trim();
  }

  /** fetch a relative API path as JSON; non-2xx -> ApiError from the JSON error body. The crew token goes with
   * every request; when reads are public and a read is refused with 401 (a wrong or revoked token), the read is
   * retried without it and the token's problem is shown next to the field. */
  async function api(path, { method = 'GET', body } = {}) {
    const sendToken = Boolean(token());
    try {
      return await request(path, method, body, sendToken);
    } catch (error) {
      const publicRead = !state.config || state.config.public_read !== false;
      if (!(error instanceof ApiError && error.status === 401 && sendToken && method === 'GET' && publicRead)) {
        throw error;
      }
      showError($('#token-error'), new Error(`Crew token not accepted (${messageOf(error)}); reading without it.`));
      return request(path, method, body, false);
    }
  }

  async function request(path, method, body, sendToken) {
    const headers = { Accept: 'application/json' };
    if (sendToken) headers.Authorization = `Bearer ${token()}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    setBusy(1);
    try {
      const response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const text = await response.text();
      let data = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (_) {
        data = null;
      }
      if (!response.ok) {
        const err = (data && data.error) || {};
        throw new ApiError(response.status, err.code || `http_${response.status}`,
          err.message || text.slice(0, 200) || response.statusText, err.field);
      }
      if (sendToken) showError($('#token-error'), null);
      return data;
    } finally {
      setBusy(-1);
    }
  }

  // ---------------------------------------------------------------------------------------------------- map

  function initMap(config) {
    const map = L.map('map', { minZoom: 2, maxZoom: 20, zoomSnap: 0.25, worldCopyJump: true });
    map.setView([20, 0], 2);
    map.createPane('coverage').style.zIndex = '405';
    map.createPane('roughness').style.zIndex = '415';
    map.createPane('defects').style.zIndex = '450';
    L.control.scale({ imperial: false }).addTo(map);
    if (config && config.tile_url) {
      L.tileLayer(config.tile_url, {
        maxZoom: 20,
        maxNativeZoom: 19,
        attribution: config.tile_attribution || '',
      }).addTo(map);
    }
    state.defectLayer = L.featureGroup().addTo(map);
    state.map = map;
    state.legend = L.control({ position: 'bottomleft' });
    state.legend.onAdd = () => {
      const div = L.DomUtil.create('div', 'legend');
      div.id = 'legend';
      L.DomEvent.disableClickPropagation(div);
      return div;
    };
    state.legend.addTo(map);
    renderLegend();
  }

  function markerStyle(props, selected) {
    const colour = KIND_COLOURS[props.kind] || KIND_COLOURS.unknown;
    const style = {
      pane: 'defects',
      radius: radiusFor(props.priority),
      color: '#222',
      weight: 1.2,
      opacity: 1,
      dashArray: null,
      fillColor: colour,
      fillOpacity: 0.85,
    };
    if (props.status === 'candidate') Object.assign(style, { color: colour, weight: 2, dashArray: '3 3', fillOpacity: 0.15 });
    else if (props.status === 'likely_repaired') Object.assign(style, { fillOpacity: 0.4 });
    else if (props.status === 'repaired' || props.status === 'dismissed') {
      Object.assign(style, { color: '#888', fillColor: '#bbb', fillOpacity: 0.35, dashArray: '1 3' });
    }
    if (selected) Object.assign(style, { color: '#000', weight: 3.5, dashArray: null });
    return style;
  }

  function renderMarkers() {
    state.defectLayer.clearLayers();
    state.markers.clear();
    // lowest priority first, so the most urgent markers are drawn on top
    for (const feature of [...state.defects].reverse()) {
      const props = feature.properties;
      const [lon, lat] = feature.geometry.coordinates;
      const marker = L.circleMarker([lat, lon], {
        ...markerStyle(props, props.id === state.selectedId),
        className: `defect-marker kind-${props.kind} status-${props.status}`,
      });
      marker.bindTooltip(`#${props.id} ${label(props.kind)} · ${statusLabel(props.status)} · priority ${num(props.priority, 1)}`);
      marker.on('click', () => select(props.id, { pan: false }));
      marker.addTo(state.defectLayer);
      const path = marker.getElement();
      if (path) path.dataset.defectId = String(props.id);
      state.markers.set(props.id, marker);
    }
    const selected = state.markers.get(state.selectedId);
    if (selected) selected.bringToFront();
  }

  function fitToDefects() {
    if (state.markers.size === 0) return;
    const legend = document.getElementById('legend');
    const left = legend ? legend.offsetWidth + 30 : 40;            // keep markers clear of the legend
    state.map.fitBounds(state.defectLayer.getBounds(), { paddingTopLeft: [left, 40], paddingBottomRight: [40, 40],
      maxZoom: 18 });
  }

  // ----------------------------------------------------------------------------------------------- the list

  function queryString() {
    const params = new URLSearchParams();
    const status = $('#f-status').value;
    const kind = $('#f-kind').value;
    const minConfidence = Number($('#f-confidence').value);
    if (status) params.set('status', status);
    if (kind) params.set('kind', kind);
    if (minConfidence > 0) params.set('min_confidence', String(minConfidence));
    params.set('limit', String(DEFECT_LIMIT));
    return params.toString();
  }

  async function loadDefects() {
    const seq = ++state.listSeq;
    const loadError = $('#load-error');
    try {
      const collection = await api(`v1/defects.geojson?${queryString()}`);
      if (seq !== state.listSeq) return;               // a newer query is on its way
      showError(loadError, null);
      state.defects = (collection.features || []).filter((f) => f.geometry && f.geometry.type === 'Point');
    } catch (error) {
      if (seq !== state.listSeq) return;
      showError(loadError, error);
      state.defects = [];
    }
    renderMarkers();
    renderTable();
    const n = state.defects.length;
    $('#summary').textContent = n === 0 ? 'no defects match the filters'
      : `${n} defect${n === 1 ? '' : 's'}${n >= DEFECT_LIMIT ? ` (the first ${DEFECT_LIMIT} by priority)` : ''}`;
    if (!state.fitted && n > 0) {
      fitToDefects();
      state.fitted = true;
    }
  }

  function renderTable() {
    const rows = state.defects.map((feature, i) => {
      const p = feature.properties;
      const colour = KIND_COLOURS[p.kind] || KIND_COLOURS.unknown;
      const swatch = el('span', {
        className: `swatch${p.status === 'candidate' ? ' hollow' : ''}`,
        style: { backgroundColor: colour, borderColor: p.status === 'candidate' ? colour : '' },
      });
      const tr = el('tr', {
        tabindex: '0',
        className: `status-${p.status}${p.id === state.selectedId ? ' selected' : ''}`,
        dataset: { defectId: String(p.id) },
        'aria-selected': p.id === state.selectedId ? 'true' : 'false',
      },
      el('td', { textContent: String(i + 1) }),
      el('td', {}, swatch, label(p.kind)),
      el('td', { textContent: statusLabel(p.status) }),
      el('td', { textContent: num(p.severity, 1) }),
      el('td', { textContent: num(p.confidence, 2) }),
      el('td', { textContent: num(p.priority, 1) }),
      el('td', { textContent: String(p.hits ?? '–') }),
      el('td', { textContent: String(p.devices ?? '–') }),
      el('td', { textContent: pct(p.hit_rate) }),
      el('td', { textContent: when(p.last_seen) }));
      return tr;
    });
    $('#defects tbody').replaceChildren(...rows);
  }

  // --------------------------------------------------------------------------------------------- selection

  function select(id, { pan }) {
    const previous = state.markers.get(state.selectedId);
    if (previous) previous.setStyle(markerStyle(featureOf(state.selectedId).properties, false));
    state.selectedId = id;
    const marker = state.markers.get(id);
    if (marker) {
      marker.setStyle(markerStyle(featureOf(id).properties, true));
      marker.bringToFront();
      if (pan && !state.map.getBounds().contains(marker.getLatLng())) state.map.panTo(marker.getLatLng());
    }
    for (const [markerId, m] of state.markers) {
      const path = m.getElement();
      if (path) path.classList.toggle('selected', markerId === id);
    }
    for (const tr of document.querySelectorAll('#defects tbody tr')) {
      const on = Number(tr.dataset.defectId) === id;
      tr.classList.toggle('selected', on);
      tr.setAttribute('aria-selected', on ? 'true' : 'false');
      if (on) tr.scrollIntoView({ block: 'nearest' });
    }
    if (id !== null) loadDetail(id);
  }

  function featureOf(id) {
    return state.defects.find((f) => f.properties.id === id) || { properties: {} };
  }

  async function loadDetail(id) {
    const seq = ++state.detailSeq;
    const panel = $('#detail');
    panel.hidden = false;
    panel.dataset.defectId = String(id);
    $('#detail-title').textContent = `Defect #${id}`;
    showError($('#action-error'), null);
    $('#action-ok').hidden = true;
    try {
      const defect = await api(`v1/defects/${encodeURIComponent(id)}`);
      if (seq === state.detailSeq) renderDetail(defect);
    } catch (error) {
      if (seq === state.detailSeq) {
        renderDetail({ ...featureOf(id).properties, id });
        showError($('#action-error'), error);
      }
    }
  }

  function renderDetail(d) {
    const panel = $('#detail');
    panel.dataset.defectId = String(d.id);
    panel.dataset.status = d.status || '';
    $('#detail-title').textContent = `Defect #${d.id}: ${label(d.kind)}, ${statusLabel(d.status)}`;

    const count = (v) => (Array.isArray(v) ? v.length : v ?? '–');
    const fields = [
      ['status', statusLabel(d.status), 'status'],
      ['kind', label(d.kind)],
      ['priority', num(d.priority, 1)],
      ['severity', d.severity === null || d.severity === undefined ? '–' : `${num(d.severity, 1)} cm`],
      ['depth class', d.depth_class || '–'],
      ['confidence', num(d.confidence, 3)],
      ['hits', count(d.hits)],
      ['devices', d.devices ?? '–'],
      ['passes', count(d.traversals)],
      ['hit rate', pct(d.hit_rate)],
      ['first seen', when(d.first_seen)],
      ['last seen', when(d.last_seen)],
      ['position', d.lat !== undefined && d.lat !== null ? `${num(d.lat, 6)}, ${num(d.lon, 6)}` : '–'],
      ['± m', num(d.uncertainty_m, 1)],
      ['heading', d.heading_deg === null || d.heading_deg === undefined ? '–' : `${num(d.heading_deg, 0)}°`],
    ];
    const dl = $('#detail-fields');
    dl.replaceChildren(...fields.flatMap(([name, value, key]) => [
      el('dt', { textContent: name }),
      el('dd', { textContent: String(value), dataset: key ? { field: key } : undefined }),
    ]));
    if (d.kind_reason) dl.append(el('dt', { textContent: 'why' }), el('dd', { className: 'wide', textContent: d.kind_reason }));

    renderHits(Array.isArray(d.hits_list) ? d.hits_list : Array.isArray(d.hits) ? d.hits : null);
    renderPasses(Array.isArray(d.traversals) ? d.traversals : Array.isArray(d.passes) ? d.passes : null);
    renderHistory(Array.isArray(d.history) ? d.history : []);
  }

  function renderHits(hits) {
    const body = $('#hits tbody');
    if (hits === null) {
      $('#hits-count').textContent = token() ? '' : '(paste a crew token to see them)';
      body.replaceChildren();
      return;
    }
    $('#hits-count').textContent = `(${hits.length})`;
    const rows = hits.map((h) => {
      const speed = h.speed_mps === undefined || h.speed_mps === null ? '–' : num(h.speed_mps * 3.6, 0);
      return el('tr', { className: 'hit-row' },
        el('td', { textContent: when(h.at || h.time || h.t) }),
        el('td', { textContent: label(h.kind) }),
        el('td', { textContent: num(h.severity, 2) }),
        el('td', { textContent: num(h.confidence, 2) }),
        el('td', { textContent: speed }),
        el('td', { textContent: h.trip_id || '–' }));
    });
    body.replaceChildren(...rows);
  }

  function renderPasses(passes) {
    const node = $('#passes');
    if (passes === null) {
      $('#passes-count').textContent = '';
      node.replaceChildren();
      return;
    }
    const ordered = [...passes].sort((a, b) => String(a.at || a.t || '').localeCompare(String(b.at || b.t || '')));
    const nHit = ordered.filter((p) => p.hit).length;
    $('#passes-count').textContent = `(${nHit} hit of ${ordered.length}, oldest first)`;
    node.replaceChildren(...ordered.map((p) => el('span', {
      className: p.hit ? 'hit' : 'miss',
      title: `${when(p.at || p.t)} ${p.hit ? 'hit' : 'passed without a hit'}${p.trip_id ? ` (trip ${p.trip_id})` : ''}`,
      textContent: p.hit ? '●' : '○',
    })));
  }

  function renderHistory(history) {
    const items = history.map((h) => el('li', {},
      el('strong', { textContent: `${h.from ? statusLabel(h.from) : 'new'} → ${statusLabel(h.to)}` }), ' ',
      el('span', { className: 'meta', textContent: `${when(h.at)}${h.by ? ` by ${h.by}` : ''}` }),
      h.reason ? el('div', { textContent: h.reason }) : null));
    $('#history').replaceChildren(...(items.length ? items : [el('li', { className: 'meta', textContent: 'none' })]));
  }

  // ------------------------------------------------------------------------------------------ crew decision

  async function decide(status) {
    const id = state.selectedId;
    const errorNode = $('#action-error');
    const okNode = $('#action-ok');
    showError(errorNode, null);
    okNode.hidden = true;
    if (id === null) return;
    if (!token()) {
      showError(errorNode, new Error('Paste a crew token (top right) to change a status.'));
      return;
    }
    const buttons = document.querySelectorAll('#actions button');
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const defect = await api(`v1/defects/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        body: { status, note: $('#note').value },
      });
      $('#note').value = '';
      if (defect && defect.id !== undefined) renderDetail(defect);
      okNode.textContent = `Marked ${statusLabel(status)}.`;
      okNode.hidden = false;
      await loadDefects();
      if (state.selectedId === id && !state.markers.has(id)) {
        okNode.textContent += ' It is no longer in the list under the current status filter.';
      }
      const marker = state.markers.get(id);
      if (marker) marker.setStyle(markerStyle(featureOf(id).properties, true));
    } catch (error) {
      showError(errorNode, error);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // ------------------------------------------------------------------------------------------- cell layers

  const iriOf = (p) => p.iri_mean ?? p.iri ?? p.mean;
  const readingsOf = (p) => p.n_readings ?? p.count ?? p.readings;
  const passesOf = (p) => p.n_traversals ?? p.traversals ?? p.passes ?? 0;
  const devicesOf = (p) => p.n_devices ?? p.devices;

  function cellLayer(collection, kind) {
    const features = collection.features || [];
    const maxPasses = Math.max(1, ...features.map((f) => passesOf(f.properties || {})));
    const colourOf = (p) => (kind === 'roughness' ? ramp(IRI_STOPS, Number(iriOf(p)))
      : ramp(COVERAGE_STOPS, Math.log1p(passesOf(p)) / Math.log1p(maxPasses)));
    const className = kind === 'roughness' ? 'rough-cell' : 'coverage-cell';
    const style = (f) => {
      const colour = colourOf(f.properties || {});
      return kind === 'roughness'
        ? { pane: 'roughness', className, color: '#333', weight: 0.6, fillColor: colour, fillOpacity: 0.85 }
        : { pane: 'coverage', className, stroke: false, fillColor: colour, fillOpacity: 0.55 };
    };
    const tooltip = (p) => (kind === 'roughness'
      ? `IRI ${num(iriOf(p), 2)} m/km${p.iri_upper !== undefined ? ` (≤ ${num(p.iri_upper, 2)} at 95 %)` : ''}`
        + ` · ${readingsOf(p) ?? '–'} readings`
      : `${passesOf(p)} passes · ${devicesOf(p) ?? '–'} devices`);
    return L.geoJSON(collection, {
      style,
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { ...style(f), radius: kind === 'roughness' ? 5 : 4 }),
      onEachFeature: (f, layer) => layer.bindTooltip(tooltip(f.properties || {})),
    });
  }

  async function toggleCells(kind, on) {
    const existing = state.cellLayers[kind];
    if (existing) {
      existing.remove();
      state.cellLayers[kind] = null;
    }
    if (on) {
      try {
        const collection = await api(`v1/${kind}.geojson`);
        if (!$(`#t-${kind}`).checked) return;          // switched off while loading
        if (state.cellLayers[kind]) state.cellLayers[kind].remove();
        state.cellLayers[kind] = cellLayer(collection, kind).addTo(state.map);
        showError($('#load-error'), null);
      } catch (error) {
        showError($('#load-error'), error);
      }
    }
    renderLegend();
  }

  // ----------------------------------------------------------------------------------------------- legend

  function renderLegend() {
    const div = document.getElementById('legend');
    if (!div) return;
    const item = (swatch, text) => el('div', {}, el('span', swatch), text);
    const kinds = Object.entries(KIND_COLOURS)
      .map(([kind, colour]) => item({ className: 'swatch', style: { backgroundColor: colour } }, label(kind)));
    const rows = [el('h4', { textContent: 'Kind' }), el('div', { className: 'items' }, ...kinds),
      el('h4', { textContent: 'Status (size: priority)' }),
      el('div', { className: 'items' },
        item({ className: 'swatch', style: { backgroundColor: '#999' } }, 'confirmed'),
        item({ className: 'swatch hollow', style: { borderColor: '#555' } }, 'candidate'),
        item({ className: 'swatch', style: { backgroundColor: '#ccc' } }, 'likely repaired'),
        item({ className: 'swatch hollow', style: { borderColor: '#999' } }, 'closed'))];
    if (state.cellLayers.roughness) {
      rows.push(el('h4', { textContent: 'Roughness, IRI m/km' }), el('span', { className: 'ramp' }),
        el('div', { className: 'ramp-labels' }, el('span', { textContent: '≤1.5' }), el('span', { textContent: '2.7' }),
          el('span', { textContent: '≥6' })));
    }
    if (state.cellLayers.coverage) {
      rows.push(el('h4', { textContent: 'Coverage, passes' }), el('span', { className: 'ramp coverage' }),
        el('div', { className: 'ramp-labels' }, el('span', { textContent: 'few' }), el('span', { textContent: 'most' })));
    }
    div.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------------------------------------- start

  function bindControls() {
    const tokenInput = $('#token');
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';
    tokenInput.addEventListener('input', () => {
      if (token()) sessionStorage.setItem(TOKEN_KEY, token());
      else sessionStorage.removeItem(TOKEN_KEY);
      showError($('#token-error'), null);
    });
    $('#filters').addEventListener('submit', (event) => event.preventDefault());
    for (const id of ['#f-status', '#f-kind', '#f-confidence']) {
      $(id).addEventListener('change', () => {
        $('#action-ok').hidden = true;
        loadDefects();
      });
    }
    $('#t-roughness').addEventListener('change', (event) => toggleCells('roughness', event.target.checked));
    $('#t-coverage').addEventListener('change', (event) => toggleCells('coverage', event.target.checked));
    $('#fit').addEventListener('click', fitToDefects);
    $('#defects tbody').addEventListener('click', (event) => {
      const tr = event.target.closest('tr[data-defect-id]');
      if (tr) select(Number(tr.dataset.defectId), { pan: true });
    });
    $('#defects tbody').addEventListener('keydown', (event) => {
      const tr = event.target.closest('tr[data-defect-id]');
      if (!tr) return;
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        select(Number(tr.dataset.defectId), { pan: true });
      } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const next = event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
        if (next) next.focus();
      }
    });
    $('#actions').addEventListener('submit', (event) => event.preventDefault());
    $('#mark-repaired').addEventListener('click', () => decide('repaired'));
    $('#mark-dismissed').addEventListener('click', () => decide('dismissed'));
    $('#detail-close').addEventListener('click', () => {
      $('#detail').hidden = true;
      select(null, { pan: false });
    });
  }

  async function start() {
    setBusy(1);
    try {
      bindControls();
      try {
        state.config = (await api('v1/config')) || {};
      } catch (error) {
        showError($('#load-error'), error);
      }
      initMap(state.config || {});
      await loadDefects();
    } finally {
      setBusy(-1);
    }
  }

  window.addEventListener('DOMContentLoaded', start);
})();
