/* The page's behaviour: tooltips, details panel, labels, legend and rollout,
   search and selection, URL hash state, CSV downloads.  Every plan string comes
   from the JSON data block and is shown with textContent, never as HTML. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('planner-data').textContent);
  var G = JSON.parse(document.getElementById('planner-shapes').textContent);
  var map = window[D.map];
  var small = window.matchMedia('(max-width: 799px)');
  var state = {year: null, sel: null};

  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  /* ---------------------------------------------------------------- styles */
  function styleFor(feature) {
    var p = feature.properties, y = state.year;
    var colour = D.colours[(p.w - 1) % D.colours.length];
    var base = {color: '#ffffff', weight: 1.2, opacity: 1, fillOpacity: D.style.fill,
                fillColor: colour, dashArray: null};
    if (y === null || (p.f !== null && p.f <= y)) { return base; }
    if (p.s !== null && p.s <= y) {
      return {color: colour, weight: 2, opacity: 1, fillOpacity: D.style.starting,
              fillColor: colour, dashArray: D.style.startingDash};
    }
    return {color: '#555555', weight: 1, opacity: 1, fillOpacity: D.style.notYet,
            fillColor: D.notYet, dashArray: '1 2'};
  }

  /* ----------------------------------------------------------------- layers */
  // No drawn shape is a Tab stop of its own (SVG paths with handlers are focusable):
  // catchments are reached from the page's lists and the search instead.
  map.on('layeradd', function (e) {
    if (e.layer.feature && e.layer.getElement && e.layer.getElement()) {
      e.layer.getElement().setAttribute('tabindex', '-1');
    }
  });
  var catchments = L.geoJSON(G[D.geo.catchments], {style: styleFor, className: 'planner-catchment'});
  catchments.addTo(map);
  var byIndex = {};
  catchments.eachLayer(function (l) {
    byIndex[l.feature.properties.i] = l;
    l.on('mouseover', function () { l.setStyle({weight: 3, color: '#222222', fillOpacity: 0.85}); });
    l.on('mouseout', function () { catchments.resetStyle(l); });
  });
  var overlayNames = {}, overlays = [], outlines = {};
  var lsoaLayer = null;
  if (D.geo.lsoa !== null) {
    lsoaLayer = L.geoJSON(G[D.geo.lsoa], {pane: 'lsoa', className: 'planner-lsoa', style: function (f) {
      return {fillColor: D.under3Colours[Math.min(f.properties.b, D.under3Colours.length - 1)],
              fillOpacity: D.under3Opacity, color: '#777777', weight: 0.4};
    }});
    overlays.push(lsoaLayer);
    overlayNames[D.geo.lsoaLabel] = lsoaLayer;
  }
  // An outline layer may carry labels (the clusters: id and team count) and a casing (a
  // band under its line), drawn with it. One with on === false starts switched off (the
  // layer control and the hash turn it on) and is built when first shown, so it costs
  // nothing at the first render.
  var outlineLabels = [];
  D.geo.outlines.forEach(function (o) {
    var layer = L.layerGroup();
    function build() {
      if (o.casing) {  // made and added first (Leaflet adds a group's layers in that order)
        layer.addLayer(L.geoJSON(G[o.data], {pane: 'outlines', interactive: false,
          style: o.casing, className: (o.className || 'planner-outline') + '-casing'}));
      }
      var shapes = L.geoJSON(G[o.data], {pane: 'outlines', interactive: false, style: o.style,
                                         className: o.className || ''});
      layer.addLayer(shapes);
      (o.labels || []).forEach(function (lb) {
        var span = document.createElement('span');
        span.textContent = lb[2];
        var m = L.marker([lb[0], lb[1]], {icon: L.divIcon({className: 'team-label outline-label',
          html: span, iconSize: null}), interactive: false, keyboard: false, pane: 'labels'});
        m.on('add', function () { m.getElement().setAttribute('aria-hidden', 'true'); });
        layer.addLayer(m);
        outlineLabels.push({marker: m, span: span});
      });
      outlines[o.key] = shapes;
    }
    if (o.on === false) {
      layer.once('add', function () { build(); placeLabels(); });
    } else {
      build();
      layer.addTo(map);
    }
    overlays.push(layer);
    overlayNames[o.label] = layer;
  });
  var icbOutlines = outlines.icbs || null;
  var ladOutlines = outlines.lads || null;

  /* -------------------------------------------------------------- tooltips */
  function yearText(p) {
    return p.s === null ? 'after ' + D.years[D.years.length - 1] : 'from ' + D.years[p.s];
  }
  catchments.eachLayer(function (l) {
    var p = l.feature.properties, t = D.teams[p.i];
    l.bindTooltip(function () {
      return el('span', null, t.name + ' · wave ' + t.wave + ' · ' + yearText(p));
    }, {sticky: true, direction: 'auto', className: 'planner-tip', opacity: 0.95});
    l.on('click', function () { select({kind: 'team', i: p.i}, {fit: false, push: true}); });
  });

  /* ---------------------------------------------------------- details panel */
  var panel = L.control({position: 'bottomleft'});
  var panelBox;
  panel.onAdd = function () {
    panelBox = L.DomUtil.create('section', 'planner-panel');
    panelBox.hidden = true;
    panelBox.setAttribute('aria-label', 'Catchment details');
    panelBox.setAttribute('aria-live', 'polite');
    L.DomEvent.disableClickPropagation(panelBox);
    L.DomEvent.disableScrollPropagation(panelBox);
    return panelBox;
  };
  panel.addTo(map);

  function showPanel(i) {
    var t = D.teams[i];
    panelBox.textContent = '';
    var close = el('button', 'close', '×', panelBox);
    close.type = 'button';
    close.setAttribute('aria-label', 'Close details');
    close.addEventListener('click', function () { select(null, {push: true}); });
    el('h2', null, t.name, panelBox);
    var dl = el('dl', null, null, panelBox);
    t.details.forEach(function (d) { el('dt', null, d[0], dl); el('dd', null, d[1], dl); });
    // Cost and babies seen in every year, as teams.csv gives them (years as rows: fits a phone).
    var table = el('table', 'years', null, panelBox);
    el('caption', null, 'By year (as in teams.csv)', table);
    var head = el('tr', null, null, el('thead', null, null, table));
    ['Year', 'Status', 'Cost', 'Babies seen'].forEach(function (h, k) {
      var th = el('th', k > 1 ? 'num' : null, h, head);
      th.scope = 'col';
    });
    var body = el('tbody', null, null, table);
    t.years.forEach(function (r) {
      var tr = el('tr', null, null, body);
      el('th', null, r[0], tr).scope = 'row';
      el('td', null, r[1], tr);
      el('td', 'num', r[2], tr);
      el('td', 'num', r[3], tr);
    });
    var links = el('p', 'links', null, panelBox);
    t.links.forEach(function (lk, k) {
      if (k) { links.appendChild(document.createTextNode(' · ')); }
      var a = el('a', null, lk[0], links);
      a.href = lk[1];
    });
    panelBox.hidden = false;
  }

  /* ----------------------------------------------------------------- labels */
  var labels = [];
  if (D.labels) {
    D.teams.forEach(function (t, i) {
      var span = document.createElement('span');
      span.textContent = t.name;
      var icon = L.divIcon({className: 'team-label', html: span, iconSize: null});
      var m = L.marker([t.label[0], t.label[1]], {icon: icon, interactive: false, keyboard: false,
                                                  pane: 'labels'}).addTo(map);
      m.getElement().setAttribute('aria-hidden', 'true');
      labels.push({marker: m, span: span, rank: t.area_rank});
    });
  }
  /* Show labels largest catchment first; hide one that would overlap a shown
     label or run past the map's edge (it returns on zooming in).  Then tell the
     context layer (planner/maps/context.py: its local authority names give way
     to shown 'team-label' icons) that the labels have moved. */
  function placeLabels() {
    if (labels.length || outlineLabels.length) { hideClashes(); }
    map.fire('plannerlabelsplaced');
  }
  /* Labels of outline layers switched on (clusters) go first, then the catchments'. */
  function hideClashes() {
    var box = map.getContainer().getBoundingClientRect();
    var shown = [];
    var order = outlineLabels.filter(function (lb) { return map.hasLayer(lb.marker); });
    order = order.concat(labels.slice().sort(function (a, b) { return a.rank - b.rank; }));
    order.forEach(function (lb) {
      var e = lb.marker.getElement();
      e.classList.remove('hidden');
      var r = lb.span.getBoundingClientRect();
      var inside = r.left >= box.left && r.right <= box.right && r.top >= box.top &&
                   r.bottom <= box.bottom;
      var clash = shown.some(function (s) {
        return !(r.right + 2 < s.left || s.right + 2 < r.left || r.bottom + 1 < s.top ||
                 s.bottom + 1 < r.top);
      });
      if (!inside || clash) { e.classList.add('hidden'); } else { shown.push(r); }
    });
  }
  window.plannerPlaceLabels = placeLabels;

  /* ----------------------------------------------------- legend and rollout */
  var legend = L.control({position: 'bottomright'});
  var countBox, details;
  legend.onAdd = function () {
    var div = L.DomUtil.create('div', 'planner-legend');
    details = L.DomUtil.create('details', '', div);
    details.open = !small.matches;
    var summary = L.DomUtil.create('summary', '', details);
    summary.textContent = 'Legend and rollout';
    var body = document.getElementById('planner-legend-body');
    while (body.firstChild) { details.appendChild(body.firstChild); }
    countBox = details.querySelector('.count');
    details.querySelectorAll('input[name="planner-year"]').forEach(function (input) {
      input.addEventListener('change', function () {
        setYear(input.value === 'all' ? null : Number(input.value));
        push();
      });
    });
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  legend.addTo(map);

  function setYear(y) {
    state.year = y;
    catchments.resetStyle();
    var n = 0;
    catchments.eachLayer(function (l) {
      var p = l.feature.properties;
      if (y === null || (p.s !== null && p.s <= y)) { n += 1; }
    });
    countBox.textContent = y === null ? n + ' teams, coloured by wave'
                                      : n + ' teams operating in ' + D.years[y];
    details.querySelector('.legend-states').hidden = y === null;
    var input = details.querySelector('input[name="planner-year"][value="' +
                                      (y === null ? 'all' : y) + '"]');
    if (input) { input.checked = true; }
    highlightSelection();
  }

  /* ------------------------------------------------- search and selection */
  var selectionLayer = L.layerGroup().addTo(map);
  function boundsOf(b) { return L.latLngBounds([b[0], b[1]], [b[2], b[3]]); }
  function findFeature(layer, i) {
    var found = null;
    if (layer) { layer.eachLayer(function (l) { if (l.feature.properties.i === i) { found = l; } }); }
    return found;
  }
  function selectionTarget(sel) {
    if (!sel) { return null; }
    if (sel.kind === 'team') {
      var l = byIndex[sel.i];
      return l ? {name: D.teams[sel.i].name, geo: l.feature, bounds: l.getBounds()} : null;
    }
    var list = sel.kind === 'icb' ? D.icbs : D.lads;
    var rec = list[sel.i];
    if (!rec) { return null; }
    var f = findFeature(sel.kind === 'icb' ? icbOutlines : ladOutlines, sel.i);
    var geo = f ? f.feature : null;
    if (!geo && sel.kind === 'la' && D.geo.ladShapes !== undefined) {
      geo = G[D.geo.ladShapes].features[sel.i];  // drawn only when selected
    }
    return {name: rec[0], geo: geo, bounds: boundsOf(rec[1])};
  }
  function highlightSelection() {
    selectionLayer.clearLayers();
    var target = selectionTarget(state.sel);
    if (!target) { return; }
    if (target.geo) {
      L.geoJSON(target.geo, {interactive: false, pane: 'outlines',
        style: {color: D.style.selected, weight: 3, fill: false, opacity: 1}}).addTo(selectionLayer);
    } else {
      L.rectangle(target.bounds, {interactive: false, pane: 'outlines', color: D.style.selected,
        weight: 3, fill: false, dashArray: '8 4'}).addTo(selectionLayer);
    }
    var span = document.createElement('span');
    span.textContent = target.name;
    var north = L.latLng(target.bounds.getNorth(), target.bounds.getCenter().lng);
    L.marker(north, {icon: L.divIcon({className: 'selection-label', html: span, iconSize: null}),
                     interactive: false, keyboard: false, pane: 'labels'}).addTo(selectionLayer);
  }
  function select(sel, opts) {
    state.sel = sel;
    highlightSelection();
    var target = selectionTarget(sel);
    if (sel && sel.kind === 'team' && target) { showPanel(sel.i); } else { panelBox.hidden = true; }
    if (target && opts.fit) { map.fitBounds(target.bounds, {maxZoom: 13, animate: false}); }
    if (opts.push) { push(); }
  }
  window.plannerSelect = select;

  var decoderRecords = D.search.map(function (r) { return r; });
  var searchControl = new L.Control.Search({
    sourceData: function (text, callResponse) {
      callResponse(decoderRecords);
      return {abort: function () {}};
    },
    formatData: function (rows) {
      var out = {};
      rows.forEach(function (r) {
        var c = boundsOf(r[3]).getCenter();
        c.sel = {kind: r[1], i: r[2]};
        out[r[0]] = c;
      });
      return out;
    },
    buildTip: function (text) {
      var li = document.createElement('li');
      li.textContent = text;
      return li;
    },
    moveToLocation: function (latlng) { select(latlng.sel, {fit: true, push: true}); },
    initial: false, marker: false, collapsed: false, autoCollapse: false,
    textPlaceholder: D.placeholder, position: 'topleft'
  });
  map.addControl(searchControl);
  var searchInput = searchControl._input;
  searchInput.id = 'planner-search-input';
  searchInput.setAttribute('aria-label', D.placeholder);
  window.plannerSearch = searchControl;

  /* ------------------------------------------------ layer control, LSOAs */
  var layersControl = L.control.layers(null, overlayNames,
                                       {collapsed: small.matches, position: 'topright'});
  layersControl.addTo(map);
  if (lsoaLayer) {
    lsoaLayer.eachLayer(function (l) {
      var r = D.lsoa[l.feature.properties.i];
      l.bindTooltip(function () { return el('span', null, r[1] + ' (' + r[0] + '): ' + r[2] + ' under-3s'); },
                    {sticky: true, direction: 'auto', className: 'planner-tip'});
    });
  }

  /* ----------------------------------------------------------- URL hash */
  function encode() {
    var c = map.getCenter();
    var parts = ['v=' + map.getZoom().toFixed(2) + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5)];
    parts.push('y=' + (state.year === null ? 'all' : encodeURIComponent(D.years[state.year])));
    if (state.sel) {
      var key = state.sel.kind === 'team' ? D.teams[state.sel.i].id
        : (state.sel.kind === 'icb' ? D.icbs : D.lads)[state.sel.i][2];
      parts.push('s=' + state.sel.kind + ':' + encodeURIComponent(key));
    }
    parts.push('l=' + overlays.map(function (o) { return map.hasLayer(o) ? '1' : '0'; }).join(''));
    return '#' + parts.join('&');
  }
  var applying = true;  // until the first view is set: that one replaces, not pushes
  function push() {
    if (applying) { return; }
    var h = encode();
    if (h !== location.hash) { history.pushState(null, '', h); }
  }
  function decode(hash) {
    var out = {};
    hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var k = kv.indexOf('=');
      if (k > 0) { out[kv.slice(0, k)] = decodeURIComponent(kv.slice(k + 1)); }
    });
    return out;
  }
  function findSel(s) {
    var k = s.indexOf(':');
    if (k < 0) { return null; }
    var kind = s.slice(0, k), key = s.slice(k + 1), i;
    if (kind === 'team') {
      for (i = 0; i < D.teams.length; i++) { if (D.teams[i].id === key) { return {kind: kind, i: i}; } }
    } else if (kind === 'icb' || kind === 'la') {
      var list = kind === 'icb' ? D.icbs : D.lads;
      for (i = 0; i < list.length; i++) { if (list[i][2] === key) { return {kind: kind, i: i}; } }
    }
    return null;
  }
  function apply(hash) {
    var h = decode(hash);
    var was = applying;
    applying = true;
    try {
      if (h.l && h.l.length === overlays.length) {
        overlays.forEach(function (o, k) {
          if (h.l[k] === '1' && !map.hasLayer(o)) { map.addLayer(o); }
          if (h.l[k] === '0' && map.hasLayer(o)) { map.removeLayer(o); }
        });
      }
      var y = h.y && h.y !== 'all' ? D.years.indexOf(h.y) : -1;
      setYear(y >= 0 ? y : null);
      select(h.s ? findSel(h.s) : null, {fit: false, push: false});
      if (h.v) {
        var v = h.v.split('/').map(Number);
        if (v.length === 3 && v.every(isFinite)) { map.setView([v[1], v[2]], v[0], {animate: false}); }
      }
    } finally {
      applying = was;
    }
    return Boolean(h.v);
  }
  var moveTimer = null;
  map.on('moveend', function () {
    placeLabels();
    clearTimeout(moveTimer);
    moveTimer = setTimeout(push, 400);
  });
  map.on('overlayadd overlayremove', function () { placeLabels(); push(); });
  window.addEventListener('popstate', function () { apply(location.hash); });
  window.addEventListener('resize', placeLabels);

  /* ------------------------------------------------------- catchment lists */
  document.querySelectorAll('button.team-link').forEach(function (b) {
    b.addEventListener('click', function () {
      select({kind: 'team', i: Number(b.getAttribute('data-team'))}, {fit: true, push: true});
      document.getElementById('map-region').scrollIntoView({block: 'start'});
    });
  });

  /* ------------------------------------------------------ CSV downloads */
  document.querySelectorAll('button.csv').forEach(function (b) {
    b.addEventListener('click', function () {
      var blob = new Blob([D.csv[b.getAttribute('data-csv')]], {type: 'text/csv;charset=utf-8'});
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = b.getAttribute('data-file');
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
    });
  });

  /* ------------------------------------------------------------- print */
  window.addEventListener('beforeprint', function () { map.invalidateSize(); });
  window.addEventListener('afterprint', function () { map.invalidateSize(); });

  /* -------------------------------------------------------------- start */
  setYear(null);
  if (!(location.hash && apply(location.hash))) {
    // Keep the catchments clear of the open legend in the bottom-right corner.
    map.fitBounds(boundsOf(D.bounds), {paddingTopLeft: [10, 10], animate: false,
      paddingBottomRight: small.matches ? [10, 10] : [260, 10]});
  }
  placeLabels();
  clearTimeout(moveTimer);
  history.replaceState(null, '', encode());
  applying = false;
  window.plannerMap = map;
  window.plannerCatchments = catchments;
  window.plannerRollout = function (y) { setYear(y); push(); };
})();
