#!/usr/bin/env python3
"""Instructions per image, ours against zxing-cpp: a cost that does not move with machine load.

Runs under valgrind's callgrind, counting only the instructions inside the decode call of each
image (ours: `Decoder::run_steps`, called by `rx-barcode decode`; zxing-cpp:
`ZXing::ReadBarcodes`, called by its Python binding) — the same span the wall-clock benchmark
times (image already loaded). One process per image and decoder.

    python3 barcode/bench/instructions.py --corpus /tmp/rx-corpus \
        --rx-barcode target/release/rx-barcode --per-class 4

The corpus is the one `rx-readability --dir` writes. Needs valgrind, Python with zxing-cpp 3.1.1
and Pillow. Under callgrind everything runs ~50× slower, so our decoder gets an unlimited time
budget (the benchmark's 1.5 s budget stops nothing in this corpus on a native run either).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

ZXING = r"""
import sys
import zxingcpp
from PIL import Image
formats = [zxingcpp.BarcodeFormat.Code128, zxingcpp.BarcodeFormat.DataMatrix, zxingcpp.BarcodeFormat.QRCode]
for path in sys.argv[1:]:  # one file per process here
    image = Image.open(path)
    image.load()
    image = image.convert("L")
    zxingcpp.read_barcodes(image, formats=formats)
"""

# Classes whose images carry both codes of a token label: the benchmark asks for both.
BOTH = re.compile(r"^(print-scan-300|print-scan-600|thermal-203|phone-photo|worn-paper|sweep-.*)$")


def class_of(path):
    return re.sub(r"-\d{3}\.(jpg|png)$", "", os.path.basename(path))


def callgrind(command, function, path):
    """Instructions executed inside `function` (and what it calls) while `command path` runs."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--toggle-collect={function}",
         "--callgrind-out-file=/dev/null"] + command + [path],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if not match:
        sys.exit(f"no instruction count for {path}: {result.stderr[-500:]}")
    return int(match.group(1))


def percentile(values, p):
    values = sorted(values)
    rank = max(1, -(-len(values) * p // 100))
    return values[rank - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--rx-barcode", required=True)
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--tsv", help="also write one line per image here")
    parser.add_argument("--ours-only", action="store_true", help="measure our decoder only")
    parser.add_argument("--zxing-from", help="take zxing-cpp's counts from an earlier --tsv "
                        "(they do not change between our builds) instead of measuring them")
    args = parser.parse_args()

    by_class = {}
    for path in sorted(glob.glob(os.path.join(args.corpus, "*-[0-9][0-9][0-9].*"))):
        by_class.setdefault(class_of(path), []).append(path)
    files = [p for c in by_class for p in by_class[c][: args.per_class] if not c.startswith("sweep-")]
    work = tempfile.mkdtemp(prefix="rx-instructions-")
    script = os.path.join(work, "zxing.py")
    with open(script, "w") as f:
        f.write(ZXING)
    ours, theirs = {}, {}
    earlier = None
    if args.zxing_from:
        with open(args.zxing_from) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        earlier = {row[0]: int(row[2]) for row in rows}
    for path in files:
        want = "all" if BOTH.match(class_of(path)) else "any"
        ours[path] = callgrind([args.rx_barcode, "decode", "--want", want, "--budget-ms", "100000000"],
                               "*run_steps*", path)
        if args.ours_only:
            theirs[path] = 0
        elif earlier is not None:
            theirs[path] = earlier[os.path.basename(path)]
        else:
            theirs[path] = callgrind([args.python, script], "ZXing::ReadBarcodes*", path)
        print(f"{os.path.basename(path)}: ours {ours[path] / 1e6:.1f} M, zxing-cpp {theirs[path] / 1e6:.1f} M",
              file=sys.stderr, flush=True)

    if args.tsv:
        with open(args.tsv, "w") as f:
            f.write("file\tours_instructions\tzxing_instructions\n")
            for path in files:
                f.write(f"{os.path.basename(path)}\t{ours[path]}\t{theirs[path]}\n")
    print("| class | images | ours median M instr. | zxing-cpp median M instr. | ratio | ours p95 | zxing-cpp p95 |")
    print("|---|---|---|---|---|---|---|")
    groups = [(c, [f for f in files if class_of(f) == c]) for c in by_class if not c.startswith("sweep-")]
    groups.append(("**all**", files))
    for name, picked in groups:
        o = [ours[f] / 1e6 for f in picked]
        z = [theirs[f] / 1e6 for f in picked]
        om, zm = percentile(o, 50), percentile(z, 50)
        if args.ours_only:
            print(f"| {name} | {len(picked)} | {om:.0f} | – | – | {percentile(o, 95):.0f} | – |")
            continue
        print(f"| {name} | {len(picked)} | {om:.0f} | {zm:.0f} | {om / max(zm, 1e-9):.2f} × "
              f"| {percentile(o, 95):.0f} | {percentile(z, 95):.0f} |")


if __name__ == "__main__":
    main()
