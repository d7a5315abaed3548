#!/usr/bin/env bash
# Rebuild assets/0-plotly.min.js: plotly.js with only the traces dacviz draws (scatter, scattergl,
# scatter3d, heatmap, bar), 2.1 MB instead of the full 4.8 MB bundle. dcc.Graph uses a window.Plotly
# that is already there instead of loading its own, so the page evaluates ~0.4 s less script before
# it can draw (README section 4, "page ready"). Needs node/npm and the npm registry; run it when
# the plotly Python package (and so dcc's plotly.js version) changes, and keep VERSION equal to the
# version in the header of plotly/package_data/plotly.min.js.
#
#   bash scripts/build_plotly_bundle.sh            # -> assets/0-plotly.min.js
set -euo pipefail
VERSION=${VERSION:-4.1.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack "plotly.js@$VERSION" --silent >/dev/null
tar xzf "plotly.js-$VERSION.tgz"
cd package
npm install --omit=dev --ignore-scripts --no-audit --no-fund --silent
npm install --no-save --ignore-scripts --no-audit --no-fund --silent \
    esbuild esbuild-plugin-glsl esbuild-plugin-inline-css esbuild-plugin-environment stream-browserify
cat > dacviz-entry.js <<'JS'
var Plotly = require('./lib/core');  // scatter is part of the core
Plotly.register([require('./lib/scattergl'), require('./lib/scatter3d'), require('./lib/heatmap'),
                 require('./lib/bar')]);
module.exports = Plotly;
JS
cat > build.js <<'JS'
// plotly.js's own esbuild settings (its esbuild-config.js), with our entry point, minified
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
  entryPoints: ['./dacviz-entry.js'], outfile: './build/plotly-dacviz.min.js',
  format: 'iife', globalName: 'Plotly', bundle: true, minify: true, sourcemap: false,
  plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' }, target: 'es2016', logLevel: 'warning'
});
JS
node build.js
{
  echo "/*! plotly.js v$VERSION, partial bundle for dacviz (scatter, scattergl, scatter3d, heatmap, bar). Copyright 2012-2026 Plotly, Inc. MIT licence. Built by scripts/build_plotly_bundle.sh */"
  cat build/plotly-dacviz.min.js
} > "$ROOT/assets/0-plotly.min.js"
ls -l "$ROOT/assets/0-plotly.min.js"
