#!/usr/bin/env python3
"""Build a character set nobody here drew, for meta-testing Omniglot-trained models across
domains: letters of many scripts rendered from the fonts Debian packages install.

    apt-get install fonts-noto-core fonts-dejavu-core fonts-dejavu-extra fonts-freefont-ttf
    .venv/bin/python scripts/make-glyphs.py OUT [--images 20] [--seed 0]

Each class is one letter of one script; its images are the letter in every font that has it
(cycled until there are `--images` of them, like Omniglot's 20 drawers), each under a small
random affine jitter, 105x105, one bit per pixel, black ink on white, as Omniglot's files are,
so that `folder()` decodes and resizes them as `omniglot()` does its own. Letters whose
rendering in the reference font is nearly identical to an earlier class's (Latin A, Greek
Alpha, Cyrillic A) are left out, so no two classes share a shape.

Writes OUT/classes/<script>_<codepoint>/<font>_<k>.png and OUT/splits/{train,val,test}.txt
(every class in test, none in train and val: the set is for meta-testing only), and prints
the `folder(...)` expression to meta-test on it.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = [Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/truetype/dejavu"),
             Path("/usr/share/fonts/truetype/freefont")]
# (script, code points): letters only, no marks, digits or punctuation.
SCRIPTS = {
    "latin": range(0x41, 0x5B),
    "greek": [c for c in range(0x3B1, 0x3CA) if c != 0x3C2],
    "cyrillic": range(0x410, 0x430),
    "armenian": range(0x531, 0x557),
    "georgian": range(0x10D0, 0x10F1),
    "hebrew": range(0x5D0, 0x5EB),
    "devanagari": list(range(0x905, 0x915)) + list(range(0x915, 0x93A)),
    "bengali": range(0x995, 0x9BA),
    "thai": range(0xE01, 0xE2F),
    "ethiopic": range(0x1200, 0x1358, 8),
    "cherokee": range(0x13A0, 0x13F5),
    "runic": range(0x16A0, 0x16EB),
    "tifinagh": range(0x2D30, 0x2D68),
    "canadian_syllabics": range(0x1401, 0x1480, 2),
}
SIZE = 105  # Omniglot's image size
BOX = 80  # the glyph's longer side before jitter
# The jitter, as ranges: rotation (degrees), scale, shear, shift (pixels).
ROTATE, SCALE, SHEAR, SHIFT = 10.0, (0.85, 1.1), 0.15, 6.0
# Two letters are one shape when, drawn in the same font and scaled alike, their ink at 28x28
# overlaps this much (intersection over union); compared in these broad fonts.
SAME_SHAPE = 0.85
COMPARE_IN = ("FreeSans", "FreeSerif", "DejaVuSans", "NotoSans-Regular", "NotoSerif-Regular")


def fonts_with(chars: set[int]) -> dict[Path, set[int]]:
    """Each installed font file and the code points among `chars` it has a glyph for."""
    found = {}
    for folder in FONT_DIRS:
        for path in sorted(folder.glob("*.[ot]tf")):
            try:
                cmap = TTFont(path, lazy=True, fontNumber=0).getBestCmap() or {}
            except Exception:  # a font fontTools cannot read is simply not used
                continue
            have = chars & set(cmap)
            if have:
                found[path] = have
    return found


def render(char: str, font_path: Path) -> Image.Image | None:
    """The glyph, black on white, its longer side BOX pixels, centred on SIZE x SIZE; None if
    the font draws nothing for it."""
    font = ImageFont.truetype(str(font_path), 120)
    canvas = Image.new("L", (260, 260), 255)
    ImageDraw.Draw(canvas).text((130, 130), char, font=font, fill=0, anchor="mm")
    ink = Image.eval(canvas, lambda v: 255 - v).getbbox()
    if ink is None:
        return None
    glyph = canvas.crop(ink)
    scale = BOX / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                         Image.Resampling.LANCZOS)
    out = Image.new("L", (SIZE, SIZE), 255)
    out.paste(glyph, ((SIZE - glyph.width) // 2, (SIZE - glyph.height) // 2))
    return out


def jitter(image: Image.Image, rng: random.Random) -> Image.Image:
    """A random rotation, scale, shear and shift about the centre, then one bit per pixel."""
    a = math.radians(rng.uniform(-ROTATE, ROTATE))
    s = rng.uniform(*SCALE)
    sh = rng.uniform(-SHEAR, SHEAR)
    # forward map M = scale * rotate * shear; PIL wants the inverse (output -> input pixel)
    m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ np.array([[1, sh], [0, 1]]) * s
    inv = np.linalg.inv(m)
    c = np.array([SIZE / 2, SIZE / 2])
    shift = np.array([rng.uniform(-SHIFT, SHIFT), rng.uniform(-SHIFT, SHIFT)])
    offset = c - inv @ (c + shift)
    moved = image.transform((SIZE, SIZE), Image.Transform.AFFINE,
                            (*inv[0], offset[0], *inv[1], offset[1]),
                            resample=Image.Resampling.BILINEAR, fillcolor=255)
    return moved.point(lambda v: 255 if v >= 128 else 0).convert("1")


def ink28(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((28, 28), Image.Resampling.BILINEAR)) < 128


def same_shape(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Whether two letters look alike in the first comparison font that has both."""
    for font in COMPARE_IN:
        if font in a and font in b:
            union = (a[font] | b[font]).sum()
            return union > 0 and (a[font] & b[font]).sum() / union >= SAME_SHAPE
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=20, help="images per class (Omniglot: 20)")
    parser.add_argument("--min-fonts", type=int, default=2, help="leave out letters fewer fonts have")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    wanted = {c for cps in SCRIPTS.values() for c in cps}
    fonts = fonts_with(wanted)
    if not fonts:
        print("no fonts found under " + ", ".join(map(str, FONT_DIRS)) + "; install fonts-noto-core, "
              "fonts-dejavu-core and fonts-freefont-ttf", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    classes_dir = args.out / "classes"
    kept: list[str] = []
    shapes: list[dict[str, np.ndarray]] = []
    per_script: dict[str, int] = {}
    for script, cps in SCRIPTS.items():
        for cp in cps:
            char = chr(cp)
            drawn = [(p, g) for p in sorted(f for f, have in fonts.items() if cp in have)
                     if (g := render(char, p)) is not None]
            if len(drawn) < args.min_fonts:
                continue
            looks = {p.stem: ink28(g) for p, g in drawn if p.stem in COMPARE_IN}
            if any(same_shape(looks, other) for other in shapes):
                continue
            shapes.append(looks)
            name = f"{script}_{cp:04x}"
            folder = classes_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(args.images):
                font, glyph = drawn[k % len(drawn)]
                jitter(glyph, rng).save(folder / f"{font.stem}_{k:02d}.png")
            kept.append(name)
            per_script[script] = per_script.get(script, 0) + 1
    splits = args.out / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "train.txt").write_text("")
    (splits / "val.txt").write_text("")
    (splits / "test.txt").write_text("".join(f"{n}\n" for n in kept))
    print(f"{len(kept)} classes x {args.images} images from {len(fonts)} fonts in {classes_dir}")
    print(", ".join(f"{s} {n}" for s, n in per_script.items()))
    print(f'meta-test with: folder("{classes_dir.resolve()}", splits: "{splits.resolve()}", '
          'split: "test", size: 28, channels: 1)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
