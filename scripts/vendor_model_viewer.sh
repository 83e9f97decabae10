#!/usr/bin/env bash
# Vendors @google/model-viewer (the report's 3-D viewer) from the npm registry into
# dreamfusion_jax/vendor/model-viewer: its self-contained UMD bundle (three.js and lit inside,
# their licence headers kept) and its LICENSE. The version and the tarball's integrity are
# pinned; the bundle's sha256 is written to VERSION.json, which tests/test_report.py checks.
#   bash scripts/vendor_model_viewer.sh
set -euo pipefail
VERSION=4.4.0
INTEGRITY='sha512-8z1SB5sPlzKoak5mdx/D31brBakPYm3Qi31EfAucHAUrtrHHCbabypkKvSwReYhUpPaxyJ46oT47uWE/hrs1Zw=='
FILE=model-viewer-umd.min.js
cd "$(dirname "$0")/.."
DEST=dreamfusion_jax/vendor/model-viewer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "@google/model-viewer@$VERSION" >/dev/null)
TARBALL="$TMP/google-model-viewer-$VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$GOT" != "$INTEGRITY" ]; then
  echo "error: the tarball's integrity is $GOT, not the pinned $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$TARBALL" -C "$TMP"
mkdir -p "$DEST"
cp "$TMP/package/dist/$FILE" "$TMP/package/LICENSE" "$DEST/"
SHA=$(sha256sum "$DEST/$FILE" | cut -d' ' -f1)
cat > "$DEST/VERSION.json" <<JSON
{
  "package": "@google/model-viewer",
  "version": "$VERSION",
  "license": "Apache-2.0",
  "tarball_integrity": "$INTEGRITY",
  "file": "$FILE",
  "sha256": "$SHA"
}
JSON
echo "vendored @google/model-viewer@$VERSION: $DEST/$FILE ($SHA)"
