// Renders /api/v1/openapi.json with Swagger UI (served by this app; no inline script, CSP-friendly).
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  if (!node || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    domNode: node,
    deepLinking: true,
    validatorUrl: null, // never send the document to an outside validator
    tryItOutEnabled: false,
  });
})();
