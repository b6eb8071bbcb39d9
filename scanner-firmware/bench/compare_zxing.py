#!/usr/bin/env python3
"""Firmware vs zxing-cpp on exactly the same scanlines, in one run.

Builds and runs `examples/decode_compare.rs` (which renders the lines from fixed seeds, writes them
out and prints the firmware's reads), then gives every line to zxing-cpp as a greyscale image of
that one line repeated over a few rows, restricted to Code 128, and prints both side by side.

Usage (from the workspace root):  python3 scanner-firmware/bench/compare_zxing.py [labels-per-class]
Installs zxing-cpp and Pillow with pip if they are missing.
"""

import collections
import os
import subprocess
import sys
import tempfile

ROWS = 8  # the line repeated over this many rows (zxing-cpp scans rows of a 2-D image)


def ensure(module, package):
    try:
        return __import__(module)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])
        return __import__(module)


def main():
    labels = sys.argv[1] if len(sys.argv) > 1 else "40"
    zxingcpp = ensure("zxingcpp", "zxing-cpp")
    ensure("PIL", "Pillow")
    from PIL import Image

    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    with tempfile.TemporaryDirectory() as out:
        firmware = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "-p", "prescrypt-scanner-firmware",
             "--example", "decode_compare", "--", out, labels],
            cwd=root, check=True, capture_output=True, text=True)
        sys.stderr.write(firmware.stderr)
        with open(os.path.join(out, "lines.bin"), "rb") as f:
            data = f.read()
        with open(os.path.join(out, "lines.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]

    line_reads = collections.Counter()
    label_read = collections.defaultdict(bool)
    labels_of = collections.defaultdict(set)
    misreads = collections.Counter()
    wrong_check_ids = 0
    for cls, label, _line, offset, length, expected in rows:
        offset, length = int(offset), int(length)
        labels_of[cls].add(label)
        line = data[offset:offset + length]
        image = Image.frombytes("L", (length, ROWS), line * ROWS)
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.Code128)
        texts = {b.text for b in found}
        if expected != "-" and expected in texts:
            line_reads[cls] += 1
            label_read[(cls, label)] = True
        if cls == "noread" and int(label) % 4 == 2:
            # A well-formed Code 128 of an ID with a wrong check character (decode_compare's
            # noread labels 2, 6, 10, ...): zxing-cpp decoding it is right as Code 128; the
            # scanner's ID check is what must refuse it.
            wrong_check_ids += len(texts)
        else:
            misreads[cls] += len(texts - {expected})

    firmware_rows = {}
    for line in firmware.stdout.splitlines()[1:]:
        cells = [c.strip() for c in line.replace("|", " ").split()]
        firmware_rows[cells[0]] = cells
    print("Same lines, same run. Label = 5 lines of one trigger; a label reads if any of its lines")
    print("reads (zxing-cpp, firmware per line) or if the 5 lines voted together read (firmware).")
    print()
    print("| class | labels | lines | firmware line reads | zxing-cpp line reads | firmware labels (any line) "
          "| firmware labels (any line, 1 pass/line) | firmware labels (5 lines voted) | zxing-cpp labels (any line) "
          "| misreads firmware / zxing-cpp |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cls, cells in firmware_rows.items():
        _, nlabels, nlines, fw_lines, fw_any, fw_one_pass, fw_voted, fw_mis = cells
        zx_labels = sum(1 for label in labels_of[cls] if label_read[(cls, label)])
        print(f"| {cls} | {nlabels} | {nlines} | {fw_lines} | {line_reads[cls]} | {fw_any} | {fw_one_pass} | {fw_voted} "
              f"| {zx_labels} | {fw_mis} / {misreads[cls]} |")
    print()
    print(f"zxing-cpp also decoded {wrong_check_ids} lines of IDs printed with a wrong check character "
          "(correct as Code 128; the firmware refuses them by the ID check, counted as misreads if sent).")


if __name__ == "__main__":
    main()
