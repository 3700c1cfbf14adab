// docs.js — starts Swagger UI (web/vendor/swagger-ui) on daed's own /openapi.yaml. Daed's
// Content-Security-Policy refuses inline scripts, hence this file instead of the package's
// inline initializer. "Try it out" goes to the daed that served this page (the document's
// servers entry names 127.0.0.1:8080, which may not be where this daed is reached), with
// the API key typed in above (kept in sessionStorage: this tab only).
'use strict';

function apiKey() {
  return sessionStorage.getItem('daed-key') || '';
}

// Replaces the document's servers with this page's origin once the document is parsed.
function ThisServerPlugin() {
  return {
    statePlugins: {
      spec: {
        wrapActions: {
          updateJsonSpec: (orig) => (spec) => {
            if (spec && typeof spec === 'object')
              spec.servers = [{ url: window.location.origin, description: 'this daed' }];
            return orig(spec);
          },
        },
      },
    },
  };
}

function start() {
  window.ui = SwaggerUIBundle({
    url: '/openapi.yaml',
    dom_id: '#swagger',
    validatorUrl: null,       // never ask a third-party validator
    deepLinking: true,
    displayRequestDuration: true,
    tryItOutEnabled: true,
    plugins: [ThisServerPlugin],
    requestInterceptor: (req) => {
      const k = apiKey();
      if (k && !req.headers.Authorization) req.headers.Authorization = 'Bearer ' + k;
      return req;
    },
  });
}

document.addEventListener('DOMContentLoaded', () => {
  const key = document.getElementById('key');
  key.value = apiKey();
  key.addEventListener('change', () => {
    sessionStorage.setItem('daed-key', key.value.trim());
    start();
  });
  start();
});
