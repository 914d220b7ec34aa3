"""Packages the filter as an OCI image layout in Istio's single-layer "compat" form: one gzip layer
holding `plugin.wasm`, no base image. Deterministic (fixed tar metadata, gzip mtime 0), so the
manifest digest depends only on the .wasm and can be pinned before pushing.

    python tools/oci_layout.py WASM OUT_DIR      # prints the manifest digest

scripts/package-wasm.sh runs it; tests/deploy/test_manifests.py checks what it writes.
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(out: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = out / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _layer(wasm: bytes) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size, info.mode, info.mtime, info.uid, info.gid = len(wasm), 0o444, 0, 0, 0
        tar.addfile(info, io.BytesIO(wasm))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar_bytes)
    return gz.getvalue(), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def package(wasm_path: Path, out: Path) -> str:
    wasm = wasm_path.read_bytes()
    layer, diff_id = _layer(wasm)
    layer_digest = _blob(out, layer)
    config = json.dumps({"architecture": "wasm", "os": "wasip1",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}, sort_keys=True).encode()
    config_digest = _blob(out, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest = _blob(out, manifest)
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": MANIFEST, "digest": manifest_digest, "size": len(manifest)}]}))
    return manifest_digest


if __name__ == "__main__":
    print(package(Path(sys.argv[1]), Path(sys.argv[2])))
