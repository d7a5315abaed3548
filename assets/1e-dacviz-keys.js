/* dacviz client side, part 5: keyboard shortcuts for a talk, start-up (the layer binds to every
 * graph Dash renders), and the functions Dash calls in the browser (ClientsideFunction namespace
 * "dacviz", registered in viewer/callbacks/clientside.py). */
(function (d) {
  var plotly = d.plotly, views = d.views, graphDiv = d.graphDiv;
  /* ---------------------------------------------------------------- selections */
  function clearOutlines() {
    // the box/lasso outline Plotly keeps drawn on a 2D view, and its dimming of the other points
    views().forEach(function (v) {
      var gd = graphDiv(v.name);
      if (v.dim !== 2 || !gd || !window.Plotly) { return; }
      var L = plotly.layout(gd);
      if (L && L.selections && L.selections.length) { window.Plotly.relayout(gd, {selections: []}); }
      window.Plotly.restyle(gd, {selectedpoints: [null]});
    });
  }

  /* ---------------------------------------------------------------- keyboard */
  function click(id) {
    var el = document.getElementById(id);
    if (el) { el.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "Enter" && tag === "INPUT" && event.target.closest && event.target.closest("#k")) {
      event.target.blur();  // the k box applies its value now, not only when it loses focus
      return;
    }
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "ArrowRight" || key === "n") { click("key-next"); }
    else if (key === "ArrowLeft" || key === "p") { click("key-prev"); }
    else if (key === "Escape") { click("clear"); clearOutlines(); }
    else if (key === "r") {
      var player = document.getElementById("player");
      if (player && player.getAttribute("src")) { player.currentTime = 0; player.play(); }
    } else if (key === "t") {
      var toggle = document.querySelector("#presentation input");
      if (toggle) { toggle.click(); }
    } else { return; }
    event.preventDefault();
  });

  new MutationObserver(d.bindAll).observe(document.documentElement, {childList: true, subtree: true});
  window.addEventListener("resize", function () {
    views().forEach(function (v) { d.refreshNextFrame(v.name); });
    d.fitMapsSoon();
  });
  d.bindAll();

  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.dacviz = {keepView: d.keepView, drawHighlight: d.drawHighlight, play: d.play,
                                   syncUrl: d.syncUrl, mapsDrawn: d.mapsDrawn};
  d.clearOutlines = clearOutlines;
})(window.dacviz);
