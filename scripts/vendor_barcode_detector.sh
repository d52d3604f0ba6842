#!/bin/sh
# Vendor the Barcode Detection API polyfill (barcode-detector, ZXing-C++ compiled to WebAssembly)
# under static/vendor/barcode-detector/, from the npm registry: the page loads it from our own
# static files, never from a CDN. Usage: scripts/vendor_barcode_detector.sh VERSION (make vendor).
set -eu

VERSION=${1:?usage: $0 BARCODE_DETECTOR_VERSION}
DEST=$(cd "$(dirname "$0")/.." && pwd)/static/vendor/barcode-detector
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact "barcode-detector@$VERSION" >/dev/null
BD=node_modules/barcode-detector
ZX=node_modules/zxing-wasm
ZXING_VERSION=$(node -p "require('./$ZX/package.json').version")

# The ES module build: ponyfill.js (exports BarcodeDetector and prepareZXingModule, patches
# nothing) and the one chunk it imports; the reader-only .wasm that chunk loads.
mkdir -p "$DEST"
rm -f "$DEST"/*.js "$DEST"/*.wasm
cp "$BD/dist/es/ponyfill.js" "$BD/dist/es/zxing-exported.js" "$DEST/"
cp "$ZX/dist/reader/zxing_reader.wasm" "$DEST/"
cp "$BD/LICENSE" "$DEST/LICENSE.barcode-detector"
cp "$ZX/LICENSE" "$DEST/LICENSE.zxing-wasm"

# The .wasm must be the one the glue code was built for: it names its SHA-256.
SHA=$(sha256sum "$DEST/zxing_reader.wasm" | cut -d' ' -f1)
grep -q "\"$SHA\"" "$DEST/zxing-exported.js" || {
    echo "zxing_reader.wasm ($SHA) is not the build zxing-exported.js expects" >&2
    exit 1
}
COMMIT=$(grep -o 'te = "[0-9a-f]\{40\}"' "$DEST/zxing-exported.js" | cut -d'"' -f2 || true)

cat > "$DEST/VERSION" <<INFO
barcode-detector $VERSION (MIT, LICENSE.barcode-detector)
zxing-wasm $ZXING_VERSION (MIT, LICENSE.zxing-wasm)
zxing-cpp ${COMMIT:-unknown} (Apache-2.0, LICENSE.zxing-cpp): compiled into zxing_reader.wasm
zxing_reader.wasm sha256 $SHA
Refreshed by: make vendor BARCODE_DETECTOR_VERSION=$VERSION
INFO
echo "vendored barcode-detector $VERSION (zxing-wasm $ZXING_VERSION) into $DEST"
