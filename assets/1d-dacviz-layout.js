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
  function fitMaps() {
    fitAsked = false;
    var grid = document.querySelector(".views-grid"), legend = document.getElementById("legend");
    if (!grid) { return; }
    if (legend && watched !== legend && window.ResizeObserver) {
      watched = legend;
      new ResizeObserver(fitMapsSoon).observe(legend);
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


  function syncUrl(sel, rep, colour, k, pres, depth, compare, filter, lassoLink, shown, options) {
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
  d.syncUrl = syncUrl;
  d.keepView = keepView;
})(window.dacviz);
