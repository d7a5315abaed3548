/* dacviz client side, part 4: the page's layout and its link: the views share the window's height,
 * one view maximised (max= in the link), the URL kept in step with the controls, and each view's
 * zoom or camera kept for the server's next figure. */
(function (d) {
  var views = d.views;
  /* The views share the window's height under the header and the legend: --maps-top is where
   * the grid of views starts (under the legend, however many rows it wraps to). Set only when it
   * moves by more than 2 px: a new height makes Plotly redraw, which at 100k clips costs a
   * second. The legend's own size is watched (a new colouring may wrap it to more rows). */
  var fitAsked = false, watched = null;
  function root0() { return document.documentElement; }
  function fitMaps() {
    fitAsked = false;
    var grid = document.querySelector(".views-grid"), legend = document.getElementById("legend");
    if (!grid) { return; }
    if (legend && watched !== legend && window.ResizeObserver) {
      watched = legend;
      new ResizeObserver(fitMapsSoon).observe(legend);
    }
    if (legend && document.body.classList.contains("maximised")) {  // the legend may have wrapped
      root0().style.setProperty("--legend-height", Math.ceil(legend.getBoundingClientRect().height) + "px");
    }
    var top = Math.round(grid.getBoundingClientRect().top + window.scrollY);
    var root = document.documentElement, now = parseInt(root.style.getPropertyValue("--maps-top"), 10);
    if (isNaN(now) || Math.abs(now - top) > 2) { root.style.setProperty("--maps-top", top + "px"); }
  }
  function fitMapsSoon() {
    if (!fitAsked) { fitAsked = true; window.requestAnimationFrame(fitMaps); }
  }

  /* ---------------------------------------------------------------- zoom and camera
   * A view's zoom (2D ranges) or camera (3D), as the user left it, for the representation it was
   * drawn from: the server draws the next figure of the same representation with it (a new
   * colouring, filter or comparison), where Plotly's uirevision would not (dcc.Graph replots
   * after each zoom with the figure Plotly mutated, which clears Plotly's record of the edit). */
  function keepView() {
    // arguments: each view's relayoutData, then each view's figure, then the kept state
    var args = Array.prototype.slice.call(arguments), table = views(), n = table.length;
    var out = Object.assign({}, args[2 * n] || {});
    var context = window.dash_clientside && window.dash_clientside.callback_context;
    var fired = (context && context.triggered || []).map(function (t) { return t.prop_id; });
    table.forEach(function (v, i) {
      if (fired.indexOf("view-" + v.name + ".relayoutData") < 0) { return; }
      var e = args[i], figure = args[n + i];
      var rep = figure && figure.layout && figure.layout.meta && figure.layout.meta.rep;
      if (!e || !rep) { return; }
      var entry = Object.assign({}, out[v.name] && out[v.name].rep === rep ? out[v.name] : {rep: rep});
      ["x", "y"].forEach(function (a) {
        var name = a + "axis";
        if (e[name + ".range[0]"] !== undefined && e[name + ".range[1]"] !== undefined) {
          entry[a] = [e[name + ".range[0]"], e[name + ".range[1]"]];
        } else if (Array.isArray(e[name + ".range"])) { entry[a] = e[name + ".range"]; }
        if (e[name + ".autorange"]) { delete entry[a]; }
      });
      if (e["scene.camera"]) { entry.camera = e["scene.camera"]; }
      out[v.name] = entry;
    });
    return out;
  }

  /* ---------------------------------------------------------------- one view maximised */
  function maximised() {
    var box = document.querySelector(".view-box.max");
    return box ? box.id.replace(/^box-/, "") : null;
  }

  function maximise(view) {
    // view: a view's name (it fills the window, the others fold), or null (all four again)
    var known = views().some(function (v) { return v.name === view; }) ? view : null;
    document.querySelectorAll(".view-box").forEach(function (box) {
      var on = known !== null && box.id === "box-" + known;
      box.classList.toggle("max", on);
      var button = box.querySelector(".maximise");
      if (button) { button.textContent = on ? "⤡" : "⤢"; button.setAttribute("aria-pressed", on ? "true" : "false"); }
    });
    document.body.classList.toggle("maximised", known !== null);
    var params = new URLSearchParams(window.location.search);
    if (known) { params.set("max", known); } else { params.delete("max"); }
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) { window.history.replaceState(null, "", url); }
    // the shared legend stays in view above the maximised view: the view is as tall as the
    // window less the legend (--legend-height), and the page scrolls to the legend
    var legend = document.getElementById("legend");
    var box = known && document.getElementById("box-" + known);
    if (box && legend) {
      document.documentElement.style.setProperty("--legend-height", Math.ceil(legend.getBoundingClientRect().height) + "px");
      legend.scrollIntoView({block: "start", behavior: "instant"});
    } else if (box) { box.scrollIntoView({block: "start", behavior: "instant"}); }
    window.dispatchEvent(new Event("resize"));  // Plotly fits the new size; the layer follows
    return known;
  }

  var maxRestored = false;
  function restoreMaximised() {
    // a link's max=: once, when the views are there
    if (maxRestored || !document.querySelector(".view-box") || !views().length) { return; }
    maxRestored = true;
    var wanted = new URLSearchParams(window.location.search).get("max");
    if (wanted) { maximise(wanted); }
  }


  /* A link's zooms and cameras (view=): the server draws the first figures with them, but the
   * views change size once the legend and --maps-top settle, and a 2D view's equal-scale axes
   * then widen one range. So once every view has its final size, the link's values are set
   * again, exactly (Plotly.relayout; keepView records them as if the user had zoomed). */
  var viewsRestored = false;
  var OPENED_WITH = window.location.search;  // the link as opened, before syncUrl rewrites it
  var NUMBER = /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i;  // a view= number (page_state.VIEW_NUMBER, the same rule)
  var userMoved = false;  // a press on a view before the link's views are set: the user's own wins
  document.addEventListener("pointerdown", function (event) {
    if (event.target.closest && event.target.closest(".view")) { userMoved = true; }
  }, true);
  function linkRep() {
    var link = new URLSearchParams(OPENED_WITH);
    return shownRep(link.get("rep") || "z", link.get("q"));
  }
  function linkViews() {
    // the link's view= values the server also takes (page_state.parse_views): finite, within
    // #page's data-view-limit, non-empty ranges
    var out = {}, page = document.getElementById("page");
    var limit = parseFloat(page && page.getAttribute("data-view-limit")) || 0;
    new URLSearchParams(OPENED_WITH).getAll("view").slice(0, views().length).forEach(function (field) {
      var parts = field.split(":"), texts = (parts[1] || "").split(","), numbers = texts.map(Number);
      if (parts.length !== 2 || field.length > 300 || !texts.every(function (t) { return NUMBER.test(t); }) ||
          !numbers.every(function (n) { return isFinite(n) && Math.abs(n) <= limit; })) { return; }
      if (numbers.length === 4 && (numbers[0] === numbers[1] || numbers[2] === numbers[3])) { return; }
      out[parts[0]] = numbers;
    });
    return out;
  }
  function settled(gd) {
    if (gd && gd.offsetParent === null) { return true; }  // folded (another view maximised)
    var L = gd && gd._fullLayout;
    return !!L && Math.abs(L.height - gd.clientHeight) < 2 && Math.abs(L.width - gd.clientWidth) < 2;
  }
  var restoring = null;  // the pending check: {tries, stable, sizes}
  function restoreViews() {
    // called from bindAll (each highlight paint and each re-render of the page): the first call
    // starts a check every 150 ms that applies the link's views once every shown view has kept
    // one size for three checks in a row, unless the user pressed a view meanwhile
    if (viewsRestored || restoring || !document.getElementById("page") || !window.Plotly) { return; }
    if (!Object.keys(linkViews()).length) { viewsRestored = true; return; }
    restoring = {tries: 0, stable: 0, sizes: ""};
    window.setTimeout(checkViews, 150);
  }
  function checkViews() {
    var table = views(), graphs = table.map(function (v) { return d.graphDiv(v.name); });
    var sizes = graphs.map(function (gd) { return gd ? gd.clientWidth + "x" + gd.clientHeight : "-"; }).join(" ");
    restoring.stable = graphs.every(settled) && sizes === restoring.sizes ? restoring.stable + 1 : 0;
    restoring.sizes = sizes;
    restoring.tries += 1;
    if (restoring.stable < 3 && restoring.tries < 60) { window.setTimeout(checkViews, 150); return; }
    viewsRestored = true;
    d.viewsRestoredAt = performance.now();
    if (userMoved) { return; }  // the user zoomed, turned or clicked meanwhile: theirs stays
    var wanted = linkViews(), rep = linkRep();
    table.forEach(function (v, i) {
      var n = wanted[v.name], gd = graphs[i];
      var drawn = gd && gd.layout && gd.layout.meta && gd.layout.meta.rep;
      if (!n || drawn !== rep) { return; }  // another representation by now: the link's view is not its
      if (v.dim === 2 && n.length === 4) {
        window.Plotly.relayout(gd, {"xaxis.range": n.slice(0, 2), "yaxis.range": n.slice(2, 4)});
      } else if (v.dim === 3 && n.length === 9) {
        var xyz = function (k) { return {x: n[k], y: n[k + 1], z: n[k + 2]}; };
        window.Plotly.relayout(gd, {"scene.camera": {eye: xyz(0), center: xyz(3), up: xyz(6)}});
      }
    });
  }

  function fixed(v) { return String(Number(v.toPrecision(6))); }

  function shownRep(rep, depth) {
    // the representation on screen: the dropdown's, at the slider's depth for z (#page's table)
    var page = document.getElementById("page"), table = {};
    try { table = JSON.parse(page.getAttribute("data-depth-reps") || "{}"); } catch (e) { table = {}; }
    return rep === "z" && depth && table[String(depth)] ? table[String(depth)] : rep;
  }

  function viewFields(state, shown) {
    // the zooms and cameras the user left for the representation the link names (``shown``):
    // 'pca2:x0,x1,y0,y1' and 'pca3:eye x,y,z,centre x,y,z,up x,y,z' (page_state.parse_views)
    var out = [];
    views().forEach(function (v) {
      var entry = state && state[v.name];
      if (!entry || entry.rep !== shown) { return; }
      var numbers = null;
      if (entry.x && entry.y) { numbers = entry.x.concat(entry.y); }
      if (entry.camera && entry.camera.eye) {
        var c = entry.camera, up = c.up || {x: 0, y: 0, z: 1}, centre = c.center || {x: 0, y: 0, z: 0};
        numbers = [c.eye, centre, up].reduce(function (all, p) { return all.concat([p.x, p.y, p.z]); }, []);
      }
      if (numbers && numbers.every(function (n) { return typeof n === "number" && isFinite(n); })) {
        out.push(v.name + ":" + numbers.map(fixed).join(","));
      }
    });
    return out;
  }

  function syncUrl(sel, rep, colour, k, pres, depth, compare, filter, lassoLink, shown, viewState, options) {
    var params = new URLSearchParams();
    if (rep) { params.set("rep", rep); }
    var handle = document.querySelector("#depth [role=slider]");  // the codebook slider
    var full = handle ? parseInt(handle.getAttribute("aria-valuemax"), 10) : null;
    if (rep === "z" && depth && full && depth < full) { params.set("q", depth); }
    if (colour && colour !== "label") { params.set("colour", colour); }
    if (compare) { params.set("cmp", compare); }
    (filter || []).forEach(function (f) { params.append("filter", f); });
    if (lassoLink) { params.set("sel", lassoLink); }
    if (shown && options) {  // the groups switched off in the legend
      options.forEach(function (o) { if (shown.indexOf(o.value) < 0) { params.append("hide", o.value); } });
    }
    viewFields(viewState, shownRep(rep, depth)).forEach(function (f) { params.append("view", f); });
    if (k) { params.set("k", k); }
    if (sel && sel.clip !== null && sel.clip !== undefined) { params.set("clip", sel.clip); }
    var presenting = pres && pres.length > 0;
    if (presenting) { params.set("present", "1"); }
    var max = maxRestored ? maximised() : new URLSearchParams(window.location.search).get("max");
    if (max) { params.set("max", max); }
    document.body.classList.toggle("presentation", !!presenting);
    fitMapsSoon();
    var url = window.location.pathname + "?" + params.toString();
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
    return url;
  }

  /* The maps' new figures are drawn (two animation frames after Dash hands them to the graphs):
   * the maps-drawn store, which the panels below the maps follow, so that the browser draws the
   * maps before it redraws the analysis, the lens and the tables. */
  var lastDrawn = null;
  function mapsDrawn() {
    // what the figures draw (groups, representation, font size: presentation); a legend click
    // (visibility only) changes none of these, and the panels below are not asked again
    var figures = Array.prototype.slice.call(arguments);
    if (!figures.some(function (f) { return f && f.layout; })) { return window.dash_clientside.no_update; }
    var signature = JSON.stringify(figures.map(function (f) {
      var L = f && f.layout;
      return L ? [L.meta && L.meta.groups, L.meta && L.meta.rep, L.font && L.font.size] : null;
    }));
    if (signature === lastDrawn) { return window.dash_clientside.no_update; }
    lastDrawn = signature;
    return new Promise(function (resolve) {
      window.requestAnimationFrame(function () {
        window.requestAnimationFrame(function () { resolve({signature: signature, at: Date.now()}); });
      });
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".maximise");
    if (button) {
      var view = button.getAttribute("data-view");
      maximise(maximised() === view ? null : view);
      return;
    }
    if (event.target.id === "exit-presentation") {  // the controls are folded away in presentation
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
    }
  });
  d.fitMapsSoon = fitMapsSoon;
  d.maximise = maximise;
  d.maximised = maximised;
  d.restoreMaximised = restoreMaximised;
  d.restoreViews = restoreViews;
  d.syncUrl = syncUrl;
  d.keepView = keepView;
  d.mapsDrawn = mapsDrawn;
})(window.dacviz);
