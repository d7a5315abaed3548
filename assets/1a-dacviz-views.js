/* dacviz client side, part 1 of 5: the page's views and the plotly.js fields the highlight layer
 * reads. The client side is split by concern, loaded in file order into one namespace
 * (window.dacviz): 1a views and Plotly fields, 1b the highlight layer, 1c a click's sound and
 * highlight, 1d the page's layout and link (one view maximised, the URL, zoom kept), 1e keys and
 * start-up. The callbacks Dash runs in the browser are registered in 1e as
 * window.dash_clientside.dacviz (viewer/callbacks/clientside.py names them). The views are the
 * page's own table (#page's data-views, written from dacviz_app/embedding/spaces.py). */
window.dacviz = window.dacviz || {};  // one namespace, filled by assets/1a..1e in order
(function (d) {
  /* Plotly internals
   * The layer has to know where Plotly draws a data point, which plotly.js has no API for. These
   * are the private plotly.js fields it reads, all of them, and nothing else in this file reads a
   * Plotly field that starts with "_": checked against plotly.js 4.1.1 (dash 4.4.1, plotly 7.1.0).
   * plotly.missing() names any that is gone or changed shape; tests/test_browser.py asserts it
   * finds none in every view and that the layer follows zoom, pan and the camera, so a Plotly
   * upgrade that renames one fails there, loudly. gd.on and gd.emit are the event emitter's
   * methods that plotly.js sets on the graph div (gd.on is documented, gd.emit is not). */
  var plotly = {
    layout: function (gd) { return gd._fullLayout || null; },  // the computed layout, once plotted
    paper: function (L) { return {width: L.width, height: L.height}; },  // the figure's size in px
    size: function (L) { return L._size; },                    // the plot area in px: {l, t, w, h}
    axis: function (L, name) {                                  // a 2D axis: px offset, length, data -> px
      var ax = L[name];
      return ax && {offset: ax._offset, length: ax._length, range: ax.range,
                    c2p: typeof ax.c2p === "function" ? function (v) { return ax.c2p(v); } : null};
    },
    scene: function (L) {                                       // a 3D scene: its camera as of its last frame
      var s = L.scene && L.scene._scene;
      return s && s.glplot ? {camera: s.glplot.cameraParams, dataScale: s.dataScale, domain: L.scene.domain}
                           : null;
    },
    traces: function (gd) {                      // the drawn traces: [{index, visible, x, y, customdata}]
      return (gd._fullData || []).map(function (t) {
        return {index: t.index, visible: t.visible, x: t.x, y: t.y, customdata: t.customdata};
      });
    },
    missing: function (gd, dim) {
      // -> the names of the fields above that a plotted view lacks (or that changed shape)
      var out = [];
      function need(ok, what) { if (!ok) { out.push(what); } }
      function nums(o, keys) { return !!o && keys.every(function (k) { return typeof o[k] === "number"; }); }
      function mat(m, n) { return !!m && m.length === n; }
      need(typeof gd.on === "function" && typeof gd.emit === "function", "gd.on, gd.emit");
      var L = plotly.layout(gd);
      need(L, "gd._fullLayout");
      need(Array.isArray(gd._fullData) && gd._fullData.every(function (t) {
        return typeof t.index === "number" && (dim === 3 || (t.x && t.y && t.x.length === t.y.length));
      }), "gd._fullData[].index/x/y");
      if (!L) { return out; }
      need(nums(plotly.paper(L), ["width", "height"]), "_fullLayout.width/height");
      need(nums(plotly.size(L), ["l", "t", "w", "h"]), "_fullLayout._size.l/t/w/h");
      if (dim === 3) {
        var s = plotly.scene(L);
        need(s, "_fullLayout.scene._scene.glplot");
        if (!s) { return out; }
        need(s.camera && mat(s.camera.view, 16) && mat(s.camera.projection, 16) && mat(s.camera.model, 16),
             "scene._scene.glplot.cameraParams.view/projection/model");
        need(mat(s.dataScale, 3), "scene._scene.dataScale");
        need(s.domain && mat(s.domain.x, 2) && mat(s.domain.y, 2), "_fullLayout.scene.domain");
      } else {
        ["xaxis", "yaxis"].forEach(function (name) {
          var ax = plotly.axis(L, name);
          need(nums(ax, ["offset", "length"]) && mat(ax.range, 2) && ax.c2p,
               "_fullLayout." + name + "._offset/_length/range/c2p");
        });
      }
      return out;
    }
  };

  /* ---------------------------------------------------------------- the page's views */
  var viewTable = null;
  function views() {
    // [{name, method, dim, title, axis}] from #page's data-views; [] until Dash has rendered it
    if (!viewTable) {
      var page = document.getElementById("page"), json = page && page.getAttribute("data-views");
      if (json) {
        try { viewTable = JSON.parse(json); } catch (e) { viewTable = null; }
      }
    }
    return viewTable || [];
  }
  function dimOf(name) {
    var table = views();
    for (var i = 0; i < table.length; i++) { if (table[i].name === name) { return table[i].dim; } }
    return 2;
  }

  function graphDiv(view) { return document.querySelector("#view-" + view + " .js-plotly-plot"); }
  function viewAt(target) {
    // the name of the view whose figure holds the element ``target`` (an event's), or null
    var el = target && target.closest && target.closest("[id^='view-']");
    var name = el && el.id.slice(5), gd = name && graphDiv(name);
    return gd && gd.contains(target) ? name : null;
  }
  d.plotly = plotly;
  d.viewAt = viewAt;
  d.views = views;
  d.dimOf = dimOf;
  d.graphDiv = graphDiv;
})(window.dacviz);
