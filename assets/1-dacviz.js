/* dacviz client side: play audio, keep the URL in step, keyboard shortcuts for a talk, and the
 * highlight layer: a canvas over each view on which the selected clip, its neighbours and a
 * box/lasso set are drawn (a white veil dims the rest). The WebGL figures are never touched by a
 * selection; the layer follows zoom, pan and the 3D camera by redrawing when they change. */
window.dacviz = (function () {
  var VIEWS = ["pca2", "pca3", "tsne2", "tsne3"];
  var lastNonce = null;
  var highlight = null;           // the payload of figures.highlight_payload
  var signatures = {};            // view -> what the layer was last drawn for
  var drawn = {};                 // view -> {selected, neighbours, lasso, at}: read by tests/benchmarks

  /* A click plays its clip by two paths, whichever is first: the browser asks the server which clip
   * sits at the clicked point (/clip-at, a few ms) and starts it at once, and the Dash selection
   * (which also fills the side panel and the highlight) starts it when it arrives. The second start
   * of the same clip within SAME_START_MS is the same click and is skipped. */
  var SAME_START_MS = 700;
  var lastStart = {clip: null, at: -1e9};
  var pendingClick = null;

  function startPlayer(clip) {
    var now = performance.now();
    if (lastStart.clip === clip && now - lastStart.at < SAME_START_MS) { return false; }
    var player = document.getElementById("player");
    if (!player) { return false; }
    lastStart = {clip: clip, at: now};
    var src = (player.getAttribute("data-src-template") || "/audio/{clip}").replace("{clip}", clip);
    if (player.getAttribute("src") !== src) { player.setAttribute("src", src); }
    try { player.currentTime = 0; } catch (e) { /* not loaded yet */ }
    var started = player.play();
    if (started && started.catch) { started.catch(function () { /* autoplay refused */ }); }
    return true;
  }

  function play(sel) {
    if (!sel || sel.play === null || sel.play === undefined || sel.nonce === lastNonce) {
      return window.dash_clientside.no_update;
    }
    lastNonce = sel.nonce;
    startPlayer(sel.play);
    return "playing " + sel.play;
  }

  function onPointClick(view) {
    return function (event) {
      var point = event && event.points && event.points[0];
      if (!point || point.curveNumber === undefined || point.pointNumber === undefined) { return; }
      var colour = new URLSearchParams(window.location.search).get("colour") || "label";
      var token = {};
      pendingClick = token;
      fetch("/clip-at/" + view + "/" + point.curveNumber + "/" + point.pointNumber +
            "?colour=" + encodeURIComponent(colour))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          if (answer && pendingClick === token) { startPlayer(answer.clip); }
        })
        .catch(function () { /* the Dash path still plays it */ });
    };
  }

  var clickHandlers = {};
  function listenForClicks(view, gd) {
    // (again) after Plotly replaced the plot's event emitter
    clickHandlers[view] = clickHandlers[view] || onPointClick(view);
    if (gd.on && gd._ev && gd._ev.listeners("plotly_click").indexOf(clickHandlers[view]) < 0) {
      gd.on("plotly_click", clickHandlers[view]);
    }
  }

  function syncUrl(sel, rep, colour, k, pres) {
    var params = new URLSearchParams();
    if (rep) { params.set("rep", rep); }
    if (colour && colour !== "label") { params.set("colour", colour); }
    if (k) { params.set("k", k); }
    if (sel && sel.clip !== null && sel.clip !== undefined) { params.set("clip", sel.clip); }
    var presenting = pres && pres.length > 0;
    if (presenting) { params.set("present", "1"); }
    document.body.classList.toggle("presentation", !!presenting);
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
    return url;
  }

  /* ---------------------------------------------------------------- highlight layer */
  function graphDiv(view) { return document.querySelector("#view-" + view + " .js-plotly-plot"); }

  function project3d(scene, layout, p) {
    // plotly.js's own projection of a 3D point to the page (as for 3D annotations)
    var cam = scene.glplot.cameraParams, ds = scene.dataScale;
    var v = [p[0] * ds[0], p[1] * ds[1], p[2] * ds[2], 1];
    function mul(m, x) {
      var r = [0, 0, 0, 0];
      for (var i = 0; i < 4; ++i) { for (var j = 0; j < 4; ++j) { r[j] += m[4 * i + j] * x[i]; } }
      return r;
    }
    var c = mul(cam.projection, mul(cam.view, mul(cam.model, v)));
    var size = layout._size, dom = layout.scene.domain;
    return [size.l + dom.x[0] * size.w + 0.5 * (1 + c[0] / c[3]) * size.w * (dom.x[1] - dom.x[0]),
            size.t + (1 - dom.y[1]) * size.h + 0.5 * (1 - c[1] / c[3]) * size.h * (dom.y[1] - dom.y[0])];
  }

  function geometry(gd) {
    // -> {rect: [x, y, w, h] of the plot area, toPixel(point), signature}
    var L = gd._fullLayout;
    if (!L) { return null; }
    if (L.scene && L.scene._scene && L.scene._scene.glplot) {
      var scene = L.scene._scene, cam = scene.glplot.cameraParams;
      if (!cam || !cam.view) { return null; }
      var dom = L.scene.domain, s = L._size;
      return {rect: [s.l + dom.x[0] * s.w, s.t + (1 - dom.y[1]) * s.h, s.w * (dom.x[1] - dom.x[0]),
                     s.h * (dom.y[1] - dom.y[0])],
              toPixel: function (p) { return project3d(scene, L, p); },
              signature: Array.prototype.join.call(cam.view, ",") + "|" + cam.projection[0] + "|" +
                         scene.dataScale.join(",") + "|" + L.width + "x" + L.height};
    }
    var xa = L.xaxis, ya = L.yaxis;
    if (!xa || !ya || !xa.c2p) { return null; }
    return {rect: [xa._offset, ya._offset, xa._length, ya._length],
            toPixel: function (p) { return [xa._offset + xa.c2p(p[0]), ya._offset + ya.c2p(p[1])]; },
            signature: xa.range.join(",") + "|" + ya.range.join(",") + "|" + xa._length + "|" + ya._length};
  }

  function layer(gd) {
    var canvas = gd.querySelector("canvas.dacviz-layer");
    var holder = gd.querySelector(".svg-container");
    if (!holder) { return null; }
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "dacviz-layer";
      var svgs = holder.querySelectorAll(":scope > .main-svg");
      holder.insertBefore(canvas, svgs.length > 1 ? svgs[svgs.length - 1] : null);
    }
    var w = gd._fullLayout.width, h = gd._fullLayout.height, dpr = window.devicePixelRatio || 1;
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
    ctx.clearRect(0, 0, gd._fullLayout.width, gd._fullLayout.height);
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
      data.lasso.xyz.forEach(function (p) {
        var q = geo.toPixel(p);
        ctx.beginPath(); ctx.arc(q[0], q[1], 4 * big, 0, 2 * Math.PI);
        ctx.lineWidth = 1.2; ctx.strokeStyle = "#222"; ctx.stroke();
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
      ctx.restore();
      record = {selected: data.selected.ids, neighbours: data.neighbours.ids,
                lasso: data.lasso.ids.length, at: performance.now(), rect: r,
                pixels: data.selected.xyz.concat(data.neighbours.xyz).map(geo.toPixel)};
    }
    drawn[view] = record;
  }

  function redrawChanged() {
    // redraw the layer of every view whose geometry changed since it was last drawn
    for (var i = 0; i < VIEWS.length; i++) {
      var view = VIEWS[i], gd = graphDiv(view);
      if (!gd || !gd._fullLayout) { continue; }
      listenForClicks(view, gd);
      var geo = geometry(gd);
      if (!geo) { continue; }
      var sig = geo.signature + "|" + gd._fullLayout.width + "x" + gd._fullLayout.height;
      var canvas = gd.querySelector("canvas.dacviz-layer");
      if (signatures[view] !== sig || !canvas) {
        signatures[view] = sig;
        drawView(view, gd, geo);
      }
    }
  }

  function frame() {
    redrawChanged();
    window.requestAnimationFrame(frame);
  }
  window.requestAnimationFrame(frame);

  function drawHighlight(payload) {
    highlight = payload;
    signatures = {};
    redrawChanged();  // now, not on the next frame: the page may be busy rendering the side panel
    return payload && payload.active ? "highlight" : "none";
  }

  /* ---------------------------------------------------------------- keyboard */
  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "n") { click("key-next"); }
    else if (key === "ArrowLeft" || key === "p") { click("key-prev"); }
    else if (key === "Escape") { click("clear"); }
    else if (key === "r") {
      var player = document.getElementById("player");
      if (player && player.getAttribute("src")) { player.currentTime = 0; player.play(); }
    } else if (key === "t") {
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
    } else { return; }
    event.preventDefault();
  });

  return {play: play, syncUrl: syncUrl, drawHighlight: drawHighlight, drawn: drawn};
})();
