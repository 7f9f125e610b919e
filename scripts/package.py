#!/usr/bin/env python3
"""Writes the per-browser extension folders and archives from the one source manifest.

The differences live here and nowhere else: Chrome runs the worker as a module service
worker; Firefox runs `background.scripts` as an event page and needs its gecko ID. The
version comes from Cargo.toml, so the crate and the manifest never disagree. Each entry's
Wasm module (`wasm/<entry>.js`, the glue its loader imports, and `wasm/<entry>_bg.wasm`) is
shipped to both.
"""
import argparse
import gzip
import json
import shutil
import tomllib
import zipfile
from pathlib import Path


def browser_manifest(source: dict, browser: str, version: str) -> dict:
    manifest = json.loads(json.dumps(source))
    manifest["version"] = version
    if browser == "chrome":
        manifest.pop("browser_specific_settings", None)
    else:
        worker = manifest["background"]
        manifest["background"] = {"scripts": [worker["service_worker"]], "type": worker["type"]}
    return manifest


# Every entry gets this date and these permissions, so the same files give the same bytes
# whenever and wherever they are built (the stores and reviewers can rebuild and compare).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o644 << 16


def write_zip(archive: Path, folder: Path) -> None:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), ZIP_DATE)
                info.external_attr = ZIP_MODE
                info.create_system = 3  # Unix, whatever the building machine
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED, compresslevel=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--extension", type=Path, required=True)
    parser.add_argument("--wasm", type=Path, required=True)
    parser.add_argument("--entries", nargs="+", required=True)
    parser.add_argument("--cargo-toml", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    source = json.loads(args.manifest.read_text())
    version = tomllib.loads(args.cargo_toml.read_text())["package"]["version"]
    for browser in ("chrome", "firefox"):
        folder = args.out / browser
        shutil.copytree(args.extension, folder)
        (folder / "wasm").mkdir()
        for entry in args.entries:
            for name in (f"{entry}.js", f"{entry}_bg.wasm"):
                shutil.copy2(args.wasm / name, folder / "wasm" / name)
        manifest = browser_manifest(source, browser, version)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        archive = args.out / f"wpp-tabs-{browser}.zip"
        write_zip(archive, folder)
        print(f"[build] {browser}: {folder}/ and {archive} ({archive.stat().st_size} bytes)")

    for entry in args.entries:
        raw = (args.out / "chrome" / "wasm" / f"{entry}_bg.wasm").read_bytes()
        gz = len(gzip.compress(raw, 9))
        print(f"[build] wasm/{entry}_bg.wasm: {len(raw)} bytes raw, {gz} bytes gzip")


if __name__ == "__main__":
    main()
