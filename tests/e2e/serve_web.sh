#!/usr/bin/env bash
# serve_web.sh — the browser page's files (GET /, /docs, /web/<path>) from --web-dir: types,
# the security headers, refused paths, a missing folder, and --api-key (the page is public,
# the API behind it is not).
source "$(dirname "$0")/lib.bash"

make_models
CSP="Content-Security-Policy: default-src 'self'; script-src 'self'"

start_daed web --models "$T/models" --web-dir "$ROOT/web" --openapi "$ROOT/openapi.yaml"
req GET /; expect 200 "GET / (the page)"
hdr_has "Content-Type: text/html; charset=utf-8" "/ is HTML"
hdr_has "$CSP" "/ has the Content-Security-Policy"
hdr_has "X-Content-Type-Options: nosniff" "/ has nosniff"
body_has '<script src="/web/app.js" defer></script>' "/ loads its script from a file"
if grep -qiE '<script>|<script [^>]*>[^<]|on(click|load|error)=' "$T/body"; then
    fail "/ has an inline script or handler"; else ok "/ has no inline script"; fi
req HEAD / -I; expect 200 "HEAD /"
req GET /docs; expect 200 "GET /docs"; hdr_has "$CSP" "/docs has the Content-Security-Policy"
body_has "/web/vendor/swagger-ui/swagger-ui-bundle.js" "/docs loads the vendored Swagger UI"
req GET /web/app.js; expect 200 "GET /web/app.js"
hdr_has "Content-Type: text/javascript; charset=utf-8" "app.js is JavaScript"
hdr_has "$CSP" "app.js has the Content-Security-Policy"
req GET /web/vendor/swagger-ui/swagger-ui.css; expect 200 "a vendored file"
hdr_has "Content-Type: text/css; charset=utf-8" "the vendored css is CSS"
cmp -s "$T/body" web/vendor/swagger-ui/swagger-ui.css && ok "served byte for byte" ||
    fail "swagger-ui.css differs from the file"
req GET /web/samples/shoe.png; expect 200 "a sample image"; hdr_has "Content-Type: image/png" "png type"
# the page shows X-Model: every model's 200 answer names it (not only tiled ones)
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
req POST /v1/score --data-binary @"$T/g28.png"; expect 200 "a score"
hdr_has "X-Model: conv" "the score names its model in X-Model"
req POST "/v1/encode?model=mlp" --data-binary @"$T/g28.png"; expect 200 "an encode"
hdr_has "X-Model: mlp" "the encode names its model in X-Model"

# ---- refused paths (curl --path-as-is keeps the dots; %2e%2e is decoded by the server)
for p in /web/../openapi.yaml /web/%2e%2e/openapi.yaml /web/vendor/../../Makefile.js \
    /web/.gitignore /web//etc/passwd.txt /web/vendor/ /web/app.js.bak /web/a%5cb.js \
    '/web/a%20b.js' /web/samples/SOURCES.txt/x.js; do
    req GET "$p" --path-as-is
    case "$CODE" in 4??) ok "$p refused ($CODE)" ;; *) fail "$p: status $CODE" ;; esac
    if grep -q "openapi: 3\|^all:" "$T/body"; then fail "$p leaked a file"; fi
done
req GET /web/nope.js; expect 404 "a missing file"; body_has '"code":"not_found"' "404 body"
req GET /../Makefile --path-as-is; expect 404 "/../ outside /web"
req POST /web/app.js -d x; expect 405 "POST on a file"
mkdir -p "$T/web" && cp web/index.html "$T/web/" && ln -s "$ROOT/Makefile" "$T/web/link.js"
stop_daed

# ---- a symbolic link in the folder is not followed
start_daed link --models "$T/models" --web-dir "$T/web"
req GET /web/link.js; expect 404 "a symbolic link is not served"
req GET /; expect 200 "the copied page"
stop_daed

# ---- a file stored gzip-compressed (<path>.gz, as the container image keeps the Swagger UI)
mkdir -p "$T/webgz" && cp web/index.html "$T/webgz/"
gzip -9n -c web/vendor/swagger-ui/swagger-ui.css >"$T/webgz/ui.css.gz"
start_daed gz --models "$T/models" --web-dir "$T/webgz"
req GET /web/ui.css -H 'Accept-Encoding: br, gzip'; expect 200 "a stored .gz file, gzip taken"
hdr_has "Content-Encoding: gzip" "sent gzip-encoded"; hdr_has "Vary: Accept-Encoding" "with Vary"
hdr_has "Content-Type: text/css; charset=utf-8" "its type from the plain name"
cmp -s "$T/body" "$T/webgz/ui.css.gz" && ok "the stored bytes as they are" || fail "gzip body differs"
for ae in "" "Accept-Encoding: gzip;q=0" "Accept-Encoding: deflate"; do
    req GET /web/ui.css ${ae:+-H "$ae"}; expect 200 "stored .gz, ${ae:-no Accept-Encoding}"
    if grep -qi "^Content-Encoding" "$T/hdrs"; then fail "encoded for '${ae}'"; fi
    cmp -s "$T/body" web/vendor/swagger-ui/swagger-ui.css && ok "inflated byte for byte" ||
        fail "inflated body differs for '${ae}'"
done
hdr_has "Vary: Accept-Encoding" "the inflated answer has Vary too"
req GET /web/ui.css.gz; expect 400 "the .gz name itself is not served"
stop_daed

# ---- without the folder: a pointer to the API, not an error
start_daed noweb --models "$T/models" --web-dir "$T/nothing-here"
req GET /; expect 200 "GET / without the page's files"
body_has '"api":"/openapi.yaml"' "points to the API document"
body_has "nothing-here" "names the folder"
req GET /docs; expect 200 "GET /docs without the files"
req GET /web/app.js; expect 404 "a file without the folder"
grep -q "web: " "$LOG" && ok "start-up log names the page" || fail "no web log line: $(cat "$LOG")"
stop_daed

# ---- --api-key: the page loads without the key, the API behind it needs it
start_daed key --models "$T/models" --web-dir "$ROOT/web" --api-key sekret
req GET /; expect 200 "the page is public"
req GET /web/app.js; expect 200 "its files are public"
req GET /v1/models; expect 401 "the API needs the key"
req GET /openapi.yaml; expect 401 "the API document needs the key"
req GET /v1/models -H "Authorization: Bearer sekret"; expect 200 "with the key"
stop_daed

[ "$FAILS" -eq 0 ] || { echo "serve_web: $FAILS failure(s)"; exit 1; }
echo "serve_web: all passed"
