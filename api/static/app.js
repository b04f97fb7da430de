/* bump map page for road crews: defects on a map and in a ranked table, a defect's detail with its hits and
 * history, crew decisions (PATCH with a crew token) and the roughness / coverage cell layers.
 *
 * Plain ES2019, no build step; Leaflet 1.9.4 is vendored under static/vendor/leaflet. Every URL is relative to
 * the page, so nothing is fetched from another host unless /v1/config names a tile server.
 *
 * API used: GET v1/config, GET v1/defects.geojson?status&kind&min_confidence&bbox&limit&cursor, GET
 * v1/defects/{id}, PATCH v1/defects/{id} {status, note}, GET v1/roughness.geojson, GET v1/coverage.geojson.
 * Errors arrive as {"error": {"code", "message", "field"?}}. Every time shown is UTC and says so.
 *
 * Page options in the URL: ?page_size=N (defects per request, 1..5000; default 5000, the API's maximum).
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
  const MAX_PAGE = 5000;                           // the API's maximum page size
  const PAGE_SIZE = pageSizeOf(new URLSearchParams(window.location.search).get('page_size'));
  const TOKEN_KEY = 'bump.crewToken';
  const IRI_STOPS = [[1.5, '#1a9850'], [2.7, '#fee08b'], [4.0, '#f46d43'], [6.0, '#a50026']];   // m/km (FHWA)
  const IRI_TICKS = [[1.5, '≤1.5'], [2.7, '2.7'], [4.0, '4'], [6.0, '≥6']];
  const COVERAGE_STOPS = [[0, '#c6dbef'], [1, '#08306b']];  // on log1p(passes) / log1p(most passes)
  const DEFAULT_CELL_SIZE_M = 20;                  // bump/cells.py CELL_SIZE_M, when /v1/config does not say
  const MIN_CELL_RADIUS_PX = 3;                    // cells stay visible when zoomed out
  const EARTH_CIRCUMFERENCE_M = 40075016.686;
  const STACKED = '(max-width: 999px)';            // app.css stacks the map above the panel below 1000 px
  const NOTE_HINTS = {
    401: 'paste a valid crew token (top right); an operator makes one with "bump token create --role crew"',
    403: 'this token may read but not decide: paste a crew token ("bump token create --role crew")',
    409: 'the defect is already in that state: reload it or choose another action',
    422: 'check the note and try again',
  };

  function pageSizeOf(text) {
    const n = Math.floor(Number(text));
    return Number.isFinite(n) && n >= 1 ? Math.min(n, MAX_PAGE) : MAX_PAGE;
  }

  const $ = (selector) => document.querySelector(selector);

  const state = {
    config: null,             // GET v1/config: {tile_url, tile_attribution, public_read, cell_size_m, ...}
    map: null,
    tiles: null,              // the tile layer, added after the first fit (no world-wide tile requests)
    defectLayer: null,
    markers: new Map(),       // defect id -> L.CircleMarker
    defects: [],              // GeoJSON features in rank order
    nextCursor: null,         // the API's next_cursor of the last page loaded (null: nothing more)
    emptyDatabase: false,     // no defect at all, whatever the filters
    selectedId: null,
    fitted: false,
    cellLayers: { roughness: null, coverage: null },
    maxPasses: 1,             // most passes of a coverage cell (the coverage scale's top)
    legend: null,
    tokenError: null,         // ApiError of the crew token refused on a read (reads then go without it)
    viewTimer: null,
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

  /** ISO 8601 UTC ("2026-05-09T17:18:26Z") -> "2026-05-09 17:18", for columns whose header says UTC. */
  function whenBare(iso) {
    if (!iso) return '–';
    return String(iso).replace('T', ' ').replace(/(:\d\d)?(\.\d+)?(Z|[+-]\d\d:\d\d)$/, '');
  }

  /** ISO 8601 UTC -> "2026-05-09 17:18 UTC": every time outside a UTC-labelled column. */
  const when = (iso) => (iso ? `${whenBare(iso)} UTC` : '–');

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

  const stacked = () => window.matchMedia(STACKED).matches;

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
      state.tokenError = error;
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
      if (sendToken) {
        state.tokenError = null;
        showError($('#token-error'), null);
      }
      return data;
    } finally {
      setBusy(-1);
    }
  }

  // ---------------------------------------------------------------------------------------------------- map

  function initMap() {
    const map = L.map('map', { minZoom: 2, maxZoom: 20, zoomSnap: 0.25, worldCopyJump: true });
    map.setView([20, 0], 2);          // no tiles yet: addTiles() comes after the first fit
    map.createPane('coverage').style.zIndex = '405';
    map.createPane('roughness').style.zIndex = '415';
    map.createPane('defects').style.zIndex = '450';
    L.control.scale({ imperial: false }).addTo(map);
    map.on('zoomend', resizeCells);
    map.on('moveend', () => {
      if (!$('#f-view').checked) return;
      clearTimeout(state.viewTimer);
      state.viewTimer = setTimeout(() => loadDefects({ newList: true }), 300);
    });
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

  /** The configured tile layer (with its attribution), once the view is where the crew will look. */
  function addTiles() {
    const config = state.config || {};
    if (state.tiles || !config.tile_url) return;
    state.tiles = L.tileLayer(config.tile_url, {
      maxZoom: 20,
      maxNativeZoom: 19,
      attribution: config.tile_attribution || '',
    }).addTo(state.map);
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
      marker.on('click', () => select(props.id, { pan: false, reveal: true }));
      marker.addTo(state.defectLayer);
      const path = marker.getElement();
      if (path) {
        path.dataset.defectId = String(props.id);
        path.setAttribute('tabindex', '-1');     // the table is the keyboard path, not thousands of markers
        path.setAttribute('aria-label', `defect ${props.id}, ${label(props.kind)}, ${statusLabel(props.status)}`);
      }
      state.markers.set(props.id, marker);
    }
    const selected = state.markers.get(state.selectedId);
    if (selected) selected.bringToFront();
  }

  /** Zoom to the listed defects; the padding is a share of the map's size (and clears the legend when the map is
   * wide enough for that), so that a small map still shows every marker. */
  function fitToDefects() {
    if (state.markers.size === 0) return;
    const size = state.map.getSize();
    const edgeX = Math.min(40, Math.round(size.x * 0.06));
    const edgeY = Math.min(40, Math.round(size.y * 0.06));
    const legend = document.getElementById('legend');
    const left = legend ? Math.min(legend.offsetWidth + 20, Math.round(size.x * 0.3)) : edgeX;
    state.map.fitBounds(state.defectLayer.getBounds(), { paddingTopLeft: [Math.max(left, edgeX), edgeY],
      paddingBottomRight: [edgeX, edgeY], maxZoom: 18 });
  }

  // ----------------------------------------------------------------------------------------------- the list

  /** Min confidence from its field: a number in [0, 1] (empty: 0), or null with the reason shown next to it. */
  function minConfidence() {
    const box = $('#f-confidence');
    const value = box.value.trim() === '' ? 0 : Number(box.value);
    const ok = !box.validity.badInput && Number.isFinite(value) && value >= 0 && value <= 1;
    box.setAttribute('aria-invalid', ok ? 'false' : 'true');
    showError($('#f-confidence-error'), ok ? null
      : new Error('Min confidence is a number from 0 to 1 with a decimal point (e.g. 0.5); the list is unchanged.'));
    return ok ? value : null;
  }

  function bboxOfView() {
    const b = state.map.getBounds();
    const clamp = (v, lim) => Math.max(-lim, Math.min(lim, v)).toFixed(6);
    return [clamp(b.getWest(), 180), clamp(b.getSouth(), 90), clamp(b.getEast(), 180), clamp(b.getNorth(), 90)].join(',');
  }

  function queryString(cursor) {
    const params = new URLSearchParams();
    const status = $('#f-status').value;
    const kind = $('#f-kind').value;          // '' = the API's default kinds (the crews' default list)
    const confidence = minConfidence() || 0;
    if (status) params.set('status', status);
    if (kind) params.set('kind', kind);
    if (confidence > 0) params.set('min_confidence', String(confidence));
    if ($('#f-view').checked && state.map) params.set('bbox', bboxOfView());
    params.set('limit', String(PAGE_SIZE));
    if (cursor) params.set('cursor', cursor);
    return params.toString();
  }

  /** Load the list. newList: a new query (filters changed): the table starts at its top. more: append the next
   * page (the API's next_cursor) to the list shown. */
  async function loadDefects({ newList = false, more = false } = {}) {
    const seq = ++state.listSeq;
    const loadError = $('#load-error');
    let features = [];
    let next = null;
    let failed = false;
    try {
      const collection = await api(`v1/defects.geojson?${queryString(more ? state.nextCursor : null)}`);
      if (seq !== state.listSeq) return;               // a newer query is on its way
      showError(loadError, null);
      features = (collection.features || []).filter((f) => f.geometry && f.geometry.type === 'Point');
      next = collection.next_cursor || null;
    } catch (error) {
      if (seq !== state.listSeq) return;
      showError(loadError, error);
      failed = true;
    }
    if (more) {
      const seen = new Set(state.defects.map((f) => f.properties.id));
      state.defects = [...state.defects, ...features.filter((f) => !seen.has(f.properties.id))];
      if (!failed) state.nextCursor = next;
    } else {
      state.defects = features;
      state.nextCursor = next;
    }
    state.emptyDatabase = !failed && state.defects.length === 0 && !(await anyDefect(seq));
    if (seq !== state.listSeq) return;
    renderMarkers();
    renderTable();
    renderSummary(failed);
    if (newList) $('#list-wrap').scrollTop = 0;
    markFilteredOut();
    if (!state.fitted && state.defects.length > 0) {
      fitToDefects();
      state.fitted = true;
    }
  }

  /** Whether any defect at all is readable (any status, any kind, anywhere): tells "no data yet" from "the
   * filters leave nothing". */
  async function anyDefect(seq) {
    try {
      const collection = await api('v1/defects.geojson?status=all&kind=all&limit=1');
      return seq !== state.listSeq || (collection.features || []).length > 0;
    } catch (_) {
      return true;                                     // unknown: say nothing about an empty database
    }
  }

  function renderSummary(failed) {
    const n = state.defects.length;
    const inView = $('#f-view').checked ? ' in this map view' : '';
    const summary = $('#summary');
    const empty = $('#empty');
    $('#fit').disabled = state.markers.size === 0;
    if (state.emptyDatabase) {
      summary.textContent = 'no defects yet';
      empty.replaceChildren(
        el('strong', { textContent: 'No defects yet: nothing has been recorded.' }),
        el('p', { textContent: 'Defects appear here once phones running the bump recorder upload trips (POST '
          + '/v1/traces), or an operator loads recorded trips with "bump ingest FOLDER --db DATABASE". Reload '
          + 'this page afterwards.' }));
      empty.hidden = false;
    } else {
      summary.textContent = failed && n === 0 ? 'the list could not be loaded'
        : n === 0 ? `no defects match the filters${inView}`
          : `${n} defect${n === 1 ? '' : 's'}${inView}${state.nextCursor ? ', by priority' : ''}`;
      empty.hidden = true;
    }
    const bar = $('#more-bar');
    bar.hidden = !state.nextCursor;
    if (state.nextCursor) {
      $('#more-text').textContent = `More defects match than the ${n} shown (the API sends ${PAGE_SIZE} at a `
        + 'time, highest priority first). Load the next page, or zoom in and tick "only this map view".';
      $('#more').textContent = `Load the next ${PAGE_SIZE}`;
    }
  }

  /** A defect open in the detail that the list no longer holds: say so (it stays open until closed). */
  function markFilteredOut() {
    const notice = $('#detail-filtered');
    const open = state.selectedId !== null && !$('#detail').hidden;
    const out = open && !state.defects.some((f) => f.properties.id === state.selectedId);
    notice.hidden = !out;
    notice.textContent = out ? `Defect #${state.selectedId} is not in the list under the current filters.` : '';
    $('#detail').dataset.filteredOut = out ? 'true' : 'false';
  }

  function renderTable() {
    const focusId = state.defects.some((f) => f.properties.id === state.selectedId) ? state.selectedId
      : state.defects.length ? state.defects[0].properties.id : null;
    const rows = state.defects.map((feature, i) => {
      const p = feature.properties;
      const colour = KIND_COLOURS[p.kind] || KIND_COLOURS.unknown;
      const swatch = el('span', {
        className: `swatch${p.status === 'candidate' ? ' hollow' : ''}`,
        style: { backgroundColor: colour, borderColor: p.status === 'candidate' ? colour : '' },
      });
      const tr = el('tr', {
        tabindex: p.id === focusId ? '0' : '-1',       // one Tab stop; arrows move within the table
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
      el('td', { textContent: whenBare(p.last_seen) }));
      return tr;
    });
    $('#defects tbody').replaceChildren(...rows);
  }

  // --------------------------------------------------------------------------------------------- selection

  function select(id, { pan, reveal = false }) {
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
    const rows = [...document.querySelectorAll('#defects tbody tr')];
    const found = rows.some((tr) => Number(tr.dataset.defectId) === id);
    rows.forEach((tr, i) => {
      const on = Number(tr.dataset.defectId) === id;
      tr.classList.toggle('selected', on);
      tr.setAttribute('aria-selected', on ? 'true' : 'false');
      tr.setAttribute('tabindex', on || (!found && i === 0) ? '0' : '-1');
      if (on) {
        const wrap = $('#list-wrap');
        const top = tr.offsetTop - tr.offsetHeight;     // under the sticky header
        if (top < wrap.scrollTop || tr.offsetTop + tr.offsetHeight > wrap.scrollTop + wrap.clientHeight) {
          wrap.scrollTop = Math.max(0, tr.offsetTop - wrap.clientHeight / 2);
        }
      }
    });
    if (id !== null) loadDetail(id, { reveal });
  }

  function featureOf(id) {
    return state.defects.find((f) => f.properties.id === id) || { properties: {} };
  }

  async function loadDetail(id, { reveal = false } = {}) {
    const seq = ++state.detailSeq;
    const panel = $('#detail');
    panel.hidden = false;
    panel.dataset.defectId = String(id);
    $('#detail-title').textContent = `Defect #${id}`;
    showError($('#action-error'), null);
    $('#action-ok').hidden = true;
    markFilteredOut();
    try {
      const defect = await api(`v1/defects/${encodeURIComponent(id)}`);
      if (seq === state.detailSeq) renderDetail(defect);
    } catch (error) {
      if (seq === state.detailSeq) {
        renderDetail({ ...featureOf(id).properties, id });
        showError($('#action-error'), error);
      }
    }
    // map stacked above the panel (narrow screens): bring the crew's buttons into view
    if (reveal && seq === state.detailSeq && stacked()) $('#actions').scrollIntoView({ block: 'nearest' });
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
    renderActions(d);

    renderHits(Array.isArray(d.hits_list) ? d.hits_list : Array.isArray(d.hits) ? d.hits : null);
    renderPasses(Array.isArray(d.traversals) ? d.traversals : Array.isArray(d.passes) ? d.passes : null);
    renderHistory(Array.isArray(d.history) ? d.history : []);
  }

  /** Why the hits are not shown (crews only), and what to do about it. */
  function hitsHint() {
    if (!token()) return '(crews only: paste a crew token, top right, to see them)';
    if (state.tokenError) {
      return `(not shown: the crew token was not accepted, ${messageOf(state.tokenError)}. Paste a valid crew `
        + 'token; an operator makes one with "bump token create --role crew")';
    }
    return '(crews only: the token in the field is not a crew token; paste one made with "bump token create '
      + '--role crew")';
  }

  function renderHits(hits) {
    const body = $('#hits tbody');
    const count = $('#hits-count');
    if (hits === null) {
      count.textContent = hitsHint();
      count.classList.toggle('hint', true);
      body.replaceChildren();
      return;
    }
    count.classList.toggle('hint', false);
    const at = (h) => String(h.t || h.at || h.time || '');
    const ordered = [...hits].sort((a, b) => at(a).localeCompare(at(b)));
    count.textContent = `(${hits.length}, oldest first)`;
    const rows = ordered.map((h) => {
      const speed = h.speed_mps === undefined || h.speed_mps === null ? '–' : num(h.speed_mps * 3.6, 0);
      return el('tr', { className: 'hit-row' },
        el('td', { textContent: whenBare(h.t || h.at || h.time) }),
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

  /** The crew decisions that make sense in a defect's state: confirm an open defect seen on site, mark it repaired
   * or dismissed, reopen (undo) a crew decision. */
  function renderActions(d) {
    const closed = d.status === 'repaired' || d.status === 'dismissed';
    const show = (id, on) => { $(id).hidden = !on; };
    show('#mark-confirmed', Boolean(d.status) && d.status !== 'confirmed' && !closed);
    show('#mark-repaired', d.status !== 'repaired');
    show('#mark-dismissed', d.status !== 'dismissed');
    show('#mark-reopen', Boolean(d.crew_status));
    $('#mark-reopen').textContent = d.crew_status ? `Reopen (undo “${statusLabel(d.crew_status)}”)` : 'Reopen';
    $('#actions').dataset.actions = [...document.querySelectorAll('#actions button')]
      .filter((b) => !b.hidden).map((b) => b.dataset.status).join(' ');
  }

  function decisionError(error) {
    const hint = error instanceof ApiError ? NOTE_HINTS[error.status] : null;
    return new Error(`${messageOf(error)}${hint ? `. What to do: ${hint}.` : ''}`);
  }

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
    okNode.textContent = '';
    try {
      const defect = await api(`v1/defects/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        body: { status, note: $('#note').value },
      });
      $('#note').value = '';
      if (defect && defect.id !== undefined) renderDetail(defect);
      okNode.textContent = status === 'reopen'
        ? `Reopened: the status follows from the data again (now ${statusLabel(defect && defect.status)}).`
        : `Marked ${statusLabel(status)}.`;
      okNode.hidden = false;
      await loadDefects();
      const marker = state.markers.get(id);
      if (marker) marker.setStyle(markerStyle(featureOf(id).properties, true));
    } catch (error) {
      showError(errorNode, decisionError(error));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // ------------------------------------------------------------------------------------------- cell layers

  const iriOf = (p) => p.iri_mean ?? p.iri ?? p.mean;
  const readingsOf = (p) => p.n_readings ?? p.count ?? p.readings;
  const passesOf = (p) => p.n_traversals ?? p.traversals ?? p.passes ?? 0;
  const devicesOf = (p) => p.n_devices ?? p.devices;

  const cellSizeM = () => Number(state.config && state.config.cell_size_m) || DEFAULT_CELL_SIZE_M;

  /** A cell's radius [px] at the map's zoom: half a cell's side on the ground, never smaller than
   * MIN_CELL_RADIUS_PX (web Mercator: metres per pixel = C cos(lat) / 2^(zoom + 8)). */
  function cellRadiusPx() {
    const metresPerPx = EARTH_CIRCUMFERENCE_M * Math.cos((state.map.getCenter().lat * Math.PI) / 180)
      / 2 ** (state.map.getZoom() + 8);
    return Math.max(MIN_CELL_RADIUS_PX, cellSizeM() / 2 / metresPerPx);
  }

  function resizeCells() {
    const radius = cellRadiusPx();
    for (const layer of Object.values(state.cellLayers)) {
      if (layer) layer.eachLayer((cell) => cell.setRadius && cell.setRadius(radius));
    }
  }

  const coveragePosition = (passes) => Math.log1p(passes) / Math.log1p(state.maxPasses);

  function cellLayer(collection, kind) {
    const features = collection.features || [];
    if (kind === 'coverage') state.maxPasses = Math.max(1, ...features.map((f) => passesOf(f.properties || {})));
    const colourOf = (p) => (kind === 'roughness' ? ramp(IRI_STOPS, Number(iriOf(p)))
      : ramp(COVERAGE_STOPS, coveragePosition(passesOf(p))));
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
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { ...style(f), radius: cellRadiusPx() }),
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
    const cell = `cells ${num(cellSizeM(), 0)} m`;
    if (state.cellLayers.roughness) {
      const [lo, hi] = [IRI_STOPS[0][0], IRI_STOPS[IRI_STOPS.length - 1][0]];
      rows.push(el('h4', { textContent: `Roughness, IRI m/km (${cell})` }),
        rampLegend('roughness', IRI_STOPS.map(([v, c]) => [(v - lo) / (hi - lo), c]),
          IRI_TICKS.map(([v, text]) => [(v - lo) / (hi - lo), text])));
    }
    if (state.cellLayers.coverage) {
      const most = state.maxPasses;
      const ticks = [...new Set([1, Math.round(Math.sqrt(most)), most])].filter((v) => v >= 1 && v <= most);
      rows.push(el('h4', { textContent: `Coverage, passes (log scale, ${cell})` }),
        rampLegend('coverage', COVERAGE_STOPS, ticks.map((v) => [coveragePosition(v), String(v)])));
    }
    div.replaceChildren(...rows);
  }

  /** A colour ramp drawn from the same stops as the cells ([position 0..1, colour]) with its numbers placed at
   * their positions ([position 0..1, text]). */
  function rampLegend(name, stops, ticks) {
    const at = (f) => `${(100 * Math.max(0, Math.min(1, f))).toFixed(1)}%`;
    const gradient = `linear-gradient(to right, ${stops.map(([f, c]) => `${c} ${at(f)}`).join(', ')})`;
    const labels = ticks.map(([f, text]) => el('span', {
      textContent: text,
      dataset: { position: (100 * f).toFixed(1) },
      style: { left: at(f) },
    }));
    return el('div', { className: `ramp-box ${name}` }, el('span', { className: `ramp ${name}`,
      style: { backgroundImage: gradient } }), el('div', { className: 'ramp-labels' }, ...labels));
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
    for (const id of ['#f-status', '#f-kind', '#f-confidence', '#f-view']) {
      $(id).addEventListener('change', () => {
        if (minConfidence() === null) return;            // refused next to the field; the list stays
        $('#action-ok').hidden = true;
        loadDefects({ newList: true });
      });
    }
    $('#f-confidence').addEventListener('input', () => {
      if (minConfidence() !== null) showError($('#f-confidence-error'), null);
    });
    $('#more').addEventListener('click', () => {
      if (state.nextCursor) loadDefects({ more: true });
    });
    $('#t-roughness').addEventListener('change', (event) => toggleCells('roughness', event.target.checked));
    $('#t-coverage').addEventListener('change', (event) => toggleCells('coverage', event.target.checked));
    $('#fit').addEventListener('click', fitToDefects);
    $('#defects tbody').addEventListener('click', (event) => {
      const tr = event.target.closest('tr[data-defect-id]');
      if (tr) select(Number(tr.dataset.defectId), { pan: true, reveal: true });
    });
    $('#defects tbody').addEventListener('keydown', (event) => {
      const tr = event.target.closest('tr[data-defect-id]');
      if (!tr) return;
      const body = tr.parentElement;
      const moves = {
        ArrowDown: () => tr.nextElementSibling,
        ArrowUp: () => tr.previousElementSibling,
        Home: () => body.firstElementChild,
        End: () => body.lastElementChild,
        PageDown: () => body.children[Math.min(body.children.length - 1, tr.sectionRowIndex + 10)],
        PageUp: () => body.children[Math.max(0, tr.sectionRowIndex - 10)],
      };
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        select(Number(tr.dataset.defectId), { pan: true });
      } else if (moves[event.key]) {
        event.preventDefault();
        const next = moves[event.key]();
        if (next) {
          tr.setAttribute('tabindex', '-1');            // roving tabindex: the table stays one Tab stop
          next.setAttribute('tabindex', '0');
          next.focus();
        }
      }
    });
    $('#map').addEventListener('keydown', (event) => {    // a marker focused by a script or assistive technology
      const path = event.target.closest && event.target.closest('path.defect-marker');
      if (path && (event.key === 'Enter' || event.key === ' ')) {
        event.preventDefault();
        select(Number(path.dataset.defectId), { pan: false });
      }
    });
    $('#actions').addEventListener('submit', (event) => event.preventDefault());
    for (const button of document.querySelectorAll('#actions button[data-status]')) {
      button.addEventListener('click', () => decide(button.dataset.status));
    }
    $('#detail-close').addEventListener('click', () => {
      $('#detail').hidden = true;
      select(null, { pan: false });
      markFilteredOut();
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
      initMap();
      await loadDefects();
      addTiles();                                      // after the first fit: no tiles of the whole world
    } finally {
      setBusy(-1);
    }
  }

  window.addEventListener('DOMContentLoaded', start);
})();
