#!/usr/bin/env bash
# Fetch the diagram viewers the web pages use (bpmn-js, dmn-js) from the npm registry and keep
# only their viewer bundles, CSS, fonts and licence under src/tiergate/web/static/vendor/.
# Run from the repository root:  bash scripts/vendor_web.sh [BPMN_JS_VERSION] [DMN_JS_VERSION]
# Pages load these files from tiergate itself; nothing is fetched from a CDN at run time.
set -euo pipefail

BPMN_JS=${1:-18.31.1}
DMN_JS=${2:-17.10.2}
ROOT=$(pwd)
VENDOR="$ROOT/src/tiergate/web/static/vendor"
[ -f "$ROOT/pyproject.toml" ] || { echo "run from the repository root" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fetch() {  # fetch PACKAGE VERSION: unpacks into $TMP/PACKAGE, prints "tarball integrity"
  local pkg=$1 version=$2
  (cd "$TMP" && npm pack --silent "$pkg@$version" >/dev/null)
  mkdir -p "$TMP/$pkg" && tar xzf "$TMP/$pkg-$version.tgz" -C "$TMP/$pkg"
  local tarball integrity
  tarball=$(npm view "$pkg@$version" dist.tarball)
  integrity=$(npm view "$pkg@$version" dist.integrity)
  # the integrity npm records is the SHA-512 of the tarball we unpacked: check it
  local actual="sha512-$(openssl dgst -sha512 -binary "$TMP/$pkg-$version.tgz" | base64 -w0)"
  [ "$actual" = "$integrity" ] || { echo "$pkg@$version: integrity $actual, registry says $integrity" >&2; exit 1; }
  echo "$tarball $integrity"
}

readme() {  # readme DIR PACKAGE VERSION TARBALL INTEGRITY FILES...
  local dir=$1 pkg=$2 version=$3 tarball=$4 integrity=$5; shift 5
  {
    echo "# $pkg $version (vendored)"
    echo
    echo "Package: \`$pkg\`, version $version, from the npm registry."
    echo
    echo "- Tarball: $tarball"
    echo "- Integrity (npm \`dist.integrity\`, SHA-512 of the tarball): \`$integrity\`"
    echo "- Licence: LICENSE (copied from the package)."
    echo "- Fetched by \`scripts/vendor_web.sh\`; only these files of the package are kept, with \`dist/\` dropped from their paths:"
    echo
    for f in "$@"; do echo "  - \`$f\`"; done
  } > "$dir/README.md"
}

copy() {  # copy SRC_ROOT DEST_ROOT FILES...
  local src=$1 dest=$2; shift 2
  # dist/ is dropped from the paths (the repository ignores dist/ folders)
  local f to
  for f in "$@"; do to="$dest/${f#dist/}"; mkdir -p "$(dirname "$to")" && cp "$src/$f" "$to"; done
}

rm -rf "$VENDOR"/bpmn-js-* "$VENDOR"/dmn-js-*

read -r tarball integrity < <(fetch bpmn-js "$BPMN_JS")
BPMN_FILES=(dist/bpmn-navigated-viewer.production.min.js dist/assets/diagram-js.css dist/assets/bpmn-js.css)
DEST="$VENDOR/bpmn-js-$BPMN_JS"
copy "$TMP/bpmn-js/package" "$DEST" "${BPMN_FILES[@]}" LICENSE
readme "$DEST" bpmn-js "$BPMN_JS" "$tarball" "$integrity" "${BPMN_FILES[@]}"

read -r tarball integrity < <(fetch dmn-js "$DMN_JS")
DMN_FILES=(dist/dmn-viewer.production.min.js dist/assets/diagram-js.css dist/assets/dmn-js-shared.css
  dist/assets/dmn-js-drd.css dist/assets/dmn-js-decision-table.css dist/assets/dmn-js-literal-expression.css
  dist/assets/dmn-js-boxed-expression.css dist/assets/dmn-font/css/dmn.css)
for font in eot svg ttf woff woff2; do DMN_FILES+=("dist/assets/dmn-font/font/dmn.$font"); done
DEST="$VENDOR/dmn-js-$DMN_JS"
copy "$TMP/dmn-js/package" "$DEST" "${DMN_FILES[@]}" LICENSE
readme "$DEST" dmn-js "$DMN_JS" "$tarball" "$integrity" "${DMN_FILES[@]}"

echo "vendored bpmn-js $BPMN_JS and dmn-js $DMN_JS under $VENDOR"
