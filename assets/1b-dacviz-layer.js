/* dacviz client side, part 2: the highlight layer, a canvas over each view on which the selected
 * clip, its neighbours and a box/lasso set are drawn (a white veil dims the rest). The WebGL
 * figures are never touched by a selection; the layer follows zoom, pan and the 3D camera by
 * redrawing on Plotly's events (no polling: an idle page runs no script of ours). It draws the
 * payload of viewer/figures.highlight_payload, whose docstring is the one statement of its shape. */
(function (d) {
  var plotly = d.plotly, views = d.views, dimOf = d.dimOf, graphDiv = d.graphDiv;
  var highlight = null;           // the payload of figures.highlight_payload
  var signatures = {};            // view -> the geometry the layer was last drawn for
  var drawn = {};                 // view -> {selected, neighbours, lasso, at, rect, pixels}: read by tests/benchmarks

  function project3d(s, size, p) {
    // plotly.js's own projection of a 3D point to the page (as for 3D annotations)
    var cam = s.camera, ds = s.dataScale, dom = s.domain;
    var v = [p[0] * ds[0], p[1] * ds[1], p[2] * ds[2], 1];
    function mul(m, x) {
      var r = [0, 0, 0, 0];
      for (var i = 0; i < 4; ++i) { for (var j = 0; j < 4; ++j) { r[j] += m[4 * i + j] * x[i]; } }
      return r;
    }
    var c = mul(cam.projection, mul(cam.view, mul(cam.model, v)));
    return [size.l + dom.x[0] * size.w + 0.5 * (1 + c[0] / c[3]) * size.w * (dom.x[1] - dom.x[0]),
            size.t + (1 - dom.y[1]) * size.h + 0.5 * (1 - c[1] / c[3]) * size.h * (dom.y[1] - dom.y[0])];
  }

  function geometry(gd, dim) {
    // -> {rect: [x, y, w, h] of the plot area, toPixel(point), signature}, or null before Plotly has drawn
    var L = plotly.layout(gd), size = L && plotly.size(L);
    if (!size) { return null; }
    var paper = plotly.paper(L), page = paper.width + "x" + paper.height + "@" + (window.devicePixelRatio || 1);
    if (dim === 3) {
      var s = plotly.scene(L), cam = s && s.camera;
      if (!cam || !cam.view || !cam.projection || !s.dataScale) { return null; }
      var dom = s.domain;
      return {rect: [size.l + dom.x[0] * size.w, size.t + (1 - dom.y[1]) * size.h, size.w * (dom.x[1] - dom.x[0]),
                     size.h * (dom.y[1] - dom.y[0])],
              toPixel: function (p) { return project3d(s, size, p); },
              signature: Array.prototype.join.call(cam.view, ",") + "|" +
                         Array.prototype.join.call(cam.projection, ",") + "|" + s.dataScale.join(",") + "|" + page};
    }
    var xa = plotly.axis(L, "xaxis"), ya = plotly.axis(L, "yaxis");
    if (!xa || !ya || !xa.c2p || !ya.c2p) { return null; }
    return {rect: [xa.offset, ya.offset, xa.length, ya.length],
            toPixel: function (p) { return [xa.offset + xa.c2p(p[0]), ya.offset + ya.c2p(p[1])]; },
            signature: xa.range.join(",") + "|" + ya.range.join(",") + "|" + xa.offset + "," + ya.offset + "|" +
                       xa.length + "x" + ya.length + "|" + page};
  }

  function layer(gd) {
    // the view's canvas, between Plotly's figure and its top SVG (hover labels, modebar stay above)
    var holder = gd.querySelector(".svg-container"), L = plotly.layout(gd);
    if (!holder || !L) { return null; }
    var canvas = holder.querySelector(":scope > canvas.dacviz-layer");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "dacviz-layer";
    }
    var svgs = holder.querySelectorAll(":scope > .main-svg"), above = svgs.length > 1 ? svgs[svgs.length - 1] : null;
    var next = canvas.nextSibling;
    while (next && next.classList && next.classList.contains("dacviz-path")) { next = next.nextSibling; }  // assets/4 draws above
    if (canvas.parentNode !== holder || next !== above) {
      holder.insertBefore(canvas, above);  // new, or Plotly rebuilt its SVGs (Plotly.newPlot)
    }
    var paper = plotly.paper(L), w = paper.width, h = paper.height, dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function drawView(view, gd, geo) {
    var ctx = layer(gd);
    if (!ctx) { return; }
    var paper = plotly.paper(plotly.layout(gd));
    ctx.clearRect(0, 0, paper.width, paper.height);
    var data = highlight && highlight.views && highlight.views[view];
    var record = {selected: [], neighbours: [], lasso: 0, at: performance.now()};
    if (data && highlight.active) {
      var r = geo.rect, big = highlight.presentation ? 1.5 : 1;
      ctx.save();
      ctx.beginPath();
      ctx.rect(r[0], r[1], r[2], r[3]);
      ctx.clip();
      ctx.fillStyle = "rgba(255,255,255,0.82)";
      ctx.fillRect(r[0], r[1], r[2], r[3]);
      data.lasso.xyz.forEach(function (p, i) {
        // a selected clip keeps its group's colour, enlarged, with a thin dark ring
        var q = geo.toPixel(p);
        ctx.beginPath(); ctx.arc(q[0], q[1], 4.5 * big, 0, 2 * Math.PI);
        ctx.fillStyle = data.lasso.colours[i]; ctx.fill();
        ctx.lineWidth = 1; ctx.strokeStyle = "#222"; ctx.stroke();
      });
      data.neighbours.xyz.forEach(function (p, i) {
        var q = geo.toPixel(p);
        ctx.beginPath(); ctx.arc(q[0], q[1], 6 * big, 0, 2 * Math.PI);
        ctx.fillStyle = data.neighbours.colours[i]; ctx.fill();
        ctx.lineWidth = 2; ctx.strokeStyle = "#111"; ctx.stroke();
      });
      data.selected.xyz.forEach(function (p, i) {
        var q = geo.toPixel(p), s = 11 * big;
        ctx.beginPath();
        ctx.moveTo(q[0], q[1] - s); ctx.lineTo(q[0] + s, q[1]); ctx.lineTo(q[0], q[1] + s);
        ctx.lineTo(q[0] - s, q[1]); ctx.closePath();
        ctx.fillStyle = data.selected.colours[i]; ctx.fill();
        ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.stroke();
      });
      (data.query ? data.query.xyz : []).forEach(function (p) {
        // a query by voice: a black five-pointed star with a white rim and the word "query"
        var q = geo.toPixel(p), outer = 13 * big, inner = 5.5 * big;
        ctx.beginPath();
        for (var i = 0; i < 10; i++) {
          var radius = i % 2 ? inner : outer, angle = -Math.PI / 2 + i * Math.PI / 5;
          ctx.lineTo(q[0] + radius * Math.cos(angle), q[1] + radius * Math.sin(angle));
        }
        ctx.closePath();
        ctx.lineWidth = 4; ctx.strokeStyle = "#fff"; ctx.stroke();
        ctx.fillStyle = data.query.colours[0] || "#000"; ctx.fill();
        ctx.font = "bold " + Math.round(12 * big) + "px sans-serif";
        ctx.lineWidth = 3; ctx.strokeText("query", q[0] + outer + 2, q[1] + 4);
        ctx.fillText("query", q[0] + outer + 2, q[1] + 4);
      });
      ctx.restore();
      record = {selected: data.selected.ids, neighbours: data.neighbours.ids,
                query: data.query && data.query.xyz.length ? geo.toPixel(data.query.xyz[0]) : null,
                lasso: data.lasso.ids.length, lassoIds: data.lasso.ids, lassoColours: data.lasso.colours,
                at: performance.now(), rect: r,
                pixels: data.selected.xyz.concat(data.neighbours.xyz).map(geo.toPixel)};
    }
    drawn[view] = record;
    if (d.drawPaths) { d.drawPaths(view, gd, geo); }  // a clip's path, on its own canvas above (assets/4)
  }

  function refresh(view, force) {
    // redraw the layer of a view if its geometry changed since it was last drawn (or if forced)
    var gd = graphDiv(view), geo = gd && geometry(gd, dimOf(view));
    if (!geo) { return false; }
    if (force || signatures[view] !== geo.signature || !gd.querySelector("canvas.dacviz-layer")) {
      signatures[view] = geo.signature;
      drawView(view, gd, geo);
      return true;
    }
    return false;
  }

  /* After a 3D view's relayout or redraw, its camera's matrices can come several frames late on a
   * busy machine (the scene's own render loop runs behind): the layer is looked at again on each
   * frame until its geometry has held for two frames, SETTLE_FRAMES at most, then nothing runs. */
  var SETTLE_FRAMES = 8;
  function settle(view, left, still) {
    window.requestAnimationFrame(function () {
      still = refresh(view) ? 0 : still + 1;
      if (left > 1 && still < 2) { settle(view, left - 1, still); }
    });
  }

  /* A 3D scene computes its camera matrices in its own render loop, on the frame after the mouse
   * moved: during a drag, and once after every event, the layer is looked at again on the next
   * frame (one frame per event, coalesced; nothing runs while the page is idle). */
  var frameAsked = {};
  function refreshNextFrame(view) {
    if (frameAsked[view]) { return; }
    frameAsked[view] = true;
    window.requestAnimationFrame(function () {
      frameAsked[view] = false;
      refresh(view);
    });
  }

  /* Each graph's Plotly events drive its layer. dcc.Graph plots into a div that React may replace,
   * and Plotly.purge (then a new plot) replaces a div's event emitter, Plotly.newPlot on a drawn
   * div drops its listeners: a MutationObserver sees every such re-render and binds again when
   * our listeners are gone, which a private "ping" event on the div tells (its listener answers). */
  var PING = "dacviz_ping";
  var pong = false;
  var handlers = {};
  function handlersOf(view) {
    if (!handlers[view]) {
      handlers[view] = {
        now: function () {
          refresh(view);
          if (dimOf(view) === 3) { settle(view, SETTLE_FRAMES, 0); } else { refreshNextFrame(view); }
        },
        soon: function () { refreshNextFrame(view); },
        click: d.onPointClick(view),
        hover: d.onPointHover(view),
        unhover: d.onPointUnhover(view),
        ping: function () { pong = true; }
      };
    }
    return handlers[view];
  }

  function listening(gd) {
    pong = false;
    gd.emit(PING);
    return pong;
  }

  function bind(view) {
    var gd = graphDiv(view);
    if (!gd || typeof gd.on !== "function" || typeof gd.emit !== "function" || listening(gd)) { return; }
    var h = handlersOf(view);
    gd.on(PING, h.ping);
    gd.on("plotly_afterplot", h.now);     // every (re)draw: a new figure, a resize, a legend click
    gd.on("plotly_relayout", h.now);      // zoom, pan, camera, autorange: when done
    gd.on("plotly_redraw", h.now);
    gd.on("plotly_relayouting", h.soon);  // zoom, pan and the 3D camera during a drag
    // a click: the audio and /clip-at before the Dash round trip, and before dcc.Graph's own
    // handler (which sets clickData, and Dash's renderer works through it first; on a busy
    // machine that delayed this by ~0.1 s): first in line where Plotly's emitter allows it
    if (gd._ev && typeof gd._ev.prependListener === "function") { gd._ev.prependListener("plotly_click", h.click); }
    else { gd.on("plotly_click", h.click); }
    gd.on("plotly_hover", h.hover);       // the point under a resting pointer is prefetched (assets/1c)
    gd.on("plotly_unhover", h.unhover);
    refresh(view, true);
    refreshNextFrame(view);
  }

  function bindAll() {
    views().forEach(function (v) { bind(v.name); });
    d.restoreMaximised(); d.fitMapsSoon(); d.restoreViews();
  }

  function drawEarly(payload) {
    // a click's own neighbours from /clip-at: the box/lasso set and presentation size of the
    // page's current highlight are kept; the Dash payload replaces it when it arrives
    var current = highlight && highlight.views ? highlight : null;
    Object.keys(payload.views || {}).forEach(function (v) {
      if (current && current.views[v]) { payload.views[v].lasso = current.views[v].lasso; }
    });
    payload.presentation = document.body.classList.contains("presentation");
    paint(payload);
  }

  function paint(payload) {
    highlight = payload;
    signatures = {};
    bindAll();
    // now, not on a later event: the page may be busy rendering the side panel
    views().forEach(function (v) { refresh(v.name, true); });
    return payload && payload.active ? "highlight" : "none";
  }

  function plotlyMissing() {
    // {view: [private Plotly fields the layer reads that are missing]} for every drawn view (tests)
    var out = {};
    views().forEach(function (v) {
      var gd = graphDiv(v.name);
      out[v.name] = gd ? plotly.missing(gd, v.dim) : ["no graph"];
    });
    return out;
  }

  d.geometry = geometry;
  d.drawn = drawn;
  d.refresh = refresh;
  d.refreshNextFrame = refreshNextFrame;
  d.bindAll = bindAll;
  d.drawEarly = drawEarly;
  d.paint = paint;
  d.plotlyMissing = plotlyMissing;
})(window.dacviz);
