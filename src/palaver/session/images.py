"""Image input (``input_image`` content): checked, measured and priced before it reaches the brain."""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from dataclasses import dataclass

from palaver.protocol.errors import ProtocolError

#: Largest decoded image accepted (OpenAI's limit for image inputs is of this order).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|jpg));base64,(.*)$", re.DOTALL)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers that carry the picture's size (not DHT/DAC/JPG extensions).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int
    size: int


def _bad(message: str, param: str) -> ProtocolError:
    return ProtocolError(message, code="invalid_image", param=param)


def inspect_image(data_url: str, *, param: str, max_bytes: int = MAX_IMAGE_BYTES) -> ImageInfo:
    """Check a ``data:image/png|jpeg;base64,…`` URL: well formed, within the size limit, and
    really a PNG or JPEG whose size can be read. Raises ``ProtocolError`` (``invalid_image``)."""
    match = _DATA_URL.match(data_url)
    if match is None:
        raise _bad(
            "input_image.image_url must be a data URL: data:image/png;base64,… or data:image/jpeg;base64,…",
            param,
        )
    mime, payload = match.group(1).replace("jpg", "jpeg"), match.group(2)
    if len(payload) * 3 // 4 > max_bytes:
        raise _bad(f"Image is larger than the limit of {max_bytes // (1024 * 1024)} MB.", param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad("input_image.image_url has invalid base64 data.", param) from exc
    size = _png_size(data) if mime == "image/png" else _jpeg_size(data)
    if size is None:
        raise _bad(f"input_image.image_url does not hold a valid {mime.split('/')[1].upper()} image.", param)
    return ImageInfo(mime=mime, width=size[0], height=size[1], size=len(data))


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or not data.startswith(_PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if width and height else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        i += 2 + length
    return None


def image_tokens(info: ImageInfo, detail: str) -> int:
    """Input tokens for an image, by OpenAI's published rule for its vision models: 85 at low
    detail; otherwise fit within 2048x2048, scale the short side to 768, and add 170 per
    512-pixel tile."""
    if detail == "low":
        return 85
    width, height = float(info.width), float(info.height)
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)
