// The viewer's configuration from the page's <html data-…> attributes (paths written by
// scripts/build_viewer.sh). A classic script, run before the modules; a file, not an inline
// script, so the page runs under the server's Content-Security-Policy.
(() => {
  const d = document.documentElement.dataset;
  window.CADASTRE_VIEWER_CONFIG = Object.assign(window.CADASTRE_VIEWER_CONFIG || {}, {
    app: d.app,
    cesiumBaseUrl: d.cesium,
    style: d.style,
  });
})();
