// /docs: Swagger UI on this server's OpenAPI document. A file (not an inline script), so the
// page runs under the server's Content-Security-Policy; the bundle is served from vendor/.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
