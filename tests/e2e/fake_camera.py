"""A fake camera for Chromium: a Y4M video of a vehicle's labels, drawn from real barcode encoders.

Chromium plays the file in a loop as the only camera (`--use-file-for-fake-video-capture`).
The frame shows a door-jamb VIN label in Code 39 (python-barcode), with the "I" marker some
imported vehicles' labels carry, and a dealer sticker in Data Matrix (ppf.datamatrix).
"""

from __future__ import annotations

from pathlib import Path

from barcode import Code39
from PIL import Image, ImageDraw, ImageFont
from ppf.datamatrix import DataMatrix

WIDTH, HEIGHT = 1280, 720
FRAMES = 10
FPS = 10


def code39_label(draw: ImageDraw.ImageDraw, text: str, *, top: int, module: int) -> None:
    """Bars of `text` in Code 39 (no check character, as VIN labels print it), centred, with its text."""
    modules = Code39(text, add_checksum=False).build()[0]
    width = len(modules) * module
    left = (WIDTH - width) // 2
    height = 170
    for index, bit in enumerate(modules):
        if bit == "1":
            x = left + index * module
            draw.rectangle([x, top, x + module - 1, top + height], fill=0)
    font = ImageFont.load_default(size=28)
    draw.text((WIDTH // 2, top + height + 12), text, fill=0, font=font, anchor="mt")


def data_matrix(draw: ImageDraw.ImageDraw, text: str, *, left: int, top: int, module: int) -> None:
    for row, bits in enumerate(DataMatrix(text).matrix):
        for column, bit in enumerate(bits):
            if bit:
                x, y = left + column * module, top + row * module
                draw.rectangle([x, y, x + module - 1, y + module - 1], fill=0)


def labels_frame(*, code39: str, datamatrix: str) -> Image.Image:
    image = Image.new("L", (WIDTH, HEIGHT), 235)
    draw = ImageDraw.Draw(image)
    draw.rectangle([40, 30, WIDTH - 40, 300], fill=255)  # the door-jamb label
    code39_label(draw, code39, top=60, module=3)
    draw.rectangle([500, 350, 780, 630], fill=255)  # the sticker, with its quiet zone
    data_matrix(draw, datamatrix, left=532, top=382, module=12)
    return image


def write_y4m(path: Path, image: Image.Image, *, frames: int = FRAMES) -> Path:
    """A Y4M (4:2:0) file of `frames` copies of `image`, as Chromium's fake capture reads it."""
    ycbcr = image.convert("RGB").convert("YCbCr")
    y, cb, cr = ycbcr.split()
    half = (image.width // 2, image.height // 2)
    frame = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{image.width} H{image.height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + frame)
    return path
